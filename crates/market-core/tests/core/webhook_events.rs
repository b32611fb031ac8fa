//! Every fact writes its event and one delivery per endpoint that wants it, in the fact's own
//! transaction, once; and each event's `data` holds the keys the API document promises
//! (`market-http`'s `wire/webhook_events.rs`), for every kind of fact the service really writes.

use std::time::Duration;

use market_core::audit::Actor;
use market_core::webhooks::EventType;
use market_core::{rotation, seller_xano};
use sandbox::xano::TokenState;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{CANONICAL, World};
use crate::webhooks::{
    PURCHASE_KEYS, Receiver, ada_listing, endpoint, events, house, invite_ada, keys, keys_of,
    local_deliverer, patient,
};

/// (endpoint, event type) of every delivery, in event order.
async fn deliveries(world: &World) -> Vec<(Uuid, String)> {
    sqlx::query_as(
        "select d.endpoint_id, ev.type from webhook_delivery d
         join webhook_event ev on ev.seq = d.event_seq order by ev.seq, d.endpoint_id",
    )
    .fetch_all(world.pool())
    .await
    .unwrap()
}

fn types_for(deliveries: &[(Uuid, String)], endpoint: Uuid) -> Vec<&str> {
    deliveries
        .iter()
        .filter(|(e, _)| *e == endpoint)
        .map(|(_, t)| t.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fact_writes_its_event_and_a_delivery_per_endpoint_that_wants_it_in_its_transaction_once()
{
    // Arrange: the house's endpoints (every type, paid only, refunds only), Ada's, the platform's.
    let world = World::new(1, 4).await;
    world.fill_pool().await;
    let ada = invite_ada(&world).await;
    let house_id = house(&world).await;
    let house = Some(house_id);
    let url = "http://127.0.0.1:9/hook";
    let all = endpoint(&world, house, &[], false, url).await.0;
    let paid_only = endpoint(&world, house, &[EventType::PurchasePaid], false, url)
        .await
        .0;
    let refunds = [EventType::PurchaseRefunded];
    let refunds_only = endpoint(&world, house, &refunds, false, url).await.0;
    let adas = endpoint(&world, Some(ada.id), &[], false, url).await.0;
    let platform = endpoint(&world, None, &[], false, url).await.0;

    // Act: Ada's pool runs low; the house sells, Stripe says so twice, then in another event.
    ada_listing(&world, &ada, "ada-1_01").await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    let before_repeats = (events(&world).await, deliveries(&world).await);
    world.deliver_paid("evt_paid", purchase, &session).await;
    world
        .deliver_paid("evt_paid_again", purchase, &session)
        .await;
    // A fact whose transaction rolls back: its event is there inside it, and gone after.
    let (other, _) = world.checkout().await;
    let mut tx = world.pool().begin().await.unwrap();
    sqlx::query("update purchase set status = 'paid', paid_at = now() where purchase_id = $1")
        .bind(other)
        .execute(&mut *tx)
        .await
        .unwrap();
    let count = "select (select count(*) from webhook_event where purchase_id = $1),
                        (select count(*) from webhook_delivery d join webhook_event ev
                         on ev.seq = d.event_seq where ev.purchase_id = $1)";
    let inside: (i64, i64) = sqlx::query_as(count)
        .bind(other)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let after: (i64, i64) = sqlx::query_as(count)
        .bind(other)
        .fetch_one(world.pool())
        .await
        .unwrap();

    // Assert
    let written = deliveries(&world).await;
    assert_eq!(
        types_for(&written, all),
        ["purchase.paid", "purchase.fulfilled"]
    );
    assert_eq!(types_for(&written, paid_only), ["purchase.paid"]);
    assert!(types_for(&written, refunds_only).is_empty(), "{written:?}");
    assert_eq!(types_for(&written, adas), ["pool.low"], "only Ada's own");
    let every = ["pool.low", "purchase.paid", "purchase.fulfilled"];
    assert_eq!(types_for(&written, platform), every, "every seller's");
    let events = events(&world).await;
    assert_eq!(
        (events.clone(), written),
        before_repeats,
        "a repeated fact wrote nothing"
    );
    let sellers: Vec<(&str, Uuid)> = events.iter().map(|(t, s, _)| (t.as_str(), *s)).collect();
    assert_eq!(
        sellers[sellers.len() - 3..],
        [
            ("pool.low", ada.id),
            ("purchase.paid", house_id),
            ("purchase.fulfilled", house_id)
        ]
    );
    assert_eq!(inside, (1, 3), "paid: all, paid only, platform");
    assert_eq!(after, (0, 0));
}

/// The documented keys of `pool.low`, `token.rotated` (and the new token to an opted-in
/// endpoint), from the facts the service really writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_low_and_token_rotated_carry_their_documented_data_and_the_new_token_where_asked() {
    // Arrange: the tier's creation queued its first refill under the low-water mark.
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    let house = Some(house(&world).await);
    let (_, secret) = endpoint(&world, house, &[], true, &receiver.url("hook")).await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    let old = world.live_tokens_of(purchase).await;

    // Act
    rotation::request(world.pool(), purchase, &Actor::Buyer)
        .await
        .unwrap();
    for _ in 0..100 {
        world.drain().await;
        let rotations = rotation::of_purchase(world.pool(), purchase).await.unwrap();
        if rotations[0].state == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    local_deliverer(&world, patient()).drain().await.unwrap();

    // Assert
    let events = events(&world).await;
    let (_, _, low) = events.iter().find(|(t, ..)| t == "pool.low").unwrap();
    let pool_keys = ["listing", "tier", "available", "low_water", "target"];
    assert_eq!(keys(low), keys_of(&[&pool_keys]));
    assert_eq!(low["tier"]["tier_id"], world.tier.to_string());
    assert_eq!(low["listing"]["canonical"], CANONICAL);
    let counts = [&low["available"], &low["low_water"], &low["target"]];
    assert_eq!(counts.map(Value::as_i64), [Some(0), Some(1), Some(3)]);
    let (_, _, rotated) = events.iter().find(|(t, ..)| t == "token.rotated").unwrap();
    let extra = [
        "rotation_id",
        "old_token_id",
        "token_id",
        "installs_carried",
        "requested_by",
    ];
    assert_eq!(keys(rotated), keys_of(&[&PURCHASE_KEYS, &extra]));
    assert_eq!(rotated["requested_by"], "buyer");
    assert_eq!(rotated["purchase_id"], purchase.0.to_string());
    let new = world.live_tokens_of(purchase).await;
    assert_ne!(new, old, "rotated");
    let sent = receiver.at("hook");
    let told = sent.iter().find(|r| r.kind() == "token.rotated").unwrap();
    assert!(told.verifies_with(&secret));
    assert_eq!(told.json()["data"]["token"], new[0].as_str());
    let stored: i64 = sqlx::query_scalar("select count(*) from webhook_event where data ? 'token'")
        .fetch_one(world.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "no event stores a token's value");
}

/// `job.dead` and `credential.*` for the house's own credential and a seller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_and_credentials_refused_then_healed_write_their_documented_events() {
    // Arrange: the runner has swept once (its credential is on record), and a refill is due.
    let world = World::new(1, 2).await;
    world.runner.sweep().await.unwrap();
    let house = house(&world).await;

    // Act: the house's token refused, then accepted again (the runner's probe finds it).
    world.sim.set_access_token_state(TokenState::Expired);
    world.drain().await;
    world.sim.set_access_token_state(TokenState::Valid);
    for _ in 0..100 {
        world.drain().await;
        if world.sim_tokens().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Ada's refused, then healed by the probe; meanwhile her snippet went, so her refill dies.
    let ada = invite_ada(&world).await;
    ada_listing(&world, &ada, "ada-1_01").await;
    world
        .sim
        .set_access_token_state_for(&ada.xano_token, TokenState::Expired);
    world.drain().await;
    assert!(world.sim.remove_snippet("ada-1_01"));
    world
        .sim
        .set_access_token_state_for(&ada.xano_token, TokenState::Valid);
    seller_xano::probe_refused(&world.market).await.unwrap();
    world.drain().await;

    // Assert
    let told: Vec<(String, Uuid, Value)> = events(&world)
        .await
        .into_iter()
        .filter(|(t, ..)| t.starts_with("credential.") || t == "job.dead")
        .collect();
    let kinds: Vec<(&str, Uuid)> = told.iter().map(|(t, s, _)| (t.as_str(), *s)).collect();
    assert_eq!(
        kinds,
        [
            ("credential.unhealthy", house),
            ("credential.healthy", house),
            ("credential.unhealthy", ada.id),
            ("credential.healthy", ada.id),
            ("job.dead", ada.id),
            ("job.dead", ada.id),
        ]
    );
    let credential = ["seller_id", "state", "last_error", "since"];
    let (house_refused, house_healed) = (&told[0].2, &told[1].2);
    assert_eq!(
        keys(house_refused),
        keys_of(&[&credential, &["credential"]])
    );
    assert_eq!(house_refused["state"], "unauthorized");
    assert!(house_refused["last_error"].is_string());
    assert_eq!(house_healed["state"], "healthy");
    assert_eq!(house_healed["credential"], house_refused["credential"]);
    let (ada_refused, ada_healed) = (&told[2].2, &told[3].2);
    assert_eq!(keys(ada_refused), keys_of(&[&credential, &["account_id"]]));
    assert_eq!(ada_refused["account_id"], "77");
    assert_eq!(ada_refused["state"], "unauthorized");
    assert_eq!(ada_healed["state"], "healthy");
    assert!(ada_healed["last_error"].is_null());
    // Her listing's reconciliation and its refill, each meeting the missing snippet.
    let job_keys = [
        "job_id",
        "kind",
        "subject",
        "attempts",
        "last_error",
        "died_at",
    ];
    let mut dead: Vec<&str> = Vec::new();
    for (_, _, data) in &told[4..] {
        assert_eq!(keys(data), keys_of(&[&job_keys]));
        assert_eq!(data["last_error"], "Xano: not found (404)");
        dead.push(data["kind"].as_str().unwrap());
    }
    dead.sort_unstable();
    assert_eq!(dead, ["reconcile_listing", "replenish_pool"]);
}

/// Found by these tests: the house's credential row is inserted already refused when an instance
/// meets a 401 before its first sweep recorded the credential, and only updates were told, so a
/// receiver heard `credential.healthy` without ever hearing `credential.unhealthy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_refused_before_any_sweep_recorded_it_is_told_too() {
    // Arrange: no sweep has run; a refill is due.
    let world = World::new(1, 2).await;
    world.sim.set_access_token_state(TokenState::Expired);

    // Act
    world.drain().await;

    // Assert
    let refused: Vec<Value> = events(&world)
        .await
        .into_iter()
        .filter(|(t, ..)| t == "credential.unhealthy")
        .map(|(.., data)| data)
        .collect();
    let [data] = &refused[..] else {
        panic!("{refused:?}")
    };
    assert_eq!(data["state"], "unauthorized");
    assert!(data["last_error"].is_string());
}
