//! A real webhook receiver with an independent verifier: [`WebhookReceiver`].
//!
//! It runs `crates/testkit/webhook_receiver.py` in a Python process of its own and verifies every
//! delivery with the official Standard Webhooks library for Python (`standardwebhooks`, PyPI,
//! pinned and installed by `scripts/test`), not with this project's code: a signature this service
//! gets wrong the same way in signing and verifying cannot pass. Killing the process is a genuine
//! outage (connections refused) until [`WebhookReceiver::restart`]; [`Mode`] makes it answer 500s
//! or too slowly. Every request is appended to a JSON-lines file, written before the answer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::process::Child;

const HOST: &str = "127.0.0.1";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/webhook_receiver.py");
const RESTART_RETRY_FOR: Duration = Duration::from_secs(5);
const HOW_TO_PROVIDE: &str = "The webhook receiver needs python3 with standardwebhooks 1.0.0: run \
     `scripts/test`, which installs it (or `python3 -m pip install standardwebhooks==1.0.0`).";

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// 204 when a secret verifies the delivery, 401 when none does.
    Verify,
    /// 500 to everything.
    Fail,
    /// Waits this long, then answers as [`Mode::Verify`].
    Slow(Duration),
}

/// One request the receiver got.
#[derive(Clone, Debug, Deserialize)]
pub struct Received {
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    /// How many `v1,` signatures the header carried.
    pub signatures: usize,
    /// The indexes (in the secrets given) of the secrets that verified it.
    pub verified_with: Vec<usize>,
    /// Why none verified, when none did.
    pub error: Option<String>,
    /// What the receiver answered.
    pub status: u16,
    pub mode: String,
    /// The body, parsed (`{type, timestamp, data}`).
    pub body: Option<serde_json::Value>,
    pub received_at: f64,
}

impl Received {
    /// Whether it was verified and answered 2xx: what the sender counts as delivered.
    pub fn accepted(&self) -> bool {
        !self.verified_with.is_empty() && (200..300).contains(&self.status)
    }

    pub fn event_type(&self) -> Option<&str> {
        self.body.as_ref()?.get("type")?.as_str()
    }
}

/// The receiver: a process, its log and its control file, removed when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    port: u16,
    out: PathBuf,
    control: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
    secrets: Vec<String>,
    mode: Mode,
}

impl WebhookReceiver {
    /// Starts the receiver on a free port, verifying with no secret yet (everything is 401 until
    /// [`Self::set_secrets`]).
    pub async fn start() -> Self {
        let id = format!("market-webhooks-{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir();
        let mut receiver = Self {
            port: 0,
            out: dir.join(format!("{id}.jsonl")),
            control: dir.join(format!("{id}.control.json")),
            stderr: dir.join(format!("{id}.stderr")),
            child: None,
            secrets: Vec::new(),
            mode: Mode::Verify,
        };
        receiver.write_control();
        for _ in 0..5 {
            receiver.port = crate::process::free_port(HOST);
            receiver.child = receiver.launch().await;
            if receiver.child.is_some() {
                return receiver;
            }
        }
        panic!("the webhook receiver found no free port on {HOST} in 5 attempts");
    }

    /// `http://127.0.0.1:PORT/hooks`.
    pub fn url(&self) -> String {
        format!("http://{HOST}:{}/hooks", self.port)
    }

    /// The secrets it verifies with from now on, each tried on its own.
    pub fn set_secrets(&mut self, secrets: &[&str]) {
        self.secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
        self.write_control();
    }

    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.write_control();
    }

    /// Kills the process: connections are refused until [`Self::restart`]. What it got stays.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port, appending to the same log.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + RESTART_RETRY_FOR;
        loop {
            if let Some(child) = self.launch().await {
                self.child = Some(child);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook receiver could not listen on {HOST}:{} again within {RESTART_RETRY_FOR:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every request so far, oldest first (across restarts).
    pub fn received(&self) -> Vec<Received> {
        let text = match std::fs::read_to_string(&self.out) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read the webhook receiver's {}: {e}", self.out.display()),
        };
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n') && !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("the receiver wrote a bad line ({e}): {line}"))
            })
            .collect()
    }

    /// The requests it accepted (verified, answered 2xx).
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::accepted)
            .collect()
    }

    /// Waits until `done` holds of what was accepted, and returns it; panics with what there is
    /// after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if done(&accepted) {
                return accepted;
            }
            if Instant::now() >= deadline {
                let all: Vec<String> = self
                    .received()
                    .iter()
                    .map(|r| {
                        format!(
                            "{:?} {:?} status {} verified {:?} {:?}",
                            r.webhook_id,
                            r.event_type(),
                            r.status,
                            r.verified_with,
                            r.error
                        )
                    })
                    .collect();
                panic!(
                    "the webhook receiver did not get what was expected within {timeout:?}; it got: {all:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn write_control(&self) {
        let (mode, slow) = match self.mode {
            Mode::Verify => ("ok", 0.0),
            Mode::Fail => ("fail", 0.0),
            Mode::Slow(wait) => ("slow", wait.as_secs_f64()),
        };
        let control =
            serde_json::json!({"secrets": self.secrets, "mode": mode, "slow_seconds": slow});
        // Written whole and renamed, so the receiver never reads half a file.
        let partial = self.control.with_extension("partial");
        std::fs::write(&partial, control.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", partial.display()));
        std::fs::rename(&partial, &self.control)
            .unwrap_or_else(|e| panic!("rename to {}: {e}", self.control.display()));
    }

    async fn launch(&self) -> Option<Child> {
        let args = [
            "--host".into(),
            HOST.into(),
            "--port".into(),
            self.port.to_string().into(),
            "--out".into(),
            self.out.as_os_str().to_owned(),
            "--control".into(),
            self.control.as_os_str().to_owned(),
        ];
        crate::process::launch_python(
            "the webhook receiver",
            SCRIPT,
            &args,
            &self.stderr,
            HOW_TO_PROVIDE,
        )
        .await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        for path in [&self.out, &self.control, &self.stderr] {
            let _ = std::fs::remove_file(path);
        }
    }
}
