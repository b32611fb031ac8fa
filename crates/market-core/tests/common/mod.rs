//! The world a market-core test runs in: a database of its own, an in-process Xano simulator with one
//! snippet, a listing of it with one tier, and a job runner (one "instance"; tests add more).
#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

use std::sync::Arc;
use std::time::Duration;

use market_core::FeeRate;
use market_core::audit::Actor;
use market_core::envelope::{DataKeys, Envelope};
use market_core::jobs::runner::Runner;
use market_core::keys;
use market_core::listings::{self, ListingSpec};
use market_core::payments::{self, Delivery, Fact, Outcome, SessionFacts, SessionPayment};
use market_core::purchases::{self, NewPurchase};
use market_core::receipt::ReceiptSecret;
use market_core::tiers::{self, TierChange, TierSpec};
use market_core::{
    Canonical, Currency, JobsConfig, ListingId, Market, Money, PurchaseId, Slug, TierId,
};
use sandbox::xano::{Endpoint, XanoSim, XanoSimConfig};
use secrecy::SecretString;
use testkit::TestDb;

pub const CANONICAL: &str = "snip_A-1";

pub struct World {
    pub db: TestDb,
    pub sim: XanoSim,
    pub market: Market,
    pub runner: Runner,
    pub listing: ListingId,
    pub tier: TierId,
    pub receipts: ReceiptSecret,
}

/// Fast retries and short leases: tests wait for behaviour, not for production's patience.
pub fn test_jobs_config() -> JobsConfig {
    JobsConfig {
        workers: 4,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        reconcile_interval: Duration::from_secs(3600),
        probe_interval: Duration::from_millis(100),
        sweep_interval: Duration::from_millis(100),
        keep_finished: Duration::from_secs(3600),
        // Fault-injecting tests retry far faster than production; the tests of dying jobs lower
        // these.
        missing_guard: 0.2,
        max_attempts: 1000,
        max_age: Duration::from_secs(3600),
        revive_after: Duration::from_secs(3600),
    }
}

pub fn xano_client(sim: &XanoSim) -> master_api::Client {
    xano_client_with_token(sim, &sim.access_token())
}

/// A client of the simulator that uses `access_token` (another token of an account, say).
pub fn xano_client_with_token(sim: &XanoSim, access_token: &str) -> master_api::Client {
    master_api::Client::builder(SecretString::from(access_token.to_owned()))
        .base_url(sim.base_url())
        .retry(master_api::RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(2),
        })
        .timeout(Duration::from_secs(2))
        .build()
        .expect("xano client")
}

pub fn tier_spec(slug: &str, price: i64, max_installs: i64, low: i32, target: i32) -> TierSpec {
    TierSpec {
        slug: Slug::parse(slug).unwrap(),
        name: format!("Tier {slug}"),
        price: Money::new(price, Currency::parse("usd").unwrap()).unwrap(),
        max_installs,
        pool_low_water: low,
        pool_target: target,
        active: true,
    }
}

/// The `MARKET_DATA_KEY` entry tests seal tokens with (32 bytes of `B`; `envelope`'s own tests
/// attack the cipher itself).
pub const TEST_KEY: &str = "test:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

pub fn test_keys() -> DataKeys {
    DataKeys::parse(TEST_KEY).unwrap()
}

/// The envelope of a test database: every "instance" of one test opens the same.
pub async fn envelope(db: &sqlx::PgPool) -> Arc<Envelope> {
    Arc::new(keys::open(db, test_keys()).await.unwrap())
}

/// The token strings of the `install_token` rows `condition` picks, in row order, opened from
/// their seals (the table holds no plain token).
pub async fn tokens_where(db: &sqlx::PgPool, envelope: &Envelope, condition: &str) -> Vec<String> {
    let rows: Vec<(ListingId, String, Vec<u8>)> = sqlx::query_as(&format!(
        "select listing_id, token_key_id, token_sealed from install_token
         where {condition} order by install_token_id"
    ))
    .fetch_all(db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(listing, key_id, sealed)| {
            keys::open_token(envelope, listing, key_id, sealed)
                .unwrap()
                .expose()
                .to_owned()
        })
        .collect()
}

impl World {
    /// A listing with one tier (`solo`: $19, 5 installs) whose pool is `low`..`target`.
    pub async fn new(low: i32, target: i32) -> Self {
        Self::with_config(low, target, test_jobs_config()).await
    }

    pub async fn with_config(low: i32, target: i32, jobs: JobsConfig) -> Self {
        let db = TestDb::new(&market_core::MIGRATOR).await;
        let sim = XanoSim::start(XanoSimConfig::default()).await.unwrap();
        sim.add_snippet(CANONICAL, "A snippet");
        let market = Market::new(
            db.pool().clone(),
            xano_client(&sim),
            envelope(db.pool()).await,
            jobs,
        );

        let spec = ListingSpec {
            canonical: Canonical::parse(CANONICAL).unwrap(),
            title: "A snippet".into(),
            description: "Does things".into(),
            active: true,
        };
        listings::prepare_snippet(&market.xano, &spec)
            .await
            .unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let (listing, _) = listings::upsert(&mut conn, &spec, &Actor::Admin("test".into()))
            .await
            .unwrap();
        let change = tiers::apply(
            &mut conn,
            listing.listing_id,
            &tier_spec("solo", 1900, 5, low, target),
            &Actor::Admin("test".into()),
        )
        .await
        .unwrap();
        let TierChange::Created { tier_id } = change else {
            panic!("{change:?}")
        };
        drop(conn);

        let runner = Runner::new(market.clone());
        Self {
            db,
            sim,
            market,
            runner,
            listing: listing.listing_id,
            tier: tier_id,
            receipts: ReceiptSecret::random(),
        }
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }

