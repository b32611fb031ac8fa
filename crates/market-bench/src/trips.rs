//! The round trips of one fulfilment, counted on the wire: `payments::apply` runs in this process
//! through the counting proxy of `wire.rs`, on purchases that pgbench's data set reserves for it.

use std::time::Duration;

use anyhow::{Context, bail};
use uuid::Uuid;

use crate::wire;

/// Runs `payments::apply` in-process for pgbench purchases 1 and 2 through the counting proxy,
/// with the pool settings the server uses: the first run prepares the statements (their text is
/// returned), the second is the steady state whose round trips are counted.
pub async fn count_round_trips(database_url: &str) -> anyhow::Result<wire::Trips> {
    use market_core::audit::Actor;
    use market_core::payments::{self, Delivery, Effect, Fact, SessionFacts, SessionPayment};

    let mut url: url::Url = database_url.parse()?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .context("PostgreSQL address")?;
    let wire = wire::Wire::start(upstream).await?;
    url.set_host(Some("127.0.0.1"))?;
    url.set_port(Some(wire.addr.port()))
        .map_err(|()| anyhow::anyhow!("port"))?;
    url.query_pairs_mut().append_pair("sslmode", "disable");
    let options: sqlx::postgres::PgConnectOptions = url.as_str().parse()?;
    let pool = market_core::db::connect(
        options,
        &market_core::db::DbConfig {
            max_connections: 1,
            ..market_core::db::DbConfig::default()
        },
    )
    .await?;

    let mut statements = Vec::new();
    let mut steady = wire::Trips::default();
    for n in 1..=2u64 {
        let purchase: Uuid = format!("00000000-0000-4000-8000-{n:012}").parse()?;
        let facts = SessionFacts {
            payer_email: None,
            purchase: market_core::PurchaseId(purchase),
            session_id: format!("cs_pgb_{n}"),
            payment_intent: Some(format!("pi_pgb_{n}")),
            payment: SessionPayment::Paid,
            charge: None,
        };
        let event_id = format!("evt_pgb_{n}");
        // Let the pool settle (its connection open and idle) before counting.
        tokio::time::sleep(Duration::from_millis(20)).await;
        wire.reset();
        let outcome = payments::apply(
            &pool,
            Some(Delivery {
                event_id: &event_id,
                event_type: "checkout.session.completed",
                livemode: false,
            }),
            &Fact::CheckoutCompleted(facts),
            &Actor::Stripe,
        )
        .await?;
        if !matches!(outcome.effect, Effect::Fulfilled { .. }) {
            bail!("in-process fulfilment of pgbench purchase {n}: {outcome:?}");
        }
        let trips = wire.take();
        if n == 1 {
            statements = trips.sql;
        } else {
            steady = trips;
        }
    }
    pool.close().await;
    Ok(wire::Trips {
        sql: statements,
        ..steady
    })
}
