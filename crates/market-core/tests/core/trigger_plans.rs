//! The checks on the fulfilment's path whose bodies migration 33 rewrote so that their cost does
//! not depend on a cached plan: they still refuse what they refused.

use crate::common::World;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn i3_refuses_a_token_assigned_to_a_pending_purchase_at_every_try_on_one_connection() {
    // Arrange: a pending purchase and a full pool; one connection, so that from the sixth try on
    // PostgreSQL may run the trigger's statements with a generic plan cached by the first five.
    let world = World::new(1, 2).await;
    world.fill_pool().await;
    let (pending, _) = world.checkout().await;
    let mut conn = PgConnection::connect_with(&world.db.connect_options())
        .await
        .unwrap();

    // Act: the token assigned outside fulfilment, eight times.
    let mut refusals = Vec::new();
    for _ in 0..8 {
        let assigned = sqlx::query(
            "update install_token set state = 'assigned', purchase_id = $1, assigned_at = now()
             where install_token_id = (select min(install_token_id) from install_token
                                       where state = 'available')",
        )
        .bind(pending)
        .execute(&mut conn)
        .await;
        refusals.push(match assigned {
            Err(sqlx::Error::Database(e)) => (
                e.code().map(std::borrow::Cow::into_owned),
                e.message().to_owned(),
            ),
            other => panic!("accepted: {other:?}"),
        });
    }

    // Assert: refused each time by I3 at commit, and the pool is whole.
    for (code, message) in &refusals {
        assert_eq!(code.as_deref(), Some("23514"), "{message}");
        assert!(
            message.contains("neither fulfilled nor reinstated"),
            "{message}"
        );
    }
    assert_eq!(world.status_of(pending).await, "pending");
    let available: i64 =
        sqlx::query_scalar("select count(*) from install_token where state = 'available'")
            .fetch_one(world.pool())
            .await
            .unwrap();
    assert_eq!(available, 2);
}
