//! The outbox delivered to a real receiver: a purchase's events arrive in order, signed to the
//! Standard Webhooks specification with the documented body; a failing delivery holds back only
//! its own purchase; retries back off and give up; a redelivery, a replay or an instance killed
//! mid-delivery sends the same `webhook-id` again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use market_core::PurchaseId;
use market_core::audit::Actor;
use market_core::courier::{Courier, CourierConfig, Guard};
use market_core::deliverer::{Deliverer, DelivererConfig};
use market_core::webhooks::{EventType, Policy, Scope, deliveries, history};
use uuid::Uuid;

use crate::common::World;
use crate::webhooks::{
    Answer, PURCHASE_KEYS, Receiver, Request, deliver_until, endpoint, house, keys, keys_of,
    local_deliverer, loopback, patient,
};

/// A purchase's events, oldest first: (type, event id, created at).
async fn events_of(world: &World, purchase: PurchaseId) -> Vec<(String, Uuid, DateTime<Utc>)> {
    sqlx::query_as(
        "select type, event_id, created_at from webhook_event where purchase_id = $1 order by seq",
    )
    .bind(purchase)
    .fetch_all(world.pool())
    .await
    .unwrap()
}

fn is_about(request: &Request, purchase: PurchaseId) -> bool {
    request.json()["data"]["purchase_id"] == purchase.0.to_string()
}

/// (type, answer) of each request about `purchase`, in arrival order.
fn about(requests: &[Request], purchase: PurchaseId) -> Vec<(String, Answer)> {
    requests
        .iter()
        .filter(|r| is_about(r, purchase))
        .map(|r| (r.kind(), r.answered))
        .collect()
}

fn kinds(requests: &[Request]) -> Vec<String> {
    requests.iter().map(Request::kind).collect()
}

