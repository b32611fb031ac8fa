//! A purchase as its buyer sees it (`GET /v1/purchases/{id}`, the success page, and inside the
//! admin API's view of a purchase).

use chrono::{DateTime, Utc};
use market_core::purchases::Receipt;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::catalog::PriceBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseBody {
    pub purchase_id: Uuid,
    /// pending, paid (token on its way), fulfilled, refunded, disputed (access suspended while the
    /// bank decides), reinstated (the dispute was won: access back, with a new token),
    /// dispute_lost, revoked, expired or failed.
    pub status: String,
    pub tier: PurchaseTierBody,
    pub price: PriceBody,
    pub max_installs: i64,
    /// Present once the purchase is fulfilled (and, on the success page, only with the receipt key).
    pub token: Option<TokenBody>,
    pub install: InstallBody,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// For an upgrade: the purchase whose token it raises (an upgrade holds no token itself).
    pub upgrade_of: Option<Uuid>,
    /// For an upgraded purchase: the tier whose installs its token now allows.
    pub upgraded_to: Option<UpgradedToBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpgradedToBody {
    pub tier_id: Uuid,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseTierBody {
    pub id: Uuid,
    pub name: String,
    pub canonical: String,
    /// Who sells the listing.
    pub seller: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenBody {
    /// `assigned` (usable), `revoking` or `revoked`.
    pub state: String,
    /// The install access token; only while it is usable.
    pub value: Option<String>,
    pub max_installs: i64,
    /// Installs used so far, as last seen at Xano.
    pub current_installs: i64,
    /// When `current_installs` was read from Xano (re-read when over a minute old and the buyer
    /// looks; an older time means Xano could not be asked just now).
    pub usage_as_of: Option<DateTime<Utc>>,
}

/// The token's value stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBody")
            .field("state", &self.state)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .field("max_installs", &self.max_installs)
            .field("current_installs", &self.current_installs)
            .field("usage_as_of", &self.usage_as_of)
            .finish()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstallBody {
    /// The snippet's page at Xano.
    pub snippet_url: String,
    pub steps: Vec<String>,
}

impl PurchaseBody {
    /// The buyer-facing body of a receipt; `with_token` is false for callers who have not shown
    /// the receipt key. The buyer's own token is the one secret that leaves the service, here.
    pub fn of(receipt: Receipt, with_token: bool) -> Self {
        let snippet_url = receipt.snippet_url();
        let steps = receipt.install_steps();
        Self {
            purchase_id: receipt.purchase_id.0,
            status: receipt.status.to_string(),
            tier: PurchaseTierBody {
                id: receipt.tier_id.0,
                name: receipt.tier_name,
                canonical: receipt.canonical,
                seller: receipt.seller_name,
            },
            price: (&receipt.price).into(),
            max_installs: receipt.max_installs,
            token: receipt.token.filter(|_| with_token).map(|t| TokenBody {
                state: t.state,
                value: t.value.map(|v| v.expose().to_owned()),
                max_installs: t.max_installs,
                current_installs: t.current_installs,
                usage_as_of: receipt.usage_as_of,
            }),
            install: InstallBody { snippet_url, steps },
            created_at: receipt.created_at,
            paid_at: receipt.paid_at,
            fulfilled_at: receipt.fulfilled_at,
            closed_at: receipt.closed_at,
            upgrade_of: receipt.upgrade_of.map(|p| p.0),
            upgraded_to: receipt.upgraded_to.map(|(tier, name)| UpgradedToBody {
                tier_id: tier.0,
                name,
            }),
        }
    }
}
