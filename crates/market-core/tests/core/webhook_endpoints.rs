//! Endpoints over time: one failing without a break for `disable_after` is disabled, its seller
//! told by email, and nothing new queued for it until it is enabled again; a rolled secret signs
//! beside the new one for its overlap; a key roll reseals every secret; and the SSRF guard is
//! asked again at every delivery.

use std::sync::Arc;
use std::time::Duration;

use market_core::audit::Actor;
use market_core::courier::{GUARD_REFUSED, Guard, WebhookSecret};
use market_core::envelope::{DataKeys, KeyId};
use market_core::letters::{self, Rendered};
use market_core::postman::{Capture, Postman, Transport};
use market_core::webhooks::{EndpointPatch, EventType, Policy, Scope, endpoints};
use market_core::{Market, keys};
use uuid::Uuid;

use crate::common::{TEST_KEY, World};
use crate::webhooks::{
    Answer, Receiver, Request, ada_listing, deliver_until, deliverer, endpoint, house, invite_ada,
    local_deliverer, loopback, patient,
};

/// The `v1,` signatures of a request's `webhook-signature`.
fn signatures(request: &Request) -> Vec<String> {
    let header = request.headers["webhook-signature"].to_str().unwrap();
    header.split(' ').map(str::to_owned).collect()
}

fn verified_by(request: &Request, secrets: &[&WebhookSecret]) -> Vec<bool> {
    secrets.iter().map(|s| request.verifies_with(s)).collect()
}

/// One `webhook_disabled` message to Ada about `hook`, with its job.
async fn assert_told_once(world: &World, hook: Uuid) {
    let mails: Vec<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "select mail_id, recipient, webhook_endpoint_id from mail_message where kind = 'webhook_disabled'",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    let [(mail, recipient, about)] = &mails[..] else {
        panic!("{mails:?}")
    };
    assert_eq!(
        (recipient.as_str(), *about),
        ("ada@example.com", Some(hook))
    );
    let jobs: i64 = sqlx::query_scalar(
        "select count(*) from job where kind = 'send_mail' and subject = $1::text",
    )
    .bind(mail)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(jobs, 1);
}

