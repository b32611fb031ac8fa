//! Which requests each scenario sends, in the order they run: the catalog first (so the peak RSS
//! printed after it is the cached catalog's), the admin and portal reads, the reports, and the
//! concurrency-64 pair last.

use super::samples::Samples;
use super::scenario::{CATALOG_64, HEALTHZ_64, Scenario};

/// Connections of every scenario but the last two (the "at concurrency 16").
const C16: usize = 16;
/// The catalog target's concurrency.
const C64: usize = 64;

/// Every scenario, given the catalog's page paths, its canonicals and the admin's
/// `authorization` value.
pub fn all(
    samples: &Samples,
    pages: &[String],
    canonicals: &[String],
    admin: &str,
) -> Vec<Scenario> {
    let auth = [("authorization", admin)];
    let first_page = vec!["/v1/listings".to_owned()];
    let step = (canonicals.len() / 500).max(1);
    let listings: Vec<String> = canonicals
        .iter()
        .step_by(step)
        .map(|c| format!("/v1/listings/{c}"))
        .collect();
    let sellers: Vec<String> = samples
        .sellers
        .iter()
        .map(|s| format!("/v1/listings?seller={s}"))
        .collect();
    let admin_list = |query: &dyn Fn(usize) -> Option<String>| -> Vec<String> {
        (0..samples.purchases.len())
            .filter_map(|i| query(i).map(|q| format!("/v1/admin/purchases?{q}")))
            .collect()
    };
    // Half first pages, half pages a random depth in.
    let newest = admin_list(&|i| {
        Some(if i % 2 == 0 {
            "limit=50".to_owned()
        } else {
            format!("limit=50&cursor={}", samples.cursors[i])
        })
    });
    let by_status = admin_list(&|i| {
        let (status, cursor) = &samples.status_cursors[i];
        Some(if i % 2 == 0 {
            format!("status={status}")
        } else {
            format!("status={status}&cursor={cursor}")
        })
    });
    let by_email = admin_list(&|i| samples.emails.get(i).map(|e| format!("email={e}")));
    let by_listing = admin_list(&|i| Some(format!("listing_id={}", samples.listings[i])));
    let by_tier = admin_list(&|i| Some(format!("tier_id={}", samples.tiers[i])));
    let one: Vec<String> = samples
        .purchases
        .iter()
        .map(|id| format!("/v1/admin/purchases/{id}"))
        .collect();
    let report = vec!["/v1/admin/reports/sales".to_owned()];
    let seller_report: Vec<String> = samples
        .sellers
        .iter()
        .map(|s| format!("/v1/admin/reports/sales?seller_id={s}"))
        .collect();
    let portal = "/v1/portal/purchases".to_owned();

    let mut all = vec![
        Scenario::get("/healthz", C16, &["/healthz".to_owned()], &[], false),
        Scenario::get("catalog: first page", C16, &first_page, &[], false),
        Scenario::get("catalog: every page by cursor", C16, pages, &[], false),
        Scenario::get("catalog: a seller's first page", C16, &sellers, &[], false),
        Scenario::get("catalog: one listing", C16, &listings, &[], false),
        Scenario::get(
            "admin list: newest (first, deep)",
            C16,
            &newest,
            &auth,
            true,
        ),
        Scenario::get(
            "admin list: by status (first, deep)",
            C16,
            &by_status,
            &auth,
            true,
        ),
        Scenario::get("admin list: by e-mail", C16, &by_email, &auth, true),
        Scenario::get("admin list: by listing", C16, &by_listing, &auth, true),
        Scenario::get("admin list: by tier", C16, &by_tier, &auth, true),
        Scenario::get("admin: one purchase", C16, &one, &auth, true),
    ];
    // Each receipt and portal request carries its own bearer value.
    all.push(receipts(samples));
    all.push(portal_scenario(samples, &portal));
    all.extend([
        Scenario::get(
            "sales report: platform, 30 days, first page",
            C16,
            &report,
            &auth,
            true,
        ),
        Scenario::get(
            "sales report: one seller, 30 days, first page",
            C16,
            &seller_report,
            &auth,
            true,
        ),
        Scenario::get(HEALTHZ_64, C64, &["/healthz".to_owned()], &[], false),
        Scenario::get(CATALOG_64, C64, &first_page, &[], false),
    ]);
    all.into_iter().flatten().collect()
}

/// The buyer's own read of a purchase, `GET /v1/purchases/{id}` with its receipt key.
fn receipts(samples: &Samples) -> Option<Scenario> {
    let requests: Vec<(String, String)> = samples
        .receipts
        .iter()
        .map(|(id, key)| (format!("/v1/purchases/{id}"), format!("Bearer {key}")))
        .collect();
    Scenario::each("storefront: one purchase (receipt)", C16, &requests, true)
}

/// The portal's list, `GET /v1/portal/purchases`, each request with a session of its buyer.
fn portal_scenario(samples: &Samples, path: &str) -> Option<Scenario> {
    let requests: Vec<(String, String)> = samples
        .portal_tokens
        .iter()
        .map(|token| (path.to_owned(), format!("Bearer {token}")))
        .collect();
    Scenario::each("portal: a buyer's purchases", C16, &requests, true)
}
