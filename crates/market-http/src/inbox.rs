//! The one path of every Stripe event into the inbox, however it came: a webhook delivered it
//! (`routes::webhooks`), the backfill found it in Stripe's list (`backfill`), or an operator replays
//! one kept unreadable (`market events replay`). Each is read by [`crate::intake`], checked for the
//! service's Stripe mode, and applied with its inbox row in one transaction
//! (`payments::apply`): a second arrival, by any way, changes nothing.

use market_core::audit::Actor;
use market_core::payments::{self, Delivery, unreadable};
use sqlx::PgPool;

use crate::intake::{Read, read};

/// What [`apply`] did with a verified body.
#[derive(Debug)]
pub enum Applied {
    /// Not an event at all.
    NotAnEvent,
    /// An event of the other Stripe mode (test at a live service, or the reverse): ignored.
    ModeMismatch,
    /// A handled event that cannot be read: kept raw for `market events replay`.
    StoredUnreadable,
    /// An event of a type the service does not handle.
    Ignored,
    /// Applied (or found in the inbox: [`payments::Effect::Duplicate`]).
    Applied(payments::Outcome),
}

impl Applied {
    /// The word the webhook's answer and the metrics use.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::NotAnEvent => "not_an_event",
            Self::ModeMismatch => "ignored_mode_mismatch",
            Self::StoredUnreadable => "stored_unreadable",
            Self::Ignored => "ignored",
            Self::Applied(outcome) => outcome.effect.as_str(),
        }
    }
}

/// Reads a verified body and applies it: the one path of every Stripe event, whether a webhook
/// delivered it or the backfill listed it (`via` says which, in the logs). The inbox makes a
/// second arrival by either way a no-op.
pub async fn apply(
    db: &PgPool,
    payload: &str,
    service_livemode: bool,
    via: &'static str,
) -> market_core::Result<Applied> {
    let (id, type_, livemode, fact) = match read(payload) {
        Read::NotAnEvent => return Ok(Applied::NotAnEvent),
        Read::Unreadable { livemode, .. } if livemode != service_livemode => {
            return Ok(Applied::ModeMismatch);
        }
        Read::Unreadable {
            id, type_, reason, ..
        } => {
            tracing::error!(stripe.event_id = %id, stripe.event_type = %type_, reason = %reason, via, "a verified Stripe event could not be read; kept for `market events replay`");
            unreadable::record(db, &id, Some(&type_), payload, &reason).await?;
            return Ok(Applied::StoredUnreadable);
        }
        Read::Event {
            id,
            type_,
            livemode,
            fact,
        } => (id, type_, livemode, fact),
    };
    if livemode != service_livemode {
        tracing::warn!(stripe.event_id = %id, stripe.livemode = livemode, via, "event from the other Stripe mode ignored");
        return Ok(Applied::ModeMismatch);
    }
    let Some(fact) = fact else {
        tracing::debug!(stripe.event_id = %id, stripe.event_type = %type_, via, "event type not handled");
        return Ok(Applied::Ignored);
    };
    let delivery = Delivery {
        event_id: &id,
        event_type: &type_,
        livemode,
    };
    let outcome = payments::apply(db, Some(delivery), &fact, &Actor::Stripe).await?;
    tracing::info!(
        stripe.event_id = %id,
        stripe.event_type = %type_,
        purchase.id = ?outcome.purchase,
        outcome = outcome.effect.as_str(),
        via,
        "Stripe event applied"
    );
    Ok(Applied::Applied(outcome))
}

/// What [`replay`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Read and applied now (a duplicate of an event applied since counts too).
    pub applied: u64,
    /// Still unreadable by this release.
    pub still_unreadable: u64,
}

/// Reads every stored unreadable event again and applies those this release can read, through
/// the same path as a webhook (the inbox makes a replay of an event applied since a no-op). Only
/// events of the service's own Stripe mode were stored, so none is checked for it here.
pub async fn replay(db: &PgPool) -> market_core::Result<Replayed> {
    let mut done = Replayed::default();
    for event in unreadable::waiting(db).await? {
        match read(&event.payload) {
            Read::Event {
                id,
                type_,
                livemode: event_livemode,
                fact,
            } => {
                let outcome = match fact {
                    Some(fact) => {
                        let delivery = Delivery {
                            event_id: &id,
                            event_type: &type_,
                            livemode: event_livemode,
                        };
                        payments::apply(db, Some(delivery), &fact, &Actor::Stripe)
                            .await?
                            .effect
                            .as_str()
                    }
                    None => "ignored",
                };
                unreadable::replayed(db, &event.stripe_event_id, Ok(outcome)).await?;
                done.applied += 1;
            }
            Read::Unreadable { reason, .. } => {
                unreadable::replayed(db, &event.stripe_event_id, Err(&reason)).await?;
                done.still_unreadable += 1;
            }
            Read::NotAnEvent => {
                unreadable::replayed(db, &event.stripe_event_id, Err("not an event")).await?;
                done.still_unreadable += 1;
            }
        }
    }
    Ok(done)
}
