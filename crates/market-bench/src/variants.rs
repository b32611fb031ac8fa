//! Fulfilment under other set-ups of the service, all on the same database in the same run:
//! - **1, 2 and 3 instances** of `market serve` (each on its own port, the load spread round-robin
//!   by connection, the same total concurrency), each with the default pool of 20 connections —
//!   what a deployment of that many instances runs — and then 3 instances with 7 each, as many
//!   backends in all as one instance has, to tell more processes from more backends;
//! - **TLS to the database on the same host**: `sslmode=prefer` (sqlx's default, and the
//!   default URL's: the Debian server has `ssl = on`, so TLS is negotiated on loopback) against
//!   `sslmode=disable`, two servers in four alternating parts (prefer, disable, disable, prefer),
//!   so that the database's growth over the parts weighs on both alike. Each server's connections
//!   are named (`application_name`), and `pg_stat_ssl` shows which are encrypted.
//!
//! Each part measures half the plan's window (5 s after a 0.5 s warm-up in a full run) on purchases
//! of its own, after a `vacuum` of the tokens and purchases the parts before it claimed. Fresh
//! servers first fulfil for a second unmeasured, so that no part pays for opening connections.
//!
//! The purchases are made with SQL (`pgbench::prepare`, namespace `var`) and their signed
//! deliveries cut from one real `checkout.session.completed` of the Stripe simulator by swapping
//! its identifiers: tens of thousands of checkouts through the API would take minutes. Every
//! delivery is checked as in the fulfilment scenario.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::context::Ctx;
use crate::pgbench::{self, Keys, VARIANTS};
use crate::purchases::Pending;
use crate::report::{Check, Row, pooled_throughput, ratio};
use crate::scenarios;
use crate::server::{Server, ServerConfig};

/// What the variants add to the report.
#[derive(Default)]
pub struct Variants {
    pub rows: Vec<Row>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
}

/// A real delivery to cut others from: its payload and the identifiers in it.
pub struct Template {
    payload: String,
    ids: [String; 4],
}

impl Template {
    /// From a prepared purchase and its `checkout.session.completed` payload.
    pub fn of(p: &Pending, payload: &str) -> anyhow::Result<Self> {
        let json: serde_json::Value = serde_json::from_str(payload)?;
        let event = json["id"].as_str().context("event id")?.to_owned();
        let intent = json["data"]["object"]["payment_intent"]
            .as_str()
            .context("payment_intent")?
            .to_owned();
        Ok(Self {
            payload: payload.to_owned(),
            ids: [event, p.session.clone(), p.purchase.to_string(), intent],
        })
    }

    /// The delivery of SQL-made purchase `n`.
    fn for_purchase(&self, n: u64) -> (Pending, String) {
        let keys = Keys::of(VARIANTS, n);
        let purchase = keys.purchase.to_string();
        let mut payload = self.payload.clone();
        for (from, to) in
            self.ids
                .iter()
                .zip([&keys.event, &keys.session, &purchase, &keys.payment_intent])
        {
            payload = payload.replace(from.as_str(), to);
        }
        let pending = Pending {
            purchase: keys.purchase,
            session: keys.session,
            receipt_key: String::new(),
        };
        (pending, payload)
    }
}

/// Purchases made with SQL, numbered from a counter, with their deliveries.
struct Supply<'a> {
    db: &'a PgPool,
    tiers: &'a [Uuid],
    template: &'a Template,
    next: u64,
}

impl Supply<'_> {
    async fn take(
        &mut self,
        count: u64,
    ) -> anyhow::Result<(Vec<Pending>, HashMap<String, String>)> {
        let first = self.next;
        self.next += count;
        pgbench::prepare(self.db, VARIANTS, self.tiers, first, count).await?;
        // Each part starts with the claimed tokens of the parts before it vacuumed away: they share
        // these tiers, and dead index entries would make every later part slower.
        sqlx::query("vacuum install_token, purchase")
            .execute(self.db)
            .await?;
        let mut list = Vec::new();
        let mut payloads = HashMap::new();
        for n in first..first + count {
            let (p, payload) = self.template.for_purchase(n);
            payloads.insert(p.session.clone(), payload);
            list.push(p);
        }
        Ok((list, payloads))
    }
}

