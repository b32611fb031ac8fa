// A storefront as a developer would write it: a typed client generated from the service's served
// /openapi.json by openapi-typescript, called through openapi-fetch. If the document were wrong
// (duplicate operation ids, untyped bodies), this would not compile under `tsc --strict`.
//
// Run: node dist/storefront.js <base URL>. Catalog → checkout → pay on the sandbox's checkout page
// → the purchase with its token. Prints the token's state on success; exits non-zero otherwise.
import createClient from "openapi-fetch";
import { randomUUID } from "node:crypto";
import type { paths, components } from "./api.js";

type Purchase = components["schemas"]["PurchaseBody"];

const base = process.argv[2];
if (!base) throw new Error("usage: storefront.js <base URL>");
const market = createClient<paths>({ baseUrl: base });

const catalog = await market.GET("/v1/listings");
if (!catalog.data) throw new Error(`catalog: ${catalog.response.status}`);
const tier = catalog.data.listings[0]?.tiers[0];
if (!tier) throw new Error("the catalog is empty");
console.log(`tier ${tier.name}: ${tier.price.amount} ${tier.price.currency}`);

const checkout = await market.POST("/v1/checkout", {
  params: { header: { "Idempotency-Key": randomUUID() } },
  body: { tier_id: tier.id, email: "typed-client@example.com" },
});
if (!checkout.data) {
  throw new Error(`checkout: ${checkout.response.status} ${checkout.error?.error.code}`);
}
const { purchase_id, receipt_key, checkout_url } = checkout.data;

// What the sandbox checkout page's Pay button does.
const paid = await fetch(`${checkout_url}/pay`, { method: "POST", redirect: "manual" });
if (paid.status >= 400) throw new Error(`pay: ${paid.status}`);

let purchase: Purchase | undefined;
for (let attempt = 0; attempt < 100; attempt++) {
  const read = await market.GET("/v1/purchases/{id}", {
    params: { path: { id: purchase_id } },
    headers: { authorization: `Bearer ${receipt_key}` },
  });
  // Done when the purchase is fulfilled and its token shown (the webhook lands asynchronously).
  if (read.data?.status === "fulfilled" && read.data.token?.value) {
    purchase = read.data;
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
if (!purchase?.token) throw new Error("no token after payment");
console.log(`purchase ${purchase.status}, token ${purchase.token.state}, ${purchase.max_installs} installs`);
