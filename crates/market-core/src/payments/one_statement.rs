//! The launch-day case in one round trip: Stripe says a pending purchase is paid and its tier's
//! pool has a token.
//!
//! Most of a fulfilment's time was waiting: ten round trips (the pool's ping, BEGIN, eight
//! statements, COMMIT), each a trip through the network and two schedulers, on a machine whose
//! cores PostgreSQL shares with the service. The SQL is unchanged but runs inside PostgreSQL:
//! `fulfil_paid_session` (migration 31) runs the statements [`super::session`] would, in the same
//! order and under the same constraints and triggers, as one statement in its own implicit
//! transaction. It takes this path or writes nothing, and everything else — a duplicate racing,
//! a refund or dispute recorded first, an upgrade, a session that is not the purchase's, an empty
//! pool — goes the general way, which is where those cases are reasoned about.
//!
//! A crash can only come before the statement or after its commit: the crash point inside the
//! general path's transaction (`after_event_recorded`) has no counterpart here, and the one after
//! the commit (`after_webhook_commit_before_response`) covers this path too.

use sqlx::PgPool;

use super::facts::{Delivery, Fact, SessionFacts, SessionPayment};
use super::locked::{Effect, Outcome};
use crate::audit::Actor;
use crate::{Email, Error, PurchaseStatus, Result, TokenId};

/// What the one statement did.
pub(super) enum Tried {
    /// It applied the fact (or found it a duplicate): this is the answer.
    Done(Outcome),
    /// Not this path; nothing was written.
    NotThisPath,
}

/// The SQLSTATE `fulfil_paid_session` raises when it finds, after it began writing, that a
/// concurrent fact got there first (its whole statement rolled back).
const NOT_THIS_PATH: &str = "MKT01";

/// The session of a fact that may take this path: a session that says paid.
pub(super) fn candidate(fact: &Fact) -> Option<&SessionFacts> {
    match fact {
        Fact::CheckoutCompleted(s) | Fact::AsyncPaymentSucceeded(s)
            if s.payment == SessionPayment::Paid =>
        {
            Some(s)
        }
        _ => None,
    }
}

/// Runs `fulfil_paid_session` for `session` (and `delivery`'s inbox entry, when it came by webhook).
pub(super) async fn try_fulfil(
    pool: &PgPool,
    delivery: Option<Delivery<'_>>,
    session: &SessionFacts,
    actor: &Actor,
) -> Result<Tried> {
    let (amount, currency) = session.charge.as_ref().map_or((None, None), |c| {
        (Some(c.amount), Some(c.currency.as_str()))
    });
    let answer = sqlx::query_as::<_, (String, Option<TokenId>)>(
        "select outcome, token from fulfil_paid_session($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(delivery.map(|d| d.event_id))
    .bind(delivery.map(|d| d.event_type))
    .bind(delivery.map(|d| d.livemode))
    .bind(session.purchase)
    .bind(&session.session_id)
    .bind(&session.payment_intent)
    .bind(amount)
    .bind(currency)
    .bind(session.payer_email.as_ref().map(Email::as_str))
    .bind(actor.label())
    .fetch_one(pool)
    .await;
    let (outcome, token) = match answer {
        Ok(row) => row,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(NOT_THIS_PATH) => {
            return Ok(Tried::NotThisPath);
        }
        Err(e) => return Err(e.into()),
    };
    Ok(match (outcome.as_str(), token) {
        ("fulfilled", Some(token)) => Tried::Done(Outcome {
            purchase: Some(session.purchase),
            status: Some(PurchaseStatus::Fulfilled),
            effect: Effect::Fulfilled { token },
        }),
        ("duplicate", None) => Tried::Done(Outcome {
            purchase: None,
            status: None,
            effect: Effect::Duplicate,
        }),
        ("fallback", None) => Tried::NotThisPath,
        (other, _) => {
            let said = format!("fulfil_paid_session answered {other:?}");
            return Err(Error::Database(sqlx::Error::Protocol(said)));
        }
    })
}
