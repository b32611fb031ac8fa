//! Sellers paid through Stripe Connect, at the schema's level: the house is paid directly and can
//! never be given a connected account; a purchase's split is whole and never more than its price;
//! a purchase records its listing's seller whatever inserts it; the platform's fee is the seller's
//! own rate when one is set, rounded down for the seller.

use market_core::FeeRate;
use market_core::audit::Actor;
use market_core::connect;
use market_core::provider::{ConnectAccounts, HostedLink, ProviderError};
use market_core::sellers;
use market_core::{Conflict, Email, Error};
use uuid::Uuid;

use crate::common::World;

/// A provider that must not be called: the refusals below happen before any call to Stripe.
struct Unreachable;

impl ConnectAccounts for Unreachable {
    async fn create_account(&self, _: Uuid, _: Option<&str>) -> Result<String, ProviderError> {
        panic!("Stripe was called")
    }
    async fn onboarding_link(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<HostedLink, ProviderError> {
        panic!("Stripe was called")
    }
    async fn login_link(&self, _: &str) -> Result<HostedLink, ProviderError> {
        panic!("Stripe was called")
    }
    async fn take_back(&self, _: &str, _: Option<&str>) -> Result<(), ProviderError> {
        panic!("Stripe was called")
    }
}

fn constraint_of(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.constraint().map(str::to_owned))
}

async fn house(world: &World) -> market_core::sellers::Seller {
    sellers::list(world.pool())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.house)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_house_is_paid_directly_and_never_gets_a_connected_account() {
    // Arrange
    let world = World::new(1, 2).await;
    let house = house(&world).await;

    // Act
    let onboarding = connect::onboarding(
        world.pool(),
        &house,
        &Unreachable,
        "https://m.example/r",
        "https://m.example/b",
        &Actor::System,
    )
    .await;
    let login = connect::login_link(world.pool(), house.seller_id, &Unreachable).await;
    let by_hand = sqlx::query("update seller set stripe_account_id = 'acct_1' where house")
        .execute(world.pool())
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(
        onboarding,
        Err(Error::Conflict(Conflict::HouseNotConnected))
    ));
    assert!(matches!(
        login,
        Err(Error::Conflict(Conflict::HouseNotConnected))
    ));
    assert_eq!(
        constraint_of(&by_hand).as_deref(),
        Some("seller_house_is_paid_directly")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_without_a_finished_onboarding_gets_no_dashboard_link_and_stripe_is_not_asked() {
    let world = World::new(1, 2).await;
    let email = Email::parse("ada@example.com").unwrap();
    let (ada, _) = sellers::invite(world.pool(), "Ada", &email, &Actor::System)
        .await
        .unwrap();
    let login = connect::login_link(world.pool(), ada.seller_id, &Unreachable).await;
    assert!(matches!(
        login,
        Err(Error::Conflict(Conflict::StripeNotOnboarded))
    ));
    // Stripe's word without an account is refused by the schema.
    let no_account = sqlx::query(
        "update seller set stripe_charges_enabled = true, stripe_read_at = now() where seller_id = $1",
    )
    .bind(ada.seller_id)
    .execute(world.pool())
    .await
    .unwrap_err();
    assert_eq!(
        constraint_of(&no_account).as_deref(),
        Some("seller_stripe_state_read")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchases_split_is_whole_within_its_price_and_names_its_listings_seller() {
    // Arrange: a pending purchase of the house's tier.
    let world = World::new(1, 2).await;
    let (purchase, _) = world.checkout().await;
    let email = Email::parse("ada@example.com").unwrap();
    let (ada, _) = sellers::invite(world.pool(), "Ada", &email, &Actor::System)
        .await
        .unwrap();
    let pool = world.pool().clone();
    let update = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .bind(purchase)
                .execute(&pool)
                .await
                .unwrap_err()
        }
    };

    // Act / Assert: a destination without a fee, a fee without one, a fee above the price.
    let half = update("update purchase set connect_destination = 'acct_1' where purchase_id = $1");
    assert_eq!(
        constraint_of(&half.await).as_deref(),
        Some("purchase_split_whole")
    );
    let half = update("update purchase set application_fee_amount = 1 where purchase_id = $1");
    assert_eq!(
        constraint_of(&half.await).as_deref(),
        Some("purchase_split_whole")
    );
    let over = update(
        "update purchase set connect_destination = 'acct_1', application_fee_amount = amount + 1
         where purchase_id = $1",
    );
    assert_eq!(
        constraint_of(&over.await).as_deref(),
        Some("purchase_fee_within_price")
    );
    // A purchase inserted for another seller than its listing's.
    let stranger = sqlx::query(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, receipt_hash, seller_id)
         select gen_random_uuid(), tier_id, amount, currency, max_installs, receipt_hash, $2
         from purchase where purchase_id = $1",
    )
    .bind(purchase)
    .bind(ada.seller_id)
    .execute(world.pool())
    .await
    .unwrap_err();
    assert_eq!(
        constraint_of(&stranger).as_deref(),
        Some("purchase_records_its_seller")
    );
    // Made without naming one, it records its listing's.
    let recorded: Uuid =
        sqlx::query_scalar("select seller_id from purchase where purchase_id = $1")
            .bind(purchase)
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(recorded, house(&world).await.seller_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_own_rate_replaces_the_platforms_and_clearing_it_restores_the_platforms() {
    let world = World::new(1, 2).await;
    let email = Email::parse("ada@example.com").unwrap();
    let (ada, _) = sellers::invite(world.pool(), "Ada", &email, &Actor::System)
        .await
        .unwrap();
    let set = connect::set_fee(
        world.pool(),
        ada.seller_id,
        Some(FeeRate::from_bps(250).unwrap()),
        &Actor::System,
    )
    .await
    .unwrap();
    assert_eq!(set.platform_fee_bps, Some(250));
    let cleared = connect::set_fee(world.pool(), ada.seller_id, None, &Actor::System)
        .await
        .unwrap();
    assert_eq!(cleared.platform_fee_bps, None);
    let unknown = connect::set_fee(world.pool(), Uuid::new_v4(), None, &Actor::System).await;
    assert!(matches!(unknown, Err(Error::NotFound("seller"))));
}
