//! Admin operations: pool levels per tier version, jobs by kind and state with the ones needing an
//! operator, the credential's health (refused while the only access token is expired: the jobs wait
//! queued, not parked, until the probe heals it, after which the waiting purchase completes;
//! `xano_refusals.rs` has the stale instance and the forbidden snippet), reconcile now
//! (an orphan made at Xano behind our back is adopted, a stray one removed, a second run finds
//! nothing; each change audited under the admin's name), and the account's Xano instances.

use std::time::Duration;

use sandbox::xano::{SimInstance, TokenState};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::admin_purchases::{actors, audit_mark, buy, checkout, json_of};
use crate::helpers::{CANONICAL, TestApp, spawn_app};

/// Waits until every active tier's pool is full and no job is due or running; returns the levels.
pub async fn settled(app: &TestApp) -> Value {
    app.eventually("full pools and an idle queue", Duration::from_secs(30), || async {
        let pools: Value = app.admin_get("/v1/admin/pools").await.json().await.ok()?;
        let full = pools.as_array()?.iter().all(|p| {
            p["active"] == false || p["available"].as_i64() >= p["pool_target"].as_i64()
        });
        let busy: i64 = sqlx::query_scalar(
            "select count(*) from job where state = 'running' or (state = 'queued' and due_at <= now())",
        )
        .fetch_one(app.db.pool())
        .await
        .ok()?;
        (full && busy == 0).then_some(pools)
    })
    .await
}

fn level<'a>(pools: &'a Value, tier: &str) -> &'a Value {
    pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["tier_id"] == tier)
        .unwrap_or_else(|| panic!("no pool level for {tier} in {pools}"))
}

/// The count of jobs of `kind` in `state` in a `/v1/admin/jobs` answer.
fn count(jobs: &Value, kind: &str, state: &str) -> Option<i64> {
    let counts = jobs["counts"].as_array()?;
    let row = counts
        .iter()
        .find(|c| c["kind"] == kind && c["state"] == state)?;
    row["count"].as_i64()
}

/// The Xano credential's state, from `/v1/admin/health`.
async fn health(app: &TestApp) -> String {
    let body = json_of(app.admin_get("/v1/admin/health").await, 200).await;
    body["state"].as_str().unwrap().to_owned()
}

/// Creates a `team` tier (15 installs, pool of 2) on the demo listing; returns its id.
async fn new_team_tier(app: &TestApp) -> String {
    let spec = json!({ "name": "Team", "price": { "amount": 4900, "currency": "usd" },
                       "max_installs": 15, "pool_low_water": 1, "pool_target": 2 });
    let path = format!("/v1/admin/listings/{CANONICAL}/tiers/team");
    let created = json_of(app.admin_put(&path, &spec).await, 200).await;
    created["change"]["tier_id"].as_str().unwrap().to_owned()
}

