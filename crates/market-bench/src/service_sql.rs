//! Limit (a2): the service's own fulfilment SQL under pgbench at the same concurrency, against the
//! bench's database. Purchases and tokens are made with SQL (`pgbench::prepare`); two of them are
//! fulfilled in-process through the recording proxy (`trips.rs`), which gives the round trips per
//! fulfilment; the steady run becomes the script (`replay.rs`); pgbench runs it; and afterwards
//! every purchase pgbench processed must be fulfilled with one token, as the service leaves it.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::context::Ctx;
use crate::pgbench::{self, Database, PGBENCH, Script};
use crate::report::{Check, Row};
use crate::{replay, say, trips};

/// What limit (a2) adds to the report.
pub struct ServiceSql {
    /// `None` when the recorded SQL could not be replayed (the reason is in the notes).
    pub row: Option<Row>,
    pub round_trips: serde_json::Value,
    /// Round trips per fulfilment on the wire (the target's figure).
    pub trips: u64,
    pub check: Option<Check>,
    pub notes: Vec<String>,
}

/// The first pgbench purchase (1 and 2 are the in-process recordings').
const FIRST: u64 = 3;

pub async fn run(ctx: &Ctx<'_>, db: &PgPool, tiers: &[Uuid]) -> anyhow::Result<ServiceSql> {
    let mut notes = Vec::new();
    let total = ctx.plan.pgbench_purchases;
    pgbench::prepare(db, PGBENCH, tiers, 1, total + FIRST - 1).await?;
    let recording = trips::record_fulfilment(ctx.database_url).await?;
    let steady = &recording.steady;
    let trips = steady.total;
    say(
        ctx.begun,
        &format!(
            "round trips per fulfilment: {trips} measured on the wire ({} of them a pool ping)",
            steady.pings
        ),
    );
    let mut round_trips = json!({
        "measured_on_the_wire": trips,
        "pool_pings": steady.pings,
        "statements": steady.executions.iter().map(|e| crate::wire_msg::cstr_text(&e.sql)).collect::<Vec<_>>(),
        "statements_prepared_in_the_first_run": recording.first.sql,
    });
    let replay = match replay::build(db, &recording, ctx.plan.concurrency, FIRST).await {
        Ok(r) => r,
        Err(e) => {
            notes.push(format!(
                "limit a2 not run: the recorded SQL could not be replayed: {e:#}"
            ));
            return Ok(ServiceSql {
                row: None,
                round_trips,
                trips,
                check: None,
                notes,
            });
        }
    };
    notes.extend(replay.notes.iter().cloned());
    round_trips["replay_commands"] = json!(replay.commands);
    let url: url::Url = ctx.database_url.parse()?;
    let pg = pgbench::run(
        ctx.work_dir,
        &Database::on(&url, ctx.db_name),
        Script::Custom {
            name: "fulfilment",
            text: &replay.script,
        },
        &[("k", "0".to_owned())],
        ctx.plan.concurrency,
        (ctx.plan.warmup, ctx.plan.duration),
    )
    .await?;
    let fulfilled: i64 = sqlx::query_scalar(
        "select count(*) from purchase p
         where p.purchase_id::text like $1 and p.status = 'fulfilled'
           and (select count(*) from install_token t
                where t.purchase_id = p.purchase_id and t.state = 'assigned') = 1",
    )
    .bind(format!("{}%", PGBENCH.uuid_prefix))
    .fetch_one(db)
    .await?;
    let by_pgbench = u64::try_from(fulfilled).unwrap_or(0).saturating_sub(2);
    let check = Check {
        ok: by_pgbench == pg.processed && pg.processed > 0,
        text: format!(
            "limit a2: {by_pgbench} purchases fulfilled with one token by the {} transactions pgbench ran (the replay does what the service does)",
            pg.processed
        ),
    };
    if pg.failed {
        notes.push(format!(
            "pgbench (limit a2) reported a failure (ran out of the {total} prepared purchases?): {}",
            pg.output.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let row = Row::new(
        "limit a2: pgbench, the service's SQL",
        ctx.plan.concurrency,
        pg.elapsed.as_secs_f64(),
        pg.transactions,
        u64::from(pg.failed),
        &pg.latency,
        None,
        format!(
            "{} round trips per transaction, replayed from the wire (script: {})",
            replay.commands,
            ctx.work_dir.join("fulfilment.sql").display()
        ),
    );
    Ok(ServiceSql {
        row: Some(row),
        round_trips,
        trips,
        check: Some(check),
        notes,
    })
}
