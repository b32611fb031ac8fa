//! The Stripe objects the simulator keeps: Checkout Sessions, and the PaymentIntents, charges,
//! refunds and disputes that paying, refunding and disputing create. Plain records; the rules
//! that change them are in `ops`, their JSON in `objects`. Connect's records (accounts,
//! transfers, application fees) are in `connect::store`, kept here as [`Store::connect`].

use std::collections::{BTreeMap, HashMap};

use url::Url;

use super::connect::store::{ConnectStore, DestinationCharge};
use super::model::{DisputeStatus, PaymentStatus, SessionStatus, SimSession};

/// One `line_items[n]` of a session, from its inline `price_data`.
#[derive(Debug, Clone)]
pub(crate) struct LineItem {
    pub(crate) id: String,
    pub(crate) price_id: String,
    pub(crate) product_id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) unit_amount: i64,
    pub(crate) quantity: i64,
    pub(crate) currency: String,
}

impl LineItem {
    pub(crate) fn amount(&self) -> i64 {
        self.unit_amount.saturating_mul(self.quantity)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) expires_at: i64,
    pub(crate) status: SessionStatus,
    pub(crate) payment_status: PaymentStatus,
    pub(crate) currency: String,
    pub(crate) line_items: Vec<LineItem>,
    pub(crate) client_reference_id: Option<String>,
    pub(crate) customer_email: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) payment_intent_metadata: BTreeMap<String, String>,
    pub(crate) success_url: Option<String>,
    pub(crate) cancel_url: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) payment_intent: Option<String>,
    /// The buyer's email as entered on the page (or `customer_email`), once paid.
    pub(crate) paid_by: Option<String>,
    /// A destination charge's connected account and application fee, from
    /// `payment_intent_data`; the PaymentIntent it creates carries them to its charge.
    pub(crate) destination: Option<DestinationCharge>,
}

impl Session {
    pub(crate) fn amount_total(&self) -> i64 {
        self.line_items.iter().map(LineItem::amount).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntentStatus {
    Processing,
    Succeeded,
    RequiresPaymentMethod,
}

#[derive(Debug, Clone)]
/// Only what the simulator's rules need; the amount and currency are the charge's.
pub(crate) struct PaymentIntent {
    pub(crate) status: IntentStatus,
    pub(crate) charge: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChargeStatus {
    Pending,
    Succeeded,
    Failed,
}

impl ChargeStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Charge {
    pub(crate) id: String,
    pub(crate) payment_intent: String,
    pub(crate) amount: i64,
    pub(crate) amount_refunded: i64,
    pub(crate) currency: String,
    pub(crate) status: ChargeStatus,
    pub(crate) created: i64,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) email: Option<String>,
    /// Refund ids, oldest first.
    pub(crate) refunds: Vec<String>,
    pub(crate) dispute: Option<String>,
    /// Set on a destination charge.
    pub(crate) destination: Option<DestinationCharge>,
    /// The transfer to the destination (`tr_…`), once the charge succeeded.
    pub(crate) transfer: Option<String>,
    /// The application fee collected back from the destination (`fee_…`), once it succeeded.
    pub(crate) application_fee: Option<String>,
}

impl Charge {
    pub(crate) fn refunded(&self) -> bool {
        self.amount_refunded >= self.amount
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub(crate) id: String,
    pub(crate) charge: String,
    pub(crate) payment_intent: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) created: i64,
    pub(crate) reason: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    /// The reversal of the destination charge's transfer it made (`reverse_transfer`).
    pub(crate) transfer_reversal: Option<String>,
    /// The refund of the application fee it made (`refund_application_fee`); Stripe's refund
    /// object does not name it, the simulator's views do.
    #[expect(
        clippy::struct_field_names,
        reason = "`fee_refund` is Stripe's name for the object it names"
    )]
    pub(crate) fee_refund: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Dispute {
    pub(crate) id: String,
    pub(crate) charge: String,
    pub(crate) payment_intent: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) created: i64,
    pub(crate) reason: String,
    pub(crate) status: DisputeStatus,
    /// The withdrawal, then the reinstatement of a won chargeback: Stripe's "zero, one, or two
    /// balance transactions".
    pub(crate) balance_transactions: Vec<BalanceTransaction>,
}

/// Money a dispute moved: negative for the withdrawal, positive for the reinstatement.
#[derive(Debug, Clone)]
pub(crate) struct BalanceTransaction {
    pub(crate) id: String,
    pub(crate) amount: i64,
    /// The dispute fee, charged on the withdrawal.
    pub(crate) fee: i64,
    pub(crate) created: i64,
    pub(crate) reinstatement: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) sessions: HashMap<String, Session>,
    /// Session ids in creation order.
    pub(crate) session_order: Vec<String>,
    pub(crate) payment_intents: HashMap<String, PaymentIntent>,
    pub(crate) charges: HashMap<String, Charge>,
    /// Charge ids in creation order.
    pub(crate) charge_order: Vec<String>,
    pub(crate) refunds: HashMap<String, Refund>,
    pub(crate) disputes: HashMap<String, Dispute>,
    pub(crate) connect: ConnectStore,
}

impl Store {
    pub(crate) fn add_session(&mut self, session: Session) {
        self.session_order.push(session.id.clone());
        self.sessions.insert(session.id.clone(), session);
    }

    pub(crate) fn add_charge(&mut self, charge: Charge) {
        self.charge_order.push(charge.id.clone());
        self.charges.insert(charge.id.clone(), charge);
    }

    /// The public view of a session; `public_base` is where the hosted page lives.
    pub(crate) fn session_view(&self, id: &str, public_base: &Url) -> Option<SimSession> {
        let session = self.sessions.get(id)?;
        let charge = session
            .payment_intent
            .as_ref()
            .and_then(|pi| self.payment_intents.get(pi))
            .map(|pi| pi.charge.clone());
        Some(SimSession {
            id: session.id.clone(),
            status: session.status,
            payment_status: session.payment_status,
            payment_intent: session.payment_intent.clone(),
            charge,
            amount_total: session.amount_total(),
            currency: session.currency.clone(),
            client_reference_id: session.client_reference_id.clone(),
            metadata: session.metadata.clone(),
            payment_intent_metadata: session.payment_intent_metadata.clone(),
            success_url: session.success_url.clone(),
            cancel_url: session.cancel_url.clone(),
            url: hosted_page_url(public_base, &session.id),
            customer_email: session.customer_email.clone(),
            product_names: session.line_items.iter().map(|i| i.name.clone()).collect(),
            created: session.created,
            expires_at: session.expires_at,
        })
    }

    pub(crate) fn session_views(&self, public_base: &Url) -> Vec<SimSession> {
        self.session_order
            .iter()
            .filter_map(|id| self.session_view(id, public_base))
            .collect()
    }
}

/// `<base>/pay/<session id>`: the hosted checkout page.
pub(crate) fn hosted_page_url(public_base: &Url, session_id: &str) -> String {
    let base = public_base.as_str().trim_end_matches('/');
    format!("{base}/pay/{session_id}")
}
