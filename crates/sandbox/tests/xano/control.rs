//! The `/__sim` HTTP control API, driven the way a test of an out-of-process simulator would.

use sandbox::xano::{CallRecordJson, Fault, SimInstance, SimToken};
use serde_json::{Value, json};

use crate::helpers::{TestSim, status_and_json};

impl TestSim {
    async fn control_get(&self, path: &str) -> (u16, Value) {
        status_and_json(self.http.get(self.control(path)).send().await.unwrap()).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_seeds_accounts_instances_snippets_and_page_size() {
    let app = TestSim::start().await;

    let (_, token) = app.control_get("/access-token").await;
    assert_eq!(token["access_token"], app.token.as_str());
    assert_eq!(
        app.control_post("/page-size", &json!({ "page_size": 1 }))
            .await
            .status(),
        204
    );
    for canonical in ["a", "b"] {
        let body = json!({ "canonical": canonical, "name": canonical });
        assert_eq!(app.control_post("/snippets", &body).await.status(), 204);
    }
    let instance = SimInstance {
        name: "x1".into(),
        display: "X".into(),
        xano_domain: "x1.xano.io".into(),
        custom_domain: None,
        rate_limit: false,
    };
    assert_eq!(
        app.control_post("/instances", &serde_json::to_value(&instance).unwrap())
            .await
            .status(),
        204
    );
    let account = json!({ "id": "9", "name": "Nine", "email": "nine@example.test" });
    let (_, other) = status_and_json(app.control_post("/accounts", &account).await).await;
    let other = other["access_token"].as_str().unwrap().to_owned();
    let theirs = json!({ "canonical": "c", "name": "C", "access_token": other });
    assert_eq!(app.control_post("/snippets", &theirs).await.status(), 204);
    let nobody = json!({ "canonical": "d", "name": "D", "access_token": "nobody" });
    assert_eq!(app.control_post("/snippets", &nobody).await.status(), 404);

    let (_, page) = status_and_json(app.get("/snippet").await).await;
    assert_eq!(
        (
            page["items"].as_array().unwrap().len(),
            page["nextPage"].clone()
        ),
        (1, json!(2))
    );
    assert_eq!(app.get("/instance/x1").await.status(), 200);
    let (_, me) = status_and_json(app.get_as(&other, "/auth/me").await).await;
    assert_eq!(me["id"], "9");
    let (status, snippet) = app.control_get("/snippets/c").await;
    assert_eq!(
        (status, snippet["install_access"].clone()),
        (200, json!("public"))
    );
    assert_eq!(app.control_get("/snippets/zzz").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_installs_and_reports_refusals_by_status() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 1).await;
    let install = json!({ "canonical": "abc", "token": token });

    let (status, ok) = status_and_json(app.control_post("/install", &install).await).await;
    assert_eq!((status, ok), (200, json!({ "current_installs": 1 })));
    let (status, full) = status_and_json(app.control_post("/install", &install).await).await;
    assert_eq!(
        (status, full["error"].clone(), full["max_installs"].clone()),
        (409, json!("limit_reached"), json!(1))
    );
    let (_, tokens) = app.control_get("/snippets/abc/tokens").await;
    let tokens: Vec<SimToken> = serde_json::from_value(tokens).unwrap();
    assert_eq!(tokens[0].current_installs, 1);

    app.delete(&format!("/snippet/abc/token/{token}")).await;
    let (status, revoked) = status_and_json(app.control_post("/install", &install).await).await;
    assert_eq!((status, revoked["error"].clone()), (410, json!("revoked")));
    let unknown = json!({ "canonical": "abc", "token": "NOPE0000" });
    assert_eq!(app.control_post("/install", &unknown).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_injects_lists_and_clears_faults() {
    let app = TestSim::start().await;
    let fault = Fault::RateLimited {
        count: 1,
        retry_after: Some(1),
        only: Some(sandbox::xano::Endpoint::Me),
    };

    assert_eq!(
        app.control_post("/faults", &serde_json::to_value(&fault).unwrap())
            .await
            .status(),
        204
    );
    let by_hand = json!({ "kind": "latency", "min_ms": 1, "max_ms": 2 });
    assert_eq!(app.control_post("/faults", &by_hand).await.status(), 204);
    let (_, listed) = app.control_get("/faults").await;
    let listed: Vec<Fault> = serde_json::from_value(listed).unwrap();
    assert_eq!(listed[0], fault);
    assert_eq!(listed.len(), 2);

    assert_eq!(app.get("/auth/me").await.status(), 429);
    let unusable = json!({ "kind": "server_error", "count": 1, "status": 404 });
    assert_eq!(app.control_post("/faults", &unusable).await.status(), 400);
    let malformed = json!({ "kind": "explode" });
    assert_eq!(app.control_post("/faults", &malformed).await.status(), 400);

    let cleared = app
        .http
        .delete(app.control("/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert!(app.sim.faults().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_switches_token_state_and_the_free_plan_limit() {
    let app = TestSim::start().await;

    app.control_post("/access-token-state", &json!({ "state": "forbidden" }))
        .await;
    assert_eq!(app.get("/auth/me").await.status(), 403);
    app.control_post("/access-token-state", &json!({ "state": "expired" }))
        .await;
    assert_eq!(app.get("/auth/me").await.status(), 401);
    app.control_post("/access-token-state", &json!({ "state": "valid" }))
        .await;

    app.control_post("/free-plan-rate-limit", &json!({ "on": true }))
        .await;
    for _ in 0..10 {
        assert_eq!(app.get("/auth/me").await.status(), 200);
    }
    assert_eq!(app.get("/auth/me").await.status(), 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_serves_and_clears_the_call_log() {
    let app = TestSim::start().await;
    app.get("/auth/me").await;
    app.get("/instance").await;

    let (_, calls) = app.control_get("/calls").await;
    let calls: Vec<CallRecordJson> = serde_json::from_value(calls).unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (
            calls[0].method.as_str(),
            calls[0].path.as_str(),
            calls[0].status
        ),
        ("GET", "/api:meta/auth/me", 200)
    );
    assert!(calls[0].started_ms <= calls[0].ended_ms && calls[0].ended_ms <= calls[1].started_ms);

    assert_eq!(
        app.http
            .delete(app.control("/calls"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(app.control_get("/calls").await.1, json!([]));

    // Taking the log answers it and clears it in one step.
    app.get("/auth/me").await;
    let taken = app
        .http
        .post(app.control("/calls/take"))
        .send()
        .await
        .unwrap();
    let taken: Vec<CallRecordJson> = taken.json().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].path, "/api:meta/auth/me");
    assert_eq!(app.control_get("/calls").await.1, json!([]));
}
