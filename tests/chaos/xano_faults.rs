//! The Xano side of the nemesis, through the simulator's control API: one fault window at a time —
//! 429 storms with and without `Retry-After`, 5xx and dropped connections, 2–20 s latency,
//! commit-then-fail creates, the access token revoked and restored. The call log is cleared as a
//! window opens and read as it closes (with what is left of the count-based rules), so each fault
//! the service really met is counted on its own evidence, under the window's kind: a 429 in a
//! `Retry-After` window is not one without, a connection the simulator dropped is not a client
//! that gave up on a slow answer, and neither is a 5xx.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::nemesis::{Nemesis, XANO_KINDS};

/// Faults the service met at Xano (counters `xano_met:*`), each of which every run must show.
pub const MET_KINDS: [&str; 8] = [
    "xano_met:429_retry_after",
    "xano_met:429_no_retry_after",
    "xano_met:5xx",
    "xano_met:dropped",
    "xano_met:slow_2s",
    "xano_met:client_gave_up",
    "xano_met:commit_then_fail",
    "xano_met:credential_refused",
];

impl Nemesis {
    async fn xano(&self, method: reqwest::Method, path: &str, body: Option<Value>) {
        let url = format!("{}{path}", self.cluster.xano_control);
        // The simulator is never faulted on its control API, but the machine may be loaded: a
        // transport error is retried (adding a fault rule or clearing them twice is harmless).
        for attempt in 1..=5 {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => panic!(
                    "xano sim control {path}: {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                ),
                Err(e) if attempt < 5 => {
                    eprintln!("chaos: xano sim control {path} (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => panic!("xano sim control {path}: {e}"),
            }
        }
    }

    /// Removes every Xano fault and makes the access token valid again.
    pub async fn heal_xano(&self) {
        self.xano(reqwest::Method::DELETE, "/faults", None).await;
        self.xano(
            reqwest::Method::POST,
            "/access-token-state",
            Some(json!({ "state": "valid" })),
        )
        .await;
    }

    /// One Xano fault window at a time until stopped.
    pub async fn run_xano(self: Arc<Self>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_0002);
        let mut first: Vec<&str> = XANO_KINDS.to_vec();
        first.shuffle(&mut rng);
        tokio::time::sleep(Duration::from_secs(1)).await;
        while !self.stopped() {
            let kind = first
                .pop()
                .unwrap_or_else(|| XANO_KINDS[rng.random_range(0..XANO_KINDS.len())]);
            let window = Duration::from_millis(rng.random_range(4000..12_000));
            // What happened before the window is not this window's evidence.
            self.count_calls_met(None).await;
            let faults: Vec<Value> = match kind {
                "xano_429_retry_after" => vec![if rng.random_bool(0.5) {
                    json!({ "kind": "rate_limited_ratio", "ratio": rng.random_range(0.5..1.0),
                            "retry_after": rng.random_range(1..=3) })
                } else {
                    json!({ "kind": "rate_limited", "count": rng.random_range(10..60),
                            "retry_after": rng.random_range(1..=3) })
                }],
                "xano_429_no_retry_after" => vec![if rng.random_bool(0.5) {
                    json!({ "kind": "rate_limited_ratio", "ratio": rng.random_range(0.5..1.0) })
                } else {
                    json!({ "kind": "rate_limited", "count": rng.random_range(10..60) })
                }],
                "xano_5xx" => vec![
                    json!({ "kind": "server_error_ratio", "ratio": rng.random_range(0.3..0.9),
                            "status": (&[500, 502, 503])[rng.random_range(0..3)] }),
                    json!({ "kind": "drop_connection", "count": rng.random_range(1..5) }),
                ],
                "xano_latency" => {
                    vec![json!({ "kind": "latency", "min_ms": 2000, "max_ms": 20_000 })]
                }
                "xano_commit_then_fail" => {
                    let stall = (self.xano_timeout_secs + 2) * 1000;
                    vec![
                        json!({ "kind": "commit_then_fail", "count": rng.random_range(1..4) }),
                        json!({ "kind": "commit_then_fail", "count": rng.random_range(1..3),
                                "stall_ms": stall }),
                        json!({ "kind": "commit_then_drop", "count": rng.random_range(1..3) }),
                    ]
                }
                _ => Vec::new(),
            };
            if kind == "xano_token_revoked" {
                let state = if rng.random_bool(0.7) {
                    "expired"
                } else {
                    "forbidden"
                };
                self.xano(
                    reqwest::Method::POST,
                    "/access-token-state",
                    Some(json!({ "state": state })),
                )
                .await;
                self.note(None, kind, &format!("access token {state} for {window:?}"));
            } else {
                for fault in &faults {
                    self.xano(reqwest::Method::POST, "/faults", Some(fault.clone()))
                        .await;
                }
                self.note(
                    None,
                    kind,
                    &format!(
                        "{} for {window:?}",
                        serde_json::to_string(&faults).unwrap_or_default()
                    ),
                );
            }
            self.history
                .add("xano_faults_injected", faults.len().max(1) as u64);
            tokio::time::sleep(window).await;
            self.await_met(kind, &faults).await;
            if kind == "xano_commit_then_fail" {
                self.count_commit_then_fail_met(&faults).await;
            }
            self.heal_xano().await;
            self.count_calls_met(Some(kind)).await;
            self.history
                .record(None, None, format!("NEMESIS {kind}: healed"));
            let gap = rng.random_range(1000..5000);
            self.sleep_unless_stopped(Duration::from_millis(gap)).await;
        }
    }

    /// Keeps the window open (up to 40 s more) until the service has met its fault at least once.
    /// Xano is called only by jobs — a pool running low, a purchase finding it empty, a deletion,
    /// a reconciliation — so a short window can pass without any call (CI runs have missed a 429
    /// storm and a commit-then-fail window that way). 40 s outlasts the credential probe's 30 s,
    /// after a revoked-token window during which the workers claim nothing.
    async fn await_met(&self, kind: &str, injected: &[Value]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        for wanted in met_kinds_of(kind) {
            while !self.stopped() && tokio::time::Instant::now() < deadline {
                let met = if *wanted == "xano_met:commit_then_fail" {
                    self.commit_then_rules_left()
                        .await
                        .is_some_and(|left| left < commit_then_count(injected))
                } else {
                    // Read without clearing: `count_calls_met` counts the window's calls afterwards.
                    self.calls().await.iter().any(|call| {
                        faults_met(call, Some(kind), self.timeout_ms()).contains(&Some(*wanted))
                    })
                };
                if met {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// The service's Xano client timeout, in milliseconds.
    fn timeout_ms(&self) -> f64 {
        (self.xano_timeout_secs * 1000) as f64
    }

    /// The simulator's call log since it was last taken.
    async fn calls(&self) -> Vec<Value> {
        let url = format!("{}/calls", self.cluster.xano_control);
        let Ok(response) = self.http.get(&url).send().await else {
            return Vec::new();
        };
        response.json().await.unwrap_or_default()
    }

    /// The simulator's call log since it was last taken, cleared in the same step.
    async fn take_calls(&self) -> Vec<Value> {
        let url = format!("{}/calls/take", self.cluster.xano_control);
        let Ok(response) = self.http.post(&url).send().await else {
            return Vec::new();
        };
        response.json().await.unwrap_or_default()
    }

    /// The creations the simulator's commit-then-fail rules have left (used-up rules are gone).
    async fn commit_then_rules_left(&self) -> Option<u64> {
        let url = format!("{}/faults", self.cluster.xano_control);
        let response = self.http.get(&url).send().await.ok()?;
        let left: Vec<Value> = response.json().await.ok()?;
        Some(commit_then_count(&left))
    }

    /// How many of the commit-then-fail rules' creations were used up.
    async fn count_commit_then_fail_met(&self, injected: &[Value]) {
        let Some(left) = self.commit_then_rules_left().await else {
            return;
        };
        let met = commit_then_count(injected).saturating_sub(left);
        self.history.add("xano_met:commit_then_fail", met);
    }

    /// Reads and clears the simulator's call log, and counts the faults in it as met during the
    /// window of `kind` (`None`: between windows). Creations whose answer never arrived complete
    /// (`xano_lost_create_answers`) are counted in every case: each may leave a token at Xano the
    /// service does not know, which only they (or a crash) can explain to the checker. So are
    /// updates that Xano applied after their client gave up (`late_updates`): a stalled absolute
    /// update lands whenever the server gets to it, over whatever happened to the token meanwhile.
    pub(crate) async fn count_calls_met(&self, kind: Option<&str>) {
        // Taken and cleared in one step: no call falls between a read and a clear.
        let calls = self.take_calls().await;
        self.history.add("xano_calls", calls.len() as u64);
        for call in &calls {
            if kind.is_some() {
                for met in faults_met(call, kind, self.timeout_ms())
                    .into_iter()
                    .flatten()
                {
                    self.history.count(met);
                }
            }
            let create = call["method"] == "POST"
                && call["path"].as_str().is_some_and(|p| p.ends_with("/token"));
            let status = call["status"].as_u64().unwrap_or(0);
            if create && (status == 0 || status >= 500) {
                self.history.count("xano_lost_create_answers");
            }
            let took = call["ended_ms"].as_f64().unwrap_or(0.0)
                - call["started_ms"].as_f64().unwrap_or(0.0);
            if call["endpoint"] == "update_token"
                && (200..300).contains(&status)
                && took >= self.timeout_ms()
                && let Some(token) = call["path"].as_str().and_then(|p| p.rsplit('/').next())
            {
                self.late_updates.lock().unwrap().insert(token.to_owned());
                self.history.count("xano_met:late_update");
            }
        }
    }
}

/// The creations a set of commit-then-fail rules covers.
fn commit_then_count(rules: &[Value]) -> u64 {
    rules
        .iter()
        .filter(|r| {
            r["kind"]
                .as_str()
                .is_some_and(|k| k.starts_with("commit_then"))
        })
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// The `xano_met:*` counters a window of this nemesis kind must move.
fn met_kinds_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "xano_429_retry_after" => &["xano_met:429_retry_after"],
        "xano_429_no_retry_after" => &["xano_met:429_no_retry_after"],
        "xano_5xx" => &["xano_met:5xx", "xano_met:dropped"],
        "xano_latency" => &["xano_met:slow_2s", "xano_met:client_gave_up"],
        "xano_commit_then_fail" => &["xano_met:commit_then_fail"],
        "xano_token_revoked" => &["xano_met:credential_refused"],
        _ => &[],
    }
}

/// The faults one logged call met during a window of `kind`: by its status, and by its length in
/// a latency window (2 s or more: slow; past the client's timeout: the client gave up, whatever
/// the simulator went on to answer). A call with no complete answer (status 0) is a dropped
/// connection in a 5xx window (the only rule that drops one); elsewhere (a killed instance's
/// call) it is neither.
fn faults_met(call: &Value, kind: Option<&str>, timeout_ms: f64) -> [Option<&'static str>; 3] {
    let status = call["status"].as_u64().unwrap_or(0);
    let by_status = match (status, kind) {
        (429, Some("xano_429_retry_after")) => Some("xano_met:429_retry_after"),
        (429, Some("xano_429_no_retry_after")) => Some("xano_met:429_no_retry_after"),
        (0, Some("xano_5xx")) => Some("xano_met:dropped"),
        (500..=599, Some("xano_5xx")) => Some("xano_met:5xx"),
        (401 | 403, Some("xano_token_revoked")) => Some("xano_met:credential_refused"),
        _ => None,
    };
    let took =
        call["ended_ms"].as_f64().unwrap_or(0.0) - call["started_ms"].as_f64().unwrap_or(0.0);
    let latency = kind == Some("xano_latency");
    let gave_up = latency && took >= timeout_ms;
    [
        by_status,
        (latency && took >= 2000.0).then_some("xano_met:slow_2s"),
        gave_up.then_some("xano_met:client_gave_up"),
    ]
}
