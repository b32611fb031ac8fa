//! The marketplace of the isolation run (`seller_isolation.rs`): the house and three sellers, each
//! with a Xano account of its own in the simulator, its own access token, listing and tiers.
//!
//! A seller is set up the way a real one is (`docs/MARKETPLACE.md`, "The seller journey"), through
//! the public API of one instance each, in [`open_for_sale`]: everything a seller must do before
//! its tiers can be bought is in that one function, so a new step (Stripe Connect onboarding) has
//! one place to go. The Xano simulator's control API stands in for what the seller does in its own
//! Xano account (the account, the snippet, a new access token).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sandbox::xano::token_fingerprint;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cluster::Cluster;

/// A seller of the run: its name, its Xano account's id (the call log's `account`) and its snippet.
pub struct SellerSpec {
    pub name: &'static str,
    pub xano_account: &'static str,
    pub canonical: &'static str,
}

/// The three sellers, each set up through its own instance (A through instance 0, …).
pub const SELLERS: [SellerSpec; 3] = [
    SellerSpec {
        name: "A",
        xano_account: "101",
        canonical: "seller-a_01",
    },
    SellerSpec {
        name: "B",
        xano_account: "102",
        canonical: "seller-b_01",
    },
    SellerSpec {
        name: "C",
        xano_account: "103",
        canonical: "seller-c_01",
    },
];

/// The house's snippet, in the simulator's default account (id "1", `XANO_ACCESS_TOKEN`).
pub const HOUSE_CANONICAL: &str = "house-snip_01";
pub const HOUSE_ACCOUNT: &str = "1";

/// The house's catalog, applied with `market tiers apply` like the main scenario's.
pub const HOUSE_TIERS: &str = r#"
[[listing]]
canonical = "house-snip_01"
title = "House snippet"

[[listing.tier]]
slug = "solo"
name = "Solo"
price = 1900
currency = "usd"
max_installs = 5
pool_low_water = 2
pool_target = 4
"#;

/// Every seller's tiers: (slug, name, price in cents, installs, pool low water, pool target). Small
/// pools, so that each run needs refills: a seller whose refills stall sells its pool out in
/// seconds and its buyers wait, which is what the faults are meant to show and A must never see.
const TIERS: [(&str, &str, i64, i64, i32, i32); 2] = [
    ("solo", "Solo", 1500, 3, 3, 5),
    ("team", "Team", 4500, 10, 2, 4),
];

/// A seller (or the house) as the run knows it.
pub struct Seller {
    pub name: String,
    /// `seller.seller_id`.
    pub id: Uuid,
    pub xano_account: String,
    /// The seller's API key; `None` for the house, which has none.
    pub key: Option<String>,
    pub canonicals: Vec<String>,
    pub tiers: Vec<Uuid>,
    /// Every Xano access token the service was given for this seller, oldest first (a replacement
    /// adds one): the only tokens its calls may carry.
    pub xano_tokens: Mutex<Vec<String>>,
}

impl Seller {
    /// The fingerprints of [`Seller::xano_tokens`], as the simulator's call log shows them.
    pub fn fingerprints(&self) -> HashSet<String> {
        self.xano_tokens
            .lock()
            .unwrap()
            .iter()
            .map(|token| token_fingerprint(token))
            .collect()
    }

    /// The access token in use now (the newest).
    pub fn xano_token(&self) -> String {
        self.xano_tokens
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a seller has a token")
    }
}

/// A control call to the Xano simulator (never faulted); its answer's JSON (`null` for a 204).
pub async fn xano_control(cluster: &Cluster, path: &str, body: &Value) -> Value {
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}{path}", cluster.xano_control))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("xano sim {path}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "xano sim {path} answered {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A seller API (or admin API) call with `key` to one instance; asserts `expect` and returns the
/// answer's JSON.
async fn call(
    cluster: &Cluster,
    instance: usize,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: &Value,
    expect: u16,
) -> Value {
    let url = format!("{}{path}", cluster.instances[instance].url);
    let response = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(key)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path} on instance {instance}: {e}"));
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, expect, "{path} on instance {instance}: {body}");
    body
}

