//! What Stripe's webhooks never told us, found by asking Stripe. Stripe retries an event for three
//! days; an endpoint that was down, misconfigured or refusing for longer loses it. Two rounds run
//! every `interval` on every instance:
//!
//! - **Events.** One instance at a time (a lease on `stripe_backfill`) lists Stripe's events of the
//!   handled types created since the cursor, less `events_overlap` (events become visible late;
//!   clocks differ), and applies every one the inbox has not seen through the webhook's own path
//!   (`inbox::apply`): payments, refunds and disputes alike. Events younger than `events_grace`
//!   are left to their webhook, which is probably on its way, so that the metric counts only what
//!   was really missed. The cursor moves to the newest event listed, only after a complete listing.
//! - **Sessions.** A few purchases pending for longer than `older_than` (`purchases::stale`) have
//!   their Checkout Sessions read, and a paid one is applied exactly as the success page does. A
//!   session is read again later the older it is (every quarter of its age, at least
//!   `older_than`), so an abandoned checkout costs a dozen reads in its day, not hundreds. This
//!   also covers an event Stripe's list does not show (older than its 30 days).
//! - **Transfers.** A refunded seller's sale whose transfer is not known to be back is checked at
//!   Stripe and taken back (`connect::take_back`): a refund made in Stripe's dashboard does not
//!   reverse a destination charge's transfer by itself.

use std::collections::HashSet;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};
use market_core::audit::Actor;
use market_core::connect;
use market_core::payments::{self, Effect, events_cursor};
use market_core::purchases::stale;
use tokio::sync::watch;
use uuid::Uuid;

use crate::inbox::{self, Applied};
use crate::intake::HANDLED_TYPES;
use crate::state::AppState;
use crate::stripe::StripeFailure;
use crate::stripe_events;

/// How often, and how far back, Stripe is asked.
#[derive(Clone, Copy, Debug)]
pub struct BackfillSettings {
    pub interval: Duration,
    /// Pending purchases older than this have their session read.
    pub older_than: Duration,
    /// Events are listed from this long before the cursor.
    pub events_overlap: Duration,
    /// Events younger than this are left to their webhook.
    pub events_grace: Duration,
    /// How far back the very first round lists (no cursor yet).
    pub first_lookback: Duration,
}

impl BackfillSettings {
    /// Production's, run every `interval` (a minute by default): sessions pending for
    /// `older_than`; events since the cursor less ten minutes, leaving the two latest rounds'
    /// worth to webhooks; three days back the first time.
    pub fn every(interval: Duration, older_than: Duration) -> Self {
        Self {
            interval,
            older_than,
            events_overlap: Duration::from_secs(600).max(interval * 4),
            events_grace: interval * 2,
            first_lookback: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// Sessions read per round and instance (Stripe's rate limit is the account's).
const PER_ROUND: i64 = 20;
/// How long one events round holds the cursor without a word (it renews after every page): an
/// instance killed mid-round keeps the others from the list for at most this long.
const EVENTS_LEASE: Duration = Duration::from_secs(30);
/// Stripe keeps events for 30 days.
const STRIPE_KEEPS_EVENTS: Duration = Duration::from_secs(30 * 24 * 3600);

/// Runs rounds until `stop` turns true.
pub async fn run(
    state: web::Data<AppState>,
    settings: BackfillSettings,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = events_round(&state, settings).await {
            tracing::warn!(error = %e, "listing Stripe's events failed");
        }
        if let Err(e) = round(&state, settings).await {
            tracing::warn!(error = %e, "checking pending purchases against Stripe failed");
        }
        if let Err(e) = connect::take_back(state.db(), &state.stripe).await {
            tracing::warn!(error = %e, "taking refunded sellers' transfers back failed");
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

/// One sessions round: the purchases claimed, their sessions read, the paid ones applied.
/// Returns how many were applied.
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

/// One events round, when this instance gets the cursor (`None` when another holds it). Returns
/// how many events no webhook had delivered were applied.
pub async fn events_round(
    state: &AppState,
    settings: BackfillSettings,
) -> market_core::Result<Option<u64>> {
    let Some(lease) = events_cursor::claim(state.db(), Uuid::new_v4(), EVENTS_LEASE).await? else {
        return Ok(None);
    };
    let mut listed = Listed::default();
    let result = list_and_apply(state, settings, &lease, &mut listed).await;
    let error = match &result {
        Ok(()) => None,
        Err(e) => Some(e.to_string()),
    };
    // Only a complete listing moves the cursor; a failed one is listed again next round.
    let through = listed.newest.filter(|_| error.is_none());
    events_cursor::finish(
        state.db(),
        &lease,
        through,
        listed.applied,
        error.as_deref(),
    )
    .await?;
    if let Some(error) = error {
        tracing::warn!(error = %error, applied = listed.applied, "the Stripe events backfill stopped early; next round");
    }
    Ok(Some(listed.applied))
}

#[derive(Default)]
struct Listed {
    newest: Option<DateTime<Utc>>,
    applied: u64,
}

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
    #[error(transparent)]
    Core(#[from] market_core::Error),
    #[error("another instance took the cursor (this round outlived its lease)")]
    LeaseLost,
}

async fn list_and_apply(
    state: &AppState,
    settings: BackfillSettings,
    lease: &events_cursor::Lease,
    listed: &mut Listed,
) -> Result<(), RoundError> {
    let cursor = lease.created_through;
    let now = Utc::now();
    let back = |d: Duration| now - chrono::Duration::from_std(d).unwrap_or_default();
    let from = cursor
        .map_or_else(
            || back(settings.first_lookback),
            |c| c - chrono::Duration::from_std(settings.events_overlap).unwrap_or_default(),
        )
        .max(back(STRIPE_KEEPS_EVENTS));
    let settled = back(settings.events_grace).timestamp();
    let mut after: Option<String> = None;
    loop {
        let page = stripe_events::page(
            &state.stripe,
            &HANDLED_TYPES,
            from.timestamp(),
            after.as_deref(),
        )
        .await?;
        let ripe: Vec<_> = page
            .events
            .iter()
            .filter(|e| e.created <= settled)
            .collect();
        if let Some(newest) = ripe.iter().map(|e| e.created).max() {
            let newest = DateTime::from_timestamp(newest, 0);
            listed.newest = listed.newest.max(newest);
        }
        let ids: Vec<String> = ripe.iter().map(|e| e.id.clone()).collect();
        let unseen: HashSet<String> = events_cursor::unseen(state.db(), &ids)
            .await?
            .into_iter()
            .collect();
        // Oldest first within the page (the engine is order-independent; this reads better).
        for event in ripe.iter().rev().filter(|e| unseen.contains(&e.id)) {
            let applied = inbox::apply(
                state.db(),
                &event.payload,
                state.stripe.livemode(),
                "backfill",
            )
            .await?;
            if matches!(&applied, Applied::Applied(o) if o.effect == Effect::Duplicate) {
                continue;
            }
            tracing::warn!(stripe.event_id = %event.id, outcome = applied.outcome(), "a Stripe event no webhook delivered was applied from Stripe's list");
            metrics::counter!("market_backfilled_events_total", "outcome" => applied.outcome())
                .increment(1);
            listed.applied += 1;
        }
        match (page.has_more, page.events.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => return Ok(()),
        }
        if !events_cursor::renew(state.db(), lease, EVENTS_LEASE).await? {
            return Err(RoundError::LeaseLost);
        }
    }
}
