//! Outgoing webhooks: the harness their tests share. A receiver on 127.0.0.1 that records every
//! request and answers as told (200, 500, or nothing), a deliverer with test-sized patience, and
//! Ada, a seller with her own Xano whose facts are not the house's.
//!
//! - `webhook_events`: every fact writes its event and its deliveries, in its transaction, once,
//!   with the `data` the API document promises;
//! - `webhook_delivery`: in order per purchase, retried, given up on, redelivered, replayed, and
//!   sent again after a kill (the same `webhook-id`);
//! - `webhook_endpoints`: an endpoint failing too long is disabled and its seller told, a secret
//!   roll signs with both, a key roll reseals them, and the SSRF guard holds at delivery time.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use market_core::audit::Actor;
use market_core::courier::{Courier, CourierConfig, Guard, WebhookSecret};
use market_core::deliverer::{Deliverer, DelivererConfig};
use market_core::listings::ListingSpec;
use market_core::tiers::TierChange;
use market_core::webhooks::{EndpointSpec, EventType, Policy, endpoints};
use market_core::{Canonical, Email, Market, TierId, seller_xano, sellers};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sandbox::xano::SimAccount;
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::common::{World, tier_spec};

/// What the receiver answers a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Fail,
    /// Reads the request and says nothing for a minute.
    Hang,
}

/// A delivery as the receiver read it, and what it answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub answered: Answer,
}

impl Request {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }

    pub fn id(&self) -> &str {
        self.headers["webhook-id"].to_str().unwrap()
    }

    /// Whether the Standard Webhooks reference library accepts it under `secret`.
    pub fn verifies_with(&self, secret: &WebhookSecret) -> bool {
        standardwebhooks::Webhook::new(secret.expose())
            .unwrap()
            .verify(&self.body, &self.headers)
            .is_ok()
    }
}

type Rule = Arc<dyn Fn(&Value) -> Answer + Send + Sync>;

/// A webhook receiver on 127.0.0.1 (HTTP/1.1, one request per connection) that records every
/// request and answers each as its rule says, by the request's body.
pub struct Receiver {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Request>>>,
    rule: Arc<Mutex<Rule>>,
}

