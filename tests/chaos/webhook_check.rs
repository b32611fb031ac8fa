//! Outgoing webhooks, checked after settling against what the receiver wrote down (each request is
//! written before its answer), not against what the service recorded: the outbox could say
//! `delivered` of an event that no verifier accepted, or send a purchase's events out of order,
//! and only the receiver's side shows it. The platform's endpoint (`webhook_faults.rs`) receives
//! every seller's events, so every event made since it exists is checked.
//!
//! - (a) Every event has a delivery to the endpoint, and it is `delivered`: none pending, none
//!   failed (retries outlast the run, and the endpoint is never disabled).
//! - (b) Every event's `webhook-id` (`msg_<event id>`) was accepted at least once: verified by the
//!   official library and answered 2xx in time (the slow receiver's answer comes after the sender
//!   gave up, so it is not an acceptance).
//! - (c) Per `order_key` (a purchase with its upgrades, a tier's pool, a credential, a job), the
//!   events' first acceptances come in `seq` order: the order their facts were written.
//! - (d) Every accepted copy of a `webhook-id` carries the same body, with its event's type and
//!   data: the only duplicates are the ones the specification allows. No accepted `webhook-id` is
//!   unknown to the database.
//! - Once the receiver had the endpoint's secret, every request verified, whatever the receiver
//!   answered: a refusal by the library is a signing fault.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use market_core::courier::message_id;
use serde_json::Value;
use sqlx::PgPool;
use testkit::receiver::Received;
use uuid::Uuid;

use crate::checker::Checker;
use crate::webhook_faults::Hooks;

/// An event this soon after the endpoint may have been written before the endpoint was visible
/// to its transaction: it is the endpoint's only when it has a delivery there.
const WITH_THE_ENDPOINT_SECS: f64 = 2.0;

/// What the summary prints about webhooks.
#[derive(Debug, Default)]
pub struct WebhookFigures {
    /// Events the endpoint is owed, by type.
    pub events: BTreeMap<String, usize>,
    /// Events made before the endpoint existed (none of its business).
    pub before_endpoint: usize,
    pub requests: usize,
    pub accepted: usize,
    /// `webhook-id`s accepted more than once, and the copies beyond the first.
    pub duplicated_ids: usize,
    pub extra_copies: usize,
    /// Requests the receiver did not accept, by why.
    pub refused: BTreeMap<&'static str, usize>,
    /// The endpoint's delivery log: attempts, and those that got no answer (receiver down,
    /// timeouts).
    pub attempts: i64,
    pub unanswered: i64,
    /// Deliveries that took more than one attempt.
    pub retried: usize,
    /// From an event's fact (`created_at`) to its first acceptance.
    pub delay_p50_ms: u64,
    pub delay_max_ms: u64,
}

impl WebhookFigures {
    pub fn print(&self) {
        println!(
            "chaos: webhooks: {} events {:?} ({} made before the endpoint), {} requests at the receiver, {} accepted, {} webhook-ids accepted more than once ({} extra copies), refused {:?}; delivery log {} attempts, {} without an answer, {} deliveries retried; fact to first acceptance p50 {} ms, max {} ms",
            self.events.values().sum::<usize>(),
            self.events,
            self.before_endpoint,
            self.requests,
            self.accepted,
            self.duplicated_ids,
            self.extra_copies,
            self.refused,
            self.attempts,
            self.unanswered,
            self.retried,
            self.delay_p50_ms,
            self.delay_max_ms
        );
    }
}

/// An event and its delivery to the platform's endpoint, if it has one.
#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    event_id: Uuid,
    kind: String,
    order_key: String,
    fact: String,
    purchase_id: Option<Uuid>,
    data: Value,
    /// `created_at`, in seconds since the epoch (as the receiver records `received_at`).
    created: f64,
    after_endpoint: f64,
    /// The delivery to the endpoint, if any.
    state: Option<String>,
    attempts: Option<i32>,
    last_status: Option<i32>,
    last_error: Option<String>,
}

