//! Install tokens at rest: sealed (a database dump hands out none), found by fingerprint (the
//! schema still refuses a token twice, reconciliation still matches Xano's list), and sealed under
//! keys that roll without a token lost or duplicated (sellers' Xano credentials roll with them).

use std::process::Command;
use std::sync::Arc;

use market_core::audit::Actor;
use market_core::envelope::{DataKeys, EnvelopeError, KeyId};
use market_core::keys::{self, Rotation};
use market_core::tiers::{self, TierChange};
use market_core::{Email, Error, Market, PurchaseId, purchases, reconcile, seller_xano, sellers};
use sandbox::xano::SimAccount;
use secrecy::{ExposeSecret, SecretString};

use crate::catalog::world_with_a_sale;
use crate::common::{TEST_KEY, World, tier_spec};

/// What the buyer's receipt shows as their token, read with `market`'s keys.
async fn receipt_token(world: &World, market: &Market, purchase: PurchaseId) -> String {
    let row = purchases::by_id(world.pool(), purchase)
        .await
        .unwrap()
        .unwrap();
    let receipt = purchases::receipt_of(world.pool(), &market.envelope, &row)
        .await
        .unwrap();
    receipt.token.unwrap().value.unwrap().expose().to_owned()
}

fn with_keys(world: &World, envelope: market_core::envelope::Envelope) -> Market {
    Market::new(
        world.pool().clone(),
        world.market.xano.clone(),
        Arc::new(envelope),
        world.market.jobs.clone(),
    )
}

