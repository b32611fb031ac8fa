//! What an operator sees when Xano refuses less than everything (self-healing, finding 1):
//! `/readyz` drains an instance whose access token is refused while another instance's works, and
//! readies it once its token works again; `GET /v1/admin/health` and the metrics name each
//! credential by a fingerprint (never the token) and list the listing whose snippet Xano forbids,
//! with its parked jobs, until a probe finds it allowed again.

use std::time::Duration;

use market_core::envelope::DataKeys;
use market_core::{Market, health, keys};
use sandbox::xano::TokenState;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{CANONICAL, DATA_KEY, TestApp, jobs_config, spawn_app};

/// Another instance of the service, started with the account's fresh token (a rotation), which
/// has swept once: its credential is in use and works.
async fn fresh_instance(app: &TestApp) -> Market {
    let token = app.xano.add_access_token();
    let xano = master_api::Client::builder(SecretString::from(token))
        .base_url(app.xano.base_url())
        .build()
        .unwrap();
    let envelope = keys::open(app.db.pool(), DataKeys::parse(DATA_KEY).unwrap())
        .await
        .unwrap();
    let market = Market::new(
        app.db.pool().clone(),
        xano,
        std::sync::Arc::new(envelope),
        jobs_config(),
    );
    health::touch(&market).await.unwrap();
    market
}

/// Makes every listing's reconciliation due now: each calls Xano about its snippet.
async fn reconcile_now(app: &TestApp) {
    sqlx::query(
        "update job set due_at = now() where kind = 'reconcile_listing' and state = 'queued'",
    )
    .execute(app.db.pool())
    .await
    .unwrap();
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app.get("/readyz").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn admin_health(app: &TestApp) -> Value {
    app.admin_get("/v1/admin/health")
        .await
        .json()
        .await
        .unwrap()
}

pub(crate) async fn metrics(app: &TestApp) -> String {
    let url = format!("{}/metrics", app.metrics_address);
    app.client
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `series` (name and labels, exactly as rendered), if present.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_drains_an_instance_whose_token_xano_refuses_while_another_instances_works_and_readies_it_once_healed()
 {
    // Arrange: another instance runs with the account's fresh token; this one's token expires.
    let app = spawn_app().await;
    let other = fresh_instance(&app).await;
    let (ready, before) = readiness(&app).await;
    let own = before["xano_credential_id"].as_str().unwrap().to_owned();
    app.xano.set_access_token_state(TokenState::Expired);

    // Act: this instance's jobs meet the refusal.
    let (status, drained) = app
        .eventually("this instance drained", Duration::from_secs(20), || async {
            reconcile_now(&app).await;
            let (status, body) = readiness(&app).await;
            (status == 503).then_some((status, body))
        })
        .await;
    let shown = admin_health(&app).await;
    let gauges = app
        .eventually("the credential gauges", Duration::from_secs(10), || async {
            let text = metrics(&app).await;
            let unhealthy = format!("market_xano_credential_healthy{{credential=\"{own}\"}}");
            // The gauges are read on the metrics refresh: wait for one that saw both rows.
            let refreshed = sample(&text, &unhealthy) == Some(0.0)
                && sample(&text, "market_xano_credentials{state=\"unauthorized\"}") == Some(1.0)
                && sample(&text, "market_xano_credentials{state=\"healthy\"}") == Some(1.0);
            refreshed.then_some(text)
        })
        .await;

    // Assert
    assert_eq!(ready, 200);
    assert_eq!(
        (status, drained["status"].as_str()),
        (503, Some("not_ready"))
    );
    assert_eq!(drained["xano_credential"], "unauthorized");
    assert_eq!(drained["xano_credential_id"], own.as_str());
    let reason = drained["reason"].as_str().unwrap();
    assert!(
        reason.contains(&other.credential().display_id()),
        "{reason}"
    );
    assert_eq!(
        (shown["credential"].as_str(), shown["drain"].as_bool()),
        (Some(own.as_str()), Some(true))
    );
    assert_eq!(shown["credentials"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(
        sample(&gauges, "market_xano_credentials{state=\"unauthorized\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&gauges, "market_xano_credentials{state=\"healthy\"}"),
        Some(1.0)
    );
    let token = app.xano.access_token();
    assert!(
        !format!("{drained}{shown}{gauges}").contains(&token),
        "never the token"
    );

    // Act: the token works again; the instance's probe heals it.
    app.xano.set_access_token_state(TokenState::Valid);

    // Assert
    let healed = app
        .eventually(
            "this instance ready again",
            Duration::from_secs(20),
            || async {
                let (status, body) = readiness(&app).await;
                (status == 200).then_some(body)
            },
        )
        .await;
    assert_eq!(healed["xano_credential"], "healthy");
    assert!(healed.get("reason").is_none(), "{healed}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snippet_xano_forbids_is_shown_with_its_parked_jobs_and_counted_until_a_probe_lifts_it() {
    // Arrange
    let app = spawn_app().await;
    app.xano.set_snippet_forbidden(CANONICAL, true);

    // Act: the listings' reconciliations run; Xano refuses the demo listing's snippet only.
    let shown = app
        .eventually("the forbidden listing", Duration::from_secs(20), || async {
            reconcile_now(&app).await;
            let body = admin_health(&app).await;
            let forbidden = body["forbidden_listings"].as_array()?.first()?.clone();
            (forbidden["parked_jobs"].as_i64()? >= 1).then_some((body, forbidden))
        })
        .await;
    let gauges = app
        .eventually("the forbidden gauge", Duration::from_secs(10), || async {
            let text = metrics(&app).await;
            (sample(&text, "market_xano_forbidden_listings") == Some(1.0)).then_some(text)
        })
        .await;
    let jobs: Value = app.admin_get("/v1/admin/jobs").await.json().await.unwrap();
    let (ready, _) = readiness(&app).await;

    // Assert: only that listing, its work parked and shown; the credential and the instance fine.
    let (body, forbidden) = shown;
    assert_eq!(
        body["forbidden_listings"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    assert_eq!(forbidden["canonical"], CANONICAL);
    assert_eq!(forbidden["seen_by"], body["credential"]);
    assert_eq!(body["state"], "healthy");
    assert_eq!(jobs["forbidden_listings"][0]["canonical"], CANONICAL);
    let parked = jobs["attention"].as_array().unwrap();
    assert!(parked.iter().any(|j| j["state"] == "parked"), "{jobs}");
    assert_eq!(
        ready, 200,
        "a forbidden snippet does not drain the instance"
    );
    assert!(
        gauges.contains("market_xano_credentials{state=\"healthy\"} 1"),
        "{gauges}"
    );

    // Act: Xano allows the snippet again.
    app.xano.set_snippet_forbidden(CANONICAL, false);

    // Assert: the sweep's probe lifts it; nothing stays parked.
    app.eventually("the refusal lifted", Duration::from_secs(20), || async {
        let body = admin_health(&app).await;
        body["forbidden_listings"]
            .as_array()?
            .is_empty()
            .then_some(())
    })
    .await;
    let parked: i64 = sqlx::query_scalar("select count(*) from job where state = 'parked'")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(parked, 0);
    app.stop().await;
}
