//! The nemesis: faults mixed at random from a seeded RNG.
//!
//! - processes: `kill -9` of a random instance and restart; `SIGSTOP`/`SIGCONT` pauses longer
//!   than the job lease; an instance restarted with crash points armed for a while (each crash is
//!   followed by a restart with the same crash points, as a supervisor would);
//! - Xano (through the simulator's control API, one fault window at a time): 429 storms with and
//!   without `Retry-After`, 5xx and dropped connections, 2–20 s latency, commit-then-fail creates,
//!   the access token revoked and restored;
//! - the SMTP server down for a few seconds at a time (`mail_faults.rs`), a rotation's job killed
//!   between carrying the installs over and deleting the old token (the crash point
//!   `rotation_before_old_deleted`, armed like every other), and an upgrade's job between writing
//!   the new limit at Xano and recording it (`upgrade_before_recorded`, once the service lists it);
//! - the webhook receiver down, answering 500s or too slowly (`webhook_faults.rs`).
//!
//! The first actions of each loop go through every kind once (in a seeded order), so a short run
//! still sees them all; [`Nemesis::missing`] says what has not happened yet.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::history::History;

pub const PROCESS_KINDS: [&str; 3] = ["kill9", "pause", "crashpoints"];
pub const XANO_KINDS: [&str; 6] = [
    "xano_429_retry_after",
    "xano_429_no_retry_after",
    "xano_5xx",
    "xano_latency",
    "xano_commit_then_fail",
    "xano_token_revoked",
];
/// Every crash point in the service: the list the service itself checks `MARKET_CRASHPOINTS` against.
pub use market_http::crashpoints::CRASH_POINTS;

pub struct Nemesis {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) history: Arc<History>,
    pub(crate) http: reqwest::Client,
    pub(crate) seed: u64,
    lease_secs: u64,
    pub(crate) xano_timeout_secs: u64,
    stop: AtomicBool,
    /// Per instance: a process nemesis is working on it (or it runs with crash points).
    busy: Mutex<Vec<bool>>,
    pub unexpected_exits: Mutex<Vec<String>>,
    /// Tokens a Xano update reached after its client had given up (`xano_faults.rs`).
    pub late_updates: Mutex<std::collections::HashSet<String>>,
}

