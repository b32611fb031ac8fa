//! The operators' commands: `purchases list|show|revoke`, `instances` and `status`, run as the real
//! binary against a database and a Xano simulator that a `market-core` job runner (standing in for
//! a serving instance) keeps working on.

use std::sync::Arc;

use market_core::FeeRate;
use market_core::audit::Actor;
use market_core::envelope::DataKeys;
use market_core::jobs::runner::Runner;
use market_core::keys;
use market_core::payments::{self, Fact, SessionFacts, SessionPayment};
use market_core::purchases::{self, NewPurchase};
use market_core::receipt::ReceiptSecret;
use market_core::{Email, JobsConfig, Market, PurchaseId, TierId};
use sandbox::xano::{SimInstance, XanoSim};
use secrecy::SecretString;
use serde_json::Value;
use testkit::TestDb;

use crate::{Account, DATA_KEY, Run, SNIPPETS, market};

/// The example catalog applied through the CLI, pools filled, and two purchases of its first tier:
/// `(fulfilled, pending)`. The fulfilled one was bought by `buyer@example.com`.
pub(crate) async fn shop(
    db: &TestDb,
    xano: &XanoSim,
    env: &[(&str, &str)],
) -> (Runner, PurchaseId, PurchaseId) {
    let applied = market(&["tiers", "apply", "examples/tiers.toml"], env).await;
    assert!(applied.success, "{}", applied.stderr);
    let client = master_api::Client::builder(SecretString::from(xano.access_token()))
        .base_url(xano.base_url())
        .build()
        .unwrap();
    let envelope = keys::open(db.pool(), DataKeys::parse(DATA_KEY).unwrap())
        .await
        .unwrap();
    let runner = Runner::new(Market::new(
        db.pool().clone(),
        client,
        Arc::new(envelope),
        JobsConfig::default(),
    ));
    runner.drain().await.unwrap();
    let tier: TierId = sqlx::query_scalar(
        "select tier_id from tier join listing using (listing_id)
         where canonical = $1 and slug = 'solo' and tier.active",
    )
    .bind(SNIPPETS[0].0)
    .fetch_one(db.pool())
    .await
    .unwrap();
    let (secret, buyer, stripe) = (ReceiptSecret::random(), Actor::Buyer, Actor::Stripe);
    let mut bought = Vec::new();
    let mut price = None;
    for email in ["buyer@example.com", "other@example.com"] {
        let new = NewPurchase {
            tier,
            email: Some(Email::parse(email).unwrap()),
            idempotency_key: None,
        };
        let created = purchases::create(db.pool(), &secret, &new, FeeRate::DEFAULT, &buyer)
            .await
            .unwrap();
        price = Some(created.purchase.price.clone());
        bought.push(created.purchase.purchase_id);
    }
    let paid = SessionFacts {
        payer_email: None,
        purchase: bought[0],
        session_id: "cs_test_operator".into(),
        payment_intent: Some("pi_operator".into()),
        payment: SessionPayment::Paid,
        charge: price,
    };
    payments::apply(db.pool(), None, &Fact::CheckoutCompleted(paid), &stripe)
        .await
        .unwrap();
    (runner, bought[0], bought[1])
}

