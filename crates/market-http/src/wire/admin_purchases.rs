//! The admin API's purchases on the wire: the list and its filters, one purchase with its audit
//! trail, and what an action did.

use chrono::{DateTime, Utc};
use market_core::audit::AuditEntry;
use market_core::purchases::{PaymentMoves, Purchase};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::purchases::PurchaseBody;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// pending, paid, fulfilled, refunded, disputed, reinstated, dispute_lost, revoked, expired, failed
    #[param(
        pattern = "^(pending|paid|fulfilled|refunded|disputed|reinstated|dispute_lost|revoked|expired|failed)$"
    )]
    pub status: Option<String>,
    /// A tier version's id, in any form a UUID is written.
    #[param(
        pattern = "^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\}|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub tier_id: Option<Uuid>,
    /// A listing's id: purchases of any of its tiers (and their versions).
    #[param(
        pattern = "^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\}|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub listing_id: Option<Uuid>,
    /// The buyer's e-mail address, compared without case.
    #[param(max_length = 254)]
    pub email: Option<String>,
    /// 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,16}\\.[0-9a-f]{32}$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseRow {
    pub purchase_id: Uuid,
    pub status: String,
    pub tier_id: Uuid,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub amount_refunded: i64,
    pub email: Option<String>,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The installs the purchase is entitled to now (its tier's, or an upgrade's).
    pub max_installs: i64,
    /// For an upgrade: the purchase it upgrades.
    pub upgrade_of: Option<Uuid>,
    /// The listing's seller when the purchase was made.
    pub seller_id: Uuid,
    /// A seller's purchase: the Stripe connected account paid (a destination charge); `null` for
    /// the house, paid directly.
    pub connect_destination: Option<String>,
    /// A seller's purchase: the platform's fee in minor units of `currency`, kept from the
    /// seller's transfer as a Stripe application fee; `null` for the house.
    pub application_fee_amount: Option<i64>,
}

impl From<&Purchase> for PurchaseRow {
    fn from(p: &Purchase) -> Self {
        Self {
            purchase_id: p.purchase_id.0,
            status: p.status.to_string(),
            tier_id: p.tier_id.0,
            amount: p.price.amount,
            currency: p.price.currency.to_string(),
            amount_refunded: p.amount_refunded,
            email: p.email.clone(),
            checkout_session_id: p.checkout_session_id.clone(),
            payment_intent_id: p.payment_intent_id.clone(),
            created_at: p.created_at,
            paid_at: p.paid_at,
            fulfilled_at: p.fulfilled_at,
            closed_at: p.closed_at,
            max_installs: p.max_installs,
            upgrade_of: p.upgrade_of.map(|u| u.0),
            seller_id: p.seller_id,
            connect_destination: p.connect_destination.clone(),
            application_fee_amount: p.application_fee_amount,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchasePage {
    pub purchases: Vec<PurchaseRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminPurchase {
    pub purchase: PurchaseRow,
    pub receipt: PurchaseBody,
    pub audit: Vec<AuditEntryBody>,
    /// The payment's charge, and for a seller's purchase its transfer and application fee, once
    /// Stripe has told of them (`charge.succeeded`).
    pub payment: Option<PaymentMovesBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMovesBody {
    /// `ch_…`
    pub charge_id: Option<String>,
    /// `tr_…`: the whole charge moved to the seller's connected account.
    pub transfer_id: Option<String>,
    /// `fee_…`: the platform's share, taken back from the seller's account.
    pub application_fee_id: Option<String>,
}

impl From<PaymentMoves> for PaymentMovesBody {
    fn from(m: PaymentMoves) -> Self {
        Self {
            charge_id: m.charge_id,
            transfer_id: m.transfer_id,
            application_fee_id: m.application_fee_id,
        }
    }
}

/// One entry of the append-only audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryBody {
    pub audit_event_id: i64,
    pub at: DateTime<Utc>,
    /// `system`, `stripe`, `buyer`, `admin:<name>` or `cli:<user>`.
    pub actor: String,
    /// What happened: `purchase.paid`, `token.assigned`, …
    pub action: String,
    pub listing_id: Option<Uuid>,
    pub tier_id: Option<Uuid>,
    pub purchase_id: Option<Uuid>,
    pub install_token_id: Option<i64>,
    /// Details of the action, as it recorded them.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryBody {
    fn from(e: AuditEntry) -> Self {
        Self {
            audit_event_id: e.audit_event_id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            listing_id: e.listing_id.map(|id| id.0),
            tier_id: e.tier_id.map(|id| id.0),
            purchase_id: e.purchase_id.map(|id| id.0),
            install_token_id: e.install_token_id.map(|id| id.0),
            detail: e.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub purchase_id: Uuid,
    pub status: String,
    /// What happened: `revoking`, `status_changed`, `no_change`, `refund_requested`.
    pub outcome: String,
}
