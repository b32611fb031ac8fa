//! Starting a checkout: the pending purchase, then its Checkout Session, in that order.
//!
//! The purchase is written first, in its own transaction ([`purchases::create`]), so that the
//! session can carry its id; the provider is called with no transaction open; the session is then
//! attached in a second short transaction. A retry (same `Idempotency-Key`, from any instance)
//! finds the purchase, and either its attached session or, when the first attempt died before
//! attaching, asks the provider again, which answers with the same session (its idempotency key is
//! the purchase). A purchase whose session never got attached stays `pending` and expires.

use sqlx::PgPool;

use crate::audit::Actor;
use crate::provider::{CheckoutSessions, SessionRequest};
use crate::purchases::{self, NewPurchase, Purchase};
use crate::receipt::{ReceiptKey, ReceiptSecret};
use crate::{Error, FeeRate, Result};

/// A started checkout, as the buyer's client gets it.
#[derive(Debug)]
pub struct Checkout {
    pub purchase: Purchase,
    /// The buyer's key to the purchase: the only time it is handed out.
    pub receipt_key: ReceiptKey,
    /// Where the buyer pays.
    pub checkout_url: String,
    /// True when an earlier request with the same idempotency key started it.
    pub replayed: bool,
}

/// Creates (or finds, for a repeated idempotency key) the pending purchase and makes sure it has
/// its Checkout Session.
pub async fn start(
    db: &PgPool,
    secret: &ReceiptSecret,
    new: &NewPurchase,
    fee: FeeRate,
    sessions: &impl CheckoutSessions,
    actor: &Actor,
) -> Result<Checkout> {
    let created = purchases::create(db, secret, new, fee, actor).await?;
    checkout_of(db, created, sessions).await
}

/// Makes sure the purchase just created (or found) has its Checkout Session: the recorded one, or a
/// new one asked of the provider (keyed by the purchase) and attached. An upgrade starts the same way
/// (`upgrades`).
pub(crate) async fn checkout_of(
    db: &PgPool,
    created: purchases::Created,
    sessions: &impl CheckoutSessions,
) -> Result<Checkout> {
    let purchase = created.purchase;
    let checkout_url =
        if let (Some(_), Some(url)) = (&purchase.checkout_session_id, &purchase.checkout_url) {
            url.clone()
        } else {
            let product_name = format!("{} — {}", created.canonical, created.tier_name);
            let session = sessions
                .open(&SessionRequest {
                    purchase: purchase.purchase_id,
                    price: &purchase.price,
                    product_name: &product_name,
                    email: purchase.email.as_deref(),
                    split: purchase.split(),
                })
                .await
                .map_err(Error::Payments)?;
            purchases::attach_checkout_session(db, purchase.purchase_id, &session.id, &session.url)
                .await?;
            session.url
        };
    Ok(Checkout {
        purchase,
        receipt_key: created.receipt_key,
        checkout_url,
        replayed: created.replayed,
    })
}