/// The seller onboards at Stripe: an onboarding link from the service, Stripe's hosted form filled
/// in (the simulator's), and Stripe's `account.updated` delivered to the instance as this suite's
/// driver delivers every event; returns once the service says charges are enabled.
async fn onboard(cluster: &Cluster, instance: usize, key: &str) {
    use reqwest::Method;

    let link = call(
        cluster,
        instance,
        Method::POST,
        "/v1/seller/stripe/onboarding",
        key,
        &Value::Null,
        200,
    )
    .await;
    let url = link["url"].as_str().expect("the onboarding link");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let submitted = http
        .post(url)
        .send()
        .await
        .expect("Stripe's onboarding form");
    assert_eq!(submitted.status(), 303, "the form sends the seller back");
    let me = call(
        cluster,
        instance,
        Method::GET,
        "/v1/seller/me",
        key,
        &Value::Null,
        200,
    )
    .await;
    let account = me["stripe"]["account_id"]
        .as_str()
        .expect("the seller's connected account")
        .to_owned();
    let events: Value = http
        .get(format!(
            "{}v1/events?type=account.updated&limit=100",
            cluster.stripe_url
        ))
        .bearer_auth(&cluster.secrets.stripe_key)
        .send()
        .await
        .expect("Stripe's events")
        .json()
        .await
        .expect("Stripe's events as JSON");
    let updated = events["data"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|e| e["data"]["object"]["id"] == account.as_str())
        })
        .expect("Stripe's account.updated for the seller")
        .to_string();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let signature = sandbox::stripe::webhook::signature_header(
        &updated,
        timestamp,
        std::slice::from_ref(&cluster.secrets.webhook_secret),
    );
    let answer = http
        .post(format!(
            "{}/v1/webhooks/stripe",
            cluster.instances[instance].url
        ))
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .body(updated)
        .send()
        .await
        .expect("the webhook");
    assert_eq!(answer.status(), 200, "account.updated applied");
    let me = call(
        cluster,
        instance,
        Method::GET,
        "/v1/seller/me",
        key,
        &Value::Null,
        200,
    )
    .await;
    assert_eq!(
        me["stripe"]["charges_enabled"], true,
        "charges enabled: {me}"
    );
}

/// Puts one seller on sale through instance `instance`, as the seller journey goes, and returns
/// once every one of its tiers' pools is full.
pub async fn open_for_sale(
    cluster: &Cluster,
    db: &PgPool,
    spec: &SellerSpec,
    instance: usize,
) -> Seller {
    use reqwest::Method;

    // Outside the service: the seller's own Xano account, its snippet and an access token.
    let account = json!({
        "id": spec.xano_account,
        "name": format!("Seller {}", spec.name),
        "email": format!("seller-{}@example.test", spec.name.to_lowercase()),
    });
    let xano_token = xano_control(cluster, "/accounts", &account).await["access_token"]
        .as_str()
        .expect("the new account's access token")
        .to_owned();
    let snippet = json!({
        "canonical": spec.canonical,
        "name": format!("{}'s snippet", spec.name),
        "access_token": xano_token,
    });
    xano_control(cluster, "/snippets", &snippet).await;

    // 1. The operator invites the seller; the key is shown once.
    let admin = cluster.secrets.admin_token.clone();
    let invitation = json!({
        "name": format!("Seller {}", spec.name),
        "contact_email": format!("seller-{}@example.com", spec.name.to_lowercase()),
    });
    let invited = call(
        cluster,
        instance,
        Method::POST,
        "/v1/admin/sellers",
        &admin,
        &invitation,
        201,
    )
    .await;
    let key = invited["api_key"]
        .as_str()
        .expect("the seller's key")
        .to_owned();
    let seller_id = invited["seller"]["seller_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the seller's id");

    // 2. The seller's Xano credential (the service checks it with `GET /auth/me`).
    let credential = json!({ "access_token": xano_token });
    call(
        cluster,
        instance,
        Method::PUT,
        "/v1/seller/xano",
        &key,
        &credential,
        200,
    )
    .await;

    // 3. The listing, then its tiers.
    let listing_path = format!("/v1/seller/listings/{}", spec.canonical);
    let listing = json!({ "title": format!("{}'s snippet", spec.name), "description": "" });
    call(
        cluster,
        instance,
        Method::PUT,
        &listing_path,
        &key,
        &listing,
        200,
    )
    .await;
    let mut tiers = Vec::new();
    for (slug, name, price, installs, low, target) in TIERS {
        let tier = json!({
            "name": name, "price": { "amount": price, "currency": "usd" },
            "max_installs": installs, "pool_low_water": low, "pool_target": target,
        });
        let path = format!("{listing_path}/tiers/{slug}");
        let saved = call(cluster, instance, Method::PUT, &path, &key, &tier, 200).await;
        let id = saved["listing"]["tiers"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|t| t["slug"] == slug && t["active"] == true)
            })
            .and_then(|t| t["id"].as_str())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("tier {slug} in {saved}"));
        tiers.push(id);
    }

    // 4. Stripe Connect: the seller's tiers are on sale only once Stripe enables charges.
    onboard(cluster, instance, &key).await;

    let seller = Seller {
        name: spec.name.to_owned(),
        id: seller_id,
        xano_account: spec.xano_account.to_owned(),
        key: Some(key),
        canonicals: vec![spec.canonical.to_owned()],
        tiers,
        xano_tokens: Mutex::new(vec![xano_token]),
    };
    pools_filled(db, &seller).await;
    seller
}

