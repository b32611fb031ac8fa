//! The work of the fulfilment scenarios: pending purchases made through `POST /v1/checkout` (as a
//! buyer's storefront would), paid at the Stripe simulator, whose `checkout.session.completed`
//! payloads this tool then signs and delivers itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use sandbox::stripe::StripeSim;
use uuid::Uuid;

use crate::http;

/// A pending purchase and its Checkout Session.
#[derive(Debug, Clone)]
pub struct Pending {
    pub purchase: Uuid,
    pub session: String,
    /// The buyer's receipt key (the success page's bearer); empty for purchases made with SQL.
    pub receipt_key: String,
}

/// `count` checkouts through `POST /v1/checkout`, spread over `tiers` in turn.
pub async fn prepare(
    addr: SocketAddr,
    tiers: &[Uuid],
    count: u64,
    concurrency: usize,
) -> anyhow::Result<Vec<Pending>> {
    let count = usize::try_from(count)?;
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        tiers
            .iter()
            .cycle()
            .take(count)
            .map(|tier| {
                // As the storefront sends it: a fresh idempotency key per checkout.
                let body = serde_json::json!({ "tier_id": tier, "email": "buyer@example.com" });
                http::request(
                    "POST",
                    "/v1/checkout",
                    &[
                        ("content-type", "application/json"),
                        ("idempotency-key", &Uuid::new_v4().to_string()),
                    ],
                    body.to_string().as_bytes(),
                )
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Mutex::new(vec![None; requests.len()]));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let requests = Arc::clone(&requests);
        let next = Arc::clone(&next);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut conn = http::Conn::new(addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let response = conn.send(request).await?;
                if response.status != 201 {
                    bail!(
                        "checkout: {} {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    );
                }
                let json = response.json()?;
                let purchase: Uuid = json["purchase_id"]
                    .as_str()
                    .context("purchase_id")?
                    .parse()?;
                let session = json["checkout_url"]
                    .as_str()
                    .and_then(|u| u.rsplit('/').next())
                    .context("checkout_url")?
                    .to_owned();
                let receipt_key = json["receipt_key"]
                    .as_str()
                    .context("receipt_key")?
                    .to_owned();
                if let Ok(mut done) = done.lock()
                    && let Some(slot) = done.get_mut(i)
                {
                    *slot = Some(Pending {
                        purchase,
                        session,
                        receipt_key,
                    });
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let done = std::mem::take(&mut *done.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok(done.into_iter().flatten().collect())
}

/// Pays every session at the simulator and returns the `checkout.session.completed` payloads by
/// session id.
pub fn pay_all<'a>(
    stripe: &StripeSim,
    pending: impl Iterator<Item = &'a Pending>,
) -> anyhow::Result<HashMap<String, String>> {
    for p in pending {
        stripe
            .pay(&p.session)
            .map_err(|e| anyhow::anyhow!("paying {}: {e}", p.session))?;
    }
    let mut payloads = HashMap::new();
    for event in stripe.events() {
        if event.type_ != "checkout.session.completed" {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&event.payload)?;
        if let Some(session) = json["data"]["object"]["id"].as_str() {
            payloads.insert(session.to_owned(), event.payload);
        }
    }
    Ok(payloads)
}
