//! The measured scenarios against the server: a fixed GET (catalog, `/healthz`) and fulfilment
//! (one signed `checkout.session.completed` per prepared purchase, over one or more servers), each
//! checked for what it must have done; and [`measure`], which every scenario against a server
//! goes through: the load, the servers' peak RSS, where the CPU went, and what the memory holds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use sandbox::stripe::signature_header;
use sqlx::PgPool;
use uuid::Uuid;

use crate::load::{self, Measured, Work};
use crate::purchases::Pending;
use crate::report::{Check, Row};
use crate::server::Server;
use crate::{Plan, cpu, http, memory};

/// Runs `work` against `servers` (round-robin by connection) at the plan's concurrency, with the
/// servers' peak RSS reset first; the row carries the CPU shares of the measured window and the
/// first server's memory breakdown at its end.
pub async fn measure(
    servers: &[&Server],
    db: &PgPool,
    plan: &Plan,
    name: &str,
    work: Work,
) -> (Row, Measured) {
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.pid).collect();
    for s in servers {
        s.reset_peak_rss();
    }
    let (measured, usage) = cpu::during(
        db,
        &pids,
        plan.warmup,
        load::run(&addrs, plan.concurrency, plan.warmup, plan.duration, work),
    )
    .await;
    let rss = servers.iter().filter_map(|s| s.peak_rss()).max();
    let mut row = Row::new(
        name,
        plan.concurrency,
        measured.elapsed.as_secs_f64(),
        measured.ok,
        measured.errors,
        &measured.latency,
        rss,
        String::new(),
    );
    if measured.exhausted {
        "all prepared work used before the deadline".clone_into(&mut row.note);
    }
    if !measured.samples.is_empty() {
        let _ = write!(row.note, " errors e.g.: {}", measured.samples.join(" | "));
    }
    row.cpu = usage;
    row.memory = servers.first().and_then(|s| memory::breakdown(s.pid));
    (row, measured)
}

/// Posts one signed delivery per purchase over `servers`, and checks the database.
pub async fn fulfilment(
    servers: &[&Server],
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
    let list = Arc::new(requests);
    let work_items = Work {
        request: Box::new(move |i| list.get(usize::try_from(i).ok()?).cloned()),
        check: Box::new(|r| {
            r.status == 200
                && r.body
                    .windows(br#""outcome":"fulfilled""#.len())
                    .any(|w| w == br#""outcome":"fulfilled""#)
        }),
        size: Some(size),
    };
    let (row, measured) = measure(servers, db, plan, name, work_items).await;
    // Every delivery sent must have left its purchase fulfilled with exactly one live token.
    let sent = usize::try_from(measured.issued)
        .unwrap_or(usize::MAX)
        .min(work.len());
    let check = delivered_check(db, name, &work[..sent]).await?;
    Ok((row, check))
}

/// Whether every purchase in `delivered` is fulfilled with exactly one assigned token, all distinct.
pub async fn delivered_check(
    db: &PgPool,
    name: &str,
    delivered: &[Pending],
) -> anyhow::Result<Check> {
    let ids: Vec<Uuid> = delivered.iter().map(|p| p.purchase).collect();
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
    let sent = delivered.len();
    Ok(Check {
        ok: usize::try_from(fulfilled).ok() == Some(sent)
            && usize::try_from(tokens).ok() == Some(sent)
            && sent > 0,
        text: format!(
            "{name}: {fulfilled} of {sent} purchases delivered are fulfilled with exactly one token ({tokens} distinct tokens)"
        ),
    })
}

/// A GET of one path at the plan's concurrency, expecting 200.
pub async fn fixed_request(
    server: &Server,
    db: &PgPool,
    plan: &Plan,
    name: &str,
    path: &str,
) -> Row {
    let request: Arc<[u8]> = Arc::from(http::request("GET", path, &[], b""));
    let work = Work {
        request: Box::new(move |_| Some(Arc::clone(&request))),
        check: Box::new(|r| r.status == 200),
        size: None,
    };
    measure(&[server], db, plan, name, work).await.0
}
