//! One case: its listing, tier and purchases, and how each step is carried out against the
//! database, the Xano simulator and a second instance that can die.

use std::collections::HashMap;
use std::time::Duration;

use market_core::FeeRate;
use market_core::audit::Actor;
use market_core::jobs::runner::Runner;
use market_core::listings::{self, ListingSpec};
use market_core::payments::{self, Delivery, Effect};
use market_core::purchases::{self, NewPurchase};
use market_core::tiers::{self, TierChange};
use market_core::{Canonical, ListingId, Market, PurchaseId, TierId, reconcile};
use market_core::{keys, queue};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sandbox::xano::TokenState;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::spec::{PAID, Purchase, Status, Step, Stripe, TierShape};
use crate::{Env, common, jobs_config};

pub(crate) fn fail(message: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(message.to_string())
}

pub(crate) trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, TestCaseError>;
}

impl<T, E: std::fmt::Debug> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, TestCaseError> {
        self.map_err(|e| fail(format!("{what}: {e:?}")))
    }
}

/// A token row as stored: sealed.
#[derive(sqlx::FromRow)]
struct SealedTokenRow {
    listing_id: ListingId,
    token_key_id: String,
    token_sealed: Vec<u8>,
    state: String,
    purchase_id: Option<PurchaseId>,
    max_installs: i64,
    status: Option<String>,
}

/// A token row, its token opened.
pub(crate) struct TokenRow {
    pub(crate) token: String,
    pub(crate) state: String,
    pub(crate) purchase_id: Option<PurchaseId>,
    pub(crate) max_installs: i64,
    /// Its purchase's status, read in the same statement.
    pub(crate) status: Option<String>,
}

/// One case: its listing and tier, the model, the delivered events, the background instance.
pub(crate) struct Case<'a> {
    pub(crate) env: &'a Env,
    pub(crate) canonical: String,
    pub(crate) listing: ListingId,
    pub(crate) tier: TierId,
    pub(crate) shape: TierShape,
    pub(crate) purchases: Vec<Purchase>,
    pub(crate) events: Vec<(String, Stripe, usize)>,
    /// The second instance's task (aborted when dropped, so a failed case leaves none behind)
    /// and its own connections, which die with it as a process's would. (Sharing this process's
    /// pool would be unrealistic: sqlx 0.8.6 returns a connection whose `begin()` was cancelled
    /// mid-flight to the pool still inside a transaction, sqlx#2805/#4393, and the survivors'
    /// statements would then hang on its locks.)
    pub(crate) instance: JoinSet<()>,
    pub(crate) instance_db: Option<PgPool>,
}

impl<'a> Case<'a> {
    pub(crate) async fn new(env: &'a Env, shape: TierShape) -> Result<Self, TestCaseError> {
        // A passing case leaves no due job; a failed one may, and shrinking must not trip on it.
        let (sim, pool, admin) = (
            &env.world.sim,
            env.world.pool(),
            Actor::Admin("model".into()),
        );
        sim.clear_faults();
        sim.clear_calls();
        sim.set_access_token_state(TokenState::Valid);
        market_core::health::record_success(&env.market)
            .await
            .or_fail("health")?;
        sqlx::query(
            "update job set state = 'dead', lease_owner = null, parked_for_listing = null,
                            finished_at = now(), last_error = 'left over'
             where state in ('queued', 'running', 'parked') and due_at < now() + interval '1 hour'",
        )
        .execute(pool)
        .await
        .or_fail("clear leftovers")?;

        let canonical = format!("model_{}", Uuid::new_v4().simple());
        sim.add_snippet(&canonical, "Model snippet");
        let spec = ListingSpec {
            canonical: Canonical::parse(&canonical).unwrap(),
            title: "Model snippet".into(),
            description: String::new(),
            active: true,
        };
        listings::prepare_snippet(&env.market.xano, &spec)
            .await
            .or_fail("snippet")?;
        let mut conn = pool.acquire().await.or_fail("connection")?;
        let (listing, _) = listings::upsert(&mut conn, &spec, &admin)
            .await
            .or_fail("listing")?;
        let TierShape {
            max_installs,
            low_water,
            target,
        } = shape;
        let tier = common::tier_spec("solo", 1900, max_installs, low_water, target);
        let change = tiers::apply(&mut conn, listing.listing_id, &tier, &admin).await;
        let Ok(TierChange::Created { tier_id }) = change else {
            return Err(fail(format!("tier: {change:?}")));
        };
        let (purchases, events, instance) = (Vec::new(), Vec::new(), JoinSet::new());
        let listing = listing.listing_id;
        Ok(Self {
            env,
            canonical,
            listing,
            tier: tier_id,
            shape,
            purchases,
            events,
            instance,
            instance_db: None,
        })
    }

