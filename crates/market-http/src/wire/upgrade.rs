//! An upgrade on the wire: `POST /v1/purchases/{id}/upgrade`'s request and answer.

use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalog::PriceBody;

/// The tier to move to. The price is the server's: the target tier's price less what was paid so
/// far for the purchase (unknown fields are refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// A tier of the same listing allowing more installs than the purchase does now.
    pub tier_id: Uuid,
    /// Where Stripe sends the buyer after paying; same origin rule as checkout's.
    pub success_url: Option<Url>,
    /// Where Stripe sends a buyer who gives up; same origin rule.
    pub cancel_url: Option<Url>,
}

#[derive(Serialize, ToSchema)]
pub struct UpgradeResponse {
    /// The upgrade: a purchase of its own, whose status says when it is paid and applied
    /// (`fulfilled`: the token allows the new tier's installs).
    pub upgrade_id: Uuid,
    /// The purchase being upgraded: its token stays the same.
    pub purchase_id: Uuid,
    pub tier_id: Uuid,
    /// What is charged: the difference.
    pub price: PriceBody,
    /// The installs the token will allow once the upgrade is paid.
    pub max_installs: i64,
    /// Send the buyer here to pay.
    pub checkout_url: String,
    /// A key to the upgrade itself (`GET /v1/purchases/{upgrade_id}`), for the success page.
    pub receipt_key: String,
}

/// The receipt key stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for UpgradeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeResponse")
            .field("upgrade_id", &self.upgrade_id)
            .field("purchase_id", &self.purchase_id)
            .field("checkout_url", &self.checkout_url)
            .field("receipt_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}
