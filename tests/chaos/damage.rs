//! The checks that look past the repaired end state: what reconciliation had to repair (from the
//! audit log), what the buyers were shown along the way, purchases nobody started, and the events
//! no webhook delivered. The end-state invariants (`checker.rs`) hold after repair; these say
//! whether anything needed repairing.
//!
//! - Reconciliation repairs nothing in a run without permanent faults: no token re-deleted, marked
//!   missing, removed or found again, and adoptions (a token at Xano the database did not know)
//!   no more than the creations whose answer was lost (Xano's call log) and the crashes and kills
//!   that can lose one, plus adoptions that raced a refill recording the same token (a run that
//!   counts them, `seller_isolation.rs`, says so in `adoptions_racing_a_refill`; the main scenario's
//!   kills leave room for them).
//! - A buyer is never shown more token values for one purchase than it held by design: one, and
//!   one more per rotation done (a reinstated dispute aside: it hands out a new one too).
//! - Every purchase in the database was started by the workload.
//! - Every event of a handled type that Stripe never delivered was applied (found in the inbox),
//!   and no verified event was kept unreadable (drifted events included).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::PgPool;
use uuid::Uuid;

use crate::checker::Checker;
use crate::driver::Driver;
use crate::history::History;

/// Audit actions that mean reconciliation found the database and Xano apart and repaired it.
const REPAIRS: [&str; 6] = [
    "reconcile.redelete",
    "reconcile.missing",
    "reconcile.removed",
    "reconcile.foreign",
    "reconcile.reappeared_restored",
    "reconcile.reappeared_removed",
];

/// How many creations one killed or crashed instance may have had in flight: each of its 4 job
/// workers may be a replenisher, which keeps up to a window's requests in flight (10 on a free
/// plan's account) or 8 on an account without a client-side limit (`jobs/replenish.rs`). Each
/// create whose answer the process never read leaves a token only reconciliation adopts.
const IN_FLIGHT_PER_INSTANCE: u64 = 4 * 10;

pub async fn check(
    c: &mut Checker,
    db: &PgPool,
    driver: &Driver,
    history: &History,
) -> BTreeMap<String, i64> {
    let actions: Vec<(String, i64)> = sqlx::query_as(
        "select action, count(*) from audit_event where action like 'reconcile.%' group by action",
    )
    .fetch_all(db)
    .await
    .expect("read the audit log");
    let actions: BTreeMap<String, i64> = actions.into_iter().collect();
    for repair in REPAIRS {
        let n = actions.get(repair).copied().unwrap_or(0);
        c.check(n == 0, None, || {
            format!(
                "reconciliation had to repair: {repair} × {n} in a run without permanent faults"
            )
        });
    }
    let counters = history.counters();
    let count = |k: &str| counters.get(k).copied().unwrap_or(0);
    let explained = count("xano_lost_create_answers")
        + count("adoptions_racing_a_refill")
        + count("crashes")
        + IN_FLIGHT_PER_INSTANCE * (count("nemesis:kill9") + count("nemesis:crashpoints"));
    let adopted =
        u64::try_from(actions.get("reconcile.adopted").copied().unwrap_or(0)).unwrap_or(0);
    c.check(adopted <= explained, None, || {
        format!(
            "reconciliation adopted {adopted} tokens nobody knew, but lost answers, crashes and kills explain at most {explained}"
        )
    });

    // What buyers were shown.
    let reinstated: HashSet<Uuid> =
        sqlx::query_scalar("select purchase_id from purchase where status = 'reinstated'")
            .fetch_all(db)
            .await
            .expect("read purchases")
            .into_iter()
            .collect();
    let mut shown: HashMap<Uuid, HashSet<String>> = HashMap::new();
    for o in driver.observations.lock().unwrap().iter() {
        if let Some(token) = &o.token {
            shown.entry(o.purchase).or_default().insert(token.clone());
        }
    }
    let rotated: HashMap<Uuid, i64> = sqlx::query_as(
        "select purchase_id, count(*) from token_rotation where state = 'done' group by purchase_id",
    )
    .fetch_all(db)
    .await
    .expect("read rotations")
    .into_iter()
    .collect();
    for (purchase, values) in &shown {
        let rotations = rotated.get(purchase).copied().unwrap_or(0);
        c.check(
            i64::try_from(values.len()).unwrap_or(i64::MAX) <= 1 + rotations
                || reinstated.contains(purchase),
            Some(*purchase),
            || {
                format!(
                    "the buyer was shown {} token values for one purchase rotated {rotations} times",
                    values.len()
                )
            },
        );
    }

    // Purchases nobody started.
    let started: HashSet<Uuid> = driver
        .purchases
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.purchase)
        .collect();
    let in_db: Vec<Uuid> = sqlx::query_scalar("select purchase_id from purchase")
        .fetch_all(db)
        .await
        .expect("read purchases");
    for purchase in in_db {
        c.check(started.contains(&purchase), Some(purchase), || {
            "a purchase in the database that the workload never started".to_owned()
        });
    }

    // Events no webhook delivered, and events kept unreadable.
    let inbox: HashSet<String> = sqlx::query_scalar("select stripe_event_id from stripe_event")
        .fetch_all(db)
        .await
        .expect("read the inbox")
        .into_iter()
        .collect();
    for (purchase, id, type_) in crate::settle::undelivered_events(driver) {
        c.check(inbox.contains(&id), Some(purchase), || {
            format!("{type_} {id} was never delivered and the backfill did not apply it")
        });
    }
    let unreadable: i64 = sqlx::query_scalar("select count(*) from stripe_event_unreadable")
        .fetch_one(db)
        .await
        .expect("read the unreadable events");
    c.check(unreadable == 0, None, || {
        format!("{unreadable} verified events were kept unreadable")
    });
    actions
}
