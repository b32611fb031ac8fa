//! The payment provider as the domain needs it: open a Checkout Session for a purchase, refund a
//! payment, and onboard sellers to be paid through it (Stripe Connect). `market-http` implements
//! all three with Stripe; the domain never sees a Stripe type, and its functions that call the
//! provider ([`crate::checkout::start`], [`crate::payments::request_refund`],
//! [`crate::connect::onboarding`]) own the transactions around the call.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Money, PurchaseId};

/// What the provider said when it refused or failed; safe to log (no secret, no request echo).
pub type ProviderError = Box<dyn std::error::Error + Send + Sync>;

/// What the buyer is asked to pay for: the server's price, never the request's.
#[derive(Debug)]
pub struct SessionRequest<'a> {
    pub purchase: PurchaseId,
    pub price: &'a Money,
    /// What the payment page calls it: `<canonical> — <tier name>`.
    pub product_name: &'a str,
    /// Pre-fills the payment form.
    pub email: Option<&'a str>,
    /// For a seller's purchase: where the money goes and what the platform keeps (a destination
    /// charge); `None` for the house, paid directly.
    pub split: Option<Split<'a>>,
}

/// How a seller's payment is split: the whole charge goes to the seller's connected account, and
/// the platform's fee comes back from it as an application fee.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    /// The seller's connected account (`acct_…`).
    pub destination: &'a str,
    /// The platform's fee, in the purchase's currency's minor units.
    pub application_fee: i64,
}

/// A Checkout Session the provider opened.
#[derive(Debug)]
pub struct OpenedSession {
    pub id: String,
    /// Where the buyer pays.
    pub url: String,
}

/// Opens Checkout Sessions. The same purchase must get the same session from every attempt (the
/// provider's idempotency key is derived from the purchase).
pub trait CheckoutSessions {
    fn open(
        &self,
        request: &SessionRequest<'_>,
    ) -> impl Future<Output = Result<OpenedSession, ProviderError>>;
}

/// Refunds payments in full. Asking twice for the same purchase refunds once. A destination
/// charge's refund (`connect`) also takes the transfer back from the seller and returns the
/// platform's fee, so neither keeps money the buyer got back.
pub trait Refunds {
    fn refund(
        &self,
        purchase: PurchaseId,
        payment_intent: &str,
        connect: bool,
    ) -> impl Future<Output = Result<(), ProviderError>>;
}

/// A link the provider hosts, valid until `expires_at` when it expires.
#[derive(Debug, Clone)]
pub struct HostedLink {
    pub url: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Sellers' connected accounts (Stripe Connect, Express accounts).
pub trait ConnectAccounts {
    /// Creates the seller's connected account. The same seller gets the same account from every
    /// attempt within the provider's idempotency window (the key is the seller).
    fn create_account(
        &self,
        seller: Uuid,
        email: Option<&str>,
    ) -> impl Future<Output = Result<String, ProviderError>>;

    /// A single-use link to the provider's hosted onboarding of `account`; the seller comes back to
    /// `return_url`, or to `refresh_url` when the link expired or was used.
    fn onboarding_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> impl Future<Output = Result<HostedLink, ProviderError>>;

    /// A single-use link into the seller's own dashboard at the provider (payouts, balance).
    fn login_link(&self, account: &str) -> impl Future<Output = Result<HostedLink, ProviderError>>;

    /// Makes sure what a refunded destination charge moved is back: the `transfer` reversed in
    /// full and the platform's `application_fee` refunded in full. What is already back is left
    /// alone, and asking twice takes back once.
    fn take_back(
        &self,
        transfer: &str,
        application_fee: Option<&str>,
    ) -> impl Future<Output = Result<(), ProviderError>>;
}