/// Runs the instance and TLS variants; `main` is the running server (the first instance).
pub async fn run(
    ctx: &Ctx<'_>,
    main: &Server,
    db: &PgPool,
    tiers: &[Uuid],
    template: &Template,
) -> anyhow::Result<Variants> {
    let mut supply = Supply {
        db,
        tiers,
        template,
        next: 1,
    };
    let mut out = Variants::default();
    // Half-length windows: eight parts in all.
    let half = crate::Plan {
        duration: ctx.plan.duration / 2,
        warmup: ctx.plan.warmup / 2,
        ..ctx.plan.clone()
    };
    let count = ctx.plan.purchases / 2 + 1;
    let mut extra = [spawn(ctx.config, &[])?, spawn(ctx.config, &[])?];
    for server in &mut extra {
        server.wait_ready(Duration::from_secs(30)).await?;
    }
    warm(ctx, &[&extra[0], &extra[1]], db, &mut supply, &mut out).await?;
    let all = [main, &extra[0], &extra[1]];
    for k in 1..=3 {
        let (work, payloads) = supply.take(count).await?;
        let name = match k {
            1 => "fulfilment: 1 instance".to_owned(),
            _ => format!("fulfilment: {k} instances"),
        };
        let (row, check) = scenarios::fulfilment(
            &all[..k],
            db,
            &half,
            &name,
            &work,
            &payloads,
            ctx.webhook_secret,
        )
        .await?;
        out.rows.push(row);
        out.checks.push(check);
        crate::say(ctx.begun, &format!("{name} done"));
    }
    for server in extra {
        server.stop(Duration::from_secs(10)).await?;
    }

    // Three instances with a third of the pool each: 21 backends, about one instance's 20.
    let small = [("MARKET_DB_MAX_CONNECTIONS", "7")];
    let mut thirds = [
        spawn(ctx.config, &small)?,
        spawn(ctx.config, &small)?,
        spawn(ctx.config, &small)?,
    ];
    for server in &mut thirds {
        server.wait_ready(Duration::from_secs(30)).await?;
    }
    let servers: Vec<&Server> = thirds.iter().collect();
    warm(ctx, &servers, db, &mut supply, &mut out).await?;
    let (work, payloads) = supply.take(count).await?;
    let name = "fulfilment: 3 instances, pool 7 each";
    let (row, check) = scenarios::fulfilment(
        &servers,
        db,
        &half,
        name,
        &work,
        &payloads,
        ctx.webhook_secret,
    )
    .await?;
    out.rows.push(row);
    out.checks.push(check);
    for server in thirds {
        server.stop(Duration::from_secs(10)).await?;
    }
    crate::say(ctx.begun, "3 instances with small pools done");

    tls(ctx, db, &half, &mut supply, &mut out).await?;
    Ok(out)
}

/// A second of fulfilment through fresh `servers`, not measured (its check is kept): they open
/// their database connections and prepare their statements before their first measured part.
async fn warm(
    ctx: &Ctx<'_>,
    servers: &[&Server],
    db: &PgPool,
    supply: &mut Supply<'_>,
    out: &mut Variants,
) -> anyhow::Result<()> {
    let (work, payloads) = supply
        .take(u64::try_from(ctx.plan.concurrency)? * 8)
        .await?;
    let brief = crate::Plan {
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        ..ctx.plan.clone()
    };
    let name = format!("variants: warm-up of {} fresh servers", servers.len());
    let (_, check) = scenarios::fulfilment(
        servers,
        db,
        &brief,
        &name,
        &work,
        &payloads,
        ctx.webhook_secret,
    )
    .await?;
    out.checks.push(check);
    Ok(())
}

/// A server with `env` added, not yet ready.
fn spawn(config: &ServerConfig, env: &[(&str, &str)]) -> anyhow::Result<Server> {
    let mut config = config.clone();
    config
        .extra_env
        .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    config.spawn()
}

