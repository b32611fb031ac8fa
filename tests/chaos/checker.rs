//! The checker: after the nemesis stopped, faults healed, the instances settled and a
//! reconciliation ran, compares what Stripe said (the simulator's events), what the database
//! holds and what the Xano simulator holds, and reads the history of requests.
//!
//! - I1: at most one live (`assigned`/`revoking`) token per purchase.
//! - I2: every paid, un-refunded, undisputed purchase is `fulfilled` with exactly one assigned
//!   token, live at Xano. An upgrade is a purchase owed no token (`upgrade_check.rs`).
//! - I3: no live token for a refunded, disputed, expired, failed or unpaid purchase, neither in the
//!   database nor at Xano.
//! - I4: per listing, Xano's live tokens are exactly the database's live ones (`available`,
//!   `assigned`, `foreign`); none orphaned, none phantom, nothing left `revoking`/`retiring`.
//! - I5: an assigned token's `max_installs` is its purchase's (its entitlement: the tier's, or an
//!   upgrade's), an unsold one's its tier's; and the same at Xano.
//! - Jobs: none due (or with an expired lease) for longer than a lease plus one sweep; none parked
//!   or failed; the Xano credential healthy.
//! - Requests: every answer 2xx or the documented 4xx the call may meet; no 5xx at all (PostgreSQL
//!   is never made unreachable); every transport error falls inside a window where the nemesis had
//!   that instance down, paused or crash-armed.
//! - Reads: a buyer never sees a purchase go back (real-time order of non-overlapping reads).
//!
//! Buyers' email, token rotations and tier upgrades are checked apart: `mail_check.rs`,
//! `rotation_check.rs`, `upgrade_check.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::driver::Driver;
use crate::history::History;
use crate::tokens::Token;
use crate::truth::Truth;

#[derive(Debug, Clone)]
pub struct Violation {
    pub purchase: Option<Uuid>,
    pub what: String,
}

#[derive(Debug, sqlx::FromRow)]
struct PurchaseRow {
    purchase_id: Uuid,
    status: String,
    tier_id: Uuid,
    max_installs: i64,
    upgrade_of: Option<Uuid>,
}

#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    job_id: i64,
    kind: String,
    subject: String,
    state: String,
    attempt: i32,
    overdue_secs: f64,
    last_error: Option<String>,
}

pub struct Report {
    pub violations: Vec<Violation>,
    pub checks: u64,
    pub purchases_in_db: usize,
    pub owed: usize,
    pub tokens_at_xano: usize,
    /// Transport errors and error answers explained by the nemesis or the machine.
    pub excused: crate::requests::Excused,
    pub statuses: BTreeMap<String, u64>,
    /// Reconciliation's audit actions, by count.
    pub reconciled: BTreeMap<String, i64>,
}

#[derive(Default)]
pub struct Checker {
    pub violations: Vec<Violation>,
    pub checks: u64,
}

impl Checker {
    pub fn check(&mut self, ok: bool, purchase: Option<Uuid>, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !ok {
            self.violations.push(Violation {
                purchase,
                what: what(),
            });
        }
    }
}

