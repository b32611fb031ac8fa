//! The public views of the simulator's state: what tests inspect, and what the `/__sim` control
//! API sends as JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Checkout Session's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Open,
    Complete,
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Expired => "expired",
        }
    }
}

/// A Checkout Session's `payment_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Paid,
    Unpaid,
    NoPaymentRequired,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Unpaid => "unpaid",
            Self::NoPaymentRequired => "no_payment_required",
        }
    }
}

/// A Checkout Session as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSession {
    pub id: String,
    pub status: SessionStatus,
    pub payment_status: PaymentStatus,
    /// Created when the buyer pays (Stripe creates it lazily too).
    pub payment_intent: Option<String>,
    /// The PaymentIntent's charge, once there is one.
    pub charge: Option<String>,
    /// In the currency's minor unit (cents).
    pub amount_total: i64,
    /// Lowercase ISO code, as Stripe writes it.
    pub currency: String,
    pub client_reference_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// The PaymentIntent's metadata (`payment_intent_data[metadata]`), copied to its charge.
    pub payment_intent_metadata: BTreeMap<String, String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// The hosted checkout page. Always set here; the API's `url` is null once the session closed.
    pub url: String,
    pub customer_email: Option<String>,
    /// The line items' product names, in order.
    pub product_names: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub expires_at: i64,
}

/// A refund the simulator made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRefund {
    pub id: String,
    pub payment_intent: String,
    pub charge: String,
    pub amount: i64,
    pub currency: String,
    pub reason: Option<String>,
    /// The charge's cumulative `amount_refunded` after this refund.
    pub charge_amount_refunded: i64,
    /// Whether the charge is now fully refunded (`charge.refunded`).
    pub charge_refunded: bool,
    /// On a destination charge refunded with `reverse_transfer`: the transfer reversal (`trr_…`).
    #[serde(default)]
    pub transfer_reversal: Option<String>,
    /// On a destination charge refunded with `refund_application_fee`: the fee refund (`fr_…`).
    #[serde(default)]
    pub fee_refund: Option<String>,
}

/// A connected (Express) account, as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    pub id: String,
    pub email: Option<String>,
    /// Onboarded and not disabled.
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    /// Whether the seller finished the onboarding form.
    pub details_submitted: bool,
}

/// One charge and where its money went: for a destination charge, the transfer to the seller
/// and the application fee collected back. The seller nets `transfer.amount −
/// transfer.amount_reversed − (application_fee.amount − application_fee.amount_refunded)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimLedgerEntry {
    pub payment_intent: String,
    pub charge: String,
    pub amount: i64,
    pub currency: String,
    pub amount_refunded: i64,
    /// The connected account of a destination charge.
    pub destination: Option<String>,
    /// Created when a destination charge succeeds.
    pub transfer: Option<SimTransfer>,
    /// Created when a destination charge with an `application_fee_amount` succeeds.
    pub application_fee: Option<SimApplicationFee>,
}

/// A transfer to a connected account, as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTransfer {
    pub id: String,
    pub amount: i64,
    pub amount_reversed: i64,
}

/// An application fee, as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimApplicationFee {
    pub id: String,
    pub amount: i64,
    pub amount_refunded: i64,
}

/// A dispute's `status`, the part of Stripe's lifecycle the simulator plays: an inquiry
/// (`warning_*`) that closes or escalates to a chargeback, and a chargeback that is won or lost.
/// Stripe's `under_review`, `warning_under_review` and `prevented` are not reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// An inquiry (retrieval request): no funds withdrawn, the charge can still be refunded.
    WarningNeedsResponse,
    /// The inquiry closed without becoming a chargeback.
    WarningClosed,
    /// A chargeback: the amount has been withdrawn.
    NeedsResponse,
    Won,
    Lost,
}

impl DisputeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WarningNeedsResponse => "warning_needs_response",
            Self::WarningClosed => "warning_closed",
            Self::NeedsResponse => "needs_response",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    /// Whether the dispute is still open (an inquiry or a chargeback awaiting the bank).
    pub fn is_open(self) -> bool {
        matches!(self, Self::WarningNeedsResponse | Self::NeedsResponse)
    }

    /// Stripe's `is_charge_refundable`: an inquiry leaves the payment refundable, and so does a
    /// won chargeback; an open or lost chargeback does not.
    pub fn is_charge_refundable(self) -> bool {
        matches!(
            self,
            Self::WarningNeedsResponse | Self::WarningClosed | Self::Won
        )
    }
}

/// How the bank decides a dispute, for
/// [`StripeSim::close_dispute`](super::StripeSim::close_dispute). A chargeback becomes `won` or
/// `lost`; an inquiry has no winner in Stripe's model and becomes `warning_closed` either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    Won,
    Lost,
}

/// A dispute the simulator opened, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDispute {
    pub id: String,
    pub payment_intent: String,
    pub charge: String,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub status: DisputeStatus,
}

/// Events rendered as a newer (or just different) Stripe would send them, for testing a lenient
/// consumer: see [`StripeSim::set_event_drift`](super::StripeSim::set_event_drift).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDrift {
    /// The `api_version` the events carry instead of the configured one.
    pub api_version: String,
    /// Adds `"x_future_field": {"nested": true}` to the event and to its `data.object`.
    pub unknown_fields: bool,
}

/// An event as generated, with the exact JSON body every delivery of it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// Unix seconds.
    pub created: i64,
    pub payload: String,
}

/// One attempt to deliver an event to the webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Numbers deliveries: attempts of one delivery (the first try and its retries) share it; a
    /// duplicate copy or a redelivery is a new delivery.
    pub delivery: u64,
    pub event_id: String,
    /// 1 for the first try, 2 for the first retry, …
    pub attempt: u32,
    /// The endpoint's status; `None` for a transport error (refused, reset, timed out).
    pub status: Option<u16>,
    /// What went wrong in transport, when it did.
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

impl DeliveryRecord {
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// One request to the `/v1` API, as the simulator saw it. Nothing secret is kept: no key, no
/// body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub method: String,
    /// The request path, e.g. `/v1/checkout/sessions/cs_test_…`.
    pub path: String,
    /// The raw query string, empty when there was none.
    pub query: String,
    pub status: u16,
    pub idempotency_key: Option<String>,
    /// Whether the answer was a replay of an earlier request with the same idempotency key.
    pub replayed: bool,
    /// The `Stripe-Version` header the client sent.
    pub stripe_version: Option<String>,
    /// The `Request-Id` the answer carried (`req_…`).
    pub request_id: String,
    pub at: DateTime<Utc>,
}