impl Nemesis {
    pub fn new(
        cluster: Arc<Cluster>,
        history: Arc<History>,
        seed: u64,
        lease_secs: u64,
        xano_timeout_secs: u64,
    ) -> Self {
        let busy = Mutex::new(vec![false; cluster.instances.len()]);
        Self {
            cluster,
            history,
            http: reqwest::Client::builder()
                // A fresh connection per call: a pooled one may be closed by the server's keep-alive
                // timeout just as a call goes out on it (seen in a 30-minute soak).
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            seed,
            lease_secs,
            xano_timeout_secs,
            stop: AtomicBool::new(false),
            busy,
            unexpected_exits: Mutex::new(Vec::new()),
            late_updates: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(crate) fn note(&self, instance: Option<usize>, kind: &str, what: &str) {
        self.history.count(&format!("nemesis:{kind}"));
        self.history
            .record(None, instance, format!("NEMESIS {kind}: {what}"));
    }

    /// Nemesis kinds and crash points that have not occurred yet.
    pub fn missing(&self) -> Vec<String> {
        let counters = self.history.counters();
        let mut missing: Vec<String> = PROCESS_KINDS
            .iter()
            .chain(XANO_KINDS.iter())
            .chain(crate::stripe_faults::STRIPE_KINDS.iter())
            .chain(crate::fleet_faults::FLEET_KINDS.iter())
            .chain(crate::mail_faults::MAIL_KINDS.iter())
            .chain(crate::webhook_faults::WEBHOOK_KINDS.iter())
            .filter(|k| counters.get(&format!("nemesis:{k}")).copied().unwrap_or(0) == 0)
            .map(|k| (*k).to_owned())
            .collect();
        missing.extend(
            crate::deliveries::DELIVERY_KINDS
                .iter()
                .chain(crate::xano_faults::MET_KINDS.iter())
                .chain(
                    [
                        "scenario:ExpiryAfterPayment",
                        "scenario:SuccessPageFirst",
                        "delivery:never_delivered",
                        "drift:applied",
                        "stale:not_ready",
                        "jobs_requeued",
                        "truncated_list:held_back",
                        "rotation:done",
                        "upgrade:applied",
                    ]
                    .iter(),
                )
                .filter(|k| counters.get(**k).copied().unwrap_or(0) == 0)
                .filter(|k| {
                    // A dead job's requeue refused because its work was queued again meanwhile is
                    // the operator's requeue answered too (`fleet_faults.rs`, `Requeue`).
                    **k != "jobs_requeued"
                        || counters
                            .get("jobs_requeued:already_live")
                            .copied()
                            .unwrap_or(0)
                            == 0
                })
                .map(|k| (*k).to_owned()),
        );
        missing.extend(
            CRASH_POINTS
                .iter()
                .filter(|p| counters.get(&format!("crash:{p}")).copied().unwrap_or(0) == 0)
                .map(|p| format!("crash:{p}")),
        );
        missing
    }

    /// Watches one instance: when it dies without the nemesis having killed it, records why (a
    /// crash point, or an unexpected exit, which fails the run) and starts it again.
    pub async fn supervise(self: Arc<Self>, index: usize) {
        let instance = &self.cluster.instances[index];
        loop {
            if self.cluster.stopping() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let exit = {
                let mut state = instance.state.lock().unwrap();
                if state.disturbed || self.cluster.stopping() {
                    None
                } else {
                    state.proc.as_mut().and_then(crate::cluster::Proc::exited)
                }
            };
            let Some(status) = exit else { continue };
            let log = instance.log_since_start();
            let point = log.lines().find_map(|line| {
                line.strip_prefix("market: crash point ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            });
            let window = self.history.begin_disturbance(index, "crashed");
            if let Some(point) = &point {
                self.history.count(&format!("crash:{point}"));
                self.history.count("crashes");
                self.history
                    .record(None, Some(index), format!("CRASH at crash point {point}"));
            } else {
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let what = format!(
                    "instance {index} exited on its own ({status}); last log lines:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
                self.history
                    .record(None, Some(index), format!("UNEXPECTED EXIT: {what}"));
                self.unexpected_exits.lock().unwrap().push(what);
            }
            {
                let mut state = instance.state.lock().unwrap();
                if self.cluster.stopping() || state.disturbed {
                    self.history.end_disturbance(window);
                    continue;
                }
                let crashpoints = state.crashpoints.clone();
                instance.start_locked(&mut state, crashpoints);
            }
            instance
                .wait_ready(&self.http, Duration::from_secs(60))
                .await;
            self.history.end_disturbance(window);
        }
    }

    /// Claims an instance no other process nemesis is working on, leaving at least one alone.
    fn claim_instance(&self, rng: &mut StdRng) -> Option<usize> {
        let mut busy = self.busy.lock().unwrap();
        let free: Vec<usize> = (0..busy.len()).filter(|i| !busy[*i]).collect();
        if free.len() <= 1 {
            return None;
        }
        let pick = free[rng.random_range(0..free.len())];
        busy[pick] = true;
        Some(pick)
    }

    fn release_instance(&self, index: usize) {
        self.busy.lock().unwrap()[index] = false;
    }

    /// Kills, pauses and crash-arms instances until stopped; then waits for every action to heal.
    pub async fn run_processes(self: Arc<Self>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_0001);
        let mut first: Vec<&str> = PROCESS_KINDS.to_vec();
        first.shuffle(&mut rng);
        let mut actions = JoinSet::new();
        tokio::time::sleep(Duration::from_secs(2)).await;
        while !self.stopped() {
            let kind = first.pop().unwrap_or_else(|| {
                // Whatever has not happened yet comes first; otherwise a weighted draw.
                let missing = self.missing();
                if missing.iter().any(|m| m.starts_with("crash:")) && rng.random_bool(0.5) {
                    "crashpoints"
                } else {
                    match rng.random_range(0..10) {
                        0..=3 => "kill9",
                        4..=6 => "pause",
                        _ => "crashpoints",
                    }
                }
            });
            let Some(index) = self.claim_instance(&mut rng) else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let action_seed = rng.random::<u64>();
            let me = Arc::clone(&self);
            actions.spawn(async move {
                let mut rng = StdRng::seed_from_u64(action_seed);
                match kind {
                    "kill9" => me.kill9(index, &mut rng).await,
                    "pause" => me.pause(index, &mut rng).await,
                    _ => me.crash_mode(index, &mut rng).await,
                }
                me.release_instance(index);
            });
            let gap = rng.random_range(2000..6000);
            self.sleep_unless_stopped(Duration::from_millis(gap)).await;
        }
        while actions.join_next().await.is_some() {}
    }

    pub(crate) async fn sleep_unless_stopped(&self, duration: Duration) {
        let until = tokio::time::Instant::now() + duration;
        while !self.stopped() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn kill9(&self, index: usize, rng: &mut StdRng) {
        let instance = &self.cluster.instances[index];
        let window = self.history.begin_disturbance(index, "kill -9");
        let down = Duration::from_millis(rng.random_range(200..3000));
        {
            let mut state = instance.state.lock().unwrap();
            state.disturbed = true;
            if let Some(proc) = state.proc.as_mut() {
                proc.kill9();
            }
        }
        self.note(
            Some(index),
            "kill9",
            &format!("kill -9, restart after {down:?}"),
        );
        tokio::time::sleep(down).await;
        {
            let mut state = instance.state.lock().unwrap();
            instance.start_locked(&mut state, None);
        }
        instance
            .wait_ready(&self.http, Duration::from_secs(60))
            .await;
        instance.state.lock().unwrap().disturbed = false;
        self.history.end_disturbance(window);
    }

    async fn pause(&self, index: usize, rng: &mut StdRng) {
        let instance = &self.cluster.instances[index];
        let window = self.history.begin_disturbance(index, "SIGSTOP");
        let pause = Duration::from_millis(
            rng.random_range((self.lease_secs * 1000 + 1000)..(self.lease_secs * 1000 + 7000)),
        );
        {
            let mut state = instance.state.lock().unwrap();
            state.disturbed = true;
            if let Some(proc) = state.proc.as_mut() {
                proc.pause();
            }
        }
        self.note(Some(index), "pause", &format!("SIGSTOP for {pause:?}"));
        tokio::time::sleep(pause).await;
        {
            let mut state = instance.state.lock().unwrap();
            if let Some(proc) = state.proc.as_mut() {
                proc.resume();
            }
            state.disturbed = false;
        }
        self.history
            .record(None, Some(index), "NEMESIS pause: SIGCONT".to_owned());
        self.history.end_disturbance(window);
    }

    /// The crash points to arm: the ones not hit yet with a high probability, the others low.
    fn crash_spec(&self, rng: &mut StdRng) -> String {
        let counters = self.history.counters();
        let mut spec = Vec::new();
        for point in CRASH_POINTS {
            let hits = counters
                .get(&format!("crash:{point}"))
                .copied()
                .unwrap_or(0);
            if hits > 0 && rng.random_bool(0.3) {
                continue;
            }
            let p = if hits == 0 {
                0.3
            } else {
                rng.random_range(0.01..0.06)
            };
            spec.push(format!("{point}={p:.3}"));
        }
        spec.join(",")
    }

    async fn crash_mode(&self, index: usize, rng: &mut StdRng) {
        let instance = &self.cluster.instances[index];
        let spec = self.crash_spec(rng);
        let window = self.history.begin_disturbance(index, "crash points armed");
        let duration = Duration::from_millis(rng.random_range(10_000..25_000));
        {
            let mut state = instance.state.lock().unwrap();
            state.disturbed = true;
            instance.start_locked(&mut state, Some(spec.clone()));
            state.disturbed = false;
        }
        self.note(
            Some(index),
            "crashpoints",
            &format!("restarted with MARKET_CRASHPOINTS={spec} for {duration:?}"),
        );
        tokio::time::sleep(duration).await;
        {
            let mut state = instance.state.lock().unwrap();
            state.disturbed = true;
            instance.start_locked(&mut state, None);
        }
        instance
            .wait_ready(&self.http, Duration::from_secs(60))
            .await;
        instance.state.lock().unwrap().disturbed = false;
        self.history.record(
            None,
            Some(index),
            "NEMESIS crashpoints: restarted without crash points".to_owned(),
        );
        self.history.end_disturbance(window);
    }

    /// Counts of everything the nemesis did.
    pub fn summary(&self) -> BTreeMap<String, u64> {
        self.history
            .counters()
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("nemesis:")
                    || k.starts_with("crash")
                    || k.starts_with("xano_met:")
                    || k == "xano_faults_injected"
            })
            .collect()
    }
}