/// Runs every check once.
pub async fn check(
    db: &PgPool,
    tokens: &[Token],
    driver: &Driver,
    history: &History,
    xano_tokens: &HashMap<String, Vec<Value>>,
    lease_secs: u64,
    unexpected_exits: &[String],
) -> Report {
    let mut c = Checker {
        violations: Vec::new(),
        checks: 0,
    };
    let purchases: Vec<PurchaseRow> = sqlx::query_as(
        "select purchase_id, status::text as status, tier_id, max_installs, upgrade_of
         from purchase",
    )
    .fetch_all(db)
    .await
    .expect("read purchases");
    let tier_installs: HashMap<Uuid, i64> =
        sqlx::query_as::<_, (Uuid, i64)>("select tier_id, max_installs from tier")
            .fetch_all(db)
            .await
            .expect("read tiers")
            .into_iter()
            .collect();
    let jobs: Vec<JobRow> = sqlx::query_as(
        "select job_id, kind, subject, state::text as state, attempt,
                extract(epoch from now() - due_at)::float8 as overdue_secs, last_error
         from job where state not in ('done')",
    )
    .fetch_all(db)
    .await
    .expect("read jobs");
    let health: String = sqlx::query_scalar(
        // The fleet's credential: the first recorded (see `settle`); the stale instance's stays
        // refused, as it should.
        "select state from xano_credential order by created_at limit 1",
    )
    .fetch_one(db)
    .await
    .expect("read the credential's health");

    // Xano's live tokens by (canonical, token) → max_installs.
    let mut at_xano: HashMap<(String, String), i64> = HashMap::new();
    for (canonical, list) in xano_tokens {
        for token in list {
            at_xano.insert(
                (
                    canonical.clone(),
                    token["token"].as_str().unwrap_or_default().to_owned(),
                ),
                token["max_installs"].as_i64().unwrap_or(-1),
            );
        }
    }
    let entitlement: HashMap<Uuid, i64> = purchases
        .iter()
        .map(|p| (p.purchase_id, p.max_installs))
        .collect();
    let mut by_purchase: HashMap<Uuid, Vec<&Token>> = HashMap::new();
    for token in tokens {
        if let Some(p) = token.purchase_id {
            by_purchase.entry(p).or_default().push(token);
        }
    }

    let mut statuses = BTreeMap::new();
    let mut owed_count = 0;
    for purchase in &purchases {
        let p = purchase.purchase_id;
        *statuses.entry(purchase.status.clone()).or_insert(0) += 1;
        let truth = Truth::of(&driver.pump.events_of(p));
        let held = by_purchase.get(&p).cloned().unwrap_or_default();
        let live: Vec<&&Token> = held
            .iter()
            .filter(|t| t.state == "assigned" || t.state == "revoking")
            .collect();
        c.check(live.len() <= 1, Some(p), || {
            format!("I1: {} live tokens: {:?}", live.len(), ids(&live))
        });
        if purchase.upgrade_of.is_some() {
            // Owed no token, whatever Stripe says: `upgrade_check.rs` checks it holds none.
            continue;
        }
        c.check(
            truth.statuses().contains(&purchase.status.as_str()),
            Some(p),
            || {
                format!(
                    "status {} but Stripe says {truth:?} (expected one of {:?})",
                    purchase.status,
                    truth.statuses()
                )
            },
        );
        if truth.owed_a_token() {
            owed_count += 1;
            let assigned: Vec<&&Token> = held.iter().filter(|t| t.state == "assigned").collect();
            c.check(assigned.len() == 1, Some(p), || {
                format!(
                    "I2: paid and not refunded, but holds {} assigned tokens (states: {:?})",
                    assigned.len(),
                    held.iter()
                        .map(|t| (t.id, t.state.as_str()))
                        .collect::<Vec<_>>()
                )
            });
            for token in &assigned {
                c.check(
                    at_xano.contains_key(&(token.canonical.clone(), token.value.clone())),
                    Some(p),
                    || format!("I2: its token {} is not live at Xano", token.id),
                );
                c.check(token.tier_id == Some(purchase.tier_id), Some(p), || {
                    format!("token {} is of another tier", token.id)
                });
            }
        } else {
            c.check(live.is_empty(), Some(p), || {
                format!(
                    "I3: not owed a token ({truth:?}) but holds live tokens {:?}",
                    ids(&live)
                )
            });
            for token in &held {
                c.check(
                    !at_xano.contains_key(&(token.canonical.clone(), token.value.clone())),
                    Some(p),
                    || {
                        format!(
                            "I3: not owed a token ({truth:?}) but its token {} ({}) is live at Xano",
                            token.id, token.state
                        )
                    },
                );
            }
        }
    }

    // Purchases the driver made must all be in the database.
    let known: HashSet<Uuid> = purchases.iter().map(|p| p.purchase_id).collect();
    for record in driver.purchases.lock().unwrap().iter() {
        c.check(
            known.contains(&record.purchase),
            Some(record.purchase),
            || "a purchase the API created is not in the database".to_owned(),
        );
    }

    // I4 and I5.
    let mut db_live: HashSet<(String, String)> = HashSet::new();
    for token in tokens {
        let live = matches!(token.state.as_str(), "available" | "assigned" | "foreign");
        c.check(
            !matches!(token.state.as_str(), "revoking" | "retiring"),
            token.purchase_id,
            || {
                format!(
                    "I4: token {} still {} after settling",
                    token.id, token.state
                )
            },
        );
        if live {
            db_live.insert((token.canonical.clone(), token.value.clone()));
            c.check(
                at_xano.contains_key(&(token.canonical.clone(), token.value.clone())),
                token.purchase_id,
                || {
                    format!(
                        "I4: token {} is {} in the database but not live at Xano",
                        token.id, token.state
                    )
                },
            );
        }
        let entitled = match (token.state.as_str(), token.purchase_id) {
            ("assigned", Some(p)) => entitlement.get(&p).copied(),
            ("available", None) => token.tier_id.and_then(|t| tier_installs.get(&t).copied()),
            // Revoked, rotated out, reserved for a rotation: no one's entitlement now.
            _ => None,
        };
        if let Some(entitled) = entitled {
            c.check(entitled == token.max_installs, token.purchase_id, || {
                format!(
                    "I5: token {} ({}) has max_installs {}, its {} {entitled}",
                    token.id,
                    token.state,
                    token.max_installs,
                    if token.purchase_id.is_some() {
                        "purchase"
                    } else {
                        "tier"
                    }
                )
            });
        }
        if let Some(max) = at_xano.get(&(token.canonical.clone(), token.value.clone())) {
            c.check(*max == token.max_installs, token.purchase_id, || {
                format!(
                    "I5: token {} has max_installs {max} at Xano, {} in the database",
                    token.id, token.max_installs
                )
            });
        }
    }
    for key in at_xano.keys() {
        c.check(db_live.contains(key), None, || {
            let known = tokens
                .iter()
                .find(|t| t.canonical == key.0 && t.value == key.1)
                .map_or_else(
                    || "unknown to the database".to_owned(),
                    |t| format!("token {} in state {}", t.id, t.state),
                );
            format!("I4: orphan at Xano on {}: {known}", key.0)
        });
    }

    // Jobs.
    let stuck_after = lease_secs as f64 + 5.0;
    for job in &jobs {
        let stuck =
            matches!(job.state.as_str(), "queued" | "running") && job.overdue_secs > stuck_after;
        c.check(!stuck, None, || {
            format!(
                "job {} {} {} is {} and {:.0} s overdue (attempt {}, error {:?})",
                job.job_id,
                job.kind,
                job.subject,
                job.state,
                job.overdue_secs,
                job.attempt,
                job.last_error
            )
        });
        c.check(
            !matches!(job.state.as_str(), "parked" | "dead"),
            None,
            || {
                format!(
                    "job {} {} {} is {} (attempt {}, error {:?})",
                    job.job_id, job.kind, job.subject, job.state, job.attempt, job.last_error
                )
            },
        );
    }
    c.check(health == "healthy", None, || {
        format!("the Xano credential is {health} after healing")
    });

    let reconciled = crate::damage::check(&mut c, db, driver, history).await;
    let excused = crate::requests::check_requests(&mut c, history, driver);

    for what in unexpected_exits {
        c.check(false, None, || what.clone());
    }
    for (purchase, what) in driver.errors.lock().unwrap().iter() {
        c.check(false, *purchase, || format!("driver: {what}"));
    }
    // (Events Stripe never delivered are checked in `damage.rs`: the backfill must have applied them.)
    for (purchase, event) in driver.unacked.lock().unwrap().iter() {
        c.check(false, Some(*purchase), || {
            format!("event {event} was never accepted by any instance")
        });
    }

    Report {
        violations: c.violations,
        checks: c.checks,
        purchases_in_db: purchases.len(),
        owed: owed_count,
        tokens_at_xano: at_xano.len(),
        excused,
        statuses,
        reconciled,
    }
}

fn ids(tokens: &[&&Token]) -> Vec<i64> {
    tokens.iter().map(|t| t.id).collect()
}
