//! The real `market` binary as an operator runs it: `tiers apply --dry-run` prints the diff against
//! the database and changes nothing (neither rows nor the snippets at Xano), applying makes the
//! changes, and applying again says "no changes" and changes nothing; `--help` documents the
//! environment variables; a bad value stops start-up with a message naming the variable; and
//! production without (all) credentials refuses to start, naming exactly what is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::process::Stdio;
use std::time::Duration;

use sandbox::xano::{Endpoint, InstallAccess, XanoSim, XanoSimConfig};
use testkit::TestDb;
use tokio::process::Command;

/// Longest a run may take before it is killed (and the test fails).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The snippets `examples/tiers.toml` lists.
const SNIPPETS: [(&str, &str); 2] = [
    ("auth-flow_01", "Auth flow"),
    ("stripe-billing_02", "Stripe billing"),
];

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

/// Row counts of every table an apply could write: listings, tiers, jobs, audit entries, tokens.
async fn counts(db: &TestDb) -> [i64; 5] {
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from listing), (select count(*) from tier), (select count(*) from job),
                (select count(*) from audit_event), (select count(*) from install_token)",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    [row.0, row.1, row.2, row.3, row.4]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_apply_dry_runs_without_changes_then_applies_once_and_the_second_time_changes_nothing()
 {
    // Arrange: an empty catalog and a Xano account holding the file's snippets.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let xano = XanoSim::start(XanoSimConfig::default()).await.unwrap();
    for (canonical, title) in SNIPPETS {
        xano.add_snippet(canonical, title);
    }
    let (url, token, base) = (db.url(), xano.access_token(), xano.base_url().to_string());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("XANO_ACCESS_TOKEN", token.as_str()),
        ("XANO_BASE_URL", base.as_str()),
    ];
    let apply = ["tiers", "apply", "examples/tiers.toml"];
    let diff = [
        "+ listing auth-flow_01",
        "    tier solo: + created",
        "    tier agency: + created",
        "+ listing stripe-billing_02",
    ];

    // Act + Assert: the dry run prints the diff and changes nothing, here or at Xano.
    let dry = market(&[&apply[..], &["--dry-run"]].concat(), &env).await;
    assert_lines(&dry, &diff);
    assert!(
        dry.stdout.contains("dry run: nothing was changed"),
        "{}",
        dry.stdout
    );
    assert_eq!(counts(&db).await, [0; 5]);
    for (canonical, _) in SNIPPETS {
        assert_eq!(
            xano.snippet(canonical).unwrap().install_access,
            InstallAccess::Public
        );
    }

    // Act + Assert: applying makes the changes, audited under the operator's name.
    let applied = market(&apply, &env).await;
    assert_lines(&applied, &diff);
    assert!(applied.stdout.contains("applied"), "{}", applied.stdout);
    let after_first = counts(&db).await;
    assert_eq!(&after_first[..2], &[2, 3], "two listings, three tiers");
    let actors: Vec<String> = sqlx::query_scalar("select distinct actor from audit_event")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(actors, vec!["admin:cli:tester"]);
    for (canonical, _) in SNIPPETS {
        assert_eq!(
            xano.snippet(canonical).unwrap().install_access,
            InstallAccess::Token
        );
    }

    // Act + Assert: applying again changes nothing.
    let updates_before = updates(&xano);
    let again = market(&apply, &env).await;
    assert_lines(
        &again,
        &[
            "= listing auth-flow_01",
            "    tier solo: = unchanged",
            "no changes",
        ],
    );
    assert!(!again.stdout.contains("applied"), "{}", again.stdout);
    assert_eq!(counts(&db).await, after_first);
    assert_eq!(
        updates(&xano),
        updates_before,
        "no snippet rewritten at Xano"
    );
    assert!(
        !xano
            .calls()
            .iter()
            .any(|c| c.endpoint == Some(Endpoint::CreateToken))
    );
    xano.stop().await;
}

/// Snippet updates the Xano simulator received.
fn updates(xano: &XanoSim) -> usize {
    let calls = xano.calls();
    calls
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::UpdateSnippet))
        .count()
}

#[tokio::test]
async fn help_documents_the_environment_variables() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        // Act
        let help = market(args, &[]).await;

        // Assert
        assert!(help.success, "{}", help.stderr);
        for var in [
            "DATABASE_URL",
            "MARKET_BIND",
            "MARKET_ENV",
            "MARKET_ADMIN_TOKENS",
            "MARKET_RECEIPT_SECRET",
            "XANO_ACCESS_TOKEN",
            "XANO_BASE_URL",
            "XANO_RATE_LIMIT",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRETS",
        ] {
            assert!(
                help.stdout.contains(&format!("[env: {var}")),
                "{args:?}: {var} undocumented"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_value_stops_start_up_with_a_message_naming_its_variable() {
    // Arrange: a database nothing may touch.
    let db = TestDb::empty().await;
    let url = db.url();
    for (var, value) in [
        ("MARKET_BIND", "not-an-address"),
        ("XANO_RATE_LIMIT", "0/0"),
        ("MARKET_ENV", "staging"),
        ("MARKET_JOB_WORKERS", "many"),
    ] {
        // Act
        let run = market(&["serve"], &[("DATABASE_URL", &url), (var, value)]).await;

        // Assert
        assert!(!run.success, "{var}={value} was accepted");
        assert!(
            run.stderr.contains(var),
            "{var} not named in: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(value),
            "{value} not shown in: {}",
            run.stderr
        );
    }
    assert_eq!(tables(&db).await, 0, "start-up stopped before the database");
}

async fn tables(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'public'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_without_all_credentials_refuses_to_start_and_names_what_is_missing() {
    // Arrange
    let db = TestDb::empty().await;
    let url = db.url();
    let all = [
        "XANO_ACCESS_TOKEN",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRETS",
        "MARKET_ADMIN_TOKENS",
        "MARKET_RECEIPT_SECRET",
    ];
    let production = [("MARKET_ENV", "production"), ("DATABASE_URL", url.as_str())];
    let given = [
        ("XANO_ACCESS_TOKEN", "xano_given_0123456789abcdef"),
        ("STRIPE_SECRET_KEY", "sk_test_given_0123456789abcdef"),
    ];

    // Act
    let bare = market(&["serve"], &production).await;
    let partial = market(&["serve"], &[&production[..], &given].concat()).await;

    // Assert: nothing given names all five; two given names the other three and shows no secret.
    assert!(!bare.success);
    for var in all {
        assert!(
            bare.stderr.contains(var),
            "{var} not named in: {}",
            bare.stderr
        );
    }
    assert!(!partial.success);
    let missing = partial.stderr.split("missing:").nth(1).unwrap_or_else(|| {
        panic!("no list of what is missing in: {}", partial.stderr);
    });
    for var in &all[2..] {
        assert!(
            missing.contains(var),
            "{var} not named in: {}",
            partial.stderr
        );
    }
    for (var, secret) in given {
        assert!(
            !missing.contains(var),
            "{var} was given: {}",
            partial.stderr
        );
        assert!(!partial.stderr.contains(secret) && !partial.stdout.contains(secret));
    }
    assert_eq!(tables(&db).await, 0, "start-up stopped before the database");
}