/// The house, as `Cluster::start` made it: its listing from [`HOUSE_TIERS`], the service's own
/// Xano token. Returns once its pool is full.
pub async fn house(cluster: &Cluster, db: &PgPool) -> Seller {
    let tiers: Vec<Uuid> = sqlx::query_scalar(
        "select tier_id from tier join listing using (listing_id)
         where canonical = $1 and tier.active order by tier_id",
    )
    .bind(HOUSE_CANONICAL)
    .fetch_all(db)
    .await
    .expect("read the house's tiers");
    assert!(!tiers.is_empty(), "the house's catalog was applied");
    let seller_id = sqlx::query_scalar("select seller_id from seller where house")
        .fetch_one(db)
        .await
        .expect("the house");
    let house = Seller {
        name: "house".to_owned(),
        id: seller_id,
        xano_account: HOUSE_ACCOUNT.to_owned(),
        key: None,
        canonicals: vec![HOUSE_CANONICAL.to_owned()],
        tiers,
        xano_tokens: Mutex::new(vec![cluster.secrets.xano_token.clone()]),
    };
    pools_filled(db, &house).await;
    house
}

/// Waits (up to 60 s) until every tier of `seller` has its pool target of available tokens.
async fn pools_filled(db: &PgPool, seller: &Seller) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let short: i64 = sqlx::query_scalar(
            "select count(*) from tier t
             where t.tier_id = any($1)
               and (select count(*) from install_token it
                    where it.tier_id = t.tier_id and it.state = 'available') < t.pool_target",
        )
        .bind(&seller.tiers)
        .fetch_one(db)
        .await
        .expect("read the pools");
        if short == 0 {
            return;
        }
        assert!(
            Instant::now() < until,
            "seller {}'s pools were not filled within 60 s",
            seller.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Revokes the seller's access token at Xano (every call with it answers 401 from now on).
pub async fn revoke_xano_token(cluster: &Cluster, seller: &Seller) {
    let body = json!({ "state": "expired", "access_token": seller.xano_token() });
    xano_control(cluster, "/access-token-state", &body).await;
}

/// The seller makes a new access token in its Xano account and hands it to the service with
/// `PUT /v1/seller/xano` through instance `instance` (the old one stays revoked).
pub async fn replace_xano_token(cluster: &Cluster, seller: &Seller, instance: usize) {
    let old = json!({ "access_token": seller.xano_token() });
    let fresh = xano_control(cluster, "/access-tokens", &old).await["access_token"]
        .as_str()
        .expect("a new access token")
        .to_owned();
    seller.xano_tokens.lock().unwrap().push(fresh.clone());
    let key = seller.key.as_deref().expect("a seller's key");
    let body = json!({ "access_token": fresh });
    call(
        cluster,
        instance,
        reqwest::Method::PUT,
        "/v1/seller/xano",
        key,
        &body,
        200,
    )
    .await;
}

/// The simulator's live tokens of every seller's snippets, by canonical (for the checker).
pub async fn live_at_xano(cluster: &Cluster, sellers: &[Seller]) -> HashMap<String, Vec<Value>> {
    let http = reqwest::Client::new();
    let mut all = HashMap::new();
    for canonical in sellers.iter().flat_map(|s| &s.canonicals) {
        let url = format!("{}/snippets/{canonical}/tokens", cluster.xano_control);
        let tokens: Vec<Value> = testkit::http::json(http.get(url)).await;
        all.insert(canonical.clone(), tokens);
    }
    all
}
