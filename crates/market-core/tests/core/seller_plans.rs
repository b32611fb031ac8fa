//! A seller declares their Xano plan: their client is paced by it (the free plan's 10 requests per
//! 20 seconds, or the service's own limit for a paid plan), rebuilt when the plan changes, and the
//! declaration stays when a later token is sent without one.

use market_core::accounts;
use market_core::audit::Actor;
use market_core::seller_xano::{self, XanoPlan};
use market_core::{Email, Error, sellers};
use master_api::RateLimit;
use sandbox::xano::SimAccount;
use secrecy::SecretString;

use crate::common::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sellers_client_is_paced_by_the_plan_they_declared_and_keeps_it_on_a_new_token() {
    // Arrange: Ada with her own Xano account.
    let world = World::new(1, 2).await;
    let email = Email::parse("ada@example.com").unwrap();
    let (ada, _) = sellers::invite(world.pool(), "Ada", &email, &Actor::System)
        .await
        .unwrap();
    let token = world.sim.add_account(SimAccount {
        id: "77".into(),
        name: "Ada".into(),
        email: "ada@example.test".into(),
    });
    let set = |plan: Option<XanoPlan>, token: String| {
        let market = world.market.clone();
        async move {
            seller_xano::set(
                &market,
                ada.seller_id,
                SecretString::from(token),
                plan,
                &Actor::System,
            )
            .await
        }
    };
    let pace = || async {
        accounts::for_seller(&world.market, ada.seller_id)
            .await
            .unwrap()
            .client
            .rate_limit()
    };

    // Act / Assert: free, then a new token without a plan (still free), then paid.
    assert_eq!(
        set(Some(XanoPlan::Free), token.clone()).await.unwrap().plan,
        "free"
    );
    assert_eq!(pace().await, RateLimit::XANO_FREE_PLAN);
    let second = world.sim.add_access_token_for(&token).unwrap();
    assert_eq!(set(None, second.clone()).await.unwrap().plan, "free");
    assert_eq!(pace().await, RateLimit::XANO_FREE_PLAN);
    assert_eq!(
        set(Some(XanoPlan::Paid), second).await.unwrap().plan,
        "paid"
    );
    assert_eq!(pace().await, world.market.xano.rate_limit());
    assert_ne!(world.market.xano.rate_limit(), RateLimit::XANO_FREE_PLAN);
    assert!(matches!(
        XanoPlan::parse("enterprise"),
        Err(Error::Invalid { .. })
    ));
}