impl Receiver {
    /// A receiver that answers 200 until told otherwise.
    pub async fn start() -> Self {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let always_ok: Rule = Arc::new(|_| Answer::Ok);
        let receiver = Self {
            addr: socket.local_addr().unwrap(),
            accepted: Arc::default(),
            requests: Arc::default(),
            rule: Arc::new(Mutex::new(always_ok)),
        };
        let (accepted, requests, rule) = (
            Arc::clone(&receiver.accepted),
            Arc::clone(&receiver.requests),
            Arc::clone(&receiver.rule),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = socket.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (requests, rule) = (Arc::clone(&requests), Arc::clone(&rule));
                tokio::spawn(async move {
                    let (path, headers, body) = read_request(&mut stream).await;
                    let rule = Arc::clone(&rule.lock().unwrap());
                    let answered = rule(&serde_json::from_slice(&body).unwrap_or_default());
                    let request = Request {
                        path,
                        headers,
                        body,
                        answered,
                    };
                    requests.lock().unwrap().push(request);
                    let status = match answered {
                        Answer::Ok => "200 OK",
                        Answer::Fail => "500 Internal Server Error",
                        Answer::Hang => return tokio::time::sleep(Duration::from_secs(60)).await,
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        receiver
    }

    /// Answers every request from now on as `rule` says of its body.
    pub fn answer(&self, rule: impl Fn(&Value) -> Answer + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Arc::new(rule);
    }

    /// `http://127.0.0.1:PORT/<path>`: an address, so the guard judges it without a resolver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// `http://localhost:PORT/<path>`: a name, resolved by the courier's guarded resolver.
    pub fn url_by_name(&self, path: &str) -> String {
        format!("http://localhost:{}/{path}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests to `/<path>`, in the order they arrived.
    pub fn at(&self, path: &str) -> Vec<Request> {
        let path = format!("/{path}");
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The request's path, headers and `content-length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, HeaderMap, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut buf = [0_u8; 4096];
    let end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buf).await.unwrap() {
            0 => panic!("the connection closed mid-request"),
            n => bytes.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.lines();
    let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let length: usize = headers
        .get("content-length")
        .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    while bytes.len() < end + 4 + length {
        match stream.read(&mut buf).await.unwrap() {
            0 => panic!("the connection closed mid-body"),
            n => bytes.extend_from_slice(&buf[..n]),
        }
    }
    (path, headers, bytes[end + 4..end + 4 + length].to_vec())
}

pub fn loopback() -> Vec<ipnet::IpNet> {
    vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
}

/// Retries an hour apart: a failed delivery waits out the test unless the test moves it.
pub fn patient() -> Policy {
    Policy {
        retry_base: Duration::from_secs(3600),
        ..Policy::default()
    }
}

/// A deliverer on `market` whose courier goes through `guard`, with 2 s to answer.
pub fn deliverer(market: &Market, guard: Guard, policy: Policy) -> Deliverer {
    let courier = Courier::new(CourierConfig {
        timeout: Duration::from_secs(2),
        guard,
        ..CourierConfig::default()
    })
    .unwrap();
    let config = DelivererConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(5),
        policy,
        ..DelivererConfig::default()
    };
    Deliverer::new(market.clone(), courier, config)
}

/// A deliverer that may send to the receiver (loopback allowed).
pub fn local_deliverer(world: &World, policy: Policy) -> Deliverer {
    deliverer(&world.market, Guard::allowing(true, loopback()), policy)
}

/// Drains `deliverer` (waiting out backoffs 20 ms at a time) until `done`, at most 10 s.
pub async fn deliver_until(deliverer: &Deliverer, what: &str, done: impl AsyncFn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        deliverer.drain().await.unwrap();
        if done().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An endpoint of `owner` (`None`: the platform's) at `url` wanting `types` (empty: all).
pub async fn endpoint(
    world: &World,
    owner: Option<Uuid>,
    types: &[EventType],
    include_token: bool,
    url: &str,
) -> (Uuid, WebhookSecret) {
    let spec = EndpointSpec {
        url: url.parse().unwrap(),
        description: String::new(),
        event_types: types.to_vec(),
        include_token,
    };
    let guard = Guard::allowing(true, loopback());
    let actor = Actor::Admin("test".into());
    let (endpoint, secret) = endpoints::create(
        world.pool(),
        &world.market.envelope,
        &guard,
        &actor,
        owner,
        spec,
    )
    .await
    .unwrap();
    (endpoint.endpoint_id, secret)
}

pub async fn house(world: &World) -> Uuid {
    sqlx::query_scalar("select seller_id from seller where house")
        .fetch_one(world.pool())
        .await
        .unwrap()
}

/// Ada: an invited seller (with a contact email) whose Xano credential is set.
pub struct Ada {
    pub id: Uuid,
    pub xano_token: String,
}

pub async fn invite_ada(world: &World) -> Ada {
    let email = Email::parse("ada@example.com").unwrap();
    let (ada, _) = sellers::invite(world.pool(), "Ada", &email, &Actor::System)
        .await
        .unwrap();
    let xano_token = world.sim.add_account(SimAccount {
        id: "77".into(),
        name: "Ada".into(),
        email: "ada@example.test".into(),
    });
    let token = SecretString::from(xano_token.clone());
    seller_xano::set(&world.market, ada.seller_id, token, None, &Actor::System)
        .await
        .unwrap();
    Ada {
        id: ada.seller_id,
        xano_token,
    }
}

/// A listing of Ada's with one tier whose empty pool wants a token: its refill is queued under
/// the low-water mark (a `pool.low`).
pub async fn ada_listing(world: &World, ada: &Ada, canonical: &str) -> TierId {
    assert!(
        world
            .sim
            .add_snippet_for(&ada.xano_token, canonical, "Ada's")
    );
    let spec = ListingSpec {
        canonical: Canonical::parse(canonical).unwrap(),
        title: "Ada's".into(),
        description: String::new(),
        active: true,
    };
    sellers::save_listing(&world.market, ada.id, &spec, &Actor::System)
        .await
        .unwrap();
    let tier = tier_spec("solo", 900, 3, 1, 2);
    let (_, change) = sellers::save_tier(world.pool(), ada.id, canonical, &tier, &Actor::System)
        .await
        .unwrap();
    let TierChange::Created { tier_id } = change else {
        panic!("{change:?}")
    };
    tier_id
}

/// Every event written, oldest first: (type, seller, data).
pub async fn events(world: &World) -> Vec<(String, Uuid, Value)> {
    sqlx::query_as("select type, seller_id, data from webhook_event order by seq")
        .fetch_all(world.pool())
        .await
        .unwrap()
}

/// The keys every purchase event's `data` holds (`PurchaseData`).
pub const PURCHASE_KEYS: [&str; 15] = [
    "purchase_id",
    "status",
    "seller_id",
    "listing",
    "tier",
    "amount",
    "currency",
    "application_fee_amount",
    "amount_refunded",
    "max_installs",
    "email",
    "upgrade_of",
    "paid_at",
    "fulfilled_at",
    "closed_at",
];

pub fn keys(data: &Value) -> BTreeSet<&str> {
    data.as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

pub fn keys_of<'a>(groups: &[&[&'a str]]) -> BTreeSet<&'a str> {
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}
