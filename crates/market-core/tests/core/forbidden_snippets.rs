//! Xano refuses one snippet (403) while the credential works (self-healing, finding 1): that
//! listing's work parks, visibly, and every other listing's goes on.
//!
//! Proves: the forbidden listing's jobs park for it (recorded, audited, listed for operators) while
//! another listing's purchases are served and the credential stays healthy; a probe that finds the
//! snippet allowed again lifts the refusal and the parked purchases get their tokens; and the schema
//! keeps every parked job tied to a recorded refusal, so none can be left with nothing to resume it.

use std::time::Duration;

use crate::common::{CANONICAL, World, job_row, test_jobs_config, tier_spec};
use market_core::JobsConfig;
use market_core::audit::Actor;
use market_core::listings::{self, ListingSpec};
use market_core::payments::Effect;
use market_core::queue::{self, Finish, JobKind};
use market_core::tiers::{self, TierChange};
use market_core::{Canonical, ListingId, PurchaseId, TierId, health};
use testkit::TestDb;
use uuid::Uuid;

const OTHER: &str = "snip_B-2";

/// Probes an hour apart: a test makes them due when it means to (`probes_due`).
fn patient_probes() -> JobsConfig {
    JobsConfig {
        probe_interval: Duration::from_secs(3600),
        ..test_jobs_config()
    }
}

/// A second listing, of its own snippet, with a `solo` tier whose pool is empty.
async fn second_listing(world: &World) -> (ListingId, TierId) {
    world.sim.add_snippet(OTHER, "Another snippet");
    let spec = ListingSpec {
        canonical: Canonical::parse(OTHER).unwrap(),
        title: "Another snippet".into(),
        description: String::new(),
        active: true,
    };
    listings::prepare_snippet(&world.market.xano, &spec)
        .await
        .unwrap();
    let admin = Actor::Admin("test".into());
    let mut conn = world.pool().acquire().await.unwrap();
    let (listing, _) = listings::upsert(&mut conn, &spec, &admin).await.unwrap();
    let solo = tier_spec("solo", 1900, 5, 0, 0);
    let change = tiers::apply(&mut conn, listing.listing_id, &solo, &admin).await;
    let Ok(TierChange::Created { tier_id }) = change else {
        panic!("{change:?}")
    };
    (listing.listing_id, tier_id)
}

async fn pay(world: &World, tier: TierId, event: &str) -> PurchaseId {
    let (purchase, session) = world.checkout_tier(tier).await;
    let paid = world.deliver_paid(event, purchase, &session).await;
    assert_eq!(paid.effect, Effect::AwaitingToken, "the pool is empty");
    purchase
}

async fn audits(world: &World, action: &str, listing: ListingId) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where action = $1 and listing_id = $2")
        .bind(action)
        .bind(listing)
        .fetch_one(world.pool())
        .await
        .unwrap()
}

