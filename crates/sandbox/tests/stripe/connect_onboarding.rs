//! Onboarding a seller: Account Links, the hosted form they open (single-use, five minutes),
//! and the signed `account.updated` that submitting it sends.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe_connect::AccountCapabilitiesStatus;
use stripe_webhook::EventObject;

use crate::connect_helpers::{REFRESH_URL, RETURN_URL, verified};
use crate::helpers::Harness;

#[tokio::test(flavor = "multi_thread")]
async fn onboarding_on_the_hosted_page_enables_the_account_and_sends_one_signed_account_updated() {
    let h = Harness::start().await;
    let account = h.create_account("seller@shop.example").await;
    let link = h.onboarding_link(account.id.as_str()).await;
    assert_eq!(link.expires_at, link.created + 300);
    assert!(
        link.url
            .starts_with(&format!("{}connect/onboarding/", h.sim.base_url()))
    );

    let page = h.http.get(&link.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(account.id.as_str()) && html.contains(">Submit</button>"));
    let submitted = h.http.post(&link.url).send().await.unwrap();

    assert_eq!(submitted.status(), StatusCode::SEE_OTHER);
    assert_eq!(submitted.headers()["location"], RETURN_URL);
    let view = h.sim.account(account.id.as_str()).unwrap();
    assert!(view.details_submitted && view.charges_enabled && view.payouts_enabled);
    let delivered = h.hook.wait_for_type("account.updated").await;
    assert_eq!(delivered.len(), 1);
    let event = verified(&delivered[0], "account.updated");
    assert_eq!(event.account.as_deref(), Some(account.id.as_str()));
    let EventObject::AccountUpdated(updated) = event.data.object else {
        panic!("wrong variant");
    };
    assert_eq!(updated.charges_enabled, Some(true));
    let capabilities = updated.capabilities.unwrap();
    assert_eq!(
        capabilities.transfers,
        Some(AccountCapabilitiesStatus::Active)
    );
    let requirements = updated.requirements.unwrap();
    assert_eq!(requirements.currently_due, Some(Vec::new()));
    assert_eq!(requirements.disabled_reason, None);
    let raw: Value = serde_json::from_str(&delivered[0].body).unwrap();
    let previous = &raw["data"]["previous_attributes"];
    assert_eq!(previous["charges_enabled"], false);
    assert_eq!(previous["payouts_enabled"], false);
    assert_eq!(previous["details_submitted"], false);
    assert_eq!(previous["capabilities"]["transfers"], "inactive");
    assert_eq!(
        previous["requirements"]["disabled_reason"],
        "requirements.past_due"
    );
    assert!(previous.get("email").is_none(), "only what changed");
    assert_eq!(h.event_types(), ["account.updated"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revisited_used_or_expired_link_goes_to_the_refresh_url() {
    let h = Harness::start().await;
    let account = h.create_account("seller@shop.example").await;
    let link = h.onboarding_link(account.id.as_str()).await;
    let get = |url: String| h.http.get(url).send();
    let post = |url: String| h.http.post(url).send();
    let location = |response: reqwest::Response| {
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response.headers()["location"].to_str().unwrap().to_owned()
    };

    assert_eq!(
        get(link.url.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        location(get(link.url.clone()).await.unwrap()),
        REFRESH_URL,
        "revisited"
    );
    assert_eq!(location(post(link.url.clone()).await.unwrap()), RETURN_URL);
    assert_eq!(
        location(post(link.url.clone()).await.unwrap()),
        REFRESH_URL,
        "used"
    );
    assert_eq!(
        location(get(link.url.clone()).await.unwrap()),
        REFRESH_URL,
        "used"
    );
    let expiring = h.onboarding_link(account.id.as_str()).await;
    h.sim.expire_account_links();
    assert_eq!(
        location(get(expiring.url.clone()).await.unwrap()),
        REFRESH_URL
    );
    assert_eq!(
        location(post(expiring.url.clone()).await.unwrap()),
        REFRESH_URL
    );
    let over_http = h.onboarding_link(account.id.as_str()).await;
    let expired = h.control_post("/account-links/expire", &json!({})).await;
    assert_eq!(expired.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        location(get(over_http.url.clone()).await.unwrap()),
        REFRESH_URL
    );

    let unknown = get(h.url("/connect/onboarding/nothing")).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.event_types(), ["account.updated"], "onboarded once");
}

#[tokio::test(flavor = "multi_thread")]
async fn account_links_refuse_missing_or_unknown_parameters() {
    let h = Harness::start().await;
    let account = h.create_account("seller@shop.example").await;
    let id = account.id.as_str();
    let full = [
        ("account", id),
        ("type", "account_onboarding"),
        ("refresh_url", REFRESH_URL),
        ("return_url", RETURN_URL),
    ];
    let without = |key: &str| -> Vec<(&str, &str)> {
        full.iter().copied().filter(|(k, _)| *k != key).collect()
    };
    let with = |key: &'static str, value: &'static str| -> Vec<(&str, &str)> {
        full.iter()
            .map(|(k, v)| if *k == key { (key, value) } else { (*k, *v) })
            .collect()
    };

    for (form, param, code) in [
        (without("account"), "account", Some("parameter_missing")),
        (
            without("refresh_url"),
            "refresh_url",
            Some("parameter_missing"),
        ),
        (
            without("return_url"),
            "return_url",
            Some("parameter_missing"),
        ),
        (
            with("account", "acct_nobody"),
            "account",
            Some("resource_missing"),
        ),
        (with("type", "custom_form"), "type", None),
        (with("return_url", "not a url"), "return_url", None),
    ] {
        let (status, body) = h.form_post("/v1/account_links", None, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        assert_eq!(body["error"]["param"], param);
        assert_eq!(body["error"]["code"].as_str(), code, "{param}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let (status, _) = h.form_post("/v1/account_links", None, &full).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_onboarding_form_and_the_dashboard_escape_what_they_show() {
    let h = Harness::start().await;
    let account = h.create_account("<i>seller</i>@shop.example").await;
    let link = h.onboarding_link(account.id.as_str()).await;

    let form = h
        .http
        .get(&link.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    h.sim.complete_onboarding(account.id.as_str()).unwrap();
    let dashboard = h
        .http
        .get(h.url(&format!("/connect/express/{}", account.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    for html in [form, dashboard] {
        assert!(
            html.contains("&lt;i&gt;seller&lt;/i&gt;@shop.example"),
            "{html}"
        );
        assert!(!html.contains("<i>seller"));
    }
}
