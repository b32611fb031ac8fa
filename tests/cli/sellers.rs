//! `market sellers`: an operator invites a seller from the command line and hands over the key,
//! printed once; the list shows the house and the seller, never a key.

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
