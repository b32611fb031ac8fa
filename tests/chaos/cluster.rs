//! The processes under test: the Xano and Stripe simulators (`market sim …`), the SMTP server
//! (`mail_faults.rs`) and three `market serve` instances on one database, each a real child
//! process that the nemesis can `kill -9`, `SIGSTOP`/`SIGCONT`, or restart with crash points armed.
//!
//! Every child is killed when the [`Cluster`] is dropped, paused ones after a
//! `SIGCONT`, so a failing or panicking test leaves nothing behind.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use crate::process::{Proc, read_from, tail, wait_ready};

/// What an instance is doing, as the nemesis left it.
pub struct InstanceState {
    pub proc: Option<Proc>,
    /// `MARKET_CRASHPOINTS` it runs with, if any.
    pub crashpoints: Option<String>,
    /// Set while the nemesis (not a crash) has it down or paused.
    pub disturbed: bool,
    /// Where this generation's log lines start (to find its crash point line after it died).
    pub log_offset: u64,
    pub starts: u32,
}

/// A `market serve` process on a fixed loopback port.
pub struct Instance {
    pub index: usize,
    pub url: String,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    pub state: Mutex<InstanceState>,
}

impl Instance {
    /// An instance on a free loopback port with `env` (the run's common settings), not started.
    fn new(index: usize, mut env: Vec<(String, String)>, log: PathBuf) -> Self {
        let port = crate::support::free_port();
        env.push(("MARKET_BIND".into(), format!("127.0.0.1:{port}")));
        env.push(("MARKET_METRICS_BIND".into(), "127.0.0.1:0".into()));
        // The workload is many buyers on one address; limits are tested elsewhere.
        env.push(("MARKET_RATE_LIMITS".into(), "none".into()));
        Self {
            index,
            url: format!("http://127.0.0.1:{port}"),
            log,
            env,
            state: Mutex::new(InstanceState {
                proc: None,
                crashpoints: None,
                disturbed: false,
                log_offset: 0,
                starts: 0,
            }),
        }
    }

    /// Starts (or restarts) the process with `crashpoints`; does not wait for it to be ready.
    pub fn start(&self, crashpoints: Option<String>) {
        let mut state = self.state.lock().unwrap();
        self.start_locked(&mut state, crashpoints);
    }

    pub fn start_locked(&self, state: &mut InstanceState, crashpoints: Option<String>) {
        if let Some(mut old) = state.proc.take() {
            old.kill9();
        }
        let mut env = self.env.clone();
        if let Some(spec) = &crashpoints {
            env.push(("MARKET_CRASHPOINTS".to_owned(), spec.clone()));
        }
        state.log_offset = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        state.proc = Some(Proc::spawn(&["serve".to_owned()], &env, &self.log));
        state.crashpoints = crashpoints;
        state.starts += 1;
    }

    /// Whether the current process is alive.
    pub fn alive(&self) -> bool {
        self.state
            .lock()
            .unwrap()
            .proc
            .as_mut()
            .is_some_and(|p| p.exited().is_none())
    }

    pub async fn wait_ready(&self, http: &reqwest::Client, deadline: Duration) -> bool {
        wait_ready(http, &format!("{}/healthz", self.url), deadline, || {
            self.alive()
        })
        .await
    }

    /// The log lines written since the current generation started.
    pub fn log_since_start(&self) -> String {
        let offset = self.state.lock().unwrap().log_offset;
        read_from(&self.log, offset)
    }
}

/// Secrets and addresses every process of the run shares.
#[derive(Clone, Debug)]
pub struct Secrets {
    pub xano_token: String,
    /// Set by the cluster: a second access token of the same Xano account, revoked at once.
    pub stale_xano_token: String,
    pub stripe_key: String,
    pub webhook_secret: String,
    pub admin_token: String,
    pub receipt_secret: String,
    /// `MARKET_DATA_KEY`: one random key per run.
    pub data_key: String,
}

impl Secrets {
    pub fn generate(seed: u64) -> Self {
        let tag = format!("{seed:016x}");
        Self {
            xano_token: format!("xano_chaos_{tag}_access_token"),
            stale_xano_token: String::new(),
            stripe_key: format!("sk_test_chaos_{tag}"),
            webhook_secret: format!("whsec_chaos_{tag}"),
            admin_token: format!("chaos_admin_{tag}_0123456789"),
            receipt_secret: format!("chaos-receipt-secret-{tag}-0123456789abcdef"),
            data_key: market_core::envelope::DataKeys::generate_entry(
                &market_core::envelope::KeyId::parse("chaos").expect("a valid key id"),
            ),
        }
    }
}

