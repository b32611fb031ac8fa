//! `spawn_app`: the real application on port 0, its own database, and both simulators in-process.
//! One method per endpoint on [`TestApp`], so tests read as what a client does.
#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

use std::net::TcpListener;
use std::time::Duration;

use ipnet::IpNet;
use market_core::JobsConfig;
use market_core::db::Pooler;
use market_core::envelope::DataKeys;
use market_core::receipt::ReceiptSecret;
use market_core::tiers_file::{self, TiersFile};
use market_http::backfill::BackfillSettings;
use market_http::limits::RateLimits;
use market_http::startup::{
    Application, DbRoutes, DbSettings, HttpSettings, MailSettings, MetricsSettings, Settings,
    StripeSettings, WebhookSettings,
};
use market_http::state::AdminToken;
use market_http::state::Mode;
use reqwest::{Client, Response};
use sandbox::stripe::{StripeSim, StripeSimConfig};
use sandbox::xano::{XanoSim, XanoSimConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::TestDb;
use tokio::sync::oneshot;
use url::Url;

pub const ADMIN_TOKEN: &str = "adm_test_0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "whsec_test_current";
/// The `MARKET_DATA_KEY` test instances seal tokens with (32 bytes of `B`).
pub const DATA_KEY: &str = "test:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
pub const CANONICAL: &str = "auth-flow_01";

pub struct TestApp {
    pub address: String,
    /// The metrics listener (`GET /metrics`), apart from the public one.
    pub metrics_address: String,
    pub db: TestDb,
    pub xano: XanoSim,
    pub stripe: StripeSim,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Test-speed job tuning.
pub fn jobs_config() -> JobsConfig {
    JobsConfig {
        workers: 4,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(500),
        reconcile_interval: Duration::from_secs(3600),
        probe_interval: Duration::from_millis(200),
        sweep_interval: Duration::from_millis(200),
        keep_finished: Duration::from_secs(3600),
        // Fault-injecting tests retry far faster than production; the tests of dying jobs lower
        // these.
        missing_guard: 0.2,
        max_attempts: 1000,
        max_age: Duration::from_secs(3600),
        revive_after: Duration::from_secs(3600),
    }
}

pub struct Options {
    pub webhook_secrets: Vec<String>,
    pub cors_origins: Vec<Url>,
    pub run_jobs: bool,
    /// None by default: the tests of other things make many requests from one address.
    pub rate_limits: RateLimits,
    pub trusted_proxies: Vec<IpNet>,
    /// None by default: the webhook tests leave purchases pending on purpose.
    pub backfill: Option<BackfillSettings>,
    /// Disabled by default (messages are recorded `not_sent`); the mail tests give an SMTP server.
    pub mail: Option<MailSettings>,
    /// None by default (nothing is delivered; the webhook tests give a guard and a deliverer).
    pub webhooks: Option<WebhookSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
            cors_origins: Vec::new(),
            run_jobs: true,
            rate_limits: RateLimits::NONE,
            trusted_proxies: Vec::new(),
            backfill: None,
            mail: None,
            webhooks: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// A client of the simulator with test-speed retries.
fn xano_client(xano: &XanoSim) -> master_api::Client {
    master_api::Client::builder(SecretString::from(xano.access_token()))
        .base_url(xano.base_url())
        .retry(master_api::RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(2),
        })
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// The demo catalog, seeded the way `market tiers apply` does it.
async fn seed_demo_catalog(db: &TestDb, xano: &XanoSim, client: &master_api::Client) {
    let tiers = TiersFile::parse(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/tiers.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    for (listing, _) in &tiers.listings {
        xano.add_snippet(listing.canonical.as_str(), &listing.title);
    }
    tiers_file::apply(
        db.pool(),
        client,
        &tiers,
        false,
        &market_core::audit::Actor::System,
    )
    .await
    .unwrap();
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let db = TestDb::new(&market_core::MIGRATOR).await;
    let xano = XanoSim::start(XanoSimConfig::default()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");
    let stripe = StripeSim::start(StripeSimConfig {
        webhook_url: Some(Url::parse(&format!("{address}/v1/webhooks/stripe")).unwrap()),
        webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
        retry_delays: vec![
            Duration::from_millis(100),
            Duration::from_millis(300),
            Duration::from_secs(1),
        ],
        ..StripeSimConfig::default()
    })
    .await
    .unwrap();

    let xano_client = xano_client(&xano);
    seed_demo_catalog(&db, &xano, &xano_client).await;

    // Directly, or through the pooler / with the replica the environment names (testkit's route).
    let route = db.app_route();
    let routes = DbRoutes {
        pooler: if route.transaction_pooler {
            Pooler::Transaction
        } else {
            Pooler::None
        },
        read_options: route.read_options,
    };
    let app = Application::build_routed(
        Settings {
            http: HttpSettings {
                listener,
                public_url: None,
                cors_origins: options.cors_origins,
                admins: vec![AdminToken {
                    name: "tester".into(),
                    token: SecretString::from(ADMIN_TOKEN),
                }],
                receipt_secret: ReceiptSecret::random(),
                shutdown_grace: Duration::from_secs(1),
                rate_limits: options.rate_limits,
                trusted_proxies: options.trusted_proxies,
            },
            db: DbSettings {
                options: route.options,
                max_connections: 10,
                data_keys: DataKeys::parse(DATA_KEY).unwrap(),
            },
            xano: xano_client,
            stripe: StripeSettings {
                secret_key: SecretString::from(stripe.api_key()),
                api_base: stripe.base_url(),
                webhook_secrets: options
                    .webhook_secrets
                    .iter()
                    .map(|s| SecretString::from(s.clone()))
                    .collect(),
                platform_fee: market_core::FeeRate::DEFAULT,
            },
            jobs: options.run_jobs.then(jobs_config),
            mode: Mode::Sandbox,
            backfill: options.backfill,
            mail: options.mail,
            webhooks: options.webhooks,
            metrics: Some(MetricsSettings {
                listener: TcpListener::bind("127.0.0.1:0").unwrap(),
                refresh: Duration::from_millis(100),
            }),
        },
        routes,
    )
    .await
    .unwrap();
    let metrics_address = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("a metrics listener")
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        metrics_address,
        db,
        xano,
        stripe,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `GET path`. The request is built at once, so the future borrows neither `self` nor `path`
    /// (a test can start several and await them later).
    pub fn get(&self, path: &str) -> impl std::future::Future<Output = Response> + use<> {
        let request = self.client.get(self.url(path));
        async move { request.send().await.unwrap() }
    }

    pub async fn listings(&self) -> Value {
        self.get("/v1/listings").await.json().await.unwrap()
    }

    /// The id of a tier of the demo catalog, by listing and slug.
    pub async fn tier_id(&self, canonical: &str, slug: &str) -> String {
        let listings = self.listings().await;
        listings["listings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["canonical"] == canonical)
            .and_then(|l| {
                l["tiers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["slug"] == slug)
            })
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .unwrap()
    }

    pub async fn checkout(&self, body: &Value) -> Response {
        self.checkout_with_header(None, body).await
    }

    /// `POST /v1/checkout` with one more header (`idempotency-key`, `x-forwarded-for`, …).
    pub async fn checkout_with_header(
        &self,
        header: Option<(&str, &str)>,
        body: &Value,
    ) -> Response {
        let mut request = self.client.post(self.url("/v1/checkout")).json(body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    /// How many purchases the database holds.
    pub async fn purchase_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from purchase")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    /// Checks out the solo tier of the first listing: `(purchase_id, checkout_url, receipt_key)`.
    pub async fn start_purchase(&self) -> (String, String, String) {
        let tier = self.tier_id(CANONICAL, "solo").await;
        let response = self.checkout(&json!({ "tier_id": tier })).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (
            body["purchase_id"].as_str().unwrap().to_owned(),
            body["checkout_url"].as_str().unwrap().to_owned(),
            body["receipt_key"].as_str().unwrap().to_owned(),
        )
    }

    /// The Checkout Session id inside a hosted checkout URL (`…/pay/<id>`).
    pub fn session_of(checkout_url: &str) -> String {
        checkout_url.rsplit('/').next().unwrap().to_owned()
    }

    pub async fn purchase(&self, id: &str, receipt_key: &str) -> Response {
        self.client
            .get(self.url(&format!("/v1/purchases/{id}")))
            .bearer_auth(receipt_key)
            .send()
            .await
            .unwrap()
    }

    pub async fn success_page(&self, session: &str, receipt_key: Option<&str>) -> Response {
        let mut request = self
            .client
            .get(self.url(&format!("/v1/checkout/sessions/{session}")));
        if let Some(key) = receipt_key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap()
    }

    pub async fn webhook(&self, body: &str, signature: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url("/v1/webhooks/stripe"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        request.send().await.unwrap()
    }

    /// `GET path` as the admin; like [`TestApp::get`], the future borrows nothing.
    pub fn admin_get(&self, path: &str) -> impl std::future::Future<Output = Response> + use<> {
        let request = self.client.get(self.url(path)).bearer_auth(ADMIN_TOKEN);
        async move { request.send().await.unwrap() }
    }

    pub async fn admin_post(&self, path: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_put(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Polls `check` until it returns `Some`, failing after `limit`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the purchase's receipt shows a usable token, and returns it.
    pub async fn token_of(&self, id: &str, receipt_key: &str) -> String {
        self.eventually("the purchase's token", Duration::from_secs(20), || async {
            let body: Value = self.purchase(id, receipt_key).await.json().await.ok()?;
            body["token"]["value"].as_str().map(str::to_owned)
        })
        .await
    }

    /// Token strings live at the Xano simulator for the demo listing.
    pub fn xano_tokens(&self) -> Vec<String> {
        self.xano
            .tokens(CANONICAL)
            .into_iter()
            .map(|t| t.token)
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}