/// A fulfilled purchase of the world's tier (from its pool) and its Checkout Session.
async fn sale(world: &World, event: &str) -> (PurchaseId, String) {
    let (purchase, session) = world.checkout().await;
    world.deliver_paid(event, purchase, &session).await;
    (purchase, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchases_events_arrive_in_order_signed_with_the_documented_body_and_the_token_only_where_asked()
 {
    // Arrange: two endpoints of the house, one opted in to the buyer's token.
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    let house = Some(house(&world).await);
    let (_, with) = endpoint(&world, house, &[], true, &receiver.url("with")).await;
    let (_, without) = endpoint(&world, house, &[], false, &receiver.url("without")).await;

    // Act: paid (from the pool: fulfilled at once), refunded, the token deleted at Xano; then sent.
    let (purchase, session) = sale(&world, "evt_paid").await;
    let token = world.live_tokens_of(purchase).await.pop().unwrap();
    world.deliver_refund("evt_refund", &session).await;
    world.drain().await;
    local_deliverer(&world, patient()).drain().await.unwrap();

    // Assert
    let events = events_of(&world, purchase).await;
    let order = [
        "purchase.paid",
        "purchase.fulfilled",
        "purchase.refunded",
        "token.revoked",
    ];
    let written: Vec<&str> = events.iter().map(|(t, ..)| t.as_str()).collect();
    assert_eq!(written, order);
    for (path, secret, other) in [("with", &with, &without), ("without", &without, &with)] {
        let got = receiver.at(path);
        assert_eq!(kinds(&got), order, "{path}");
        for (request, (_, event_id, created_at)) in got.iter().zip(&events) {
            assert_eq!(request.id(), format!("msg_{}", event_id.simple()));
            assert!(request.verifies_with(secret), "{path}");
            assert!(
                !request.verifies_with(other),
                "{path}: another secret verifies"
            );
            assert_eq!(request.headers["content-type"], "application/json");
            let body = request.json();
            assert_eq!(keys(&body), keys_of(&[&["type", "timestamp", "data"]]));
            let at: DateTime<Utc> = body["timestamp"].as_str().unwrap().parse().unwrap();
            assert_eq!(at, *created_at, "the fact's time, on every try");
        }
        let data: Vec<_> = got.iter().map(|r| r.json()["data"].clone()).collect();
        // Paid from the pool, the purchase never rested in `paid`: purchase.paid tells it as it
        // is once paid, fulfilled.
        let statuses: Vec<_> = data.iter().map(|d| d["status"].clone()).collect();
        assert_eq!(statuses, ["fulfilled", "fulfilled", "refunded", "refunded"]);
        assert!(data[0]["paid_at"].is_string());
        assert_eq!(keys(&data[0]), keys_of(&[&PURCHASE_KEYS]));
        assert_eq!(keys(&data[2]), keys_of(&[&PURCHASE_KEYS]));
        let revoked = keys_of(&[&PURCHASE_KEYS, &["token_id", "revoked_at"]]);
        assert_eq!(keys(&data[3]), revoked);
        assert_eq!(data[0]["purchase_id"], purchase.0.to_string());
        let fulfilled = &data[1];
        if path == "with" {
            assert_eq!(keys(fulfilled), keys_of(&[&PURCHASE_KEYS, &["token"]]));
            assert_eq!(fulfilled["token"], token.as_str());
        } else {
            assert_eq!(keys(fulfilled), keys_of(&[&PURCHASE_KEYS]));
        }
    }
    let bodies: String = receiver
        .requests()
        .iter()
        .map(|r| r.json().to_string())
        .collect();
    assert_eq!(
        bodies.matches(&token).count(),
        1,
        "the token went only where asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_delivery_holds_back_its_purchases_later_events_while_another_purchases_flow() {
    // Arrange: purchases A and B, two events each; the receiver refuses whatever is about A.
    let world = World::new(1, 5).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    endpoint(
        &world,
        Some(house(&world).await),
        &[],
        false,
        &receiver.url("hook"),
    )
    .await;
    let deliverer = local_deliverer(&world, patient());
    let (a, _) = sale(&world, "evt_a").await;
    let (b, b_session) = sale(&world, "evt_b").await;
    let refused = a.0.to_string();
    receiver.answer(move |body| {
        if body["data"]["purchase_id"] == refused.as_str() {
            Answer::Fail
        } else {
            Answer::Ok
        }
    });

    // Act: a round; B is refunded meanwhile and a claim looks at what is due; then A's endpoint
    // recovers and its retry comes due (an hour's backoff, moved to now).
    deliverer.drain().await.unwrap();
    let first = receiver.requests();
    world.deliver_refund("evt_b_refund", &b_session).await;
    // A look without a lease: the deliverer may take what it claimed at once.
    let probe = deliveries::claim(world.pool(), Uuid::new_v4(), 10, Duration::ZERO)
        .await
        .unwrap();
    receiver.answer(|_| Answer::Ok);
    sqlx::query("update webhook_delivery set due_at = now() where state = 'pending'")
        .execute(world.pool())
        .await
        .unwrap();
    deliverer.drain().await.unwrap();

    // Assert
    let (paid, fulfilled, refunded) = (
        "purchase.paid".to_owned(),
        "purchase.fulfilled".to_owned(),
        "purchase.refunded".to_owned(),
    );
    assert_eq!(about(&first, a), [(paid.clone(), Answer::Fail)]);
    assert_eq!(
        about(&first, b),
        [(paid.clone(), Answer::Ok), (fulfilled.clone(), Answer::Ok)]
    );
    let claimed: Vec<_> = probe
        .iter()
        .map(|c| (c.purchase_id, &c.event_type))
        .collect();
    assert_eq!(claimed, [(Some(b.0), &refunded)], "B's, and neither of A's");
    let all = receiver.requests();
    assert_eq!(
        about(&all, a),
        [
            (paid.clone(), Answer::Fail),
            (paid.clone(), Answer::Ok),
            (fulfilled.clone(), Answer::Ok)
        ]
    );
    let a_ids: Vec<&str> = all
        .iter()
        .filter(|r| is_about(r, a))
        .map(Request::id)
        .collect();
    assert_eq!(a_ids[0], a_ids[1], "a retry repeats the webhook-id");
    let b_kinds: Vec<String> = about(&all, b).into_iter().map(|(k, _)| k).collect();
    assert_eq!(b_kinds, [paid, fulfilled, refunded]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delivery_backs_off_gives_up_after_retry_for_and_a_redelivery_sends_the_same_webhook_id()
 {
    // Arrange: an endpoint of paid events only, answering 500.
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    receiver.answer(|_| Answer::Fail);
    let types = [EventType::PurchasePaid];
    let house = Some(house(&world).await);
    let (hook, _) = endpoint(&world, house, &types, false, &receiver.url("hook")).await;
    let policy = Policy {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(80),
        retry_for: Duration::from_millis(400),
        disable_after: Duration::from_secs(3600),
    };
    let deliverer = local_deliverer(&world, policy);
    sale(&world, "evt_paid").await;
    let state = async || -> (i64, String, i32, Option<DateTime<Utc>>) {
        sqlx::query_as(
            "select delivery_id, state, attempts, first_attempt_at from webhook_delivery",
        )
        .fetch_one(world.pool())
        .await
        .unwrap()
    };

    // Act
    deliver_until(&deliverer, "the delivery is given up", async || {
        state().await.1 == "failed"
    })
    .await;
    let (delivery, _, attempts, first) = state().await;
    // The endpoint's delivery log, as its seller reads it (newest first), oldest first.
    let mut log = history::attempts(world.pool(), Scope::Operator, hook, None, 100)
        .await
        .unwrap();
    log.reverse();
    let refused = receiver.requests();
    receiver.answer(|_| Answer::Ok);
    let again = history::redeliver(
        world.pool(),
        Scope::Operator,
        &Actor::System,
        hook,
        delivery,
    )
    .await
    .unwrap();
    deliverer.drain().await.unwrap();

    // Assert: every attempt logged with its answer; each wait at least the backoff's floor.
    assert!(attempts >= 2, "retried: {attempts}");
    assert_eq!(log.len(), usize::try_from(attempts).unwrap());
    assert_eq!(refused.len(), log.len());
    for attempt in &log {
        let answer = (attempt.status, attempt.response.as_deref(), &attempt.error);
        assert_eq!(answer, (Some(500), Some("ok"), &None));
        assert!((0..2000).contains(&attempt.latency_ms), "{attempt:?}");
    }
    for (n, pair) in log.windows(2).enumerate() {
        let floor =
            (policy.retry_base * 2_u32.pow(u32::try_from(n).unwrap())).min(policy.retry_cap);
        let waited = (pair[1].attempted_at - pair[0].attempted_at)
            .to_std()
            .unwrap();
        assert!(
            waited >= floor.mul_f64(0.8),
            "attempt {}: {waited:?}",
            n + 2
        );
    }
    // The one before the last was retried: retry_for had not passed since the first attempt.
    let retried = (log[log.len() - 2].attempted_at - first.unwrap())
        .to_std()
        .unwrap();
    assert!(retried < policy.retry_for, "{retried:?}");
    assert_eq!(
        (again.state.as_str(), again.attempts),
        ("pending", attempts)
    );
    let sent = receiver.requests();
    assert_eq!(sent.len(), refused.len() + 1);
    let last = &sent[sent.len() - 1];
    assert_eq!(last.answered, Answer::Ok);
    assert!(sent.iter().all(|r| r.id() == last.id()), "one webhook-id");
    assert_eq!(state().await.1, "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_sends_delivered_events_again_and_those_made_before_the_endpoint_existed() {
    // Arrange: a sale before the endpoint exists, one after it, delivered.
    let world = World::new(1, 5).await;
    world.fill_pool().await;
    let from: DateTime<Utc> = sqlx::query_scalar("select now()")
        .fetch_one(world.pool())
        .await
        .unwrap();
    let (early, _) = sale(&world, "evt_early").await;
    let receiver = Receiver::start().await;
    let house = Some(house(&world).await);
    let (hook, _) = endpoint(&world, house, &[], false, &receiver.url("hook")).await;
    let (late, _) = sale(&world, "evt_late").await;
    let deliverer = local_deliverer(&world, patient());
    deliverer.drain().await.unwrap();
    let before = receiver.requests();

    // Act
    let to = Utc::now() + chrono::Duration::seconds(1);
    let queued = history::replay(
        world.pool(),
        Scope::Operator,
        &Actor::System,
        hook,
        from,
        to,
    )
    .await
    .unwrap();
    deliverer.drain().await.unwrap();

    // Assert
    let both = ["purchase.paid", "purchase.fulfilled"];
    assert_eq!(about(&before, late).len(), 2);
    assert!(about(&before, early).is_empty());
    assert_eq!(queued, 4, "the early sale's two, the late one's two again");
    let sent = receiver.requests();
    let replayed = &sent[before.len()..];
    let early_kinds: Vec<String> = about(replayed, early).into_iter().map(|(k, _)| k).collect();
    assert_eq!(early_kinds, both);
    let late_again: Vec<&str> = replayed
        .iter()
        .filter(|r| is_about(r, late))
        .map(Request::id)
        .collect();
    let late_first: Vec<&str> = before.iter().map(Request::id).collect();
    assert_eq!(late_again, late_first, "the same webhook-ids, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_delivery_leaves_it_to_another_which_sends_the_same_webhook_id() {
    // Arrange: one paid-only endpoint whose receiver hangs; an instance with a 2 s lease.
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    receiver.answer(|_| Answer::Hang);
    let types = [EventType::PurchasePaid];
    let house = Some(house(&world).await);
    endpoint(&world, house, &types, false, &receiver.url("hook")).await;
    sale(&world, "evt_paid").await;
    let courier = Courier::new(CourierConfig {
        timeout: Duration::from_secs(30),
        guard: Guard::allowing(true, loopback()),
        ..CourierConfig::default()
    })
    .unwrap();
    let config = DelivererConfig {
        lease: Duration::from_secs(2),
        policy: patient(),
        ..DelivererConfig::default()
    };
    let doomed = Deliverer::new(world.market.clone(), courier, config);

    // Act: the first instance sends and is killed before the answer; another takes over.
    let killed = tokio::spawn(async move { doomed.drain().await });
    for _ in 0..500 {
        if !receiver.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    killed.abort();
    receiver.answer(|_| Answer::Ok);
    let other = local_deliverer(&world, patient());
    let while_leased = other.drain().await.unwrap();
    deliver_until(&other, "the other instance delivers", async || {
        receiver.requests().len() == 2
    })
    .await;

    // Assert: sent twice, the same webhook-id; one attempt logged (the killed one never was).
    let sent = receiver.requests();
    assert_eq!(while_leased, 0, "the lease held it");
    assert_eq!(
        sent.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [Answer::Hang, Answer::Ok]
    );
    assert_eq!(sent[0].id(), sent[1].id());
    assert_eq!(sent[0].body, sent[1].body, "the same body on every try");
    let (state, attempts, logged): (String, i32, i64) = sqlx::query_as(
        "select state, attempts, (select count(*) from webhook_attempt) from webhook_delivery",
    )
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts, logged), ("delivered", 2, 1));
}