/// `sslmode=prefer` against `sslmode=disable`, in parts A B B A.
async fn tls(
    ctx: &Ctx<'_>,
    db: &PgPool,
    half: &crate::Plan,
    supply: &mut Supply<'_>,
    out: &mut Variants,
) -> anyhow::Result<()> {
    let with = |mode: &str, app: &str| -> anyhow::Result<ServerConfig> {
        let mut config = ctx.config.clone();
        let mut url: url::Url = config.database_url.parse()?;
        url.query_pairs_mut()
            .append_pair("sslmode", mode)
            .append_pair("application_name", app);
        config.database_url = url.to_string();
        Ok(config)
    };
    let mut tls = with("prefer", "bench-tls")?.spawn()?;
    let mut plain = with("disable", "bench-plain")?.spawn()?;
    tls.wait_ready(Duration::from_secs(30)).await?;
    plain.wait_ready(Duration::from_secs(30)).await?;
    warm(ctx, &[&tls, &plain], db, supply, out).await?;
    for (part, (server, mode)) in [
        (&tls, "prefer"),
        (&plain, "disable"),
        (&plain, "disable"),
        (&tls, "prefer"),
    ]
    .into_iter()
    .enumerate()
    {
        let (work, payloads) = supply.take(ctx.plan.purchases / 2 + 1).await?;
        let name = format!("tls: fulfilment {}, sslmode={mode}", part + 1);
        let (row, check) = scenarios::fulfilment(
            &[server],
            db,
            half,
            &name,
            &work,
            &payloads,
            ctx.webhook_secret,
        )
        .await?;
        out.rows.push(row);
        out.checks.push(check);
    }
    let seen: Vec<(String, i64, i64)> = sqlx::query_as(
        "select a.application_name, count(*) filter (where s.ssl), count(*)
         from pg_stat_activity a join pg_stat_ssl s using (pid)
         where a.datname = current_database() and a.application_name in ('bench-tls', 'bench-plain')
         group by 1 order by 1",
    )
    .fetch_all(db)
    .await?;
    let count = |app: &str| {
        seen.iter()
            .find(|(a, _, _)| a == app)
            .map_or((0, 0), |(_, ssl, all)| (*ssl, *all))
    };
    let (tls_ssl, tls_all) = count("bench-tls");
    let (plain_ssl, plain_all) = count("bench-plain");
    out.checks.push(Check {
        ok: tls_all > 0 && tls_ssl == tls_all && plain_all > 0 && plain_ssl == 0,
        text: format!(
            "tls: sslmode=prefer server's connections encrypted: {tls_ssl} of {tls_all}; sslmode=disable server's: {plain_ssl} of {plain_all}"
        ),
    });
    tls.stop(Duration::from_secs(10)).await?;
    plain.stop(Duration::from_secs(10)).await?;
    crate::say(ctx.begun, "TLS variants done");
    Ok(())
}

/// The variants' ratios: instances against one, and TLS off against on (pooled ABBA parts).
pub fn assess(rows: &[Row]) -> Vec<crate::report::Ratio> {
    let find = |name: &str| rows.iter().find(|r| r.scenario == name);
    let mut out = Vec::new();
    if let Some(one) = find("fulfilment: 1 instance") {
        for name in [
            "fulfilment: 2 instances",
            "fulfilment: 3 instances",
            "fulfilment: 3 instances, pool 7 each",
        ] {
            if let Some(row) = find(name) {
                out.push(crate::report::Ratio {
                    name: format!(
                        "{} / 1 instance (throughput)",
                        &name["fulfilment: ".len()..]
                    ),
                    value: ratio(row.throughput, one.throughput),
                });
            }
        }
    }
    let pooled = |mode: &str| {
        pooled_throughput(
            rows.iter()
                .filter(|r| r.scenario.starts_with("tls: ") && r.scenario.ends_with(mode)),
        )
    };
    let (plain, tls) = (pooled("sslmode=disable"), pooled("sslmode=prefer"));
    if tls > 0.0 {
        out.push(crate::report::Ratio {
            name: "fulfilment sslmode=disable / prefer (throughput, ABBA)".into(),
            value: ratio(plain, tls),
        });
    }
    out
}
