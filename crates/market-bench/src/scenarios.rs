//! The measured scenarios against the server: a fixed GET (catalog, `/healthz`) and fulfilment
//! (one signed `checkout.session.completed` per prepared purchase), each checked for what it must
//! have done.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use sandbox::stripe::signature_header;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Plan;
use crate::http;
use crate::load::{self, Work};
use crate::purchases::Pending;
use crate::report::{Check, Row};
use crate::server::Server;

/// Posts one signed delivery per purchase, at the plan's concurrency, and checks the database.
pub async fn fulfilment(
    server: &Server,
    db: &PgPool,
    plan: &Plan,
    name: &str,
    work: &[Pending],
    payloads: &HashMap<String, String>,
    secret: &str,
) -> anyhow::Result<(Row, Check)> {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let secrets = [secret.to_owned()];
    let mut requests: Vec<Arc<[u8]>> = Vec::with_capacity(work.len());
    for p in work {
        let payload = payloads
            .get(&p.session)
            .with_context(|| format!("no completed event for {}", p.session))?;
        let signature = signature_header(payload, now, &secrets);
        requests.push(Arc::from(http::request(
            "POST",
            "/v1/webhooks/stripe",
            &[
                ("content-type", "application/json"),
                ("stripe-signature", &signature),
            ],
            payload.as_bytes(),
        )));
    }
    let size = u64::try_from(requests.len())?;
    let requests = Arc::new(requests);
    let list = Arc::clone(&requests);
    server.reset_peak_rss();
    let measured = load::run(
        server.addr,
        plan.concurrency,
        plan.warmup,
        plan.duration,
        Work {
            request: Box::new(move |i| list.get(usize::try_from(i).ok()?).cloned()),
            check: Box::new(|r| {
                r.status == 200
                    && r.body
                        .windows(br#""outcome":"fulfilled""#.len())
                        .any(|w| w == br#""outcome":"fulfilled""#)
            }),
            size: Some(size),
        },
    )
    .await;
    let rss = server.peak_rss();

    // Every delivery sent must have left its purchase fulfilled with exactly one live token.
    let sent = usize::try_from(measured.issued)
        .unwrap_or(usize::MAX)
        .min(work.len());
    let ids: Vec<Uuid> = work[..sent].iter().map(|p| p.purchase).collect();
    let (fulfilled, tokens): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where p.status = 'fulfilled'
                                  and (select count(*) from install_token t
                                       where t.purchase_id = p.purchase_id and t.state = 'assigned') = 1),
                (select count(distinct install_token_id) from install_token
                 where purchase_id = any($1) and state = 'assigned')
         from purchase p where p.purchase_id = any($1)",
    )
    .bind(&ids)
    .fetch_one(db)
    .await?;
    let ok = usize::try_from(fulfilled).ok() == Some(sent)
        && usize::try_from(tokens).ok() == Some(sent)
        && sent > 0;
    let check = Check {
        ok,
        text: format!(
            "{name}: {fulfilled} of {sent} purchases delivered are fulfilled with exactly one token ({tokens} distinct tokens)"
        ),
    };
    let mut note = String::new();
    if measured.exhausted {
        note = format!(
            "all {} prepared purchases used before the deadline",
            work.len()
        );
    }
    if !measured.samples.is_empty() {
        let _ = write!(note, " errors e.g.: {}", measured.samples.join(" | "));
    }
    Ok((
        Row::new(
            name,
            plan.concurrency,
            measured.elapsed.as_secs_f64(),
            measured.ok,
            measured.errors,
            &measured.latency,
            rss,
            note,
        ),
        check,
    ))
}

/// A GET of one path at the plan's concurrency, expecting 200.
pub async fn fixed_request(server: &Server, plan: &Plan, name: &str, path: &str) -> Row {
    let request: Arc<[u8]> = Arc::from(http::request("GET", path, &[], b""));
    server.reset_peak_rss();
    let measured = load::run(
        server.addr,
        plan.concurrency,
        plan.warmup,
        plan.duration,
        Work {
            request: Box::new(move |_| Some(Arc::clone(&request))),
            check: Box::new(|r| r.status == 200),
            size: None,
        },
    )
    .await;
    Row::new(
        name,
        plan.concurrency,
        measured.elapsed.as_secs_f64(),
        measured.ok,
        measured.errors,
        &measured.latency,
        server.peak_rss(),
        measured.samples.join(" | "),
    )
}