impl Row {
    fn describe(&self) -> String {
        format!(
            "event {} ({}, fact {}, {})",
            self.seq,
            self.kind,
            self.fact,
            message_id(self.event_id)
        )
    }
}

/// The receiver accepted it: verified, answered 2xx before the sender gave up.
fn accepted(r: &Received) -> bool {
    r.accepted() && r.mode != "slow"
}

fn refusal(r: &Received) -> &'static str {
    if r.mode == "slow" {
        "slow"
    } else if r.status == 500 {
        "500"
    } else if r.verified_with.is_empty() {
        "401"
    } else {
        "other"
    }
}

/// Runs (a)–(d) and the signing check; the figures are for the summary.
pub async fn check(c: &mut Checker, db: &PgPool, hooks: &Hooks) -> WebhookFigures {
    // Facts after settling (a reconciliation's) may still be on their way.
    wait_delivered(db, hooks.endpoint_id, Duration::from_secs(30)).await;
    let all: Vec<Row> = sqlx::query_as(
        "select ev.seq, ev.event_id, ev.type as kind, ev.order_key, ev.fact, ev.purchase_id, ev.data,
                extract(epoch from ev.created_at)::float8 as created,
                extract(epoch from ev.created_at - e.created_at)::float8 as after_endpoint,
                d.state, d.attempts, d.last_status, d.last_error
         from webhook_endpoint e
         cross join webhook_event ev
         left join webhook_delivery d on d.event_seq = ev.seq and d.endpoint_id = e.endpoint_id
         where e.endpoint_id = $1
         order by ev.seq",
    )
    .bind(hooks.endpoint_id)
    .fetch_all(db)
    .await
    .expect("read the webhook outbox");
    let (attempts, unanswered): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where status is null)
         from webhook_attempt where endpoint_id = $1",
    )
    .bind(hooks.endpoint_id)
    .fetch_one(db)
    .await
    .expect("read the delivery log");
    // Read after the database: whatever the database says was delivered, the receiver has.
    let received = hooks.received().await;

    let owed: Vec<&Row> = all
        .iter()
        .filter(|e| e.state.is_some() || e.after_endpoint >= WITH_THE_ENDPOINT_SECS)
        .collect();
    let mut figures = WebhookFigures {
        before_endpoint: all.len() - owed.len(),
        requests: received.len(),
        attempts,
        unanswered,
        ..WebhookFigures::default()
    };
    let by_id: HashMap<String, &Row> = all.iter().map(|e| (message_id(e.event_id), e)).collect();

    // The receiver's side: first acceptances (by their place in its log), copies, refusals.
    let mut first: HashMap<&str, (usize, f64)> = HashMap::new();
    let mut copies: HashMap<&str, Vec<&Received>> = HashMap::new();
    let mut requests: HashMap<&str, Vec<&Received>> = HashMap::new();
    for (at, r) in received.iter().enumerate() {
        let id = r.webhook_id.as_deref().unwrap_or_default();
        requests.entry(id).or_default().push(r);
        if accepted(r) {
            figures.accepted += 1;
            first.entry(id).or_insert((at, r.received_at));
            copies.entry(id).or_default().push(r);
        } else {
            *figures.refused.entry(refusal(r)).or_default() += 1;
        }
        c.check(
            !r.verified_with.is_empty() || r.received_at < hooks.secret_given_at,
            None,
            || {
                format!(
                    "the receiver could not verify {id} ({:?}) with the endpoint's secret, {:.1} s after it had it: {:?} (it answered {})",
                    r.event_type(),
                    r.received_at - hooks.secret_given_at,
                    r.error,
                    r.status
                )
            },
        );
    }

    // (a), (b): every event delivered, and accepted at least once.
    let mut delays = Vec::new();
    for e in &owed {
        *figures.events.entry(e.kind.clone()).or_default() += 1;
        figures.retried += usize::from(e.attempts.unwrap_or(0) > 1);
        c.check(e.state.as_deref() == Some("delivered"), e.purchase_id, || {
            format!(
                "{} has {} to the platform's endpoint after {:?} attempts (last status {:?}, error {:?})",
                e.describe(),
                e.state
                    .as_deref()
                    .map_or_else(|| "no delivery".to_owned(), |s| format!("its delivery {s}")),
                e.attempts,
                e.last_status,
                e.last_error
            )
        });
        let id = message_id(e.event_id);
        match first.get(id.as_str()) {
            Some((_, at)) => delays.push(((at - e.created) * 1000.0).max(0.0) as u64),
            None => c.check(false, e.purchase_id, || {
                let tried: Vec<String> = requests
                    .get(id.as_str())
                    .into_iter()
                    .flatten()
                    .map(|r| format!("{} ({})", r.status, r.mode))
                    .collect();
                format!(
                    "{} never accepted by the receiver; its requests there: {tried:?}",
                    e.describe()
                )
            }),
        }
    }
    delays.sort_unstable();
    figures.delay_p50_ms = delays.get(delays.len() / 2).copied().unwrap_or(0);
    figures.delay_max_ms = delays.last().copied().unwrap_or(0);

    // (c): per order key, first acceptances in seq order (`owed` is in seq order).
    let mut keys: BTreeMap<&str, Vec<(&Row, usize, f64)>> = BTreeMap::new();
    for e in &owed {
        if let Some((at, when)) = first.get(message_id(e.event_id).as_str()) {
            keys.entry(e.order_key.as_str())
                .or_default()
                .push((e, *at, *when));
        }
    }
    for (key, arrived) in &keys {
        for pair in arrived.windows(2) {
            let ((earlier, at_a, when_a), (later, at_b, when_b)) = (pair[0], pair[1]);
            c.check(at_a < at_b, later.purchase_id, || {
                format!(
                    "{key}: {} was first accepted at {when_b:.3} (request {at_b}), before {} at {when_a:.3} (request {at_a}), whose fact came first",
                    later.describe(),
                    earlier.describe()
                )
            });
        }
    }

    // (d): one body per webhook-id, its event's; no webhook-id the database does not know.
    let unknown: Vec<Uuid> = copies
        .keys()
        .filter(|id| !by_id.contains_key(**id))
        .filter_map(|id| id.strip_prefix("msg_")?.parse().ok())
        .collect();
    let newer: Vec<Uuid> =
        sqlx::query_scalar("select event_id from webhook_event where event_id = any($1)")
            .bind(&unknown)
            .fetch_all(db)
            .await
            .expect("look up webhook-ids");
    for (id, list) in &copies {
        figures.duplicated_ids += usize::from(list.len() > 1);
        figures.extra_copies += list.len() - 1;
        let body = list[0].body.as_ref();
        let event = by_id.get(*id);
        let purchase = event.and_then(|e| e.purchase_id);
        c.check(
            list.iter().all(|r| r.body.as_ref() == body),
            purchase,
            || {
                format!(
                    "{id} was accepted {} times with different bodies",
                    list.len()
                )
            },
        );
        if let Some(e) = event {
            let same = body.is_some_and(|b| b["type"] == e.kind.as_str() && b["data"] == e.data);
            c.check(same, purchase, || {
                format!(
                    "{} arrived as {}",
                    e.describe(),
                    body.map_or_else(|| "no JSON".to_owned(), Value::to_string)
                )
            });
        } else {
            let made_since = id
                .strip_prefix("msg_")
                .and_then(|u| u.parse::<Uuid>().ok())
                .is_some_and(|u| newer.contains(&u));
            c.check(made_since, None, || {
                format!(
                    "the receiver accepted {} copies of {id:?}, which is no event's webhook-id",
                    list.len()
                )
            });
        }
    }
    figures
}

/// Waits (up to `limit`) until no delivery to `endpoint` is pending.
async fn wait_delivered(db: &PgPool, endpoint: Uuid, limit: Duration) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from webhook_delivery where endpoint_id = $1 and state = 'pending'",
        )
        .bind(endpoint)
        .fetch_one(db)
        .await
        .expect("count pending deliveries");
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