    pub(crate) fn pool(&self) -> &PgPool {
        self.env.world.pool()
    }

    pub(crate) async fn apply(
        &self,
        event: Option<&str>,
        p: usize,
        fact: Stripe,
    ) -> Result<Effect, TestCaseError> {
        let delivery = event.map(|event_id| Delivery {
            event_id,
            event_type: fact.event_type(),
            livemode: false,
        });
        let fact = self.purchases[p].fact(fact);
        let applied = payments::apply(self.pool(), delivery, &fact, &Actor::Stripe).await;
        Ok(applied.or_fail("payments::apply")?.effect)
    }

    pub(crate) fn fresh_event(&mut self, p: usize, fact: Stripe) -> String {
        let id = format!("evt_{}", Uuid::new_v4().simple());
        self.events.push((id.clone(), fact, p));
        id
    }

    pub(crate) async fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let (sim, n) = (&self.env.world.sim, self.purchases.len());
        match step {
            Step::Create if n < 4 => {
                let new = NewPurchase {
                    tier: self.tier,
                    email: None,
                    idempotency_key: None,
                };
                let created = purchases::create(
                    self.pool(),
                    &self.env.world.receipts,
                    &new,
                    FeeRate::DEFAULT,
                    &Actor::Buyer,
                );
                let id = created.await.or_fail("checkout")?.purchase.purchase_id;
                let session = format!("cs_model_{}", id.0.simple());
                let attached = purchases::attach_checkout_session(
                    self.pool(),
                    id,
                    &session,
                    "https://pay.example",
                );
                attached.await.or_fail("session")?;
                let (status, linked, refunded, disputed) = (Status::Pending, false, false, false);
                self.purchases.push(Purchase {
                    id,
                    session,
                    status,
                    linked,
                    refunded,
                    disputed,
                    dispute_outcome: None,
                });
            }
            &Step::Deliver(p, fact) if n > 0 => {
                let event = self.fresh_event(p % n, fact);
                self.apply(Some(&event), p % n, fact).await?;
                self.purchases[p % n].apply(fact);
            }
            &Step::Redeliver(e) if !self.events.is_empty() => {
                let (event, fact, p) = self.events[e % self.events.len()].clone();
                let effect = self.apply(Some(&event), p, fact).await?;
                prop_assert_eq!(effect, Effect::Duplicate, "a redelivery had an effect");
            }
            &Step::SuccessPage(p) if n > 0 => {
                self.apply(None, p % n, PAID).await?;
                self.purchases[p % n].apply(PAID);
            }
            &Step::PaidRacesRefund(p) if n > 0 => self.paid_races_refund(p % n).await?,
            Step::Drain => {
                self.env.runner.drain().await.or_fail("drain")?;
            }
            &Step::ClaimAndDie { jobs, lease_ms } => {
                let lease = Duration::from_millis(lease_ms);
                queue::claim(self.pool(), Uuid::new_v4(), jobs, lease)
                    .await
                    .or_fail("claim")?;
            }
            Step::InstanceUp if self.instance.is_empty() => {
                let options = self.env.world.db.connect_options();
                let db = PgPoolOptions::new()
                    .max_connections(4)
                    .connect_lazy_with(options);
                let xano = self.env.market.xano.clone();
                let envelope = self.env.market.envelope.clone();
                let runner = Runner::new(Market::new(db.clone(), xano, envelope, jobs_config()));
                self.instance_db = Some(db);
                self.instance.spawn(async move {
                    loop {
                        runner
                            .drain()
                            .await
                            .expect("the background instance's drain");
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                });
            }
            Step::InstanceDies => self.kill_instance().await?,
            Step::Xano(fault) => sim.inject(fault.clone()),
            Step::XanoHealed => sim.clear_faults(),
            &Step::Credential(state) => sim.set_access_token_state(state),
            &Step::SnippetForbidden(on) => sim.set_snippet_forbidden(&self.canonical, on),
            Step::Reconcile => {
                match reconcile::listing(&self.env.market, self.listing, &Actor::System).await {
                    Ok(_) | Err(market_core::Error::Xano(_)) => {}
                    Err(e) => return Err(fail(format!("reconcile: {e:?}"))),
                }
            }
            _ => {} // about purchases or events that do not exist (yet), or a second instance
        }
        Ok(())
    }

