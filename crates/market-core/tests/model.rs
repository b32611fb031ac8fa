//! A property-based state-machine test of the whole promise: random histories of Stripe facts
//! (fresh, redelivered, racing, in any order), job runs, Xano faults, dying instances and
//! reconciliations, checked against a model of the purchase state machine after every step.
//!
//! After each step: every purchase's status is the model's; **I1** at most one live token
//! (assigned or revoking) per purchase; **I3** an assigned token's purchase is paid in the model and
//! fulfilled in the database, and the token is live at Xano; **I5** every token carries its tier's
//! `max_installs`, in the database and at Xano. After healing every fault, settling the jobs and
//! reconciling: **I2** every paid purchase holds exactly one live token and every other none; **I4**
//! Xano's live tokens are exactly the database's; a second reconciliation finds nothing; no job
//! gave up.
//!
//! One database and one simulator serve all cases; each case sells its own snippet (listing) and
//! tier and checks only those. 500 cases by default, `MARKET_PROPTEST_CASES=10000` for more. A
//! failure prints the minimal step sequence, one step per line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::World;
use market_core::audit::Actor;
use market_core::jobs::{queue, runner::Runner};
use market_core::listings::{self, ListingSpec};
use market_core::payments::{self, Delivery, Effect, Fact, SessionFacts, SessionPayment};
use market_core::purchases::{self, NewPurchase};
use market_core::tiers::{self, TierChange};
use market_core::{Canonical, JobsConfig, ListingId, Market, PurchaseId, TierId, reconcile};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};
use sandbox::xano::{Fault, TokenState};
use secrecy::SecretString;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A purchase's status in the model. `Paid` stands for paid or fulfilled: owed one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Pending,
    Paid,
    Refunded,
    Disputed,
    Expired,
    Failed,
}

impl Status {
    /// The state machine: monotonic, terminal statuses absorb everything.
    fn after(self, event: Status) -> Self {
        use Status::{Disputed, Expired, Failed, Paid, Pending, Refunded};
        match (self, event) {
            (Pending, Paid | Expired | Failed) | (Pending | Paid, Refunded | Disputed) => event,
            (unchanged, _) => unchanged,
        }
    }

    fn matches(self, db: &str) -> bool {
        match self {
            Self::Paid => db == "paid" || db == "fulfilled",
            other => format!("{other:?}").to_lowercase() == db,
        }
    }
}

/// A Stripe fact about one purchase.
#[derive(Clone, Copy, Debug)]
enum Stripe {
    Completed { paid: bool },
    AsyncSucceeded,
    AsyncFailed,
    Expired,
    Refund,
    PartialRefund,
    Dispute,
}

const PAID: Stripe = Stripe::Completed { paid: true };

impl Stripe {
    fn event_type(self) -> &'static str {
        match self {
            Self::Completed { .. } => "checkout.session.completed",
            Self::AsyncSucceeded => "checkout.session.async_payment_succeeded",
            Self::AsyncFailed => "checkout.session.async_payment_failed",
            Self::Expired => "checkout.session.expired",
            Self::Refund | Self::PartialRefund => "charge.refunded",
            Self::Dispute => "charge.dispute.created",
        }
    }
}

/// The model of one purchase: its status and what Stripe has told us about its payment.
#[derive(Clone, Debug)]
struct Purchase {
    id: PurchaseId,
    session: String,
    status: Status,
    /// A Checkout Session fact has tied the PaymentIntent to the purchase.
    linked: bool,
    /// Refund and dispute tombstones recorded on the PaymentIntent.
    refunded: bool,
    disputed: bool,
}

impl Purchase {
    /// Session facts link the payment and lose to a recorded refund or dispute; a refund or
    /// dispute closes a linked purchase, and otherwise waits as a tombstone.
    fn apply(&mut self, fact: Stripe) {
        let event = match fact {
            Stripe::Completed { paid } => paid.then_some(Status::Paid),
            Stripe::AsyncSucceeded => Some(Status::Paid),
            Stripe::AsyncFailed => Some(Status::Failed),
            Stripe::Expired => Some(Status::Expired),
            Stripe::PartialRefund => return,
            Stripe::Refund | Stripe::Dispute => {
                let refund = matches!(fact, Stripe::Refund);
                self.refunded |= refund;
                self.disputed |= !refund;
                if self.linked {
                    let event = if refund {
                        Status::Refunded
                    } else {
                        Status::Disputed
                    };
                    self.status = self.status.after(event);
                }
                return;
            }
        };
        self.linked = true;
        let tombstone = (self.refunded.then_some(Status::Refunded))
            .or(self.disputed.then_some(Status::Disputed));
        if let Some(event) = tombstone.or(event) {
            self.status = self.status.after(event);
        }
    }