/// The `webhook_disabled` message, as it would leave now.
async fn disabled_message(world: &World) -> Rendered {
    let postman = Postman::new(
        Transport::Capture(Capture::new()),
        "Market <ops@market.test>",
        "https://market.test/",
    )
    .unwrap();
    let mail: Uuid =
        sqlx::query_scalar("select mail_id from mail_message where kind = 'webhook_disabled'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    let row = letters::by_id(world.pool(), mail).await.unwrap().unwrap();
    letters::render(world.pool(), &world.market.envelope, &postman, &row)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_disable_after_is_disabled_its_seller_told_and_enabling_it_sends_what_waited()
 {
    // Arrange: Ada's endpoint answers 500; her first listing's pool runs low.
    let world = World::new(1, 2).await;
    let ada = invite_ada(&world).await;
    let receiver = Receiver::start().await;
    receiver.answer(|_| Answer::Fail);
    let (hook, _) = endpoint(&world, Some(ada.id), &[], false, &receiver.url("hook")).await;
    let policy = Policy {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(40),
        retry_for: Duration::from_secs(3600),
        disable_after: Duration::from_millis(300),
    };
    let deliverer = local_deliverer(&world, policy);
    ada_listing(&world, &ada, "ada-1_01").await;
    let scope = Scope::Seller(ada.id);
    let endpoint_now = async || endpoints::get(world.pool(), scope, hook).await.unwrap();

    // Act: failures until disabled; a new fact while disabled; enabled by Ada, answering again.
    deliver_until(&deliverer, "the endpoint is disabled", async || {
        endpoint_now().await.state == "disabled"
    })
    .await;
    let disabled = endpoint_now().await;
    let told = disabled_message(&world).await;
    let tried = receiver.requests().len();
    ada_listing(&world, &ada, "ada-2_01").await;
    // The delivery's retry comes due (40 ms at most); a disabled endpoint's is not claimed.
    let due = "select bool_and(due_at <= now()) from webhook_delivery where state = 'pending'";
    while !sqlx::query_scalar::<_, bool>(due)
        .fetch_one(world.pool())
        .await
        .unwrap()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let while_disabled = deliverer.drain().await.unwrap();
    receiver.answer(|_| Answer::Ok);
    let patch = EndpointPatch {
        enabled: Some(true),
        ..EndpointPatch::default()
    };
    let guard = Guard::allowing(true, loopback());
    let actor = Actor::Seller(ada.id);
    let enabled = endpoints::update(world.pool(), &guard, scope, &actor, hook, patch)
        .await
        .unwrap();
    deliverer.drain().await.unwrap();

    // Assert: disabled with its reason, after at least two failures over 300 ms.
    assert!(tried >= 2, "{tried}");
    assert!(disabled.disabled_at.is_some() && disabled.failing_since.is_some());
    assert_eq!(disabled.consecutive_failures, i32::try_from(tried).unwrap());
    let reason = disabled.disabled_reason.unwrap();
    assert!(
        reason.starts_with(&format!("failed {tried} attempts in a row since ")),
        "{reason}"
    );
    // Ada is told, once, by a queued message and its job.
    assert_told_once(&world, hook).await;
    let Rendered::Letter(letter) = told else {
        panic!("the message to Ada is sent while the endpoint is disabled: {told:?}")
    };
    assert_eq!(letter.subject, "A webhook endpoint of yours was disabled");
    assert!(
        letter.text.contains(&receiver.url("hook")) && letter.text.contains(&reason),
        "{}",
        letter.text
    );
    // Nothing sent, nothing new queued while disabled: the second pool.low has no delivery.
    assert_eq!(while_disabled, 0);
    let (events, queued): (i64, i64) = sqlx::query_as(
        "select (select count(*) from webhook_event where type = 'pool.low' and seller_id = $1),
                (select count(*) from webhook_delivery where endpoint_id = $2)",
    )
    .bind(ada.id)
    .bind(hook)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!((events, queued), (2, 1));
    // Enabled: its failures forgotten, and what waited delivered with its webhook-id.
    assert_eq!(enabled.state, "enabled");
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!(
        (enabled.failing_since, enabled.consecutive_failures),
        (None, 0)
    );
    let sent = receiver.requests();
    assert_eq!(sent.len(), tried + 1);
    let last = &sent[tried];
    assert_eq!(
        (last.kind().as_str(), last.answered),
        ("pool.low", Answer::Ok)
    );
    assert!(sent.iter().all(|r| r.id() == last.id()));
    let after = endpoint_now().await;
    assert!(after.last_success_at.is_some() && after.failing_since.is_none());
    // A message that had not left yet when Ada enabled it again is not sent.
    assert!(matches!(disabled_message(&world).await, Rendered::Skip(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_secret_signs_beside_the_new_one_for_its_overlap_and_not_after_an_overlap_of_zero()
{
    // Arrange
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    let (hook, first) = endpoint(
        &world,
        Some(house(&world).await),
        &[],
        false,
        &receiver.url("hook"),
    )
    .await;
    let actor = Actor::Admin("test".into());
    let roll = async |overlap: Duration| {
        let envelope = &world.market.envelope;
        endpoints::roll_secret(
            world.pool(),
            envelope,
            Scope::Operator,
            &actor,
            hook,
            overlap,
        )
        .await
        .unwrap()
        .0
    };
    let deliverer = local_deliverer(&world, patient());

    // Act: rolled with an hour's overlap, a sale sent; rolled with none, a refund sent.
    let second = roll(Duration::from_secs(3600)).await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    deliverer.drain().await.unwrap();
    let during = receiver.requests();
    let third = roll(Duration::ZERO).await;
    world.deliver_refund("evt_refund", &session).await;
    deliverer.drain().await.unwrap();
    let after = receiver.requests()[during.len()..].to_vec();

    // Assert
    let all = [&first, &second, &third];
    assert_eq!(during.len(), 2);
    for request in &during {
        let signed = signatures(request);
        assert_eq!(signed.len(), 2, "{signed:?}");
        assert!(signed.iter().all(|s| s.starts_with("v1,")), "{signed:?}");
        assert_eq!(verified_by(request, &all), [true, true, false]);
    }
    let [refund] = &after[..] else {
        panic!("{} requests", after.len())
    };
    assert_eq!(refund.kind(), "purchase.refunded");
    assert_eq!(signatures(refund).len(), 1);
    assert_eq!(verified_by(refund, &all), [false, false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_roll_reseals_every_webhook_secret_and_deliveries_are_signed_under_the_new_key_alone()
{
    // Arrange: an endpoint with two live secrets sealed under the test key; a new key listed first.
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    let (hook, old) = endpoint(
        &world,
        Some(house(&world).await),
        &[],
        false,
        &receiver.url("hook"),
    )
    .await;
    let actor = Actor::Admin("test".into());
    let hour = Duration::from_secs(3600);
    let envelope = &world.market.envelope;
    let (new, until) =
        endpoints::roll_secret(world.pool(), envelope, Scope::Operator, &actor, hook, hour)
            .await
            .unwrap();
    // What the roll says of the previous secret is what the database keeps.
    let kept: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "select expires_at from webhook_secret where endpoint_id = $1 and expires_at is not null",
    )
    .bind(hook)
    .fetch_one(world.pool())
    .await
    .unwrap();
    assert_eq!(until, kept);
    let key = DataKeys::generate_entry(&KeyId::parse("k2").unwrap());
    let both = DataKeys::parse(&format!("{key},{TEST_KEY}")).unwrap();
    let during = keys::open(world.pool(), both).await.unwrap();

    // Act: the roll, twice; then a sale delivered by an instance holding the new key only.
    let done = keys::rotate(world.pool(), &during).await.unwrap();
    let again = keys::rotate(world.pool(), &during).await.unwrap();
    let alone = keys::open(world.pool(), DataKeys::parse(&key).unwrap())
        .await
        .unwrap();
    let market = Market::new(
        world.pool().clone(),
        world.market.xano.clone(),
        Arc::new(alone),
        world.market.jobs.clone(),
    );
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;
    let guard = Guard::allowing(true, loopback());
    deliverer(&market, guard, patient()).drain().await.unwrap();

    // Assert
    assert_eq!((done.webhook_secrets, again.webhook_secrets), (2, 0));
    let under_old: i64 =
        sqlx::query_scalar("select count(*) from webhook_secret where key_id <> 'k2'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(under_old, 0);
    let sent = receiver.requests();
    assert_eq!(sent.len(), 2, "paid and fulfilled");
    for request in &sent {
        assert_eq!(verified_by(request, &[&new, &old]), [true, true]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_pointing_at_loopback_is_refused_at_delivery_time_and_the_receiver_gets_nothing()
 {
    // Arrange: endpoints saved while loopback was allowed, by address and by name.
    let world = World::new(1, 3).await;
    world.fill_pool().await;
    let receiver = Receiver::start().await;
    let house = Some(house(&world).await);
    let paid = [EventType::PurchasePaid];
    let (by_address, _) = endpoint(&world, house, &paid, false, &receiver.url("hook")).await;
    let (by_name, _) = endpoint(&world, house, &paid, false, &receiver.url_by_name("hook")).await;
    let (purchase, session) = world.checkout().await;
    world.deliver_paid("evt_paid", purchase, &session).await;

    // Act: an instance whose guard allows http but no private address.
    let attempts = deliverer(&world.market, Guard::allowing(true, vec![]), patient())
        .drain()
        .await
        .unwrap();

    // Assert
    assert_eq!(attempts, 2);
    assert_eq!(receiver.accepted(), 0, "the receiver was reached");
    let logged: Vec<(Uuid, Option<i32>, String, String)> = sqlx::query_as(
        "select a.endpoint_id, a.status, a.error, d.state from webhook_attempt a
         join webhook_delivery d using (delivery_id)",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert_eq!(logged.len(), 2);
    for (endpoint, status, error, state) in &logged {
        assert_eq!(
            (*status, state.as_str()),
            (None, "pending"),
            "retried later"
        );
        if *endpoint == by_address {
            assert_eq!(
                *error,
                format!("{GUARD_REFUSED}127.0.0.1 is a loopback address")
            );
        } else {
            assert_eq!(*endpoint, by_name);
            let resolved = format!("{GUARD_REFUSED}localhost resolves to ");
            assert!(error.starts_with(&resolved), "{error}");
            assert!(error.ends_with(", a loopback address"), "{error}");
        }
    }
}
