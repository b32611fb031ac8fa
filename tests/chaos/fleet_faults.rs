//! Faults around the fleet rather than inside one call: an instance left running with a revoked
//! Xano access token joining and leaving (it must take nothing and report itself not ready), a
//! snippet that Xano answers 404 for a while (its jobs die rather than loop; once it is back the
//! operator requeues them through the admin API, as `docs/OPERATIONS.md` says), and one token list
//! that Xano cuts short (reconciliation must hold back rather than re-issue buyers' tokens).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::nemesis::Nemesis;

pub const FLEET_KINDS: [&str; 3] = [
    "stale_instance",
    "truncated_token_list",
    "snippet_gone_then_requeued",
];

/// The listing whose snippet goes away for a while (the smaller one).
const GONE: &str = "chaos-billing_02";
/// The listing whose token list is cut short (the busier one).
const CUT: &str = "chaos-auth_01";

impl Nemesis {
    async fn xano_post(&self, path: &str, body: Value) {
        let url = format!("{}{path}", self.cluster.xano_control);
        let response = self.http.post(&url).json(&body).send().await;
        assert!(
            response.as_ref().is_ok_and(|r| r.status().is_success()),
            "xano sim control {path}: {response:?}"
        );
    }

    async fn admin(&self, method: reqwest::Method, path: &str) -> Option<Value> {
        for instance in &self.cluster.instances {
            let url = format!("{}{path}", instance.url);
            let response = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.cluster.secrets.admin_token)
                .send()
                .await;
            if let Ok(response) = response
                && response.status().is_success()
            {
                return Some(response.json().await.unwrap_or(Value::Null));
            }
        }
        None
    }

    /// Each fleet fault once, starting 20–30 s in: the token list is cut once the busier listing
    /// holds enough tokens for the guard to matter.
    pub async fn run_fleet(self: Arc<Self>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5EED_0004);
        // The stale instance beside the other two; those two one after the other (a reconciliation
        // of every listing cannot report while a snippet is away).
        let mut faults = tokio::task::JoinSet::new();
        for kinds in [&FLEET_KINDS[..1], &FLEET_KINDS[1..]] {
            let me = Arc::clone(&self);
            let delay = Duration::from_millis(rng.random_range(20_000..30_000));
            let mut rng = StdRng::seed_from_u64(rng.random());
            faults.spawn(async move {
                me.sleep_unless_stopped(delay).await;
                for kind in kinds {
                    if me.stopped() {
                        return;
                    }
                    match *kind {
                        "stale_instance" => me.stale_instance(&mut rng).await,
                        "snippet_gone_then_requeued" => me.snippet_gone(&mut rng).await,
                        _ => me.truncated_list().await,
                    }
                }
            });
        }
        while faults.join_next().await.is_some() {}
    }

    /// The stale instance runs for 10–20 s, and on (at most a minute more) until its `/readyz`
    /// says not ready: it must, once the fleet's credential works (a revoked-token window of the
    /// Xano nemesis may overlap, and then nobody's works). It must take no job for good (checked
    /// by the end state and the job monitor).
    async fn stale_instance(&self, rng: &mut StdRng) {
        let stale = &self.cluster.stale;
        let up = Duration::from_millis(rng.random_range(10_000..20_000));
        stale.start(None);
        self.note(
            None,
            "stale_instance",
            &format!("a fourth instance with a revoked Xano token joins for {up:?}"),
        );
        stale.wait_ready(&self.http, Duration::from_secs(60)).await;
        let (until, limit) = (
            Instant::now() + up,
            Instant::now() + up + Duration::from_secs(60),
        );
        let mut drained = false;
        while Instant::now() < until || (!drained && Instant::now() < limit) {
            let ready = self.http.get(format!("{}/readyz", stale.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 503) {
                drained = true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if drained {
            self.history.count("stale:not_ready");
        }
        if let Some(proc) = stale.state.lock().unwrap().proc.as_mut() {
            proc.kill9();
        }
        self.history.record(
            None,
            None,
            format!("NEMESIS stale_instance: left (drained by /readyz: {drained})"),
        );
    }

    /// The snippet answers 404 until one of its jobs died of it, then comes back, and every dead
    /// job is requeued through the admin API.
    ///
    /// Its reconciliation runs every minute, but a death can come much later: while the fleet's
    /// Xano credential is refused the workers claim nothing, a 429 puts the job back with a
    /// backoff, and a paused instance holds its lease. A run waited 70 s, saw no job die and
    /// requeued none, and failed for want of a requeue; so the wait is up to 130 s, and each
    /// requeue counts as it is made (the workload runs on until one has).
    async fn snippet_gone(&self, rng: &mut StdRng) {
        self.xano_post(
            &format!("/snippets/{GONE}/hidden"),
            json!({ "hidden": true }),
        )
        .await;
        self.note(
            None,
            "snippet_gone_then_requeued",
            &format!("{GONE} answers 404"),
        );
        let at_least = Duration::from_millis(rng.random_range(3000..8000));
        let started = Instant::now();
        let mut died = false;
        // The nemesis stopping ends the wait too: the workload stops only once its time and any
        // extension for a missing kind are up, and a run still missing this one has failed.
        while started.elapsed() < Duration::from_secs(130)
            && !(died && started.elapsed() >= at_least)
            && !self.stopped()
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            died = !self.dead_jobs().await.is_empty();
        }
        self.history.record(
            None,
            None,
            format!(
                "NEMESIS snippet_gone_then_requeued: a job died of it: {died} (after {:?})",
                started.elapsed()
            ),
        );
        self.xano_post(
            &format!("/snippets/{GONE}/hidden"),
            json!({ "hidden": false }),
        )
        .await;
        // A job in flight when the snippet came back may still die of its 404, as late as an
        // instance paused (SIGSTOP, up to a lease + 7 s) right after Xano answered it takes to go
        // on: requeue until no dead job has been seen for 25 s. (5 s was too short: a run saw an
        // upgrade die of its 404 17 s after the snippet came back.)
        let (mut requeued, mut already_live) = (0u64, 0u64);
        let mut quiet = 0;
        for _ in 0..240 {
            let dead = self.dead_jobs().await;
            if dead.is_empty() {
                quiet += 1;
                if quiet >= 50 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            quiet = 0;
            for job in dead {
                match self.requeue(job).await {
                    Some(Requeue::Done) => {
                        requeued += 1;
                        self.history.count("jobs_requeued");
                    }
                    Some(Requeue::AlreadyLive) => {
                        already_live += 1;
                        self.history.count("jobs_requeued:already_live");
                    }
                    None => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.history.record(
            None,
            None,
            format!(
                "NEMESIS snippet_gone_then_requeued: back; {requeued} dead jobs requeued, {already_live} requeues refused as the work was queued again already"
            ),
        );
    }

    /// The operator's requeue of a dead job, from the first instance that answers it.
    async fn requeue(&self, job: i64) -> Option<Requeue> {
        for instance in &self.cluster.instances {
            let url = format!("{}/v1/admin/jobs/{job}/requeue", instance.url);
            let Ok(response) = self
                .http
                .post(&url)
                .bearer_auth(&self.cluster.secrets.admin_token)
                .send()
                .await
            else {
                continue;
            };
            if response.status().is_success() {
                return Some(Requeue::Done);
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if body["error"]["code"] == "job_already_live" {
                return Some(Requeue::AlreadyLive);
            }
        }
        None
    }

    async fn dead_jobs(&self) -> Vec<i64> {
        let Some(jobs) = self.admin(reqwest::Method::GET, "/v1/admin/jobs").await else {
            return Vec::new();
        };
        jobs["attention"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|j| j["state"] == "dead")
            .filter_map(|j| j["job_id"].as_i64())
            .collect()
    }

    /// The next token list of the busier listing comes back empty, and a reconciliation is asked
    /// for at once: its report must show the pass held back. Another reader (a mint job's
    /// reconciliation, or a call whose answer a Xano fault lost) may take the cut list first; then
    /// the cut is armed again, a few times at most.
    async fn truncated_list(&self) {
        let url = format!(
            "{}/snippets/{CUT}/truncate-tokens",
            self.cluster.xano_control
        );
        for attempt in 1..=10 {
            self.xano_post(
                &format!("/snippets/{CUT}/truncate-tokens"),
                json!({ "count": 1, "keep": 0 }),
            )
            .await;
            self.note(
                None,
                "truncated_token_list",
                &format!("the next token list of {CUT} is empty (attempt {attempt})"),
            );
            let reports = self
                .admin(reqwest::Method::POST, "/v1/admin/reconcile")
                .await;
            let _ = self
                .http
                .post(&url)
                .json(&json!({ "count": 0, "keep": 0 }))
                .send()
                .await;
            let Some(reports) = reports else {
                // No report: whether a pass held back is unknown. Re-arming now could hand a
                // second pass in a row the same empty list, which the guard rightly believes; so
                // first let an ordinary pass clear any flag.
                for _ in 0..10 {
                    self.sleep_unless_stopped(Duration::from_secs(2)).await;
                    if self
                        .admin(reqwest::Method::POST, "/v1/admin/reconcile")
                        .await
                        .is_some()
                    {
                        break;
                    }
                }
                continue;
            };
            let held_back = reports
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|r| r["canonical"] == CUT)
                .any(|r| r["held_back"].as_u64().unwrap_or(0) > 0);
            if held_back {
                self.history.count("truncated_list:held_back");
                return;
            }
            self.sleep_unless_stopped(Duration::from_secs(2)).await;
        }
    }
}

/// How the operator's requeue of a dead job was answered.
enum Requeue {
    /// Queued again.
    Done,
    /// `409 job_already_live`: the same work was queued again meanwhile (a sale that took the
    /// tier's pool below its mark queues a refill whatever died before); once that job succeeds
    /// it settles the dead one, so there is nothing left to requeue.
    AlreadyLive,
}