    fn fact(&self, fact: Stripe) -> Fact {
        let payment_intent = format!("pi_{}", self.id.0.simple());
        let session = |payment| SessionFacts {
            purchase: self.id,
            session_id: self.session.clone(),
            payment_intent: Some(payment_intent.clone()),
            payment,
        };
        let (paid, unpaid) = (SessionPayment::Paid, SessionPayment::Unpaid);
        match fact {
            Stripe::Completed { paid: true } => Fact::CheckoutCompleted(session(paid)),
            Stripe::Completed { paid: false } => Fact::CheckoutCompleted(session(unpaid)),
            Stripe::AsyncSucceeded => Fact::AsyncPaymentSucceeded(session(paid)),
            Stripe::AsyncFailed => Fact::AsyncPaymentFailed(session(unpaid)),
            Stripe::Expired => Fact::CheckoutExpired(session(unpaid)),
            Stripe::Refund | Stripe::PartialRefund => Fact::ChargeRefunded {
                fully_refunded: matches!(fact, Stripe::Refund),
                amount_refunded: if matches!(fact, Stripe::Refund) {
                    1900
                } else {
                    500
                },
                payment_intent,
            },
            Stripe::Dispute => Fact::DisputeCreated { payment_intent },
        }
    }
}

/// One step. `Deliver(p, ..)` is about purchase `p % n` of the case's `n` purchases and
/// `Redeliver(e)` repeats delivered event `e % m`; both are no-ops while there are none.
#[derive(Clone, Debug)]
enum Step {
    Create,
    /// A webhook delivery with a fresh event id.
    Deliver(usize, Stripe),
    /// An earlier delivery again, same event id: must have no effect.
    Redeliver(usize),
    /// The buyer's success page: "completed, paid" without an inbox entry.
    SuccessPage(usize),
    /// A paid webhook, the success page and a full refund at the same time.
    PaidRacesRefund(usize),
    /// This instance runs every due job.
    Drain,
    /// An instance claims jobs and dies before running them: their leases must run out.
    ClaimAndDie {
        jobs: i64,
        lease_ms: u64,
    },
    /// A second instance runs jobs in the background, concurrently with the steps that follow...
    InstanceUp,
    /// ...until it dies wherever it is (its task is aborted).
    InstanceDies,
    Xano(Fault),
    XanoHealed,
    Credential(TokenState),
    Reconcile,
}

/// The tier a case sells (a pool target of 0 sends every sale through the mint fallback).
#[derive(Clone, Copy, Debug)]
struct TierShape {
    max_installs: i64,
    low_water: i32,
    target: i32,
}

fn case() -> impl Strategy<Value = (TierShape, Vec<Step>)> {
    let shape = (1..=10i64, 0..=2i32, 0..=2i32).prop_map(|(max_installs, low_water, more)| {
        let target = low_water + more;
        TierShape {
            max_installs,
            low_water,
            target,
        }
    });
    let fact = prop_oneof![
        4 => Just(PAID),
        1 => Just(Stripe::Completed { paid: false }),
        1 => Just(Stripe::AsyncSucceeded),
        1 => Just(Stripe::AsyncFailed),
        1 => Just(Stripe::Expired),
        2 => Just(Stripe::Refund),
        1 => Just(Stripe::PartialRefund),
        1 => Just(Stripe::Dispute),
    ];
    let fault = prop_oneof![
        (1..=5u32).prop_map(|count| Fault::RateLimited {
            count,
            retry_after: None,
            only: None
        }),
        (1..=3u32).prop_map(|count| Fault::ServerError {
            count,
            status: 503,
            only: None
        }),
        (1..=2u32).prop_map(|count| Fault::CommitThenFail { count, stall: None }),
        Just(Fault::CommitThenDrop { count: 1 }),
        (1..=2u32).prop_map(|count| Fault::DropConnection { count, only: None }),
        (1..=3u64).prop_map(|ms| Fault::Latency {
            min: Duration::ZERO,
            max: Duration::from_millis(ms),
            only: None
        }),
    ];
    let p = 0..4usize;
    let step = prop_oneof![
        3 => Just(Step::Create),
        10 => (p.clone(), fact).prop_map(|(p, fact)| Step::Deliver(p, fact)),
        2 => (0..16usize).prop_map(Step::Redeliver),
        2 => p.clone().prop_map(Step::SuccessPage),
        1 => p.prop_map(Step::PaidRacesRefund),
        3 => Just(Step::Drain),
        1 => (1..=3i64, 5..=40u64).prop_map(|(jobs, lease_ms)| Step::ClaimAndDie { jobs, lease_ms }),
        1 => Just(Step::InstanceUp),
        1 => Just(Step::InstanceDies),
        2 => fault.prop_map(Step::Xano),
        1 => Just(Step::XanoHealed),
        1 => prop_oneof![Just(TokenState::Expired), Just(TokenState::Forbidden)].prop_map(Step::Credential),
        1 => Just(Step::Credential(TokenState::Valid)),
        1 => Just(Step::Reconcile),
    ];
    (shape, proptest::collection::vec(step, 1..=30))
}

