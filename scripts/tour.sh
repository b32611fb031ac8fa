#!/usr/bin/env bash
# The README's five-minute tour, as a script (tests/tour.rs runs it against a fresh sandbox).
# Needs: a running `market` in sandbox mode, curl and jq.
#   MARKET  where it listens          (default http://127.0.0.1:8080)
#   ADMIN   the admin token from its start-up banner
set -euo pipefail
MARKET="${MARKET:-http://127.0.0.1:8080}"
: "${ADMIN:?set ADMIN to the admin token printed in the start-up banner}"

step() { printf '\n== %s\n' "$*"; }
# Polls a purchase until jq expression $2 holds (webhooks and jobs are asynchronous).
# Waits for the sandbox's mail page to show a subject starting with $1, and prints it.
mailed() {
  for _ in $(seq 1 100); do
    curl -sf "$MARKET/sandbox/mail" | grep -q "$1" && break
    sleep 0.2
  done
  curl -sf "$MARKET/sandbox/mail" | grep -o "$1[^<]*" | head -1
}

wait_for() {
  for _ in $(seq 1 100); do
    if curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" | jq -e "$1" >/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "timed out waiting for: $1" >&2
  return 1
}

step "1. The catalog"
curl -sf "$MARKET/v1/listings" | jq '.listings[] | {canonical, seller: .seller.name, tiers: [.tiers[] | {id, name, price, max_installs}]}'
# The house's listing (the sandbox's two sellers sell theirs the same way, paid through Connect).
HOUSE='.listings[] | select(.canonical == "auth-flow_01")'
TIER=$(curl -sf "$MARKET/v1/listings" | jq -r "$HOUSE | .tiers[0].id")
# The same listing's tier with the most installs, to upgrade to in step 7.
BIGGER=$(curl -sf "$MARKET/v1/listings" | jq -r "$HOUSE | .tiers | max_by(.max_installs) | .id")

step "2. Checkout: a pending purchase and a Stripe Checkout Session"
# A retry with the same Idempotency-Key gets the same purchase back, so the key must be random and
# at least 32 characters (a UUID): it is as secret as the receipt key it returns.
curl -sf -X POST "$MARKET/v1/checkout" \
  -H 'content-type: application/json' -H "idempotency-key: $(cat /proc/sys/kernel/random/uuid)" \
  -d "{\"tier_id\": \"$TIER\", \"email\": \"buyer@example.com\"}" | tee /tmp/market-checkout.json | jq
PURCHASE=$(jq -r .purchase_id /tmp/market-checkout.json)
KEY=$(jq -r .receipt_key /tmp/market-checkout.json)
PAY=$(jq -r .checkout_url /tmp/market-checkout.json)

step "3. Pay on the sandbox's checkout page (what its Pay button does)"
curl -s -o /dev/null -w 'Stripe redirects the buyer to %{redirect_url}\n' -X POST "$PAY/pay"

step "4. The purchase, with its install token (the signed webhook fulfilled it)"
wait_for '.status == "fulfilled"'
curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" | jq '{status, token, install}'

step "5. The receipt was mailed: the sandbox keeps its mail at /sandbox/mail"
mailed 'Your install token for'

step "6. My purchases: a sign-in link by email, redeemed once for a portal session"
curl -sf -X POST "$MARKET/v1/portal/links" -H 'content-type: application/json' \
  -d '{"email": "buyer@example.com"}' | jq
LINK=""
for _ in $(seq 1 100); do
  LINK=$(curl -sf "$MARKET/sandbox/mail" | grep -o '#portal=[^< ]*' | head -1 | cut -d= -f2-) || true
  [ -n "$LINK" ] && break
  sleep 0.2
done
SESSION=$(curl -sf -X POST "$MARKET/v1/portal/sessions" -H 'content-type: application/json' \
  -d "{\"link\": \"$LINK\"}" | jq -r .token)
curl -sf "$MARKET/v1/portal/purchases" -H "authorization: Bearer $SESSION" \
  | jq '{portal: [.purchases[] | {purchase_id, status, token: .token.value}]}'

step "7. Upgrade to a bigger tier of the same listing: pay the difference, keep the same token"
# The server prices it (the bigger tier's price less what was paid); it is paid through a Checkout
# Session of its own, then a job raises the same token's limit at Xano.
TOKEN=$(curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" | jq -r .token.value)
curl -sf -X POST "$MARKET/v1/purchases/$PURCHASE/upgrade" -H "authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d "{\"tier_id\": \"$BIGGER\"}" \
  | tee /tmp/market-upgrade.json | jq '{upgrade_id, price, max_installs}'
UPGRADE_PAY=$(jq -r .checkout_url /tmp/market-upgrade.json)
MAX=$(jq -r .max_installs /tmp/market-upgrade.json)
curl -s -o /dev/null -w 'Stripe redirects the buyer to %{redirect_url}\n' -X POST "$UPGRADE_PAY/pay"
wait_for ".max_installs == $MAX and .token.max_installs == $MAX and .token.state == \"assigned\""
curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" \
  | jq "{upgraded: {upgraded_to, max_installs, same_token: (.token.value == \"$TOKEN\"), token: .token}}"
mailed 'Your upgrade to'

step "8. Rotate the token (a leak): the new one carries the installs used and the upgraded limit, the old one stops working"
OLD=$(curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" | jq -r .token.value)
curl -sf -X POST "$MARKET/v1/purchases/$PURCHASE/rotate" -H "authorization: Bearer $KEY" | jq '{rotation_id, state}'
wait_for ".token.value != \"$OLD\" and .token.state == \"assigned\""
curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" | jq '{rotated: .token}'

step "9. Refund it (admin API → Stripe → charge.refunded webhook)"
# An operator's refund refunds the purchase and, with it, the upgrade's payment.
curl -sf -X POST "$MARKET/v1/admin/purchases/$PURCHASE/refund" -H "authorization: Bearer $ADMIN" | jq

step "10. The token is revoked (deleted at Xano)"
wait_for '.status == "refunded" and .token.state == "revoked"'
curl -sf "$MARKET/v1/purchases/$PURCHASE" -H "authorization: Bearer $KEY" | jq '{status, token}'
