//! The faults of the isolation run's second run, each at one seller's Xano account only:
//!
//! - **B**: its access token is revoked at Xano (every call with it a 401), then B makes a new one
//!   and hands it over with `PUT /v1/seller/xano`; its parked work must resume.
//! - **C**: its account answers a 429 storm (every call, `Retry-After: 1`), then every call takes
//!   20 s (past the service's 5 s client timeout), then both are cleared. The rules are scoped to
//!   C's account (`"account": "103"`), so the simulator itself leaves A's calls alone: whatever
//!   slows A would be the service's doing.
//!
//! The plan is laid out in fractions of the run's length, so a longer run stretches it. Each step
//! is marked in the simulator's call log (a request to `/api:meta/chaos-mark/<step>`, answered 404
//! and logged with no account), so the checks can find the fault windows on the log's own clock.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sandbox::xano::{CallRecordJson, Fault};

use crate::cluster::Cluster;
use crate::history::History;
use crate::sellers::{self, Seller, xano_control};

/// Marks in the call log: where C's faults start and where they are cleared.
pub const C_FAULTS_START: &str = "c-faults-start";
pub const C_FAULTS_END: &str = "c-faults-end";
/// C's latency: every call of its account.
pub const C_LATENCY: Duration = Duration::from_secs(20);

/// When each seller's faults began and healed (wall clock, to compare with the database's times).
#[derive(Clone, Debug)]
pub struct Healed {
    /// When the plan started (with the run).
    pub started: DateTime<Utc>,
    pub b_revoked: DateTime<Utc>,
    /// B's new token accepted by the service.
    pub b: DateTime<Utc>,
    pub c_started: DateTime<Utc>,
    /// C's faults cleared at the simulator.
    pub c: DateTime<Utc>,
}

/// Writes a mark into the simulator's call log.
pub async fn mark(cluster: &Cluster, step: &str) {
    let base = cluster.xano_control.trim_end_matches("/__sim");
    let url = format!("{base}/api:meta/chaos-mark/{step}");
    let answer = reqwest::get(&url)
        .await
        .expect("the mark reaches the simulator");
    assert_eq!(answer.status().as_u16(), 404, "a mark is no API call");
}

/// The simulator's call log (`GET /__sim/calls`).
pub async fn calls(cluster: &Cluster) -> Vec<CallRecordJson> {
    let url = format!("{}/calls", cluster.xano_control);
    testkit::http::json(reqwest::Client::new().get(url)).await
}

pub async fn clear_calls(cluster: &Cluster) {
    let url = format!("{}/calls", cluster.xano_control);
    let cleared = reqwest::Client::new().delete(url).send().await;
    assert!(
        cleared.is_ok_and(|r| r.status().is_success()),
        "clear the call log"
    );
}

/// When a mark was written, in the call log's milliseconds.
pub fn marked_at(calls: &[CallRecordJson], step: &str) -> Option<f64> {
    calls
        .iter()
        .find(|c| c.path.ends_with(&format!("/chaos-mark/{step}")))
        .map(|c| c.started_ms)
}

async fn inject(cluster: &Cluster, fault: Fault, account: &str) {
    let rule = serde_json::to_value(fault.for_account(account)).expect("a rule as JSON");
    xano_control(cluster, "/faults", &rule).await;
}

async fn clear_faults(cluster: &Cluster) {
    let url = format!("{}/faults", cluster.xano_control);
    let cleared = reqwest::Client::new().delete(url).send().await;
    assert!(
        cleared.is_ok_and(|r| r.status().is_success()),
        "clear the faults"
    );
}

/// Plays the plan over a run of `length` that started at `start`; returns once both sellers are
/// healed (B's new token accepted, C's faults cleared).
pub async fn play(
    cluster: &Cluster,
    history: &History,
    b: &Seller,
    c: &Seller,
    start: Instant,
    length: Duration,
) -> Healed {
    let at = |fraction: f64| async move {
        tokio::time::sleep_until((start + length.mul_f64(fraction)).into()).await;
    };
    let note = |what: &str| history.record(None, None, format!("SELLERS {what}"));
    let started = Utc::now();

    at(0.15).await;
    mark(cluster, C_FAULTS_START).await;
    let c_started = Utc::now();
    let storm = Fault::RateLimitedRatio {
        ratio: 1.0,
        retry_after: Some(1),
        only: None,
    };
    inject(cluster, storm, &c.xano_account).await;
    note("C: every call of C's account answered 429");

    at(0.17).await;
    sellers::revoke_xano_token(cluster, b).await;
    let b_revoked = Utc::now();
    note("B: B's access token revoked at Xano");

    at(0.35).await;
    clear_faults(cluster).await;
    let latency = Fault::Latency {
        min: C_LATENCY,
        max: C_LATENCY,
        only: None,
    };
    inject(cluster, latency, &c.xano_account).await;
    note("C: the 429 storm over; every call of C's account takes 20 s");

    at(0.60).await;
    sellers::replace_xano_token(cluster, b, 1).await;
    let b_healed = Utc::now();
    note("B: a new access token accepted through PUT /v1/seller/xano");

    at(0.65).await;
    clear_faults(cluster).await;
    let c_healed = Utc::now();
    mark(cluster, C_FAULTS_END).await;
    note("C: faults cleared");

    Healed {
        started,
        b_revoked,
        b: b_healed,
        c_started,
        c: c_healed,
    }
}

impl Healed {
    /// When each fault began and healed, in seconds into the run.
    pub fn line(&self) -> String {
        let at = |t: DateTime<Utc>| (t - self.started).as_seconds_f64();
        format!(
            "B's token revoked at {:.1} s, replaced at {:.1} s; C's 429 storm from {:.1} s, its latency cleared at {:.1} s",
            at(self.b_revoked),
            at(self.b),
            at(self.c_started),
            at(self.c)
        )
    }
}