/// Tiny backoffs and a short lease, so that a case takes milliseconds and a dead instance's jobs
/// come back quickly. (Xano answers in ≤ 3 ms here, far below the lease.)
fn jobs_config() -> JobsConfig {
    JobsConfig {
        workers: 2,
        poll_interval: Duration::from_millis(1),
        lease: Duration::from_millis(60),
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(8),
        reconcile_interval: Duration::from_secs(24 * 3600),
        probe_interval: Duration::from_millis(1),
        sweep_interval: Duration::from_secs(3600),
        keep_finished: Duration::from_secs(24 * 3600),
    }
}

/// What all cases share: the database, the simulator, this instance's runner.
struct Env {
    world: World,
    market: Market,
    runner: Runner,
}

async fn env() -> Env {
    let world = World::with_config(0, 0, jobs_config()).await;
    let xano = master_api::Client::builder(SecretString::from(world.sim.access_token()))
        .base_url(world.sim.base_url())
        .retry(master_api::RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_elapsed: Duration::from_millis(50),
        })
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let market = Market::new(world.pool().clone(), xano, jobs_config());
    let runner = Runner::new(market.clone());
    Env {
        world,
        market,
        runner,
    }
}

fn fail(message: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(message.to_string())
}

trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, TestCaseError>;
}

impl<T, E: std::fmt::Debug> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> Result<T, TestCaseError> {
        self.map_err(|e| fail(format!("{what}: {e:?}")))
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    token: String,
    state: String,
    purchase_id: Option<PurchaseId>,
    max_installs: i64,
    /// Its purchase's status, read in the same statement.
    status: Option<String>,
}

/// One case: its listing and tier, the model, the delivered events, the background instance.
struct Case<'a> {
    env: &'a Env,
    canonical: String,
    listing: ListingId,
    tier: TierId,
    shape: TierShape,
    purchases: Vec<Purchase>,
    events: Vec<(String, Stripe, usize)>,
    /// The second instance's task (aborted when dropped, so a failed case leaves none behind)
    /// and its own connections, which die with it as a process's would. (Sharing this process's
    /// pool would be unrealistic: sqlx 0.8.6 returns a connection whose `begin()` was cancelled
    /// mid-flight to the pool still inside a transaction, sqlx#2805/#4393, and the survivors'
    /// statements would then hang on its locks.)
    instance: JoinSet<()>,
    instance_db: Option<PgPool>,
}

