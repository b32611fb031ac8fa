//! `market keys`: a data key made, and a key roll from the command line while the data stays
//! readable.

use serde_json::Value;

use crate::operator::{json, shop};
use crate::{Account, DATA_KEY, market};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rolls_the_data_key_and_the_buyers_token_reads_the_same_under_the_new_key() {
    // Arrange: a shop whose tokens are sealed under DATA_KEY, and a new key made by the CLI.
    let account = Account::new().await;
    let (db, xano, env) = (&account.db, &account.xano, account.env());
    let (_runner, fulfilled, _) = shop(db, xano, &env).await;
    let fulfilled = fulfilled.0.to_string();
    let made = market(&["keys", "generate", "--id", "k2"], &[]).await;
    assert!(made.success, "{}", made.stderr);
    let new = made.stdout.trim().to_owned();
    assert!(new.starts_with("k2:") && new.len() == 3 + 44, "{new}");
    let before = json(&market(&["purchases", "show", &fulfilled], &env).await);
    let with = |keys: &str| -> Vec<(String, String)> {
        env.iter()
            .filter(|(k, _)| *k != "MARKET_DATA_KEY")
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("MARKET_DATA_KEY".to_owned(), keys.to_owned())])
            .collect()
    };
    let during = with(&format!("{new},{DATA_KEY}"));
    let after = with(&new);
    let old = with(DATA_KEY);

    // Act
    let rotated = run(&["keys", "rotate"], &during).await;
    let shown = run(&["purchases", "show", &fulfilled], &after).await;
    let old_only = run(&["purchases", "show", &fulfilled], &old).await;

    // Assert: everything moved to k2; the new key alone reads the same token; the old one alone
    // opens nothing, and says which key is missing without showing one.
    let rotated: Value = serde_json::from_str(&rotated.stdout).unwrap();
    assert_eq!(rotated["sealed_under"], "k2");
    assert_eq!(rotated["lookup_key_resealed"], true);
    assert!(
        rotated["tokens_resealed"].as_u64().unwrap() >= 2,
        "{rotated}"
    );
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(
        shown["receipt"]["token"]["value"],
        before["receipt"]["token"]["value"]
    );
    assert!(!old_only.success);
    assert!(old_only.stderr.contains("`k2`"), "{}", old_only.stderr);
    assert!(!old_only.stderr.contains(&new[3..]), "{}", old_only.stderr);
}

async fn run(args: &[&str], env: &[(String, String)]) -> crate::Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = market(args, &env).await;
    if args[0] == "keys" {
        assert!(run.success, "{}", run.stderr);
    }
    run
}