async fn jobs(app: &TestApp) -> Value {
    json_of(app.admin_get("/v1/admin/jobs").await, 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_levels_show_every_tier_version_against_its_marks_and_follow_sales() {
    // Arrange
    let app = spawn_app().await;
    let pools = settled(&app).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let agency = app.tier_id(CANONICAL, "agency").await;

    // Act
    buy(&app, &solo, None).await;
    let after = json_of(app.admin_get("/v1/admin/pools").await, 200).await;

    // Assert
    assert_eq!(pools.as_array().unwrap().len(), 3);
    let shape = |p: &Value| {
        (
            p["slug"].clone(),
            p["version"].clone(),
            p["active"].clone(),
            p["available"].clone(),
            p["assigned"].clone(),
            p["pool_low_water"].clone(),
            p["pool_target"].clone(),
        )
    };
    assert_eq!(
        shape(level(&pools, &solo)),
        shape(&json!({
            "slug": "solo", "version": 1, "active": true, "available": 8, "assigned": 0,
            "pool_low_water": 3, "pool_target": 8,
        }))
    );
    assert_eq!(
        shape(level(&pools, &agency)),
        shape(&json!({
            "slug": "agency", "version": 1, "active": true, "available": 5, "assigned": 0,
            "pool_low_water": 2, "pool_target": 5,
        }))
    );
    assert_eq!(level(&after, &solo)["available"], 7);
    assert_eq!(level(&after, &solo)["assigned"], 1);
    assert_eq!(level(&after, &agency)["available"], 5);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_xano_token_is_shown_refused_while_its_jobs_wait_queued_until_the_token_works_again()
 {
    // Arrange: a quiet service with a healthy credential.
    let app = spawn_app().await;
    settled(&app).await;
    let before = jobs(&app).await;
    assert!(before["attention"].as_array().unwrap().is_empty());
    assert_eq!(before["xano_credential"]["state"], "healthy");
    assert_eq!(
        count(&before, "replenish_pool", "done"),
        Some(3),
        "{before}"
    );
    assert_eq!(health(&app).await, "healthy");

    // Act: the access token expires; a new tier's pool cannot be filled and a buyer pays for it.
    app.xano.set_access_token_state(TokenState::Expired);
    let team = new_team_tier(&app).await;
    let (purchase, session, receipt_key) = checkout(&app, &team, None).await;
    app.stripe.pay(&session).unwrap();

    // Assert: the credential is reported refused, here and in the jobs' overview; the replenisher
    // was handed back (queued, its attempt not counted, the refusal kept), not parked nor dead.
    let refused = app
        .eventually(
            "the credential refused",
            Duration::from_secs(20),
            || async {
                let jobs = jobs(&app).await;
                (jobs["xano_credential"]["state"] == "unauthorized").then_some(jobs)
            },
        )
        .await;
    assert_eq!(
        refused["xano_credentials"][0]["state"], "unauthorized",
        "{refused}"
    );
    assert_eq!(health(&app).await, "unauthorized");
    // The worker records the refusal, then hands its job back: the credential can read refused
    // while the job is still running (a CI run met that moment).
    let replenisher = app
        .eventually(
            "the replenisher handed back",
            Duration::from_secs(10),
            || async {
                let row: (String, i32, Option<String>) = sqlx::query_as(
                    "select state::text, attempt, last_error from job
                 where kind = 'replenish_pool' and subject = $1",
                )
                .bind(&team)
                .fetch_one(app.db.pool())
                .await
                .ok()?;
                (row.0 != "running").then_some(row)
            },
        )
        .await;
    assert_eq!((replenisher.0.as_str(), replenisher.1), ("queued", 0));
    assert!(replenisher.2.is_some_and(|e| e.contains("401")));
    let waiting = app
        .eventually("the payment recorded", Duration::from_secs(10), || async {
            let body: Value = app
                .purchase(&purchase, &receipt_key)
                .await
                .json()
                .await
                .ok()?;
            (body["status"] != "pending").then_some(body)
        })
        .await;
    assert_eq!(waiting["status"], "paid", "paid, waiting for a token");
    assert!(waiting["token"].is_null());

    // Act: the operator renews the token.
    app.xano.set_access_token_state(TokenState::Valid);

    // Assert: the probe heals the credential, the queued work runs, the purchase gets its token.
    app.eventually(
        "the credential healthy again",
        Duration::from_secs(10),
        || async { (health(&app).await == "healthy").then_some(()) },
    )
    .await;
    let token = app.token_of(&purchase, &receipt_key).await;
    let at_xano = app
        .xano
        .tokens(CANONICAL)
        .into_iter()
        .find(|t| t.token == token);
    assert_eq!(at_xano.map(|t| t.max_installs), Some(15));
    app.eventually(
        "nothing left needing attention",
        Duration::from_secs(20),
        || async {
            jobs(&app).await["attention"]
                .as_array()?
                .is_empty()
                .then_some(())
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_now_adopts_an_orphan_made_at_xano_removes_a_stray_and_then_finds_nothing() {
    // Arrange: tokens created at Xano behind the service's back.
    let app = spawn_app().await;
    settled(&app).await;
    let solo = app.tier_id(CANONICAL, "solo").await;
    let xano = master_api::Client::builder(SecretString::from(app.xano.access_token()))
        .base_url(app.xano.base_url())
        .build()
        .unwrap();
    let orphan = xano.create_token(CANONICAL, 5).await.unwrap();
    let stray = xano.create_token(CANONICAL, 999).await.unwrap();
    let (orphan, stray) = (
        orphan.token.expose().to_owned(),
        stray.token.expose().to_owned(),
    );
    let mark = audit_mark(&app).await;

    // Act
    let reports = json_of(app.admin_post("/v1/admin/reconcile").await, 200).await;

    // Assert
    let report = |reports: &Value, canonical: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["canonical"] == canonical)
            .unwrap_or_else(|| panic!("no report for {canonical}: {reports}"))
            .clone()
    };
    let first = report(&reports, CANONICAL);
    assert_eq!(first["at_xano"], 8 + 5 + 2);
    assert_eq!(
        (first["adopted"].clone(), first["removed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        (first["foreign"].clone(), first["missing"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(report(&reports, "stripe-billing_02")["adopted"], 0);
    let adopted: (String, String, String) = sqlx::query_as(
        "select state::text, origin, tier_id::text from install_token where token_fingerprint = $1",
    )
    .bind(app.fingerprint(&orphan).await)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        adopted,
        ("available".to_owned(), "adopted".to_owned(), solo)
    );
    assert_eq!(
        actors(&app, mark, "reconcile.adopted").await,
        vec!["admin:tester"]
    );
    assert_eq!(
        actors(&app, mark, "reconcile.removed").await,
        vec!["admin:tester"]
    );
    app.eventually(
        "the stray deleted at Xano and recorded",
        Duration::from_secs(20),
        || async {
            let state: String = sqlx::query_scalar(
                "select state::text from install_token where token_fingerprint = $1",
            )
            .bind(app.fingerprint(&stray).await)
            .fetch_one(app.db.pool())
            .await
            .ok()?;
            (state == "retired" && !app.xano_tokens().contains(&stray)).then_some(())
        },
    )
    .await;

    let again = report(
        &json_of(app.admin_post("/v1/admin/reconcile").await, 200).await,
        CANONICAL,
    );
    for field in [
        "adopted",
        "removed",
        "foreign",
        "missing",
        "reissued",
        "confirmed_deleted",
        "redeleted",
        "refreshed",
        "limits_drifted",
        "counts_set_back",
    ] {
        assert_eq!(again[field], 0, "{field} on the second run: {again}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xano_accounts_instances_are_listed_and_found_by_name() {
    // Arrange
    let app = spawn_app().await;
    app.xano.add_instance(SimInstance {
        name: "x1234-5678-9012".into(),
        display: "Production".into(),
        xano_domain: "x1234-5678-9012.n7.xano.io".into(),
        custom_domain: Some("api.example.com".into()),
        rate_limit: false,
    });
    app.xano.add_instance(SimInstance {
        name: "x9999-0000-1111".into(),
        display: "Staging".into(),
        xano_domain: "x9999-0000-1111.n7.xano.io".into(),
        custom_domain: None,
        rate_limit: true,
    });

    // Act
    let all = json_of(app.admin_get("/v1/admin/instances").await, 200).await;
    let one = json_of(
        app.admin_get("/v1/admin/instances/x1234-5678-9012").await,
        200,
    )
    .await;
    let unknown = app.admin_get("/v1/admin/instances/x0000-no-such").await;

    // Assert
    let production = json!({
        "name": "x1234-5678-9012",
        "display": "Production",
        "host": "x1234-5678-9012.n7.xano.io",
        "custom_domain": "api.example.com",
        "meta_api": "https://x1234-5678-9012.n7.xano.io/api:meta",
        "meta_swagger": "https://x1234-5678-9012.n7.xano.io/apispec:meta?type=json",
        "rate_limit": false,
    });
    assert_eq!(one, production);
    let listed = all.as_array().unwrap();
    assert!(listed.contains(&production), "{all}");
    let staging = listed
        .iter()
        .find(|i| i["name"] == "x9999-0000-1111")
        .unwrap();
    assert_eq!(staging["display"], "Staging");
    assert_eq!(staging["custom_domain"], Value::Null);
    assert_eq!(staging["rate_limit"], true);
    assert_eq!(json_of(unknown, 404).await["error"]["code"], "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_requeues_a_dead_job_and_is_told_why_when_it_cannot_be() {
    // Arrange: a dead job (a delete whose token is long gone), as the runner leaves one.
    let app = spawn_app().await;
    let job: i64 = sqlx::query_scalar(
        "insert into job (kind, subject, state, attempt, last_error, finished_at)
         values ('delete_token', '999999', 'dead', 12, 'gave up after 12 attempts: …', now())
         returning job_id",
    )
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let path = format!("/v1/admin/jobs/{job}/requeue");

    // Act
    let first = app.admin_post(&path).await;
    let first_status = first.status();
    let first: Value = first.json().await.unwrap();
    let again = app.admin_post(&path).await;
    let again_status = again.status();
    let again: Value = again.json().await.unwrap();
    let unknown = app.admin_post("/v1/admin/jobs/987654321/requeue").await;
    let anonymous = app.client.post(app.url(&path)).send().await.unwrap();

    // Assert
    assert_eq!(first_status, 200);
    assert_eq!(first, json!({ "job_id": job, "state": "queued" }));
    assert_eq!(again_status, 409);
    assert_eq!(again["error"]["code"], "job_not_dead");
    assert_eq!(unknown.status(), 404);
    assert_eq!(anonymous.status(), 401);
    assert_eq!(actors(&app, 0, "job.requeued").await, vec!["admin:tester"]);
    app.stop().await;
}
