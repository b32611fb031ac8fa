//! Purchases paid at Stripe whose webhook never arrived. Stripe retries an event for three days; an
//! endpoint that was down, misconfigured or refusing for longer loses it, and then only the buyer's
//! success page would notice. So every instance, every `interval`, claims a few purchases pending
//! for longer than `older_than` (`purchases::stale`), reads their Checkout Sessions and applies a
//! paid one exactly as the success page does. A session is read again later the older it is (every
//! quarter of its age, at least `older_than`), so an abandoned checkout costs a dozen reads in its
//! day, not hundreds.

use std::time::Duration;

use actix_web::web;
use market_core::audit::Actor;
use market_core::payments;
use market_core::purchases::stale;
use tokio::sync::watch;

use crate::state::AppState;
use crate::stripe::StripeFailure;

/// How often, and from what age, pending purchases are checked.
#[derive(Clone, Copy, Debug)]
pub struct BackfillSettings {
    pub interval: Duration,
    pub older_than: Duration,
}

/// Sessions read per round and instance (Stripe's rate limit is the account's).
const PER_ROUND: i64 = 20;

/// Runs rounds until `stop` turns true.
pub async fn run(
    state: web::Data<AppState>,
    settings: BackfillSettings,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = round(&state, settings).await {
            tracing::warn!(error = %e, "checking pending purchases against Stripe failed");
        }
        tokio::select! {
            () = tokio::time::sleep(settings.interval) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// One round: the purchases claimed, their sessions read, the paid ones applied. Returns how
/// many were applied.
pub async fn round(state: &AppState, settings: BackfillSettings) -> market_core::Result<u64> {
    let claimed = stale::claim_stale_pending(state.db(), settings.older_than, PER_ROUND).await?;
    let mut applied = 0;
    for (purchase, session_id) in claimed {
        let facts = match state.stripe.session(&session_id).await {
            Ok(session) => session.facts,
            Err(StripeFailure::NotFound) => None,
            Err(e) => {
                tracing::info!(purchase.id = %purchase, error = %e, "Stripe did not answer about a pending purchase; next round");
                continue;
            }
        };
        let Some(facts) = facts.filter(|f| f.purchase == purchase) else {
            continue;
        };
        if let Some(outcome) =
            payments::apply_session_read(state.db(), &facts, &Actor::Stripe).await?
        {
            tracing::warn!(purchase.id = %purchase, outcome = outcome.effect.as_str(), "a payment Stripe's webhook never reported was applied from its Checkout Session");
            metrics::counter!("market_backfilled_payments_total").increment(1);
            applied += 1;
        }
    }
    Ok(applied)
}
