//! Applying what Stripe says about a purchase: the inbox, the tombstone, the state machine and
//! fulfilment, in one short transaction per event.
//!
//! Stripe delivers at least once, in any order, possibly to several instances at the same moment.
//! So:
//! - the event id goes into `stripe_event` in the same transaction as its effect: a redelivery finds
//!   the row and changes nothing, and a crash before commit leaves no trace for Stripe's retry to trip
//!   over;
//! - the purchase is the idempotency key (Checkout Session events, the success page and the mint job
//!   all converge on "this purchase is paid, give it one token"), and its row lock orders them;
//! - refunds and disputes name a PaymentIntent and may come first: they are recorded on
//!   `stripe_payment` whether or not the purchase is known yet, and a later "paid" reads them there.
//!   Both paths lock `stripe_payment` before `purchase`, so they cannot deadlock.
//!
//! Nothing here calls Xano: fulfilment takes a token from the pool, or queues a job when it is empty.
//!
//! Here: the facts, the transaction and Checkout Session facts; `one_statement.rs`: the common
//! case (a pending purchase paid, its pool not empty) in one round trip; `fulfil.rs`: a paid
//! purchase gets its token; `closing.rs`: refunds and revocations (and an operator's refund request);
//! `disputes.rs`: a dispute from inquiry to close (a won one reinstates access); `charges.rs`: a
//! charge's transfer and application fee (Stripe Connect); a seller's account is `connect`'s;
//! `locked.rs`: the locked purchase row, its transitions and the outcomes every path reports.

mod charges;
mod closing;
mod disputes;
pub mod events_cursor;
mod facts;
mod fulfil;
mod locked;
mod one_statement;
pub mod unreadable;

pub use charges::ChargeFacts;
use charges::record_charge;
pub use closing::{RefundRequest, request_refund, revoke_by_operator};
use closing::{refund, revoke_closed};
pub use disputes::DisputeStage;
use disputes::{dispute, dispute_event};
pub use facts::{Delivery, Fact, SessionFacts, SessionPayment};
pub(crate) use fulfil::{fulfil_locked, queue_upgrade};
use locked::unchanged;
pub use locked::{Effect, Outcome};
pub(crate) use locked::{lock, transition};

use sqlx::PgConnection;
use sqlx::PgPool;

use crate::audit::{Actor, Audit};
use crate::connect;
pub use crate::connect::AccountFacts;
use crate::purchases::Purchase;
use crate::{Email, PurchaseEvent, PurchaseStatus, Result, db};

/// Applies `fact` (recording `delivery` in the inbox first, when it comes from a webhook) in one
/// transaction, run again if PostgreSQL aborts it as a deadlock victim.
///
/// A Checkout Session's fact applies to the purchase it names only when the session is that
/// purchase's: its id is the session recorded on the purchase, or, before one is recorded, it
/// charges exactly the purchase's price in a one-time payment. Otherwise nothing is linked or
/// changed ([`Effect::ForeignSession`], audited on the purchase): a session made elsewhere on the
/// account cannot pay for, nor through its refund or dispute close, a stranger's purchase.
pub async fn apply(
    pool: &PgPool,
    delivery: Option<Delivery<'_>>,
    fact: &Fact,
    actor: &Actor,
) -> Result<Outcome> {
    if let Some(session) = one_statement::candidate(fact) {
        let tried =
            db::retry_transient(|| one_statement::try_fulfil(pool, delivery, session, actor))
                .await?;
        if let one_statement::Tried::Done(outcome) = tried {
            return Ok(outcome);
        }
    }
    db::retry_transient(|| apply_once(pool, delivery, fact, actor)).await
}

/// A Checkout Session read from Stripe (not delivered by a webhook: the success page, or the check
/// of purchases pending too long): when it says paid, applied as its `checkout.session.completed`
/// would be. `None` when it does not say paid (nothing to apply yet).
pub async fn apply_session_read(
    pool: &PgPool,
    facts: &SessionFacts,
    actor: &Actor,
) -> Result<Option<Outcome>> {
    if !matches!(
        facts.payment,
        SessionPayment::Paid | SessionPayment::NoPaymentRequired
    ) {
        return Ok(None);
    }
    let fact = Fact::CheckoutCompleted(facts.clone());
    apply(pool, None, &fact, actor).await.map(Some)
}

