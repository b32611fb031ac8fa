//! Tier upgrades: a buyer moves a purchase to a higher tier of its listing and keeps the same token,
//! whose limit Xano raises in place.
//!
//! An upgrade is a purchase of its own (`purchase.upgrade_of`, migration 21), priced by the server at
//! the difference ([`purchases::create_upgrade`]) and paid through its own Checkout Session, so
//! everything that makes a payment exactly-once (the inbox, the session check, the tombstone,
//! backfill, refunds, disputes) holds for it unchanged. It never holds a token. Paid, it queues the
//! `apply_upgrade` job for the purchase it upgrades; refunded or disputed, the same job again. The
//! job (`jobs`) converges on one number, the *entitlement* (the SQL function
//! `purchase_entitlement`: the base tier's installs or its highest upgrade still standing):
//!
//! 1. read Xano's count of the token's installs;
//! 2. write the new limit at Xano with that count sent back (Xano's update is absolute);
//! 3. one transaction: the token's and the purchase's `max_installs`, and the upgrade `fulfilled`
//!    (its message queued by the database), unless a rotation of the token started meanwhile (the
//!    job waits for it and runs again on the new token).
//!
//! Each step is safe to run again, and two payments of the same upgrade, in any order, are one:
//! the job reads the entitlement, not the event. A limit lowered by a refund never goes below the
//! installs already used: the purchase's `max_installs` then records what is used.
//!
//! **The install window.** Xano's update sets `current_installs` too and has no compare-and-set, so
//! an install landing between step 1 and step 2 is overwritten: the buyer gains that install (at
//! most one Xano round trip's worth), never loses one, and the limit is never set below what was
//! counted. Nothing closes it entirely without Xano's help (a conditional update, or an install
//! log to reconcile against); the job keeps it to one round trip, the read being the last thing
//! before the write, and skips the write when Xano already shows the limit (a run after a crash
//! does not open the window a second time).

use sqlx::PgPool;

use crate::audit::Actor;
use crate::checkout::{Checkout, checkout_of};
use crate::provider::CheckoutSessions;
use crate::purchases::{self, Purchase};
use crate::receipt::ReceiptSecret;
use crate::{FeeRate, PurchaseId, Result, TierId};

/// Starts (or, asked again for the same target while unpaid, finds) the upgrade of `base` to
/// `target`: the pending upgrade purchase and its Checkout Session for the difference.
pub async fn request(
    db: &PgPool,
    secret: &ReceiptSecret,
    base: PurchaseId,
    target: TierId,
    fee: FeeRate,
    sessions: &impl CheckoutSessions,
    actor: &Actor,
) -> Result<Checkout> {
    let created = purchases::create_upgrade(db, secret, base, target, fee, actor).await?;
    checkout_of(db, created, sessions).await
}

/// The upgrades of `base`, oldest first.
pub async fn of_purchase(db: &PgPool, base: PurchaseId) -> Result<Vec<Purchase>> {
    purchases::upgrades_of(db, base).await
}
