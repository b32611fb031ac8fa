//! What Stripe says, as the payment flows take it: the inbox entry of a delivery and the facts,
//! parsed and checked by the caller. A leaf of `payments`, so that every flow of it can name them.

use super::charges::ChargeFacts;
use super::disputes::DisputeStage;
use crate::connect::AccountFacts;
use crate::{Email, Money, PurchaseId};

/// The inbox entry of a webhook delivery.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub livemode: bool,
}

/// A Checkout Session's `payment_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionPayment {
    Paid,
    Unpaid,
    NoPaymentRequired,
}

/// What a Checkout Session says, as far as we need it.
#[derive(Clone, Debug)]
pub struct SessionFacts {
    /// The purchase the session names (its `client_reference_id` or metadata). Anyone who can make
    /// a session on the account (a Payment Link lets the payer set it) can name any purchase, so
    /// this alone proves nothing: see [`apply`].
    pub purchase: PurchaseId,
    pub session_id: String,
    pub payment_intent: Option<String>,
    pub payment: SessionPayment,
    /// What the session charges, when it is a one-time payment (mode `payment`) with an amount and
    /// a currency; `None` otherwise.
    pub charge: Option<Money>,
    /// The payer's email as Checkout collected it: recorded on a purchase that has none, so that
    /// its receipt can be mailed.
    pub payer_email: Option<Email>,
}

/// A fact from Stripe, already checked and parsed by the caller.
#[derive(Clone, Debug)]
pub enum Fact {
    CheckoutCompleted(SessionFacts),
    AsyncPaymentSucceeded(SessionFacts),
    AsyncPaymentFailed(SessionFacts),
    CheckoutExpired(SessionFacts),
    ChargeRefunded {
        payment_intent: String,
        amount_refunded: i64,
        fully_refunded: bool,
    },
    /// A dispute's event (`charge.dispute.created`, `.updated` or `.closed`), at the stage its
    /// object's status says.
    Dispute {
        payment_intent: String,
        stage: DisputeStage,
    },
    /// `charge.succeeded`: the charge of a payment and, for a seller's (a destination charge), the
    /// transfer to the seller and the platform's application fee.
    ChargeSucceeded(ChargeFacts),
    /// `account.updated`: what Stripe says about a seller's connected account.
    AccountUpdated(AccountFacts),
}
