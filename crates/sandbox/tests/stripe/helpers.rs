//! `Harness`: a Stripe simulator, an async-stripe client pointed at it, a raw reqwest client, and
//! `Receiver`, a tiny webhook endpoint that records what it is sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use sandbox::stripe::{StripeSim, StripeSimConfig};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ProductData,
};
use stripe_shared::{CheckoutSession, CheckoutSessionMode};
use stripe_webhook::{Event, Webhook};
use url::Url;

pub const OLD_SECRET: &str = "whsec_old_0123456789abcdef";
pub const NEW_SECRET: &str = "whsec_new_fedcba9876543210";
pub const SUCCESS_URL: &str = "https://shop.example/done?session={CHECKOUT_SESSION_ID}";
pub const CANCEL_URL: &str = "https://shop.example/cancelled";
/// Long enough for a loaded two-core machine; waits end as soon as the condition holds.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Harness {
    pub sim: StripeSim,
    pub client: Client,
    pub http: reqwest::Client,
    pub hook: Receiver,
}

impl Harness {
    /// A simulator delivering to a fresh receiver, signing with both secrets (a secret roll),
    /// retrying quickly.
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut StripeSimConfig)) -> Self {
        let hook = Receiver::start();
        let mut config = StripeSimConfig {
            webhook_url: Some(hook.url.clone()),
            webhook_secrets: vec![OLD_SECRET.to_owned(), NEW_SECRET.to_owned()],
            retry_delays: vec![Duration::from_millis(100), Duration::from_millis(200)],
            ..StripeSimConfig::default()
        };
        adjust(&mut config);
        let sim = StripeSim::start(config).await.expect("simulator starts");
        let client = client_for(&sim, &sim.api_key());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(WAIT)
            .build()
            .expect("reqwest client builds");
        Self {
            sim,
            client,
            http,
            hook,
        }
    }

    /// Creates a $12.00 "Token Share Test — 5 installs" session through async-stripe.
    pub async fn create_session(&self) -> CheckoutSession {
        checkout_request()
            .send(&self.client)
            .await
            .expect("session is created")
    }

    /// Creates a session with an idempotency key.
    pub async fn create_session_with_key(&self, key: &str) -> CheckoutSession {
        checkout_request()
            .customize()
            .request_strategy(RequestStrategy::Idempotent(
                IdempotencyKey::new(key).expect("valid key"),
            ))
            .send(&self.client)
            .await
            .expect("session is created")
    }

    /// Creates a session and pays it by card at once; returns its PaymentIntent (`pi_…`).
    pub async fn paid_intent(&self) -> String {
        let session = self.create_session().await;
        self.sim
            .pay(session.id.as_str())
            .expect("an open session can be paid")
            .payment_intent
            .expect("paying creates a PaymentIntent")
    }

    /// The PaymentIntent (`pi_…`) that paying `session` created.
    pub fn payment_intent(&self, session: &CheckoutSession) -> String {
        self.sim
            .session(session.id.as_str())
            .expect("the session exists")
            .payment_intent
            .expect("the session is paid")
    }

    /// `path` under the simulator, e.g. `/v1/checkout/sessions`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path.trim_start_matches('/'))
    }

    pub fn control(&self, path: &str) -> String {
        format!("{}{path}", self.sim.control_url())
    }

    /// Presses "Pay" on the hosted page; returns the response (a 303 when it worked).
    pub async fn press_pay(&self, session: &CheckoutSession) -> reqwest::Response {
        let page = session.url.clone().expect("an open session has a URL");
        self.http
            .post(format!("{page}/pay"))
            .form(&[("email", "buyer@shop.example")])
            .send()
            .await
            .expect("page answers")
    }
}

pub fn client_for(sim: &StripeSim, key: &str) -> Client {
    // Both ring and (through other crates) possibly aws-lc could be compiled in; pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::new(key)
        .url(sim.base_url().as_str())
        .build()
        .expect("stripe client builds")
}

pub fn checkout_request() -> CreateCheckoutSession {
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(stripe_types::Currency::USD);
    price.unit_amount = Some(1200);
    price.product_data = Some(ProductData::new("Token Share Test — 5 installs"));
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);
    let mut intent = CreateCheckoutSessionPaymentIntentData::new();
    intent.metadata = Some([("purchase_id".to_owned(), "pur_42".to_owned())].into());
    CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .line_items(vec![item])
        .client_reference_id("pur_42")
        .metadata([("purchase_id".to_owned(), "pur_42".to_owned())])
        .payment_intent_data(intent)
        .success_url(SUCCESS_URL)
        .cancel_url(CANCEL_URL)
}

/// Verifies a delivery with `secret` as a receiver would.
pub fn verify(received: &Received, secret: &str) -> Event {
    Webhook::construct_event(&received.body, &received.signature, secret)
        .unwrap_or_else(|error| panic!("delivery verifies with {secret}: {error:?}"))
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub content_type: String,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn event_id(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body).expect("JSON body");
        body["id"].as_str().expect("an id").to_owned()
    }
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    /// Statuses to answer with, in order; 200 once empty.
    script: VecDeque<u16>,
    delay: Duration,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Inbox>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A webhook endpoint on a loopback port.
pub struct Receiver {
    pub url: Url,
    shared: Shared,
    handle: ServerHandle,
}

impl Receiver {
    /// Starts on the current tokio runtime.
    pub fn start() -> Self {
        let shared = Shared::default();
        let data = web::Data::new(shared.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("has an address");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let url = Url::parse(&format!("http://{addr}/hook")).expect("valid URL");
        Self {
            url,
            shared,
            handle,
        }
    }

    /// Answers the next deliveries with these statuses (then 200 again).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared.lock().script.extend(statuses);
    }

    /// Makes every answer wait this long.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `count` deliveries arrived; panics after [`WAIT`].
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} deliveries, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The deliveries whose event has type `type_`, after waiting for at least one.
    pub async fn wait_for_type(&self, type_: &str) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let matching: Vec<Received> = self
                .received()
                .into_iter()
                .filter(|received| received.body.contains(&format!("\"type\": \"{type_}\"")))
                .collect();
            if !matching.is_empty() {
                return matching;
            }
            assert!(Instant::now() < deadline, "no {type_} delivery arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Sends the stop command; nothing here can wait for it to finish.
        drop(self.handle.stop(false));
    }
}

async fn receive(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, delay) = {
        let mut inbox = shared.lock();
        inbox.received.push(Received {
            signature: header("stripe-signature"),
            content_type: header("content-type"),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        });
        (inbox.script.pop_front().unwrap_or(200), inbox.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("valid status"))
        .finish()
}
