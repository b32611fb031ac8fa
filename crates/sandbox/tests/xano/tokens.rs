use std::collections::HashSet;

use sandbox::xano::SimToken;
use serde_json::{Value, json};

use crate::helpers::{TestSim, assert_xano_error, is_xano_timestamp, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_token_returns_it_with_zero_installs_and_xano_timestamps() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    let (status, token) = status_and_json(
        app.post("/snippet/abc/token", &json!({ "max_installs": 5 }))
            .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(token["max_installs"], 5);
    assert_eq!(token["current_installs"], 0);
    assert!(is_xano_timestamp(&token["created_at"]), "{token}");
    assert!(is_xano_timestamp(&token["updated_at"]), "{token}");
    let value = token["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.sim.tokens("abc"),
        vec![SimToken {
            token: value,
            max_installs: 5,
            current_installs: 0
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_token_without_a_non_negative_integer_max_installs_is_a_400_with_xanos_error_body()
 {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let cases = [
        (json!({}), "missing"),
        (json!({ "max_installs": null }), "null"),
        (json!({ "max_installs": "5" }), "a JSON string"),
        (json!({ "max_installs": 1.5 }), "a fraction"),
        (json!({ "max_installs": -1 }), "negative"),
        (json!({ "max_installs": true }), "a boolean"),
    ];

    for (body, description) in cases {
        let error = assert_xano_error(
            app.post("/snippet/abc/token", &body).await,
            400,
            "ERROR_CODE_INPUT_ERROR",
        )
        .await;
        assert_eq!(error["payload"]["param"], "max_installs", "{description}");
    }
    let not_json = app
        .http
        .post(app.url("/snippet/abc/token"))
        .bearer_auth(&app.token)
        .header("Content-Type", "application/json")
        .body("{max_installs: 5")
        .send()
        .await
        .unwrap();
    assert_xano_error(not_json, 400, "ERROR_CODE_INPUT_ERROR").await;
    assert!(
        app.sim.tokens("abc").is_empty(),
        "no token is created by a rejected request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_max_installs_is_accepted_and_form_bodies_carry_integers_as_text() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    assert_eq!(
        app.post("/snippet/abc/token", &json!({ "max_installs": 0 }))
            .await
            .status(),
        200
    );

    let form = app
        .http
        .post(app.url("/snippet/abc/token"))
        .bearer_auth(&app.token)
        .form(&[("max_installs", "7")])
        .send()
        .await
        .unwrap();
    let (_, token) = status_and_json(form).await;
    assert_eq!(token["max_installs"], 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_eight_uppercase_alphanumerics_unique_across_the_simulator() {
    let app = TestSim::start().await;
    app.sim.add_snippet("one", "One");
    app.sim.add_snippet("two", "Two");

    let mut seen = HashSet::new();
    for i in 0..60 {
        let canonical = if i % 2 == 0 { "one" } else { "two" };
        let token = app.create_token(canonical, 1).await;
        assert_eq!(token.len(), 8, "{token}");
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
            "{token}"
        );
        assert!(seen.insert(token), "tokens are never repeated");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_tokens_is_a_plain_array_in_creation_order() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let (_, empty) = status_and_json(app.get("/snippet/abc/token").await).await;
    assert_eq!(empty, json!([]));

    let first = app.create_token("abc", 1).await;
    let second = app.create_token("abc", 2).await;
    let (status, list) = status_and_json(app.get("/snippet/abc/token").await).await;

    assert_eq!(status, 200);
    let values: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(values, [first.as_str(), second.as_str()]);
    assert_eq!(list[1]["max_installs"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn updating_a_token_sets_both_counts_absolutely() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 1).await;

    let body = json!({ "max_installs": 10, "current_installs": 4 });
    let (status, updated) = status_and_json(
        app.post(&format!("/snippet/abc/token/{token}"), &body)
            .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(updated["token"], token.as_str());
    assert_eq!(
        (
            updated["max_installs"].clone(),
            updated["current_installs"].clone()
        ),
        (json!(10), json!(4))
    );
    assert_eq!(app.sim.tokens("abc")[0].current_installs, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn updating_a_token_requires_both_counts() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 1).await;
    let path = format!("/snippet/abc/token/{token}");
    let cases = [
        (json!({ "max_installs": 3 }), "current_installs"),
        (json!({ "current_installs": 0 }), "max_installs"),
        (
            json!({ "max_installs": 3, "current_installs": -2 }),
            "current_installs",
        ),
        (
            json!({ "max_installs": "x", "current_installs": 0 }),
            "max_installs",
        ),
    ];
    for (body, param) in cases {
        let error =
            assert_xano_error(app.post(&path, &body).await, 400, "ERROR_CODE_INPUT_ERROR").await;
        assert_eq!(error["payload"]["param"], param, "{body}");
    }
    assert_eq!(app.sim.tokens("abc")[0].max_installs, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_token_answers_an_empty_object_and_a_second_delete_is_a_404() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let token = app.create_token("abc", 1).await;
    let path = format!("/snippet/abc/token/{token}");

    let (status, body) = status_and_json(app.delete(&path).await).await;
    assert_eq!((status, body), (200, json!({})));
    assert!(app.sim.tokens("abc").is_empty());

    assert_xano_error(app.delete(&path).await, 404, "ERROR_CODE_NOT_FOUND").await;
    let update = app
        .post(&path, &json!({ "max_installs": 1, "current_installs": 0 }))
        .await;
    assert_xano_error(update, 404, "ERROR_CODE_NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_unknown_under_any_other_snippet() {
    let app = TestSim::start().await;
    app.sim.add_snippet("one", "One");
    app.sim.add_snippet("two", "Two");
    let token = app.create_token("one", 1).await;

    assert_xano_error(
        app.delete(&format!("/snippet/two/token/{token}")).await,
        404,
        "ERROR_CODE_NOT_FOUND",
    )
    .await;
    assert_xano_error(
        app.delete("/snippet/one/token/NOPE0000").await,
        404,
        "ERROR_CODE_NOT_FOUND",
    )
    .await;
    let (_, list) = status_and_json(app.get("/snippet/two/token").await).await;
    assert_eq!(list, Value::Array(vec![]));
    assert_eq!(app.sim.tokens("one").len(), 1);
}