/// The simulators and the instances.
pub struct Cluster {
    pub secrets: Secrets,
    pub xano_control: String,
    pub stripe_url: String,
    pub stripe_control: String,
    pub instances: Vec<Instance>,
    /// A fourth instance the nemesis starts now and then with a revoked Xano access token (as one
    /// left behind by a token rotation would run); never sent the workload's requests.
    pub stale: Instance,
    pub canonicals: Vec<String>,
    /// The SMTP server every instance (the stale one too) sends buyers' email through.
    pub mail: crate::mail_faults::Mailbox,
    sims: Mutex<Vec<Proc>>,
    /// Set at the end: a process exiting then is not a crash.
    pub stopping: AtomicBool,
    /// The nemesis's Stripe outage: while set, purchases that start never get a webhook.
    pub webhooks_down: AtomicBool,
}

/// Settings of the instances.
#[derive(Clone, Debug)]
#[allow(clippy::struct_field_names, reason = "each is a number of seconds")]
pub struct InstanceSettings {
    pub lease_secs: u64,
    pub xano_timeout_secs: u64,
    pub retry_cap_secs: u64,
}

impl Cluster {
    /// Starts both simulators, seeds the catalog with `market tiers apply`, then starts `count`
    /// instances and waits until each answers.
    pub async fn start(
        dir: PathBuf,
        db_url: &str,
        mut secrets: Secrets,
        tiers_toml: &str,
        canonicals: Vec<String>,
        count: usize,
        settings: &InstanceSettings,
    ) -> Self {
        std::fs::create_dir_all(&dir).expect("create the run's directory");
        let http = reqwest::Client::new();
        let mut sims = Vec::new();

        let xano_port = crate::support::free_port();
        let xano_args: Vec<String> = [
            "sim",
            "xano",
            "--bind",
            &format!("127.0.0.1:{xano_port}"),
            "--snippet",
            &canonicals.join(","),
        ]
        .map(str::to_owned)
        .to_vec();
        let xano_env = vec![(
            "XANO_SIM_ACCESS_TOKEN".to_owned(),
            secrets.xano_token.clone(),
        )];
        sims.push(Proc::spawn(
            &xano_args,
            &xano_env,
            &dir.join("xano-sim.log"),
        ));
        let xano_control = format!("http://127.0.0.1:{xano_port}/__sim");
        let xano_url = format!("http://127.0.0.1:{xano_port}/api:meta");

        let stripe_port = crate::support::free_port();
        let stripe_args: Vec<String> = [
            "sim",
            "stripe",
            "--bind",
            &format!("127.0.0.1:{stripe_port}"),
        ]
        .map(str::to_owned)
        .to_vec();
        // No webhook URL: the driver fetches the events and delivers them itself.
        let stripe_env = vec![
            ("STRIPE_SIM_API_KEY".to_owned(), secrets.stripe_key.clone()),
            (
                "STRIPE_SIM_WEBHOOK_SECRETS".to_owned(),
                secrets.webhook_secret.clone(),
            ),
        ];
        sims.push(Proc::spawn(
            &stripe_args,
            &stripe_env,
            &dir.join("stripe-sim.log"),
        ));
        let stripe_control = format!("http://127.0.0.1:{stripe_port}/__sim");
        let stripe_url = format!("http://127.0.0.1:{stripe_port}/");
        for control in [&xano_control, &stripe_control] {
            assert!(
                wait_ready(
                    &http,
                    &format!("{control}/health"),
                    Duration::from_secs(30),
                    || true
                )
                .await,
                "simulator at {control} did not come up; logs in {}",
                dir.display()
            );
        }

        // A second access token of the same account, revoked at once: the stale instance's.
        let fresh: serde_json::Value = http
            .post(format!("{xano_control}/access-tokens"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("add an access token")
            .json()
            .await
            .expect("the new access token");
        secrets.stale_xano_token = fresh["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned();
        let revoked = http
            .post(format!("{xano_control}/access-token-state"))
            .json(&serde_json::json!({ "state": "expired", "access_token": secrets.stale_xano_token }))
            .send()
            .await
            .expect("revoke the stale token");
        assert!(revoked.status().is_success(), "revoke the stale token");

        let mail = crate::mail_faults::Mailbox::start().await;
        let common: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), db_url.to_owned()),
            ("SMTP_URL".into(), mail.url.clone()),
            ("MARKET_MAIL_FROM".into(), crate::mail_faults::FROM.into()),
            ("MARKET_DB_MAX_CONNECTIONS".into(), "8".into()),
            ("XANO_ACCESS_TOKEN".into(), secrets.xano_token.clone()),
            ("XANO_BASE_URL".into(), xano_url.clone()),
            (
                "XANO_TIMEOUT_SECS".into(),
                settings.xano_timeout_secs.to_string(),
            ),
            ("STRIPE_SECRET_KEY".into(), secrets.stripe_key.clone()),
            ("STRIPE_API_BASE".into(), stripe_url.clone()),
            (
                "STRIPE_WEBHOOK_SECRETS".into(),
                secrets.webhook_secret.clone(),
            ),
            (
                "MARKET_ADMIN_TOKENS".into(),
                format!("chaos:{}", secrets.admin_token),
            ),
            (
                "MARKET_RECEIPT_SECRET".into(),
                secrets.receipt_secret.clone(),
            ),
            ("MARKET_DATA_KEY".into(), secrets.data_key.clone()),
            (
                "MARKET_JOB_LEASE_SECS".into(),
                settings.lease_secs.to_string(),
            ),
            (
                "MARKET_JOB_RETRY_CAP_SECS".into(),
                settings.retry_cap_secs.to_string(),
            ),
            // Faults here are transient: a job may fail for minutes on end (Xano down, crashes
            // taking its leases), and must not die of it.
            ("MARKET_JOB_MAX_ATTEMPTS".into(), "40".into()),
            ("MARKET_RECONCILE_MINUTES".into(), "1".into()),
            // Purchases whose webhooks Stripe never delivers are found in Stripe's list of events
            // (every 5 s here; events younger than 10 s are left to their webhook).
            ("MARKET_STRIPE_BACKFILL_SECONDS".into(), "5".into()),
            ("MARKET_SHUTDOWN_GRACE_SECS".into(), "2".into()),
            // Outgoing webhooks to the receiver on this machine (`webhook_faults.rs`): fast
            // retries, and none given up on or endpoint disabled during a run.
            ("MARKET_WEBHOOK_ALLOW_HTTP".into(), "true".into()),
            (
                "MARKET_WEBHOOK_ALLOW_NETS".into(),
                "127.0.0.0/8,::1/128".into(),
            ),
            (
                "MARKET_WEBHOOK_TIMEOUT_SECS".into(),
                crate::webhook_faults::TIMEOUT_SECS.to_string(),
            ),
            ("MARKET_WEBHOOK_RETRY_BASE_SECS".into(), "0.2".into()),
            ("MARKET_WEBHOOK_RETRY_CAP_SECS".into(), "2".into()),
            ("MARKET_WEBHOOK_RETRY_FOR_SECS".into(), "3600".into()),
            ("MARKET_WEBHOOK_DISABLE_AFTER_SECS".into(), "3600".into()),
            // One public URL for all, as behind a load balancer: success and cancel URLs (and so
            // the Checkout Session a retried checkout asks Stripe for) must not depend on which
            // instance answered.
            (
                "MARKET_PUBLIC_URL".into(),
                "http://market.chaos.test/".into(),
            ),
        ];

        // The catalog, through the operators' command.
        let tiers_file = dir.join("tiers.toml");
        std::fs::write(&tiers_file, tiers_toml).expect("write the tiers file");
        let apply = Command::new(env!("CARGO_BIN_EXE_market"))
            .args(["tiers", "apply"])
            .arg(&tiers_file)
            .envs(common.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .output()
            .expect("run market tiers apply");
        assert!(
            apply.status.success(),
            "market tiers apply failed:\n{}\n{}",
            String::from_utf8_lossy(&apply.stdout),
            String::from_utf8_lossy(&apply.stderr)
        );

        let instances: Vec<Instance> = (0..count)
            .map(|index| {
                let log = dir.join(format!("instance-{index}.log"));
                Instance::new(index, common.clone(), log)
            })
            .collect();
        let stale_env: Vec<(String, String)> = common
            .iter()
            .filter(|(k, _)| k != "XANO_ACCESS_TOKEN")
            .cloned()
            .chain([("XANO_ACCESS_TOKEN".into(), secrets.stale_xano_token.clone())])
            .collect();
        let stale = Instance::new(count, stale_env, dir.join("instance-stale.log"));
        let cluster = Self {
            stale,
            secrets,
            xano_control,
            stripe_url,
            stripe_control,
            instances,
            canonicals,
            mail,
            sims: Mutex::new(sims),
            stopping: AtomicBool::new(false),
            webhooks_down: AtomicBool::new(false),
        };
        for instance in &cluster.instances {
            instance.start(None);
        }
        for instance in &cluster.instances {
            assert!(
                instance.wait_ready(&http, Duration::from_secs(60)).await,
                "instance {} did not come up:\n{}",
                instance.index,
                tail(&instance.log, 40)
            );
        }
        cluster
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Kills everything (paused processes are continued first).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for instance in self.instances.iter().chain([&self.stale]) {
            if let Ok(mut state) = instance.state.lock() {
                state.proc = None;
            }
        }
        if let Ok(mut sims) = self.sims.lock() {
            sims.clear();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
