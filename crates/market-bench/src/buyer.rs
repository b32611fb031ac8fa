//! What a buyer's browser asks of the service around a payment, measured like the rest:
//! - **checkout**: `POST /v1/checkout` as the storefront sends it (`static/app.js`: the tier, an
//!   email, and a fresh `Idempotency-Key` per attempt), each opening a Checkout Session at the
//!   Stripe simulator;
//! - **the success page**: `GET /v1/checkout/sessions/{id}` with the receipt key, where Stripe
//!   sends the buyer back. For a purchase already fulfilled (the common case: the webhook came
//!   first) it is one read and a token opened; for one paid at Stripe but not delivered yet, the
//!   page reads the session from Stripe and fulfils it itself.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use crate::Plan;
use crate::http;
use crate::load::Work;
use crate::purchases::Pending;
use crate::report::{Check, Row};
use crate::scenarios::{self, delivered_check};
use crate::server::Server;

/// Checkouts over `tiers` in turn, each with a fresh idempotency key; checks that each answer 201
/// left one purchase.
pub async fn checkout(
    server: &Server,
    db: &PgPool,
    plan: &Plan,
    tiers: &[Uuid],
) -> anyhow::Result<(Row, Check)> {
    let name = "checkout: POST /v1/checkout";
    let count = "select count(*) from purchase where tier_id = any($1)";
    let before: i64 = sqlx::query_scalar(count).bind(tiers).fetch_one(db).await?;
    let bodies: Arc<Vec<String>> = Arc::new(
        tiers
            .iter()
            .map(|t| serde_json::json!({ "tier_id": t, "email": "buyer@example.com" }).to_string())
            .collect(),
    );
    let work = Work {
        request: Box::new(move |i| {
            let body = bodies.get(usize::try_from(i).ok()? % bodies.len().max(1))?;
            let key = Uuid::new_v4().to_string();
            Some(Arc::from(http::request(
                "POST",
                "/v1/checkout",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", &key),
                ],
                body.as_bytes(),
            )))
        }),
        check: Box::new(|r| r.status == 201),
        size: None,
    };
    let (row, measured) = scenarios::measure(&[server], db, plan, name, work).await;
    let after: i64 = sqlx::query_scalar(count).bind(tiers).fetch_one(db).await?;
    let made = u64::try_from(after - before).unwrap_or(0);
    let check = Check {
        // Warm-up answers are not counted in `ok`, but their purchases exist.
        ok: made >= measured.ok && made <= measured.issued && measured.ok > 0,
        text: format!(
            "{name}: {made} purchases made by {} checkouts sent ({} answered 201 in the window)",
            measured.issued, measured.ok
        ),
    };
    Ok((row, check))
}

/// A request of the success page for `p`, as the storefront sends it (with the receipt key).
fn success_page(p: &Pending) -> Arc<[u8]> {
    let auth = format!("Bearer {}", p.receipt_key);
    Arc::from(http::request(
        "GET",
        &format!("/v1/checkout/sessions/{}", p.session),
        &[("authorization", &auth), ("accept", "application/json")],
        b"",
    ))
}

/// The answer the success page must give: the purchase fulfilled, with its token's value.
fn shows_token(r: &http::Response) -> bool {
    let has = |needle: &[u8]| r.body.windows(needle.len()).any(|w| w == needle);
    r.status == 200 && has(br#""status":"fulfilled""#) && has(br#""value":""#)
}

/// The success page reloaded for purchases the webhook already fulfilled (cycling over them).
pub async fn success_fulfilled(
    server: &Server,
    db: &PgPool,
    plan: &Plan,
    fulfilled: &[Pending],
) -> anyhow::Result<Row> {
    let requests: Arc<Vec<Arc<[u8]>>> = Arc::new(fulfilled.iter().map(success_page).collect());
    let work = Work {
        request: Box::new(move |i| {
            requests
                .get(usize::try_from(i).ok()? % requests.len().max(1))
                .cloned()
        }),
        check: Box::new(shows_token),
        size: None,
    };
    let name = "success page: already fulfilled";
    let (row, _) = scenarios::measure(&[server], db, plan, name, work).await;
    Ok(Row {
        note: format!(
            "{} purchases, each read with its receipt key {}",
            fulfilled.len(),
            row.note
        ),
        ..row
    })
}

/// The success page for purchases paid at Stripe whose webhook has not come: each request reads
/// the session from Stripe and fulfils the purchase. Checks each purchase asked about holds one
/// token.
pub async fn success_pending(
    server: &Server,
    db: &PgPool,
    plan: &Plan,
    paid: &[Pending],
) -> anyhow::Result<(Row, Check)> {
    let requests: Arc<Vec<Arc<[u8]>>> = Arc::new(paid.iter().map(success_page).collect());
    let size = u64::try_from(requests.len())?;
    let work = Work {
        request: Box::new(move |i| requests.get(usize::try_from(i).ok()?).cloned()),
        check: Box::new(shows_token),
        size: Some(size),
    };
    let name = "success page: paid, webhook not yet come";
    let (row, measured) = scenarios::measure(&[server], db, plan, name, work).await;
    let sent = usize::try_from(measured.issued)
        .unwrap_or(usize::MAX)
        .min(paid.len());
    let check = delivered_check(db, name, &paid[..sent]).await?;
    Ok((row, check))
}
