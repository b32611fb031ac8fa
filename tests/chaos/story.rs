//! What is printed when a run fails: the story of each purchase involved (its limits and upgrades,
//! its requests, the nemesis meanwhile, its Stripe events, tokens, rotations, outbox, audit log and
//! webhook inbox), and the answer table of the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::checker::Violation;
use crate::driver::Driver;
use crate::history::{Call, History, Outcome, format_entry};

/// The story of a purchase: its history, its Stripe events, its tokens and its audit log.
pub async fn story(db: &PgPool, driver: &Driver, history: &History, purchase: Uuid) -> String {
    let mut out = String::new();
    let record = driver
        .purchases
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.purchase == purchase)
        .cloned();
    let _ = writeln!(
        out,
        "--- purchase {purchase} ({:?}{}, tier {:?}, session {:?}, started at {:?} ms)",
        record.as_ref().map(|r| r.scenario),
        record
            .as_ref()
            .and_then(|r| r.upgrade_of)
            .map_or_else(String::new, |base| format!(", upgrade of {base}")),
        record.as_ref().map(|r| r.tier),
        record.as_ref().map(|r| r.session.clone()),
        record.as_ref().map(|r| r.started_ms)
    );
    let limits: Vec<String> = sqlx::query_scalar(
        "select format('%s %s: max_installs %s, entitlement %s, upgrade of %s',
                       p.purchase_id, p.status, p.max_installs, purchase_entitlement(p.purchase_id),
                       p.upgrade_of)
         from purchase p
         where p.purchase_id = $1 or p.upgrade_of = $1
            or p.purchase_id = (select upgrade_of from purchase where purchase_id = $1)
         order by p.created_at",
    )
    .bind(purchase)
    .fetch_all(db)
    .await
    .unwrap_or_default();
    for line in limits {
        let _ = writeln!(out, "  {line}");
    }
    let entries = history.entries_of(purchase);
    for e in &entries {
        let _ = writeln!(out, "{}", format_entry(e));
    }
    if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
        let _ = writeln!(out, "  nemesis meanwhile:");
        for e in history.nemesis_between(first.at_ms.saturating_sub(5000), last.at_ms + 5000) {
            let _ = writeln!(out, "  {}", format_entry(&e));
        }
    }
    let _ = writeln!(out, "  stripe events:");
    for e in driver.pump.events_of(purchase) {
        let _ = writeln!(out, "    {} {}", e.id, e.type_);
    }
    let _ = writeln!(out, "  tokens:");
    let tokens: Vec<(i64, String, Option<Uuid>, String, i64, i64)> = sqlx::query_as(
        "select install_token_id, state::text, tier_id, origin, max_installs, current_installs
         from install_token where purchase_id = $1",
    )
    .bind(purchase)
    .fetch_all(db)
    .await
    .unwrap_or_default();
    for t in tokens {
        let _ = writeln!(out, "    {t:?}");
    }
    let _ = writeln!(out, "  rotations and outbox:");
    let rows: Vec<String> = sqlx::query_scalar(
        "select line from (
           select created_at, format('rotation %s %s: token %s -> %s, installs carried %s',
                                     rotation_id, state, old_token_id, new_token_id, installs_carried) as line
           from token_rotation where purchase_id = $1
           union all
           select created_at, format('mail %s %s: %s after %s attempts (%s)',
                                     mail_id, fact, state, attempts, last_error)
           from mail_message where purchase_id = $1) rows
         order by created_at",
    )
    .bind(purchase)
    .fetch_all(db)
    .await
    .unwrap_or_default();
    for row in rows {
        let _ = writeln!(out, "    {row}");
    }
    let _ = writeln!(out, "  audit log:");
    let audit: Vec<(String, String, String, Option<i64>, Value)> = sqlx::query_as(
        "select to_char(at, 'HH24:MI:SS.MS'), actor, action, install_token_id, detail
         from audit_event where purchase_id = $1 order by audit_event_id",
    )
    .bind(purchase)
    .fetch_all(db)
    .await
    .unwrap_or_default();
    for (at, actor, action, token, detail) in audit {
        let _ = writeln!(out, "    {at} {actor} {action} token={token:?} {detail}");
    }
    let events: Vec<(String, String, String)> = sqlx::query_as(
        "select stripe_event_id, type, outcome from stripe_event where purchase_id = $1 order by received_at",
    )
    .bind(purchase)
    .fetch_all(db)
    .await
    .unwrap_or_default();
    let _ = writeln!(out, "  inbox:");
    for e in events {
        let _ = writeln!(out, "    {e:?}");
    }
    out
}

/// Which calls got which answers, for the summary.
pub fn answer_table(history: &History) -> BTreeMap<(Call, String), u64> {
    let mut table = BTreeMap::new();
    for r in history.requests() {
        let key = match r.outcome {
            Outcome::Status(s) => s.to_string(),
            Outcome::Transport(kind) => format!("transport:{kind}"),
        };
        *table.entry((r.call, key)).or_insert(0) += 1;
    }
    table
}

/// The purchases named by violations, in the order of the violations, each followed by its
/// upgrades (whose events and jobs set its limits).
pub fn involved(violations: &[Violation], driver: &Driver) -> Vec<Uuid> {
    let records = driver.purchases.lock().unwrap().clone();
    let mut seen = BTreeSet::new();
    let mut all = Vec::new();
    for p in violations.iter().filter_map(|v| v.purchase) {
        let upgrades = records
            .iter()
            .filter(|r| r.upgrade_of == Some(p))
            .map(|r| r.purchase);
        for q in std::iter::once(p).chain(upgrades) {
            if seen.insert(q) {
                all.push(q);
            }
        }
    }
    all
}