    /// Whatever order PostgreSQL lets the racers run in, the outcome must be a serial order's.
    pub(crate) async fn paid_races_refund(&mut self, p: usize) -> Result<(), TestCaseError> {
        let (paid_event, refund_event) = (
            self.fresh_event(p, PAID),
            self.fresh_event(p, Stripe::Refund),
        );
        let (a, b, c) = tokio::join!(
            self.apply(Some(&paid_event), p, PAID),
            self.apply(None, p, PAID),
            self.apply(Some(&refund_event), p, Stripe::Refund),
        );
        a?;
        b?;
        c?;
        let serial_orders = (0..3).map(|refund_at| {
            let mut model = self.purchases[p].clone();
            (0..3).for_each(|i| model.apply(if i == refund_at { Stripe::Refund } else { PAID }));
            model
        });
        let db = self
            .statuses()
            .await?
            .remove(&self.purchases[p].id)
            .unwrap_or_default();
        let outcomes: Vec<Purchase> = serial_orders.collect();
        let Some(outcome) = outcomes.iter().find(|m| m.status.matches(&db)) else {
            return Err(fail(format!(
                "the race ended {db}, which no serial order gives: {outcomes:?}"
            )));
        };
        self.purchases[p] = outcome.clone();
        Ok(())
    }

    pub(crate) async fn kill_instance(&mut self) -> Result<(), TestCaseError> {
        self.instance.abort_all();
        while let Some(ended) = self.instance.join_next().await {
            if let Err(e) = ended
                && e.is_panic()
            {
                return Err(fail(format!("the background instance panicked: {e:?}")));
            }
        }
        // Its sessions end, so PostgreSQL rolls back whatever it was in the middle of.
        if let Some(db) = self.instance_db.take() {
            db.close().await;
        }
        Ok(())
    }

    pub(crate) async fn statuses(&self) -> Result<HashMap<PurchaseId, String>, TestCaseError> {
        let rows = sqlx::query_as::<_, (PurchaseId, String)>(
            "select purchase_id, status::text from purchase where tier_id = $1",
        );
        Ok(rows
            .bind(self.tier)
            .fetch_all(self.pool())
            .await
            .or_fail("statuses")?
            .into_iter()
            .collect())
    }

    pub(crate) async fn tokens(&self) -> Result<Vec<TokenRow>, TestCaseError> {
        let rows = sqlx::query_as::<_, SealedTokenRow>(
            "select it.listing_id, it.token_key_id, it.token_sealed, it.state::text as state,
                    it.purchase_id, it.max_installs, p.status::text as status
             from install_token it left join purchase p using (purchase_id) where it.listing_id = $1",
        );
        let rows = rows
            .bind(self.listing)
            .fetch_all(self.pool())
            .await
            .or_fail("tokens")?;
        rows.into_iter()
            .map(|row| {
                let token = keys::open_token(
                    &self.env.market.envelope,
                    row.listing_id,
                    row.token_key_id,
                    row.token_sealed,
                )
                .or_fail("open a token")?;
                Ok(TokenRow {
                    token: token.expose().to_owned(),
                    state: row.state,
                    purchase_id: row.purchase_id,
                    max_installs: row.max_installs,
                    status: row.status,
                })
            })
            .collect()
    }
}
