//! `market tiers apply`: the dry run prints the diff against the database and changes nothing
//! (neither rows nor the snippets at Xano), applying makes the changes, and applying again says
//! "no changes" and changes nothing.

use sandbox::xano::{Endpoint, InstallAccess, XanoSim};
use testkit::TestDb;

use crate::{Account, SNIPPETS, assert_lines, market};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiers_apply_dry_runs_without_changes_then_applies_once_and_the_second_time_changes_nothing()
 {
    // Arrange: an empty catalog and a Xano account holding the file's snippets.
    let account = Account::new().await;
    let (db, xano, env) = (&account.db, &account.xano, account.env());
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
    assert_eq!(counts(db).await, [0; 5]);
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
    let after_first = counts(db).await;
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
    let updates_before = updates(xano);
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
    assert_eq!(counts(db).await, after_first);
    assert_eq!(
        updates(xano),
        updates_before,
        "no snippet rewritten at Xano"
    );
    assert!(
        !xano
            .calls()
            .iter()
            .any(|c| c.endpoint == Some(Endpoint::CreateToken))
    );
    account.xano.stop().await;
}

/// Snippet updates the Xano simulator received.
fn updates(xano: &XanoSim) -> usize {
    let calls = xano.calls();
    calls
        .iter()
        .filter(|c| c.endpoint == Some(Endpoint::UpdateSnippet))
        .count()
}