async fn apply_once(
    pool: &PgPool,
    delivery: Option<Delivery<'_>>,
    fact: &Fact,
    actor: &Actor,
) -> Result<Outcome> {
    let mut tx = pool.begin().await?;
    if let Some(delivery) = delivery {
        let fresh = sqlx::query(
            "insert into stripe_event (stripe_event_id, type, livemode, outcome) values ($1, $2, $3, 'processing')
             on conflict (stripe_event_id) do nothing",
        )
        .bind(delivery.event_id)
        .bind(delivery.event_type)
        .bind(delivery.livemode)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(Outcome {
                purchase: None,
                status: None,
                effect: Effect::Duplicate,
            });
        }
        fail::fail_point!("after_event_recorded");
    }

    let outcome = match fact {
        Fact::CheckoutCompleted(s) => {
            let event = match s.payment {
                SessionPayment::Paid | SessionPayment::NoPaymentRequired => {
                    Some(PurchaseEvent::Paid)
                }
                // A delayed payment method: `async_payment_succeeded` or `_failed` follows.
                SessionPayment::Unpaid => None,
            };
            session(&mut tx, s, event, actor).await?
        }
        Fact::AsyncPaymentSucceeded(s) => {
            session(&mut tx, s, Some(PurchaseEvent::Paid), actor).await?
        }
        Fact::AsyncPaymentFailed(s) => {
            session(&mut tx, s, Some(PurchaseEvent::PaymentFailed), actor).await?
        }
        Fact::CheckoutExpired(s) => {
            session(&mut tx, s, Some(PurchaseEvent::Expired), actor).await?
        }
        Fact::ChargeRefunded {
            payment_intent,
            amount_refunded,
            fully_refunded,
        } => {
            refund(
                &mut tx,
                payment_intent,
                *amount_refunded,
                *fully_refunded,
                actor,
            )
            .await?
        }
        Fact::Dispute {
            payment_intent,
            stage,
        } => dispute(&mut tx, payment_intent, *stage, actor).await?,
        Fact::ChargeSucceeded(charge) => record_charge(&mut tx, charge).await?,
        Fact::AccountUpdated(account) => {
            let effect = match connect::apply_account(&mut tx, account, actor).await? {
                Some(_) => Effect::AccountUpdated,
                None => Effect::UnknownAccount,
            };
            Outcome {
                purchase: None,
                status: None,
                effect,
            }
        }
    };

    if let Some(delivery) = delivery {
        sqlx::query(
            "update stripe_event set outcome = $2, purchase_id = $3 where stripe_event_id = $1",
        )
        .bind(delivery.event_id)
        .bind(outcome.effect.as_str())
        .bind(outcome.purchase)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Facts about a Checkout Session: link its PaymentIntent, then move the purchase.
async fn session(
    conn: &mut PgConnection,
    facts: &SessionFacts,
    event: Option<PurchaseEvent>,
    actor: &Actor,
) -> Result<Outcome> {
    // Lock order: stripe_payment, then purchase (as in `refund`). The payment's row is locked (made
    // if new, to hold a refund or dispute that comes first) but linked to the purchase only by
    // `link_session`, once the session is known to be the purchase's.
    let tombstone = match &facts.payment_intent {
        Some(pi) => Some(
            sqlx::query_as::<_, (bool, bool, Option<String>)>(
                "insert into stripe_payment (payment_intent_id) values ($1)
                 on conflict (payment_intent_id) do update
                     set payment_intent_id = excluded.payment_intent_id
                 returning fully_refunded, disputed, dispute_outcome",
            )
            .bind(pi)
            .fetch_one(&mut *conn)
            .await?,
        ),
        None => None,
    };

    let linked = link_session(conn, facts).await?;
    let Some(purchase) = linked else {
        return foreign_or_unknown(conn, facts, actor).await;
    };

    // A refund, or a dispute open or lost, recorded before the payment arrived wins over the
    // payment. A dispute already won leaves the payment standing.
    let event = match tombstone {
        Some((true, _, _)) => Some(PurchaseEvent::Refunded),
        Some((_, disputed, outcome)) => match dispute_event(disputed, outcome.as_deref()) {
            Some(closing @ (PurchaseEvent::Disputed | PurchaseEvent::DisputeLost)) => Some(closing),
            _ => event,
        },
        None => event,
    };
    // "No payment required" pays only for a purchase that costs nothing (none does today).
    let event = event.filter(|e| {
        *e != PurchaseEvent::Paid
            || facts.payment != SessionPayment::NoPaymentRequired
            || purchase.price.amount == 0
    });
    let Some(event) = event else {
        return Ok(unchanged(&purchase));
    };
    match transition(conn, &purchase, event, actor).await? {
        Some(PurchaseStatus::Paid) => {
            let effect = fulfil_locked(conn, &purchase, actor).await?;
            let status = if matches!(effect, Effect::Fulfilled { .. }) {
                PurchaseStatus::Fulfilled
            } else {
                PurchaseStatus::Paid
            };
            Ok(Outcome {
                purchase: Some(purchase.purchase_id),
                status: Some(status),
                effect,
            })
        }
        Some(
            status @ (PurchaseStatus::Refunded
            | PurchaseStatus::Disputed
            | PurchaseStatus::DisputeLost),
        ) => revoke_closed(conn, &purchase, status, actor).await,
        Some(status) => Ok(Outcome {
            purchase: Some(purchase.purchase_id),
            status: Some(status),
            effect: Effect::StatusChanged,
        }),
        None if event == PurchaseEvent::Paid && purchase.status.is_owed_a_token() => {
            // A repeated "paid" (success page racing the webhook, a redelivery with a new event id):
            // make sure the purchase has its token, which is a no-op when it does.
            let effect = fulfil_locked(conn, &purchase, actor).await?;
            Ok(Outcome {
                purchase: Some(purchase.purchase_id),
                status: Some(purchase.status),
                effect,
            })
        }
        None => Ok(unchanged(&purchase)),
    }
}

/// Locks the purchase and links the session (and the payment row) in one statement, when the
/// session is the purchase's: the recorded one, or, with none recorded yet, one charging exactly
/// the purchase's price. Any other session matches no row and changes nothing. The payer's email
/// (as Checkout collected it) is recorded on a purchase that has none, for its receipt.
async fn link_session(conn: &mut PgConnection, facts: &SessionFacts) -> Result<Option<Purchase>> {
    let (amount, currency) = facts.charge.as_ref().map_or((None, None), |c| {
        (Some(c.amount), Some(c.currency.as_str()))
    });
    Ok(sqlx::query_as::<_, Purchase>(
        "with linked as (
             update purchase
             set checkout_session_id = coalesce(checkout_session_id, $2),
                 payment_intent_id = coalesce(payment_intent_id, $3),
                 email = coalesce(email, $6)
             where purchase_id = $1
               and (checkout_session_id = $2
                    or (checkout_session_id is null and amount = $4 and currency = $5))
             returning *
         ), payment as (
             update stripe_payment set purchase_id = coalesce(stripe_payment.purchase_id, linked.purchase_id)
             from linked
             where stripe_payment.payment_intent_id = $3
         )
         select * from linked",
    )
    .bind(facts.purchase)
    .bind(&facts.session_id)
    .bind(&facts.payment_intent)
    .bind(amount)
    .bind(currency)
    .bind(facts.payer_email.as_ref().map(Email::as_str))
    .fetch_optional(&mut *conn)
    .await?)
}

/// A session that is not the purchase's it names: recorded on that purchase's audit trail (and,
/// through the outcome, in the inbox and the webhook metric) when the purchase exists.
async fn foreign_or_unknown(
    conn: &mut PgConnection,
    facts: &SessionFacts,
    actor: &Actor,
) -> Result<Outcome> {
    let Some(named) = lock(conn, facts.purchase).await? else {
        return Ok(Outcome {
            purchase: None,
            status: None,
            effect: Effect::UnknownPurchase,
        });
    };
    tracing::warn!(purchase.id = %named.purchase_id, "a Checkout Session that is not the purchase's names it; ignored");
    Audit::new(actor, "payment.foreign_session")
        .purchase(named.purchase_id)
        .detail(serde_json::json!({ "session_id": facts.session_id }))
        .write(conn)
        .await?;
    Ok(Outcome {
        purchase: Some(named.purchase_id),
        status: Some(named.status),
        effect: Effect::ForeignSession,
    })
}
