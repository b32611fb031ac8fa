//! Checkout on the wire: `POST /v1/checkout`'s request and answer.

use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

/// A checkout request. Only these fields are accepted: price, amount and install counts come from
/// the tier on the server, never from the request (unknown fields are refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub tier_id: Uuid,
    /// Pre-fills Stripe's form; Stripe collects it otherwise. Checked for shape only: one `@`, a
    /// dotted domain, no spaces or control characters, at most 254 characters.
    #[schema(
        max_length = 254,
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$"
    )]
    pub email: Option<String>,
    /// Where Stripe sends the buyer after paying. Must be on this service's public URL or on a
    /// storefront origin in the CORS allow-list. `{CHECKOUT_SESSION_ID}` is added if missing.
    pub success_url: Option<Url>,
    /// Where Stripe sends a buyer who gives up. Same origin rule.
    pub cancel_url: Option<Url>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckoutResponse {
    pub purchase_id: Uuid,
    /// Send the buyer here to pay.
    pub checkout_url: String,
    /// The buyer's key to this purchase (`Authorization: Bearer <receipt_key>` on
    /// `GET /v1/purchases/{id}`). Keep it: it is the only proof of ownership.
    pub receipt_key: String,
}

/// The receipt key stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for CheckoutResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutResponse")
            .field("purchase_id", &self.purchase_id)
            .field("checkout_url", &self.checkout_url)
            .field("receipt_key", &"[redacted]")
            .finish()
    }
}
