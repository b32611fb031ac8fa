use sandbox::xano::{InstallAccess, SimAccount};
use serde_json::{Value, json};

use crate::helpers::{TestSim, assert_xano_error, is_xano_timestamp, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn snippets_are_listed_in_pages_linked_by_next_and_prev_page() {
    let app = TestSim::start().await;
    app.sim.set_page_size(3);
    for i in 0..7 {
        app.sim
            .add_snippet(&format!("snip-{i}_x"), &format!("Snippet {i}"));
    }

    let mut seen = Vec::new();
    let mut page = Some(1);
    let mut pages = Vec::new();
    while let Some(number) = page {
        let (status, body) =
            status_and_json(app.get(&format!("/snippet?page={number}")).await).await;
        assert_eq!(status, 200);
        pages.push((
            body["curPage"].clone(),
            body["prevPage"].clone(),
            body["nextPage"].clone(),
        ));
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["canonical"].as_str().unwrap().to_owned()),
        );
        page = body["nextPage"].as_i64();
    }

    assert_eq!(
        pages,
        vec![
            (json!(1), Value::Null, json!(2)),
            (json!(2), json!(1), json!(3)),
            (json!(3), json!(2), Value::Null),
        ]
    );
    let expected: Vec<String> = (0..7).map(|i| format!("snip-{i}_x")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_defaults_to_one_and_a_page_past_the_end_is_empty_with_no_next_page() {
    let app = TestSim::start().await;
    app.sim.set_page_size(2);
    app.sim.add_snippet("a", "A");

    let (_, first) = status_and_json(app.get("/snippet").await).await;
    assert_eq!(first["curPage"], 1);
    assert_eq!(first["nextPage"], Value::Null);
    assert_eq!(first["prevPage"], Value::Null);
    assert_eq!(first["items"].as_array().unwrap().len(), 1);

    let (_, past) = status_and_json(app.get("/snippet?page=5").await).await;
    assert_eq!(
        past,
        json!({ "curPage": 5, "nextPage": null, "prevPage": 4, "items": [] })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_is_not_a_positive_integer_is_a_400_naming_page() {
    let app = TestSim::start().await;
    for bad in ["0", "-1", "two", "1.5"] {
        let body = assert_xano_error(
            app.get(&format!("/snippet?page={bad}")).await,
            400,
            "ERROR_CODE_INPUT_ERROR",
        )
        .await;
        assert_eq!(body["payload"]["param"], "page", "page={bad}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snippet_has_every_documented_field_with_xano_timestamps() {
    let app = TestSim::start().await;
    app.sim.add_snippet("kRG3t_-i", "Token Share Test");

    let (status, snippet) = status_and_json(app.get("/snippet/kRG3t_-i").await).await;

    assert_eq!(status, 200);
    assert_eq!(snippet["canonical"], "kRG3t_-i");
    assert_eq!(snippet["name"], "Token Share Test");
    assert_eq!(snippet["review"], "pending");
    assert_eq!(snippet["review_exception"], "");
    assert_eq!(snippet["install_access"], "public");
    assert_eq!(snippet["install_access_description"], "");
    assert_eq!(snippet["featured"], false);
    assert_eq!(snippet["verified"], false);
    assert!(is_xano_timestamp(&snippet["created_at"]), "{snippet}");
    assert!(is_xano_timestamp(&snippet["updated_at"]), "{snippet}");
}

#[tokio::test(flavor = "multi_thread")]
async fn canonicals_in_paths_are_percent_decoded() {
    let app = TestSim::start().await;
    app.sim.add_snippet("a b", "Spaced");
    assert_eq!(app.get("/snippet/a%20b").await.status(), 200);
    assert_xano_error(app.get("/snippet/a%2Fb").await, 404, "ERROR_CODE_NOT_FOUND").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn updating_settings_stores_both_fields_and_returns_the_snippet() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    let body = json!({ "install_access": "token", "install_access_description": "Buy a token" });
    let (status, snippet) = status_and_json(app.post("/snippet/abc", &body).await).await;

    assert_eq!(status, 200);
    assert_eq!(snippet["install_access"], "token");
    assert_eq!(snippet["install_access_description"], "Buy a token");
    let stored = app.sim.snippet("abc").unwrap();
    assert_eq!(stored.install_access, InstallAccess::Token);
    assert_eq!(stored.install_access_description, "Buy a token");
}

#[tokio::test(flavor = "multi_thread")]
async fn updating_settings_without_both_fields_or_with_an_unknown_access_is_a_400_naming_the_field()
{
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let cases = [
        (
            json!({ "install_access_description": "d" }),
            "install_access",
            "missing install_access",
        ),
        (
            json!({ "install_access": "token" }),
            "install_access_description",
            "missing description",
        ),
        (
            json!({ "install_access": "private", "install_access_description": "d" }),
            "install_access",
            "unknown enum",
        ),
        (
            json!({ "install_access": 1, "install_access_description": "d" }),
            "install_access",
            "not text",
        ),
        (
            json!({ "install_access": "link", "install_access_description": null }),
            "install_access_description",
            "null",
        ),
    ];
    for (body, param, description) in cases {
        let error = assert_xano_error(
            app.post("/snippet/abc", &body).await,
            400,
            "ERROR_CODE_INPUT_ERROR",
        )
        .await;
        assert_eq!(error["payload"]["param"], param, "{description}");
    }
    assert_eq!(
        app.sim.snippet("abc").unwrap().install_access,
        InstallAccess::Public
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_are_also_accepted_as_form_urlencoded_and_multipart() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");

    let form = app
        .http
        .post(app.url("/snippet/abc"))
        .bearer_auth(&app.token)
        .form(&[
            ("install_access", "link"),
            ("install_access_description", "Form"),
        ])
        .send()
        .await
        .unwrap();
    let (_, snippet) = status_and_json(form).await;
    assert_eq!(snippet["install_access"], "link");

    let multipart = "--b0undary\r\nContent-Disposition: form-data; name=\"install_access\"\r\n\r\ntoken\r\n\
--b0undary\r\nContent-Disposition: form-data; name=\"install_access_description\"\r\n\r\nMultipart\r\n--b0undary--\r\n";
    let response = app
        .http
        .post(app.url("/snippet/abc"))
        .bearer_auth(&app.token)
        .header("Content-Type", "multipart/form-data; boundary=b0undary")
        .body(multipart)
        .send()
        .await
        .unwrap();
    let (status, snippet) = status_and_json(response).await;
    assert_eq!(status, 200, "{snippet}");
    assert_eq!(snippet["install_access_description"], "Multipart");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_snippet_and_another_accounts_snippet_are_both_404s() {
    let app = TestSim::start().await;
    let other = app.sim.add_account(SimAccount {
        id: "2".into(),
        name: "B".into(),
        email: "b@example.test".into(),
    });
    assert!(app.sim.add_snippet_for(&other, "theirs", "Theirs"));
    let settings = json!({ "install_access": "token", "install_access_description": "d" });

    for canonical in ["missing", "theirs"] {
        assert_xano_error(
            app.get(&format!("/snippet/{canonical}")).await,
            404,
            "ERROR_CODE_NOT_FOUND",
        )
        .await;
        let update = app.post(&format!("/snippet/{canonical}"), &settings).await;
        assert_xano_error(update, 404, "ERROR_CODE_NOT_FOUND").await;
        let tokens = app.get(&format!("/snippet/{canonical}/token")).await;
        assert_xano_error(tokens, 404, "ERROR_CODE_NOT_FOUND").await;
        let create = app
            .post(
                &format!("/snippet/{canonical}/token"),
                &json!({ "max_installs": 1 }),
            )
            .await;
        assert_xano_error(create, 404, "ERROR_CODE_NOT_FOUND").await;
    }
    let (_, mine) = status_and_json(app.get("/snippet").await).await;
    assert_eq!(mine["items"], json!([]));
    let (_, theirs) = status_and_json(app.get_as(&other, "/snippet").await).await;
    assert_eq!(theirs["items"][0]["canonical"], "theirs");
    assert!(app.sim.tokens("theirs").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_or_method_outside_the_api_is_a_404() {
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    assert_xano_error(app.get("/workspace").await, 404, "ERROR_CODE_NOT_FOUND").await;
    let put = app
        .http
        .put(app.url("/snippet/abc"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_xano_error(put, 404, "ERROR_CODE_NOT_FOUND").await;
}