/// Finding 8 of the security review: tokens were stored in plain text, so `pg_dump` of the
/// database printed every buyer's token (this test failed then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_the_database_holds_no_token_xano_issued() {
    // Arrange: a pool of tokens, one of them sold.
    let (world, _, sold) = world_with_a_sale().await;
    let issued = world.sim_tokens();
    assert!(issued.len() >= 3 && issued.contains(&sold), "{issued:?}");

    // Act: dump the whole database, as someone who stole a backup would have it.
    let url = world.db.url();
    let libpq_url = url.split('?').next().unwrap(); // without sqlx's own parameters
    let dump = Command::new("pg_dump")
        .args(["--data-only", "--dbname", libpq_url])
        .output()
        .expect("pg_dump (PostgreSQL's client tools) on PATH");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);

    // Assert: the rows are there, the tokens are not.
    assert!(
        dump.contains("install_token"),
        "the dump holds the token table"
    );
    for token in &issued {
        assert!(
            !dump.contains(token.as_str()),
            "the dump shows a token Xano issued"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_roll_reseals_every_token_and_the_old_key_can_then_go() {
    // Arrange: tokens sealed under the test key, and a new key listed first, the old one after.
    let (world, buyer, token) = world_with_a_sale().await;
    let (seller, _) = sellers::invite(
        world.pool(),
        "Ada",
        &Email::parse("ada@example.com").unwrap(),
        &Actor::System,
    )
    .await
    .unwrap();
    let xano_token = world.sim.add_account(SimAccount {
        id: "77".into(),
        name: "Ada".into(),
        email: "ada@example.test".into(),
    });
    seller_xano::set(
        &world.market,
        seller.seller_id,
        SecretString::from(xano_token.clone()),
        None,
        &Actor::System,
    )
    .await
    .unwrap();
    let new = DataKeys::generate_entry(&KeyId::parse("k2").unwrap());
    let during = keys::open(
        world.pool(),
        DataKeys::parse(&format!("{new},{TEST_KEY}")).unwrap(),
    )
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from install_token")
        .fetch_one(world.pool())
        .await
        .unwrap();

    // Act
    let done = keys::rotate(world.pool(), &during).await.unwrap();
    let again = keys::rotate(world.pool(), &during).await.unwrap();

    // Assert: every row and the lookup key moved to the new key, once.
    assert_eq!(
        done,
        Rotation {
            tokens: u64::try_from(rows).unwrap(),
            lookup_key: true,
            plain: 0,
            seller_credentials: 1,
            webhook_secrets: 0,
        }
    );
    assert_eq!(again, Rotation::default(), "a second run has nothing to do");
    let old_key_rows: i64 =
        sqlx::query_scalar("select count(*) from install_token where token_key_id <> 'k2'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(old_key_rows, 0);
    // With the new key alone, the buyer's token reads the same and reconciliation still
    // recognises every token Xano lists: fingerprints did not change with the key.
    let after = with_keys(
        &world,
        keys::open(world.pool(), DataKeys::parse(&new).unwrap())
            .await
            .unwrap(),
    );
    assert_eq!(receipt_token(&world, &after, buyer).await, token);
    let (key_id, sealed): (String, Vec<u8>) =
        sqlx::query_as("select key_id, sealed from seller_xano_credential")
            .fetch_one(world.pool())
            .await
            .unwrap();
    let opened =
        keys::open_seller_credential(&after.envelope, seller.seller_id, key_id, sealed).unwrap();
    assert_eq!(
        opened.expose_secret(),
        xano_token,
        "the seller's credential moved too"
    );
    let report = reconcile::listing(&after, world.listing, &Actor::System)
        .await
        .unwrap();
    assert!(!report.changed(), "{report:?}");
    let old_alone = keys::open(world.pool(), DataKeys::parse(TEST_KEY).unwrap()).await;
    assert!(
        matches!(old_alone, Err(Error::Sealed(EnvelopeError::UnknownKey(ref id))) if id == "k2"),
        "{old_alone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_key_that_sealed_them_nothing_opens_and_the_error_names_only_the_key_id() {
    // Arrange
    let world = World::new(1, 1).await;
    world.fill_pool().await;
    let other = DataKeys::generate_entry(&KeyId::parse("other").unwrap());

    // Act
    let opened = keys::open(world.pool(), DataKeys::parse(&other).unwrap()).await;

    // Assert
    let Err(Error::Sealed(e)) = opened else {
        panic!("opened with a key that sealed nothing")
    };
    assert_eq!(e, EnvelopeError::UnknownKey("test".into()));
    assert!(!e.to_string().contains(TEST_KEY.split_once(':').unwrap().1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_stored_in_plain_text_before_sealing_is_still_matched_and_then_sealed() {
    // Arrange: one pooled token as a row written before this release holds it (the migration
    // cannot seal: it has no key).
    let world = World::new(2, 2).await;
    world.fill_pool().await;
    let plain = world.tokens_where("state = 'available'").await.remove(0);
    sqlx::query(
        "update install_token
         set token = $1, token_key_id = null, token_sealed = null, token_fingerprint = null
         where token_fingerprint = $2",
    )
    .bind(&plain)
    .bind(world.fingerprint(&plain))
    .execute(world.pool())
    .await
    .unwrap();

    // Act: reconciliation before the row is sealed, then the start-up sealing.
    let before = reconcile::listing(&world.market, world.listing, &Actor::System)
        .await
        .unwrap();
    let sealed = keys::seal_plain_tokens(world.pool(), &world.market.envelope)
        .await
        .unwrap();

    // Assert: the plain row was recognised (not adopted twice, not marked missing), then sealed.
    assert!(!before.changed(), "{before:?}");
    assert_eq!(sealed, 1);
    let still_plain: i64 =
        sqlx::query_scalar("select count(*) from install_token where token is not null")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(still_plain, 0);
    assert!(
        world
            .tokens_where("state = 'available'")
            .await
            .contains(&plain)
    );
    let after = reconcile::listing(&world.market, world.listing, &Actor::System)
        .await
        .unwrap();
    assert!(!after.changed(), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_a_token_recorded_twice_or_a_row_half_sealed() {
    // Arrange
    let world = World::new(1, 1).await;
    world.fill_pool().await;
    let token = world.tokens_where("true").await.remove(0);
    let duplicate = sqlx::query(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, state, origin)
         select listing_id, tier_id, max_installs, token_key_id, token_sealed, token_fingerprint,
                'available', 'minted'
         from install_token where token_fingerprint = $1",
    )
    .bind(world.fingerprint(&token));
    let both = sqlx::query("update install_token set token = 'plain-too'");
    let no_print = sqlx::query("update install_token set token_fingerprint = null");

    // Act
    let results = [
        duplicate.execute(world.pool()).await,
        both.execute(world.pool()).await,
        no_print.execute(world.pool()).await,
    ];

    // Assert
    let refused_by: Vec<Option<String>> = results
        .iter()
        .map(|r| match r {
            Err(sqlx::Error::Database(e)) => e.constraint().map(str::to_owned),
            Ok(_) => None,
            Err(e) => Some(format!("{e}")),
        })
        .collect();
    assert_eq!(
        refused_by,
        [
            Some("install_token_fingerprint_unique".to_owned()),
            Some("install_token_plain_or_sealed".to_owned()),
            Some("install_token_sealed_whole".to_owned()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_a_live_token_whose_limit_is_not_its_purchases_entitlement() {
    // Arrange: a fulfilled purchase of 5 installs, and a tier of 50 in the same listing (so the
    // token may move to it as far as the tier's foreign key goes).
    let world = World::new(1, 1).await;
    world.fill_pool().await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    let mut conn = world.pool().acquire().await.unwrap();
    let bigger = match tiers::apply(
        &mut conn,
        world.listing,
        &tier_spec("agency", 9900, 50, 0, 0),
        &Actor::Admin("test".into()),
    )
    .await
    .unwrap()
    {
        TierChange::Created { tier_id } => tier_id,
        other => panic!("{other:?}"),
    };
    drop(conn);

    // Act: the purchase's token raised to 50 installs.
    let raised = sqlx::query(
        "update install_token set tier_id = $2, max_installs = 50
         where purchase_id = $1 and state = 'assigned'",
    )
    .bind(purchase)
    .bind(bigger)
    .execute(world.pool())
    .await;

    // Assert
    let refused = match raised {
        Err(sqlx::Error::Database(e)) => e.message().to_owned(),
        other => panic!("accepted: {other:?}"),
    };
    assert!(refused.contains("entitled"), "{refused}");
}
