//! The round trips of one fulfilment, counted on the wire: `payments::apply` runs in this process
//! through the recording proxy of `wire.rs`, on purchases that pgbench's data set reserves for it
//! (`pgbench::prepare`), exactly as the webhook handler calls it. What the proxy records is also
//! what `replay.rs` turns into the pgbench script of limit (a2), so the count and the replay follow
//! whatever SQL `market-core` sends: several statements in a transaction, or one function call.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::pgbench::{self, Keys};
use crate::wire;

/// The two in-process fulfilments: the first prepares the statements, the second is the steady
/// state whose round trips are counted and replayed. Both are kept: what differs between them
/// (other than the purchase's own identifiers) varies from one fulfilment to the next.
#[derive(Debug, Clone)]
pub struct Recording {
    pub first: wire::Trips,
    pub steady: wire::Trips,
    /// The pgbench purchase numbers of the two runs.
    pub numbers: [u64; 2],
}

/// Runs `payments::apply` in-process for pgbench purchases 1 and 2 through the recording proxy,
/// with the pool settings the server uses.
pub async fn record_fulfilment(database_url: &str) -> anyhow::Result<Recording> {
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

    let numbers = [1, 2];
    let mut runs = Vec::new();
    for n in numbers {
        let keys = Keys::of(pgbench::PGBENCH, n);
        let facts = SessionFacts {
            payer_email: None,
            purchase: market_core::PurchaseId(keys.purchase),
            session_id: keys.session.clone(),
            payment_intent: Some(keys.payment_intent.clone()),
            payment: SessionPayment::Paid,
            charge: None,
        };
        // Let the pool settle (its connection open and idle) before recording.
        tokio::time::sleep(Duration::from_millis(20)).await;
        wire.reset();
        let outcome = payments::apply(
            &pool,
            Some(Delivery {
                event_id: &keys.event,
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
        runs.push(wire.take());
    }
    pool.close().await;
    let steady = runs.pop().unwrap_or_default();
    let first = runs.pop().unwrap_or_default();
    Ok(Recording {
        first,
        steady,
        numbers,
    })
}
