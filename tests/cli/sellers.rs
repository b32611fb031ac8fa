//! `market sellers`: an operator invites a seller from the command line and hands over the key,
//! printed once; the list shows the house and the seller, never a key. The operator issues a seller
//! a new key, revokes the old one, suspends and reactivates the seller, all audited as
//! `admin:cli:$USER`; the house cannot be suspended.

use crate::operator::json;
use crate::{Account, market};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_invites_a_seller_whose_key_is_printed_once_and_never_listed() {
    let account = Account::new().await;
    let env = account.env();

    let invited = json(
        &market(
            &[
                "sellers",
                "invite",
                "--name",
                "Ada",
                "--email",
                "ada@example.com",
            ],
            &env,
        )
        .await,
    );
    let listed = json(&market(&["sellers", "list"], &env).await);
    let bad = market(
        &[
            "sellers",
            "invite",
            "--name",
            "Bob",
            "--email",
            "not-an-email",
        ],
        &env,
    )
    .await;

    let key = invited["api_key"].as_str().unwrap();
    assert!(key.starts_with("sk_"), "{invited}");
    assert_eq!(invited["seller"]["name"], "Ada");
    let names: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, ["House", "Ada"]);
    assert!(!listed.to_string().contains(key));
    assert!(
        !bad.success && bad.stderr.contains("email"),
        "{}",
        bad.stderr
    );
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_event where action = 'seller.invited' and actor like 'admin:%'",
    )
    .fetch_one(account.db.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

/// Whether `key` opens the seller API (an unrevoked key of an active seller).
async fn opens(account: &Account, key: &str) -> bool {
    let key = market_core::sellers::SellerKey::presented(key);
    market_core::sellers::by_key(account.db.pool(), &key)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rotates_a_sellers_key_and_suspends_and_reactivates_it_from_the_command_line() {
    // Arrange: Ada, invited.
    let account = Account::new().await;
    let env = account.env();
    let invite = ["sellers", "invite", "--name", "Ada", "--email", "a@x.io"];
    let invited = json(&market(&invite, &env).await);
    let ada = invited["seller"]["seller_id"].as_str().unwrap().to_owned();
    let first = invited["api_key"].as_str().unwrap().to_owned();
    let keys = |verb: &'static str| ["sellers", "keys", verb, "--seller", ada.as_str()];

    // Act: a new key, the old one revoked; then suspended, twice, and reactivated.
    let issued = json(&market(&keys("issue"), &env).await);
    let second = issued["api_key"].as_str().unwrap().to_owned();
    let listed = json(&market(&keys("list"), &env).await);
    let first_id = listed[0]["key_id"].as_str().unwrap().to_owned();
    let revoke = [&keys("revoke")[..], &["--key", first_id.as_str()]].concat();
    let revoked = json(&market(&revoke, &env).await);
    let suspend = ["sellers", "suspend", "--seller", ada.as_str()];
    let suspended = json(&market(&suspend, &env).await);
    let twice = json(&market(&suspend, &env).await);
    let while_suspended = opens(&account, &second).await;
    let reactivate = ["sellers", "reactivate", "--seller", ada.as_str()];
    let reactivated = json(&market(&reactivate, &env).await);

    // Assert
    assert_ne!(first, second);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&first) && !listed.to_string().contains(&second),
        "a list never shows a key: {listed}"
    );
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert!(
        !opens(&account, &first).await,
        "the revoked key opens nothing"
    );
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(twice["status"], "suspended");
    assert!(!while_suspended, "a suspended seller's key opens nothing");
    assert_eq!(reactivated["status"], "active");
    assert!(opens(&account, &second).await);
    let actions: Vec<String> = sqlx::query_scalar(
        "select action from audit_event
         where actor = 'admin:cli:tester' and action <> 'seller.invited' order by audit_event_id",
    )
    .fetch_all(account.db.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "seller.key_issued",
            "seller.key_revoked",
            "seller.suspended",
            "seller.reactivated"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_refuses_to_suspend_the_house_or_to_name_a_seller_that_does_not_exist() {
    let account = Account::new().await;
    let env = account.env();
    let listed = json(&market(&["sellers", "list"], &env).await);
    let house = listed[0]["seller_id"].as_str().unwrap().to_owned();
    let nobody = uuid::Uuid::new_v4().to_string();

    let suspended = market(&["sellers", "suspend", "--seller", &house], &env).await;
    let keyed = market(&["sellers", "keys", "issue", "--seller", &house], &env).await;
    let unknown = market(&["sellers", "keys", "list", "--seller", &nobody], &env).await;
    let bad_id = market(&["sellers", "suspend", "--seller", "ada"], &env).await;

    assert!(
        !suspended.success && suspended.stderr.contains("house cannot be suspended"),
        "{}",
        suspended.stderr
    );
    assert!(
        !keyed.success && keyed.stderr.contains("house has no API key"),
        "{}",
        keyed.stderr
    );
    assert!(
        !unknown.success && unknown.stderr.contains("no seller"),
        "{}",
        unknown.stderr
    );
    assert!(
        !bad_id.success && bad_id.stderr.contains("--seller"),
        "{}",
        bad_id.stderr
    );
    assert_eq!(listed[0]["status"], "active");
}
