//! After the nemesis: waiting for the instances (their jobs, rotations and outbox) to settle, the
//! reconciliation through the admin API, and the Xano simulator's live tokens for the checker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;
use crate::driver::Driver;
use crate::history;
use crate::mail_faults::Mailbox;
use market_http::intake::HANDLED_TYPES;

/// Waits until nothing is left to do: no purchase waiting for a token, no token being deleted,
/// no job due or running (reconciliation schedules aside), the fleet's Xano credential accepted,
/// no rotation pending, no message waiting in the outbox and the SMTP server up (so the checker
/// reads all it will ever accept), no webhook delivery pending. Returns a description of the
/// state. The fleet's credential is the first one recorded (the three instances start with it;
/// the stale instance's revoked one comes later and stays refused, as it should).
pub async fn settle(pool: &sqlx::PgPool, mail: &Mailbox, limit: Duration) -> String {
    let until = Instant::now() + limit;
    loop {
        let (paid, transitional, busy, unhealthy): (i64, i64, i64, bool) = sqlx::query_as(
            // An upgrade paid after its base closed stays `paid` (for an operator to refund).
            "select (select count(*) from purchase u where status = 'paid'
                        and not exists (select 1 from purchase b
                                        where b.purchase_id = u.upgrade_of
                                          and b.status not in ('paid', 'fulfilled', 'reinstated'))),
                    (select count(*) from install_token where state in ('revoking', 'retiring')),
                    (select count(*) from job where kind <> 'reconcile_listing'
                        and (state = 'running' or state = 'parked' or (state = 'queued'))
                        -- The sweep queues one again for such an upgrade every round; it does nothing.
                        and not (kind = 'apply_upgrade' and exists (
                            select 1 from purchase b where b.purchase_id::text = job.subject
                              and b.status not in ('paid', 'fulfilled', 'reinstated')))),
                    coalesce((select state <> 'healthy' from xano_credential
                              order by created_at limit 1), false)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let running_reconciles: i64 = sqlx::query_scalar(
            "select count(*) from job where kind = 'reconcile_listing' and state = 'running'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let (rotating, unsent, hooks): (i64, i64, i64) = sqlx::query_as(
            "select (select count(*) from token_rotation where state = 'pending'),
                    (select count(*) from mail_message where state = 'queued'),
                    (select count(*) from webhook_delivery where state = 'pending')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let mail_down = mail.is_down();
        let state = format!(
            "paid without token {paid}, tokens revoking/retiring {transitional}, jobs queued/running/parked {busy}, reconciles running {running_reconciles}, credential refused {unhealthy}, rotations pending {rotating}, messages queued {unsent}, SMTP down {mail_down}, webhook deliveries pending {hooks}"
        );
        if paid == 0
            && transitional == 0
            && busy == 0
            && running_reconciles == 0
            && !unhealthy
            && rotating == 0
            && unsent == 0
            && !mail_down
            && hooks == 0
        {
            return state;
        }
        if Instant::now() >= until {
            return format!("NOT settled after {limit:?}: {state}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The events of a handled type that Stripe never delivered (forged ones aside: Stripe's list
/// does not have them).
pub fn undelivered_events(driver: &Driver) -> Vec<(uuid::Uuid, String, String)> {
    let purchases: Vec<uuid::Uuid> = driver.undelivered.lock().unwrap().iter().copied().collect();
    let mut events = Vec::new();
    for purchase in purchases {
        for event in driver.pump.events_of(purchase) {
            if !event.forged && HANDLED_TYPES.contains(&event.type_.as_str()) {
                events.push((purchase, event.id.clone(), event.type_.clone()));
            }
        }
    }
    events
}

/// Waits until every event Stripe never delivered is in the inbox: the backfill found it.
pub async fn backfilled(pool: &sqlx::PgPool, driver: &Driver, limit: Duration) -> String {
    let until = Instant::now() + limit;
    let ids: Vec<String> = undelivered_events(driver)
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    loop {
        let applied: i64 =
            sqlx::query_scalar("select count(*) from stripe_event where stripe_event_id = any($1)")
                .bind(&ids)
                .fetch_one(pool)
                .await
                .unwrap();
        let state = format!("{applied} of {} undelivered events applied", ids.len());
        if usize::try_from(applied).unwrap_or(0) == ids.len() {
            return state;
        }
        if Instant::now() >= until {
            return format!("NOT backfilled after {limit:?}: {state}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `POST /v1/admin/reconcile` on the first instance that answers.
pub async fn reconcile(driver: &Driver) -> String {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    for attempt in 0..10 {
        let instance = attempt % driver.cluster.instances.len();
        let url = format!(
            "{}/v1/admin/reconcile",
            driver.cluster.instances[instance].url
        );
        let start_ms = driver.history.now_ms();
        let result = http
            .post(&url)
            .bearer_auth(&driver.cluster.secrets.admin_token)
            .send()
            .await;
        let outcome = match &result {
            Ok(r) => history::Outcome::Status(r.status().as_u16()),
            Err(e) => history::Outcome::Transport(e.to_string()),
        };
        driver.history.request(history::Request {
            start_ms,
            end_ms: driver.history.now_ms(),
            instance,
            call: history::Call::AdminReconcile,
            purchase: None,
            outcome,
            detail: String::new(),
        });
        if let Ok(response) = result
            && response.status().is_success()
        {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            return body.to_string();
        }
    }
    "reconcile never succeeded".to_owned()
}

/// The Xano simulator's live tokens, per canonical.
pub async fn xano_tokens(cluster: &Cluster) -> HashMap<String, Vec<Value>> {
    let http = reqwest::Client::new();
    let mut all = HashMap::new();
    for canonical in &cluster.canonicals {
        let url = format!("{}/snippets/{canonical}/tokens", cluster.xano_control);
        let tokens: Vec<Value> = testkit::http::json(http.get(url)).await;
        all.insert(canonical.clone(), tokens);
    }
    all
}