impl<'a> Case<'a> {
    async fn new(env: &'a Env, shape: TierShape) -> Result<Self, TestCaseError> {
        // A passing case leaves no due job; a failed one may, and shrinking must not trip on it.
        let (sim, pool, admin) = (
            &env.world.sim,
            env.world.pool(),
            Actor::Admin("model".into()),
        );
        sim.clear_faults();
        sim.clear_calls();
        sim.set_access_token_state(TokenState::Valid);
        market_core::health::record_success(pool)
            .await
            .or_fail("health")?;
        sqlx::query(
            "update job set state = 'failed', lease_owner = null, finished_at = now(), last_error = 'left over'
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

    fn pool(&self) -> &PgPool {
        self.env.world.pool()
    }

    async fn apply(
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

    fn fresh_event(&mut self, p: usize, fact: Stripe) -> String {
        let id = format!("evt_{}", Uuid::new_v4().simple());
        self.events.push((id.clone(), fact, p));
        id
    }

    async fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let (sim, n) = (&self.env.world.sim, self.purchases.len());
        match step {
            Step::Create if n < 4 => {
                let new = NewPurchase {
                    tier: self.tier,
                    email: None,
                    idempotency_key: None,
                };
                let created =
                    purchases::create(self.pool(), &self.env.world.receipts, &new, &Actor::Buyer);
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
                let runner = Runner::new(Market::new(db.clone(), xano, jobs_config()));
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
    async fn paid_races_refund(&mut self, p: usize) -> Result<(), TestCaseError> {
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

    async fn kill_instance(&mut self) -> Result<(), TestCaseError> {
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

    async fn statuses(&self) -> Result<HashMap<PurchaseId, String>, TestCaseError> {
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

    async fn tokens(&self) -> Result<Vec<TokenRow>, TestCaseError> {
        let rows = sqlx::query_as::<_, TokenRow>(
            "select it.token, it.state::text as state, it.purchase_id, it.max_installs, p.status::text as status
             from install_token it left join purchase p using (purchase_id) where it.listing_id = $1",
        );
        rows.bind(self.listing)
            .fetch_all(self.pool())
            .await
            .or_fail("tokens")
    }

    /// The model's statuses, I1, I3 and I5: they hold after every step, whatever is broken.
    async fn check_always(&mut self) -> Result<(), TestCaseError> {
        if let Some(ended) = self.instance.try_join_next() {
            return Err(fail(format!("the background instance stopped: {ended:?}")));
        }
        let statuses = self.statuses().await?;
        for p in &self.purchases {
            let db = &statuses[&p.id];
            prop_assert!(
                p.status.matches(db),
                "purchase {} is {db}, the model says {:?}",
                p.id,
                p.status
            );
        }
        let tokens = self.tokens().await?;
        let mut live = HashMap::<Option<PurchaseId>, usize>::new();
        for t in tokens
            .iter()
            .filter(|t| t.state == "assigned" || t.state == "revoking")
        {
            *live.entry(t.purchase_id).or_default() += 1;
        }
        prop_assert!(
            live.values().all(|&n| n <= 1),
            "I1: two live tokens for a purchase: {live:?}"
        );
        let at_xano = self.env.world.sim.tokens(&self.canonical);
        for t in tokens.iter().filter(|t| t.state == "assigned") {
            let model = self
                .purchases
                .iter()
                .find(|p| Some(p.id) == t.purchase_id)
                .map(|p| p.status);
            let (db, fulfilled) = (&t.status, t.status.as_deref() == Some("fulfilled"));
            prop_assert!(
                model == Some(Status::Paid) && fulfilled,
                "I3: token assigned to a {db:?} purchase (model: {model:?})"
            );
            // Xano and the database cannot be read at one instant while another instance works.
            let at_xano = !self.instance.is_empty() || at_xano.iter().any(|x| x.token == t.token);
            prop_assert!(at_xano, "an assigned token is not live at Xano");
        }
        let max = self.shape.max_installs;
        prop_assert!(
            tokens.iter().all(|t| t.max_installs == max),
            "I5: a token's max_installs is not its tier's"
        );
        prop_assert!(
            at_xano.iter().all(|t| t.max_installs == max),
            "I5: at Xano, a token's max_installs is not its tier's"
        );
        Ok(())
    }

    /// Runs jobs until none is due, running or parked (dead instances' leases run out meanwhile).
    async fn settle(&self) -> Result<(), TestCaseError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.env.runner.drain().await.or_fail("drain")?;
            let busy = sqlx::query_as::<_, (String, String, String, Option<String>)>(
                "select kind, subject, state::text, last_error from job
                 where state in ('running', 'parked') or (state = 'queued' and due_at < now() + interval '1 hour')",
            );
            let busy = busy.fetch_all(self.pool()).await.or_fail("jobs")?;
            if busy.is_empty() {
                return Ok(());
            }
            prop_assert!(
                Instant::now() < deadline,
                "jobs never settled once Xano healed: {busy:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Heals Xano, settles, reconciles, settles, then checks I2, I4 and that nothing is left to do.
    async fn check_healed(&mut self) -> Result<(), TestCaseError> {
        self.kill_instance().await?;
        self.env.world.sim.clear_faults();
        self.env.world.sim.set_access_token_state(TokenState::Valid);
        self.settle().await?;
        let market = &self.env.market;
        reconcile::listing(market, self.listing, &Actor::System)
            .await
            .or_fail("reconcile")?;
        self.settle().await?;
        let again = reconcile::listing(market, self.listing, &Actor::System)
            .await
            .or_fail("reconcile")?;
        prop_assert!(
            !again.changed(),
            "a second reconciliation found work: {again:?}"
        );
        self.check_always().await?;

        let tokens = self.tokens().await?;
        for p in &self.purchases {
            let held: Vec<&str> = tokens
                .iter()
                .filter(|t| t.purchase_id == Some(p.id))
                .map(|t| t.state.as_str())
                .collect();
            let live = held
                .iter()
                .filter(|s| ["assigned", "revoking"].contains(s))
                .count();
            let owed = usize::from(p.status == Status::Paid);
            prop_assert_eq!(
                live,
                owed,
                "I2: purchase {} ({:?}) holds {:?}",
                p.id,
                p.status,
                held
            );
        }
        let live_states = ["available", "assigned", "revoking", "retiring", "foreign"];
        let db: BTreeSet<&str> = tokens
            .iter()
            .filter(|t| live_states.contains(&t.state.as_str()))
            .map(|t| t.token.as_str())
            .collect();
        let at_xano = self.env.world.sim.tokens(&self.canonical);
        let xano: BTreeSet<&str> = at_xano.iter().map(|t| t.token.as_str()).collect();
        prop_assert_eq!(db, xano, "I4: Xano's live tokens are not the database's");

        let mut subjects: Vec<String> = self.purchases.iter().map(|p| p.id.to_string()).collect();
        subjects.extend([self.tier.to_string(), self.listing.to_string()]);
        let failed = sqlx::query_as::<_, (String, String, Option<String>)>(
            "select kind, subject, last_error from job where state = 'failed' and (subject = any($1)
             or subject in (select install_token_id::text from install_token where listing_id = $2))",
        );
        let failed = failed
            .bind(&subjects)
            .bind(self.listing)
            .fetch_all(self.pool())
            .await
            .or_fail("jobs")?;
        prop_assert!(failed.is_empty(), "jobs gave up: {failed:?}");
        Ok(())
    }
}

async fn run_case(env: &Env, shape: TierShape, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut case = Case::new(env, shape).await?;
    let mut result = Ok(());
    for (i, step) in steps.iter().enumerate() {
        let checked = async {
            case.step(step).await?;
            case.check_always().await
        };
        result = watchdog(env, checked)
            .await
            .map_err(|e| fail(format!("after step {i}, {step:?}: {e}")));
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = watchdog(env, case.check_healed())
            .await
            .map_err(|e| fail(format!("after healing: {e}")));
    }
    case.kill_instance().await?;
    result
}

/// A step takes milliseconds; one that takes 30 s is stuck. Says where.
async fn watchdog(
    env: &Env,
    step: impl Future<Output = Result<(), TestCaseError>>,
) -> Result<(), TestCaseError> {
    let Ok(result) = tokio::time::timeout(Duration::from_secs(30), step).await else {
        let sessions: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "select state, wait_event, query from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'",
        )
        .fetch_all(env.world.pool())
        .await
        .unwrap_or_default();
        let calls = env.world.sim.calls();
        let last: Vec<_> = calls
            .iter()
            .rev()
            .take(5)
            .map(|c| (&c.method, &c.path, c.status))
            .collect();
        return Err(fail(format!(
            "stuck for 30 s; database sessions: {sessions:?}; last Xano calls: {last:?}"
        )));
    };
    result
}

#[test]
fn random_histories_of_payments_faults_and_crashes_keep_every_invariant() {
    let cases = std::env::var("MARKET_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = rt.block_on(env());
    let regressions = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/model.proptest-regressions"
    );
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_time: 120_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    });

    let started = Instant::now();
    let result = runner.run(&case(), |(shape, steps)| {
        rt.block_on(run_case(&env, shape, &steps))
    });
    if let Err(TestError::Fail(reason, (shape, steps))) = &result {
        let steps: Vec<String> = steps.iter().map(|s| format!("    {s:?}")).collect();
        panic!(
            "{reason}\nminimal failing case: {shape:?}, steps:\n{}",
            steps.join("\n")
        );
    }
    result.unwrap();
    let actions: Vec<(String, i64)> = rt
        .block_on(
            sqlx::query_as(
                "select action, count(*) from audit_event group by action order by action",
            )
            .fetch_all(env.world.pool()),
        )
        .unwrap();
    eprintln!(
        "model: {cases} cases in {:.1?}; audit log: {actions:?}",
        started.elapsed()
    );
    rt.block_on(async move { drop(env) });
}
