//! The real `market` binary as an operator runs it: `migrate` (`migrate.rs`), `tiers apply`
//! (`tiers.rs`), `purchases`, `instances` and `status` (`operator.rs`), `report sales`
//! (`reports.rs`), and its settings: `--help` documents the environment variables, a bad value
//! stops start-up naming the variable, and production without (all) credentials refuses to start,
//! naming exactly what is missing (`settings.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod jobs;
mod keys;
mod migrate;
mod operator;
mod reports;
mod sellers;
mod settings;
mod tiers;

use std::process::Stdio;
use std::time::Duration;

use sandbox::xano::{XanoSim, XanoSimConfig};
use testkit::TestDb;
use tokio::process::Command;

/// Longest a run may take before it is killed (and the test fails).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The snippets `examples/tiers.toml` lists.
const SNIPPETS: [(&str, &str); 2] = [
    ("auth-flow_01", "Auth flow"),
    ("stripe-billing_02", "Stripe billing"),
];

/// The data key the operator tests' commands and job runners seal tokens with (32 bytes of `B`).
const DATA_KEY: &str = "test:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

/// A migrated, empty database and a Xano account holding the snippets `examples/tiers.toml` lists.
struct Account {
    db: TestDb,
    xano: XanoSim,
    /// `DATABASE_URL`, `XANO_ACCESS_TOKEN` and `XANO_BASE_URL` pointing `market` at both, and
    /// `MARKET_DATA_KEY` ([`DATA_KEY`]).
    env: [(&'static str, String); 4],
}

impl Account {
    async fn new() -> Self {
        let db = TestDb::new(&market_core::MIGRATOR).await;
        let xano = XanoSim::start(XanoSimConfig::default()).await.unwrap();
        for (canonical, title) in SNIPPETS {
            xano.add_snippet(canonical, title);
        }
        let env = [
            ("DATABASE_URL", db.url()),
            ("XANO_ACCESS_TOKEN", xano.access_token()),
            ("XANO_BASE_URL", xano.base_url().to_string()),
            ("MARKET_DATA_KEY", DATA_KEY.to_owned()),
        ];
        Self { db, xano, env }
    }

    fn env(&self) -> [(&str, &str); 4] {
        self.env
            .each_ref()
            .map(|(name, value)| (*name, value.as_str()))
    }
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `market <args>` from the workspace root with only `env` (plus `PATH`, the `PG*` variables
/// and a quiet `RUST_LOG`) in its environment, so nothing from the caller's environment leaks in.
/// A run that outlasts [`TIMEOUT`] is killed.
async fn market(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_market"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k.starts_with("PG")))
        .env("RUST_LOG", "warn")
        .env("USER", "tester")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("`market {}` did not finish in {TIMEOUT:?}", args.join(" ")))
        .expect("run market");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_lines(run: &Run, lines: &[&str]) {
    assert!(run.success, "exit failed:\n{}\n{}", run.stdout, run.stderr);
    for line in lines {
        assert!(
            run.stdout.contains(line),
            "{line:?} missing from:\n{}",
            run.stdout
        );
    }
}