/// Makes every refusal's probe due now (probes are an hour apart in these tests).
async fn probes_due(world: &World) {
    sqlx::query("update xano_forbidden_listing set last_checked_at = now() - interval '2 hours'")
        .execute(world.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snippet_answering_403_parks_only_its_listings_jobs_until_a_probe_finds_it_allowed_again()
{
    // Arrange: two listings with empty pools; Xano forbids the first one's snippet, and two
    // purchases of it were paid and met the refusal.
    let world = World::with_config(0, 0, patient_probes()).await;
    let (other, other_tier) = second_listing(&world).await;
    world.fill_pool().await;
    world.sim.set_snippet_forbidden(CANONICAL, true);
    let forbidden = [
        pay(&world, world.tier, "evt_a1").await,
        pay(&world, world.tier, "evt_a2").await,
    ];
    world.drain().await;

    // Act: two purchases of the other listing are paid.
    let served = [
        pay(&world, other_tier, "evt_b1").await,
        pay(&world, other_tier, "evt_b2").await,
    ];
    world.drain().await;

    // Assert: the other listing's buyers are served; the forbidden one's wait, parked and shown.
    for purchase in served {
        assert_eq!(world.status_of(purchase).await, "fulfilled");
    }
    for purchase in forbidden {
        assert_eq!(world.status_of(purchase).await, "paid");
    }
    let parked: Vec<(String, Option<ListingId>)> = sqlx::query_as(
        "select kind, parked_for_listing from job where state = 'parked' order by job_id",
    )
    .fetch_all(world.pool())
    .await
    .unwrap();
    assert_eq!(
        parked,
        vec![
            ("mint_for_purchase".to_owned(), Some(world.listing)),
            ("mint_for_purchase".to_owned(), Some(world.listing)),
        ]
    );
    let shown = health::forbidden_listings(world.pool()).await.unwrap();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(
        (
            shown[0].listing_id,
            shown[0].canonical.as_str(),
            shown[0].parked_jobs
        ),
        (world.listing, CANONICAL, 2)
    );
    assert_eq!(shown[0].seen_by, world.market.credential().display_id());
    assert_eq!(
        audits(&world, "xano.snippet_forbidden", world.listing).await,
        1
    );
    assert!(
        !health::refused(&world.market).await.unwrap(),
        "the credential works"
    );
    assert_ne!(other, world.listing);

    // Act: a probe while Xano still refuses changes nothing; once it allows the snippet, the next
    // due probe lifts the refusal.
    probes_due(&world).await;
    world.runner.sweep().await.unwrap();
    let still = health::forbidden_listings(world.pool())
        .await
        .unwrap()
        .len();
    world.sim.set_snippet_forbidden(CANONICAL, false);
    probes_due(&world).await;
    world.runner.sweep().await.unwrap();
    world.drain().await;

    // Assert
    assert_eq!(still, 1);
    for purchase in forbidden {
        assert_eq!(world.status_of(purchase).await, "fulfilled");
        assert_eq!(world.live_tokens_of(purchase).await.len(), 1);
    }
    assert!(
        health::forbidden_listings(world.pool())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        audits(&world, "xano.snippet_allowed", world.listing).await,
        1
    );
}

/// A database with one listing and two running jobs, for the park and lift races.
async fn two_running_jobs(db: &TestDb) -> (ListingId, queue::Lease, queue::Lease) {
    let pool = db.pool();
    let listing: ListingId = sqlx::query_scalar(
        "insert into listing (canonical, title) values ('snip', 'Snippet') returning listing_id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for subject in ["early", "late"] {
        queue::enqueue(&mut conn, JobKind::ReconcileListing, subject)
            .await
            .unwrap();
    }
    drop(conn);
    let jobs = queue::claim(pool, Uuid::new_v4(), 10, Duration::from_secs(60))
        .await
        .unwrap();
    let lease_of = |subject: &str| jobs.iter().find(|j| j.subject == subject).unwrap().lease();
    (listing, lease_of("early"), lease_of("late"))
}

fn park(listing: ListingId) -> Finish {
    Finish::Park {
        listing,
        credential: "0a1b2c3d".into(),
        error: "the access token lacks rights for this resource (403 Forbidden)".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_park_that_lands_after_the_refusal_was_lifted_records_it_again_so_a_probe_still_lifts_it()
{
    // Arrange
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let pool = db.pool();
    let (listing, early, late) = two_running_jobs(&db).await;

    // Act: one worker parks before a probe lifts the refusal, the other only after.
    assert!(queue::finish(pool, early, &park(listing)).await.unwrap());
    assert!(health::lift(pool, listing, &Actor::System).await.unwrap());
    assert!(queue::finish(pool, late, &park(listing)).await.unwrap());
    let refusals = health::forbidden_listings(pool).await.unwrap();

    // Assert: the early job was resumed by the lift; the late one waits for a refusal that exists.
    assert_eq!(job_row(pool, early.job_id).await.state, "queued");
    assert_eq!(job_row(pool, late.job_id).await.state, "parked");
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].parked_jobs, 1);
    assert!(health::lift(pool, listing, &Actor::System).await.unwrap());
    assert_eq!(job_row(pool, late.job_id).await.state, "queued");
    assert!(
        !health::lift(pool, listing, &Actor::System).await.unwrap(),
        "nothing left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_refuses_a_parked_job_without_a_recorded_refusal_to_resume_it() {
    // Arrange: a job parked for a listing Xano forbids.
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let pool = db.pool();
    let (listing, early, late) = two_running_jobs(&db).await;
    assert!(queue::finish(pool, early, &park(listing)).await.unwrap());

    // Act
    let forget_refusal = sqlx::query("delete from xano_forbidden_listing where listing_id = $1")
        .bind(listing)
        .execute(pool)
        .await;
    let park_for_nothing =
        sqlx::query("update job set state = 'parked', lease_owner = null where job_id = $1")
            .bind(late.job_id)
            .execute(pool)
            .await;

    // Assert
    assert!(forget_refusal.is_err(), "a parked job holds its refusal");
    assert!(park_for_nothing.is_err(), "a parked job names its refusal");
}