pub(crate) fn json(run: &Run) -> Value {
    assert!(run.success, "exit failed:\n{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["purchase_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_purchase_reads_its_trail_and_revokes_its_token_from_the_command_line()
{
    // Arrange
    let account = Account::new().await;
    let (db, xano, env) = (&account.db, &account.xano, account.env());
    let (runner, fulfilled, pending) = shop(db, xano, &env).await;
    let (fulfilled, pending) = (fulfilled.0.to_string(), pending.0.to_string());

    // Act + Assert: lists, newest first, filtered by status and by buyer.
    let all = json(&market(&["purchases", "list"], &env).await);
    assert_eq!(ids(&all), [pending.as_str(), fulfilled.as_str()]);
    let done = json(&market(&["purchases", "list", "--status", "fulfilled"], &env).await);
    assert_eq!(ids(&done), [fulfilled.as_str()]);
    let buyer = ["purchases", "list", "--email", "BUYER@example.com"];
    assert_eq!(
        ids(&json(&market(&buyer, &env).await)),
        [fulfilled.as_str()]
    );
    let bad = market(&["purchases", "list", "--status", "shipped"], &env).await;
    assert!(
        !bad.success && bad.stderr.contains("shipped"),
        "{}",
        bad.stderr
    );

    // Act + Assert: one purchase shows the token Xano holds and its audit trail.
    let shown = json(&market(&["purchases", "show", &fulfilled], &env).await);
    assert_eq!(shown["purchase"]["status"], "fulfilled");
    let value = shown["receipt"]["token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(xano.tokens(SNIPPETS[0].0).iter().any(|t| t.token == value));
    let actions: Vec<&str> = shown["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.len() >= 2, "{actions:?}");

    // Act + Assert: revoking records who did it; the serving side deletes the token at Xano.
    let revoked = json(&market(&["purchases", "revoke", &fulfilled], &env).await);
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["outcome"], "revoking");
    runner.drain().await.unwrap();
    assert!(!xano.tokens(SNIPPETS[0].0).iter().any(|t| t.token == value));
    let by: Vec<String> = sqlx::query_scalar(
        "select distinct actor from audit_event where purchase_id = $1::uuid and actor like 'admin:%'",
    )
    .bind(&fulfilled)
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(by, ["admin:cli:tester"]);
    let again = json(&market(&["purchases", "revoke", &fulfilled], &env).await);
    assert_eq!(again["outcome"], "no_change");

    // Act + Assert: an unknown purchase is an error naming it, not an empty answer.
    let unknown = "00000000-0000-4000-8000-000000000000";
    let missing = market(&["purchases", "show", unknown], &env).await;
    assert!(
        !missing.success && missing.stderr.contains(unknown),
        "{}",
        missing.stderr
    );
    account.xano.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_instances_and_the_pools_jobs_and_credential_health() {
    // Arrange
    let account = Account::new().await;
    let (db, xano, env) = (&account.db, &account.xano, account.env());
    xano.add_instance(SimInstance {
        name: "x8ki-agency".into(),
        display: "Agency".into(),
        xano_domain: "x8ki-agency.n7.xano.io".into(),
        custom_domain: Some("api.agency.example".into()),
        rate_limit: false,
    });
    shop(db, xano, &env).await;

    // Act
    let instances = json(&market(&["instances"], &env).await);
    let one = json(&market(&["instances", "x8ki-agency"], &env).await);
    let none = market(&["instances", "no-such-instance"], &env).await;
    let status = json(&market(&["status"], &env).await);

    // Assert
    let names: Vec<&str> = instances
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(names.contains(&"x8ki-agency"), "{instances}");
    assert_eq!(one["custom_domain"], "api.agency.example");
    assert_eq!(one["host"], "x8ki-agency.n7.xano.io");
    assert!(
        !none.success && none.stderr.contains("no-such-instance"),
        "{}",
        none.stderr
    );
    let token = xano.access_token();
    assert!(!none.stderr.contains(&token) && !instances.to_string().contains(&token));
    let pools = status["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 3, "the example file's three tiers: {status}");
    let sold: Vec<&Value> = pools.iter().filter(|p| p["assigned"] == 1).collect();
    assert_eq!(sold.len(), 1, "one tier sold one token: {status}");
    let (available, target) = (&sold[0]["available"], &sold[0]["pool_target"]);
    assert_eq!(
        available.as_i64().unwrap(),
        target.as_i64().unwrap() - 1,
        "{status}"
    );
    assert_eq!(status["jobs"]["xano_credential"]["state"], "healthy");
    assert!(status["jobs"]["attention"].as_array().unwrap().is_empty());
    account.xano.stop().await;
}
