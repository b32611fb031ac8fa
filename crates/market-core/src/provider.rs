//! The payment provider as the domain needs it: open a Checkout Session for a purchase, refund a
//! payment. `market-http` implements both with Stripe; the domain never sees a Stripe type, and
//! its functions that call the provider ([`crate::checkout::start`],
//! [`crate::payments::request_refund`]) own the transactions around the call.

use std::future::Future;

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

/// Refunds payments in full. Asking twice for the same purchase refunds once.
pub trait Refunds {
    fn refund(
        &self,
        purchase: PurchaseId,
        payment_intent: &str,
    ) -> impl Future<Output = Result<(), ProviderError>>;
}
