//! Refusals narrower than the account: a second access token for the same account (a rotation),
//! revoked on its own, and one snippet forbidden while the token works for everything else.

use reqwest::Method;
use sandbox::xano::TokenState;
use serde_json::json;

use crate::helpers::{TestSim, assert_xano_error, status_and_json};

/// Every endpoint that names a snippet: (method, path under `/snippet/abc`).
const SNIPPET_ENDPOINTS: [(Method, &str); 6] = [
    (Method::GET, ""),
    (Method::POST, ""),
    (Method::GET, "/token"),
    (Method::POST, "/token"),
    (Method::POST, "/token/ABCD1234"),
    (Method::DELETE, "/token/ABCD1234"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_second_access_token_sees_the_same_snippets_and_stays_valid_when_the_first_is_revoked() {
    // Arrange
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let minted = app.create_token("abc", 3).await;

    // Act
    let fresh = app.sim.add_access_token();
    let revoked = app
        .sim
        .set_access_token_state_for(&app.token, TokenState::Expired);

    // Assert
    assert!(revoked);
    assert_ne!(fresh, app.token);
    assert_eq!(app.get("/auth/me").await.status(), 401, "the old token");
    let (status, me) = status_and_json(app.get_as(&fresh, "/auth/me").await).await;
    assert_eq!(
        (status, me["id"].as_str()),
        (200, Some("1")),
        "same account"
    );
    let (status, tokens) = status_and_json(app.get_as(&fresh, "/snippet/abc/token").await).await;
    assert_eq!(status, 200);
    assert_eq!(
        tokens[0]["token"],
        minted.as_str(),
        "same snippets, same tokens"
    );
    assert_eq!(app.sim.add_access_token_for("nobody"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_snippet_is_a_403_on_every_call_naming_it_while_the_token_works_elsewhere() {
    // Arrange
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    app.sim.add_snippet("other", "Other");

    // Act
    app.sim.set_snippet_forbidden("abc", true);

    // Assert
    for (method, path) in SNIPPET_ENDPOINTS {
        let response = app
            .http
            .request(method, app.url(&format!("/snippet/abc{path}")))
            .bearer_auth(&app.token)
            .json(&json!({ "max_installs": 1, "current_installs": 0 }))
            .send()
            .await
            .unwrap();
        assert_xano_error(response, 403, "ERROR_CODE_ACCESS_DENIED").await;
    }
    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert_eq!(app.get("/snippet/other/token").await.status(), 200);
    app.sim.set_snippet_forbidden("abc", false);
    assert_eq!(app.get("/snippet/abc/token").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_adds_an_access_token_forbids_a_snippet_and_sets_one_tokens_state() {
    // Arrange
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    // Act
    let (status, added) =
        status_and_json(app.control_post("/access-tokens", &json!({})).await).await;
    let fresh = added["access_token"].as_str().unwrap().to_owned();
    let expire_old = json!({ "state": "expired", "access_token": app.token });
    let expired = app.control_post("/access-token-state", &expire_old).await;
    let forbid = app
        .control_post("/snippets/abc/forbidden", &json!({ "forbidden": true }))
        .await;
    let unknown = json!({ "state": "expired", "access_token": "nobody" });
    let nobody = app.control_post("/access-token-state", &unknown).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(
        (expired.status().as_u16(), forbid.status().as_u16()),
        (204, 204)
    );
    assert_eq!(nobody.status(), 404);
    assert_eq!(app.get("/auth/me").await.status(), 401);
    assert_eq!(app.get_as(&fresh, "/auth/me").await.status(), 200);
    assert_eq!(app.get_as(&fresh, "/snippet/abc").await.status(), 403);
}
