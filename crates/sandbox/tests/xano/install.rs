use sandbox::xano::InstallError;
use serde_json::json;

use crate::helpers::{TestSim, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn installs_count_up_to_max_installs_and_then_are_refused() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 2).await;

    assert_eq!(app.sim.install("abc", &token), Ok(1));
    assert_eq!(app.sim.install("abc", &token), Ok(2));
    assert_eq!(
        app.sim.install("abc", &token),
        Err(InstallError::LimitReached { max_installs: 2 })
    );

    let (_, list) = status_and_json(app.get("/snippet/abc/token").await).await;
    assert_eq!(
        list[0]["current_installs"], 2,
        "the seller sees the installs through the API"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raising_max_installs_through_the_api_lets_installs_resume() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 0).await;
    assert_eq!(
        app.sim.install("abc", &token),
        Err(InstallError::LimitReached { max_installs: 0 })
    );

    let body = json!({ "max_installs": 1, "current_installs": 0 });
    assert_eq!(
        app.post(&format!("/snippet/abc/token/{token}"), &body)
            .await
            .status(),
        200
    );

    assert_eq!(app.sim.install("abc", &token), Ok(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_token_is_refused_as_revoked() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 5).await;
    assert_eq!(app.sim.install("abc", &token), Ok(1));

    assert_eq!(
        app.delete(&format!("/snippet/abc/token/{token}"))
            .await
            .status(),
        200
    );

    assert_eq!(app.sim.install("abc", &token), Err(InstallError::Revoked));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_snippets_and_tokens_and_tokens_of_other_snippets_are_refused() {
    let app = TestSim::start().await;
    app.sim.add_snippet("one", "One");
    app.sim.add_snippet("two", "Two");
    let token = app.create_token("one", 5).await;

    assert_eq!(
        app.sim.install("nope", &token),
        Err(InstallError::UnknownSnippet)
    );
    assert_eq!(
        app.sim.install("one", "ZZZZ9999"),
        Err(InstallError::UnknownToken)
    );
    assert_eq!(
        app.sim.install("two", &token),
        Err(InstallError::UnknownToken)
    );
    assert_eq!(app.sim.tokens("one")[0].current_installs, 0);
}
