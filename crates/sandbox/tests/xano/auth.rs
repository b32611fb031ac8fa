use reqwest::Method;
use sandbox::xano::{SimAccount, TokenState};
use serde_json::json;

use crate::helpers::{TestSim, assert_xano_error, status_and_json};

/// One request per endpoint: (method, path).
const EVERY_ENDPOINT: [(Method, &str); 10] = [
    (Method::GET, "/auth/me"),
    (Method::GET, "/instance"),
    (Method::GET, "/instance/x1"),
    (Method::GET, "/snippet"),
    (Method::GET, "/snippet/abc"),
    (Method::POST, "/snippet/abc"),
    (Method::GET, "/snippet/abc/token"),
    (Method::POST, "/snippet/abc/token"),
    (Method::POST, "/snippet/abc/token/ABCD1234"),
    (Method::DELETE, "/snippet/abc/token/ABCD1234"),
];

/// Calls every endpoint with the default account's access token and expects each to answer
/// `status` with Xano's error `code`.
async fn assert_every_endpoint_refuses(app: &TestSim, status: u16, code: &str) {
    for (method, path) in EVERY_ENDPOINT {
        let response = app
            .http
            .request(method, app.url(path))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_xano_error(response, status, code).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_me_identifies_the_account_behind_the_access_token() {
    let app = TestSim::start().await;

    let (status, me) = status_and_json(app.get("/auth/me").await).await;

    assert_eq!(status, 200);
    let account = SimAccount::default();
    assert_eq!(
        me,
        json!({ "id": account.id, "name": account.name, "email": account.email, "extras": "" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_unknown_bearer_token_is_a_401_on_every_endpoint() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    for (method, path) in EVERY_ENDPOINT {
        let anonymous = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_xano_error(anonymous, 401, "ERROR_CODE_UNAUTHORIZED").await;
        let unknown = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_xano_error(unknown, 401, "ERROR_CODE_UNAUTHORIZED").await;
        let wrong_scheme = app
            .http
            .request(method, app.url(path))
            .header("Authorization", format!("Basic {}", app.token))
            .send()
            .await
            .unwrap();
        assert_xano_error(wrong_scheme, 401, "ERROR_CODE_UNAUTHORIZED").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_access_token_is_a_401_and_a_token_without_rights_is_a_403_on_every_endpoint() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    app.sim.set_access_token_state(TokenState::Expired);
    assert_every_endpoint_refuses(&app, 401, "ERROR_CODE_UNAUTHORIZED").await;

    app.sim.set_access_token_state(TokenState::Forbidden);
    assert_every_endpoint_refuses(&app, 403, "ERROR_CODE_ACCESS_DENIED").await;

    app.sim.set_access_token_state(TokenState::Valid);
    assert_eq!(app.get("/auth/me").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_account_has_its_own_token_and_its_own_state() {
    let app = TestSim::start().await;
    let other = app.sim.add_account(SimAccount {
        id: "2".into(),
        name: "Other".into(),
        email: "o@example.test".into(),
    });

    let (_, me) = status_and_json(app.get_as(&other, "/auth/me").await).await;
    assert_eq!(me["id"], "2");
    assert_ne!(other, app.token);

    assert!(
        app.sim
            .set_access_token_state_for(&other, TokenState::Expired)
    );
    assert_eq!(app.get_as(&other, "/auth/me").await.status(), 401);
    assert_eq!(app.get("/auth/me").await.status(), 200);
    assert!(
        !app.sim
            .set_access_token_state_for("nobody", TokenState::Expired)
    );
}
