//! The call log says whose access token each call carried (the account, and a fingerprint of the
//! token, never the token) and whose snippet it named: what a multi-seller test reads to prove no
//! call carried another seller's token.

use sandbox::xano::{CallRecord, CallRecordJson, SimAccount, TokenState, token_fingerprint};

use crate::helpers::{TestSim, status_and_json};

fn account(id: &str) -> SimAccount {
    SimAccount {
        id: id.to_owned(),
        name: format!("Seller {id}"),
        email: format!("seller{id}@example.test"),
    }
}

/// A call as these tests compare it: (account, token fingerprint, snippet account, status).
type Caller<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, u16);

/// Each call's [`Caller`], in order.
fn callers(calls: &[CallRecord]) -> Vec<Caller<'_>> {
    calls
        .iter()
        .map(|c| {
            (
                c.account.as_deref(),
                c.token_fingerprint.as_deref(),
                c.snippet_account.as_deref(),
                c.status,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_is_logged_with_its_tokens_account_and_fingerprint_and_its_snippets_owner() {
    // Arrange: the default account "1" owns `mine`; account "77" owns `theirs`.
    let app = TestSim::start().await;
    let theirs_token = app.sim.add_account(account("77"));
    app.sim.add_snippet("mine", "Mine");
    assert!(app.sim.add_snippet_for(&theirs_token, "theirs", "Theirs"));
    let (mine_fp, theirs_fp) = (
        token_fingerprint(&app.token),
        token_fingerprint(&theirs_token),
    );

    // Act
    app.get("/snippet/mine/token").await;
    app.get("/snippet/theirs/token").await; // another account's snippet: a 404, but logged as such
    app.get_as(&theirs_token, "/auth/me").await;
    app.get_as("not-a-token-of-anyone", "/snippet/mine").await;
    app.http.get(app.url("/instance")).send().await.unwrap();
    app.get("/snippet/gone/token").await;
    assert!(
        app.sim
            .set_access_token_state_for(&theirs_token, TokenState::Expired)
    );
    app.get_as(&theirs_token, "/snippet/theirs/token").await;

    // Assert
    let calls = app.sim.calls();
    let unknown_fp = token_fingerprint("not-a-token-of-anyone");
    assert_eq!(
        callers(&calls),
        [
            (Some("1"), Some(mine_fp.as_str()), Some("1"), 200),
            (Some("1"), Some(mine_fp.as_str()), Some("77"), 404),
            (Some("77"), Some(theirs_fp.as_str()), None, 200),
            (None, Some(unknown_fp.as_str()), Some("1"), 401),
            (None, None, None, 401),
            (Some("1"), Some(mine_fp.as_str()), None, 404),
            (Some("77"), Some(theirs_fp.as_str()), Some("77"), 401),
        ],
        "a revoked token still names its account"
    );
    assert!(
        mine_fp.len() == 12 && mine_fp.chars().all(|c| c.is_ascii_hexdigit()),
        "{mine_fp}"
    );
    assert_ne!(mine_fp, theirs_fp);
}

#[tokio::test(flavor = "multi_thread")]
async fn neither_the_call_log_nor_its_json_nor_its_debug_form_contains_an_access_token() {
    let app = TestSim::start().await;
    let other = app.sim.add_account(account("88"));
    assert!(app.sim.add_snippet_for(&other, "theirs", "Theirs"));
    app.get("/auth/me").await;
    app.get_as(&other, "/snippet/theirs/token").await;
    app.get("/snippet/theirs").await;

    let records = app.sim.calls();
    let (status, json) =
        status_and_json(app.http.get(app.control("/calls")).send().await.unwrap()).await;
    let listed: Vec<CallRecordJson> = serde_json::from_value(json.clone()).unwrap();

    assert_eq!(status, 200);
    assert_eq!(records.len(), 3, "something was logged");
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.account.as_deref(), c.snippet_account.as_deref()))
            .collect::<Vec<_>>(),
        [
            (Some("1"), None),
            (Some("88"), Some("88")),
            (Some("1"), Some("88"))
        ]
    );
    assert_eq!(
        listed[1].token_fingerprint.as_deref(),
        Some(token_fingerprint(&other).as_str())
    );
    let debug = format!("{records:?}");
    for token in [&app.token, &other] {
        assert!(!debug.contains(token.as_str()), "Debug shows a token");
        assert!(
            !json.to_string().contains(token.as_str()),
            "JSON shows a token"
        );
    }
}