    /// Another instance of the service on this world's database, whose Xano client uses
    /// `access_token` (e.g. the account's second token, as during a rotation).
    pub fn instance_with_token(&self, access_token: &str) -> Market {
        Market::new(
            self.pool().clone(),
            xano_client_with_token(&self.sim, access_token),
            self.market.envelope.clone(),
            self.market.jobs.clone(),
        )
    }

    /// Runs every due job now, in this task (deterministic).
    pub async fn drain(&self) -> usize {
        self.runner.drain().await.unwrap()
    }

    /// Fills the pool up to its target by running the jobs the tier's creation queued.
    pub async fn fill_pool(&self) {
        self.drain().await;
    }

    /// A pending purchase of the world's tier, with its Checkout Session id attached.
    pub async fn checkout(&self) -> (PurchaseId, String) {
        self.checkout_tier(self.tier).await
    }

    pub async fn checkout_tier(&self, tier: TierId) -> (PurchaseId, String) {
        let created = purchases::create(
            self.pool(),
            &self.receipts,
            &NewPurchase {
                tier,
                email: None,
                idempotency_key: None,
            },
            FeeRate::DEFAULT,
            &Actor::Buyer,
        )
        .await
        .unwrap();
        let id = created.purchase.purchase_id;
        let session = format!("cs_test_{}", id.0.simple());
        purchases::attach_checkout_session(
            self.pool(),
            id,
            &session,
            "https://checkout.example/pay",
        )
        .await
        .unwrap();
        (id, session)
    }

    pub fn session_facts(
        purchase: PurchaseId,
        session: &str,
        payment: SessionPayment,
    ) -> SessionFacts {
        SessionFacts {
            payer_email: None,
            purchase,
            session_id: session.to_owned(),
            payment_intent: Some(payment_intent_of(session)),
            payment,
            // The session is recorded on the purchase (see `checkout_tier`): its id is enough.
            charge: None,
        }
    }

    /// Delivers a `checkout.session.completed` (paid) with the given event id.
    pub async fn deliver_paid(
        &self,
        event_id: &str,
        purchase: PurchaseId,
        session: &str,
    ) -> Outcome {
        let fact =
            Fact::CheckoutCompleted(Self::session_facts(purchase, session, SessionPayment::Paid));
        self.deliver(event_id, "checkout.session.completed", &fact)
            .await
    }

    pub async fn deliver_refund(&self, event_id: &str, session: &str) -> Outcome {
        let fact = Fact::ChargeRefunded {
            payment_intent: payment_intent_of(session),
            amount_refunded: 1900,
            fully_refunded: true,
        };
        self.deliver(event_id, "charge.refunded", &fact).await
    }

    pub async fn deliver(&self, event_id: &str, event_type: &str, fact: &Fact) -> Outcome {
        let delivery = Delivery {
            event_id,
            event_type,
            livemode: false,
        };
        payments::apply(self.pool(), Some(delivery), fact, &Actor::Stripe)
            .await
            .unwrap()
    }

    /// Live tokens (assigned or revoking) held by `purchase`, as token strings.
    pub async fn live_tokens_of(&self, purchase: PurchaseId) -> Vec<String> {
        self.tokens_where(&format!(
            "purchase_id = '{}' and state in ('assigned', 'revoking')",
            purchase.0
        ))
        .await
    }

    /// The fingerprint rows of `token` carry, to find them by it.
    pub fn fingerprint(&self, token: &str) -> Vec<u8> {
        keys::fingerprint(&self.market.envelope, &master_api::TokenValue::new(token)).to_vec()
    }

    /// [`tokens_where`] in this world's database.
    pub async fn tokens_where(&self, condition: &str) -> Vec<String> {
        tokens_where(self.pool(), &self.market.envelope, condition).await
    }

    pub async fn status_of(&self, purchase: PurchaseId) -> String {
        sqlx::query_scalar("select status::text from purchase where purchase_id = $1")
            .bind(purchase)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    /// Token strings the database believes live at Xano.
    pub async fn db_live_tokens(&self) -> Vec<String> {
        let mut tokens = self
            .tokens_where("state in ('available', 'assigned', 'revoking', 'retiring', 'foreign')")
            .await;
        tokens.sort();
        tokens
    }

    /// Token strings live at the simulator.
    pub fn sim_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self
            .sim
            .tokens(CANONICAL)
            .into_iter()
            .map(|t| t.token)
            .collect();
        tokens.sort();
        tokens
    }

    /// The calls the simulator answered (or dropped) at `endpoint`.
    pub fn calls_to(&self, endpoint: Endpoint) -> usize {
        self.sim
            .calls()
            .iter()
            .filter(|c| c.endpoint == Some(endpoint))
            .count()
    }
}

pub fn payment_intent_of(session: &str) -> String {
    format!("pi_{}", session.trim_start_matches("cs_test_"))
}

/// A job's row, as the lease and fence tests compare it before and after.
#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub state: String,
    pub attempt: i32,
    pub lease_owner: Option<uuid::Uuid>,
    pub due_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn job_row(pool: &sqlx::PgPool, job_id: i64) -> JobRow {
    sqlx::query_as::<_, JobRow>(
        "select state::text as state, attempt, lease_owner, due_at, last_error, updated_at, finished_at
         from job where job_id = $1",
    )
    .bind(job_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// How many audit entries of `action` a purchase has.
pub async fn audit_count(pool: &sqlx::PgPool, action: &str, purchase: PurchaseId) -> i64 {
    sqlx::query_scalar("select count(*) from audit_event where action = $1 and purchase_id = $2")
        .bind(action)
        .bind(purchase)
        .fetch_one(pool)
        .await
        .unwrap()
}
