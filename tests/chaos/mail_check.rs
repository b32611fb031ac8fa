//! Buyers' email, checked after settling against what the SMTP server really accepted (its file is
//! written before it answers `250`), not against what the service recorded: the outbox could say
//! `sent` of a message that never arrived, or send one fact twice under two Message-IDs, and only
//! the server's side shows it.
//!
//! - Every outbox row left the outbox: none `queued`; none `failed` or `not_sent` (the server
//!   accepts everything, and mail is configured on every instance).
//! - A `sent` row's Message-ID (`<mail_id@market.example>`) arrived, to the row's recipient, saying
//!   what the row's kind says about the row's purchase; the server holds no Message-ID that is not
//!   a `sent` row's.
//! - One email per fact per purchase: per purchase and kind, as many distinct Message-IDs at the
//!   server as facts. A Message-ID arriving more than once is at-least-once delivery (a crash
//!   between the server's `250` and the commit): counted and printed, not a violation.
//! - Every fact has its message: a receipt for every purchase ever fulfilled, an "access ended"
//!   for every one closed after fulfilment, a "new token" for every rotation done; all purchases
//!   carry the buyer's email, so none is exempt.
//! - Upgrades (`upgrades.rs`) have messages of their own, about their base (whose footer they
//!   name, and under which they are counted): an "upgrade active" for every upgrade ever applied
//!   (`fulfilled`), an "upgrade reversed" for every one closed after it was paid and none for one
//!   closed before; never a receipt, "access ended" or "access restored".
//! - A message carries no token but its own purchase's, and a rotation's never the old token.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::PgPool;
use testkit::smtp::ReceivedMail;
use uuid::Uuid;

use crate::checker::Checker;
use crate::mail_faults::DOMAIN;
use crate::tokens::Token;

/// What the summary prints about mail.
#[derive(Debug, Default)]
pub struct MailFigures {
    pub at_server: usize,
    pub distinct: usize,
    /// Copies beyond the first of a Message-ID (at-least-once delivery).
    pub duplicates: usize,
    /// Outbox rows by `kind:state`.
    pub rows: BTreeMap<String, u64>,
    /// Rows that took more than one try (an outage, a crash or a lost lease met them).
    pub retried: usize,
    /// Distinct messages showing a token (the checks of whose token it is are not idle).
    pub with_token: usize,
}

impl MailFigures {
    pub fn print(&self) {
        println!(
            "chaos: mail: {} messages at the SMTP server, {} distinct Message-IDs, {} duplicate deliveries, {} showing a token; outbox {:?}, {} rows tried more than once",
            self.at_server,
            self.distinct,
            self.duplicates,
            self.with_token,
            self.rows,
            self.retried
        );
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    mail_id: Uuid,
    kind: String,
    fact: String,
    purchase_id: Option<Uuid>,
    recipient: String,
    state: String,
    attempts: i32,
    last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Buyer {
    purchase_id: Uuid,
    status: String,
    email: Option<String>,
    fulfilled: bool,
    paid: bool,
    upgrade_of: Option<Uuid>,
}

/// The kind of message a subject announces (`letters/render.rs`).
fn kind_of(subject: &str) -> &'static str {
    if subject.starts_with("Your new install token") {
        "token_rotated"
    } else if subject.starts_with("Your upgrade to") && subject.ends_with("is active") {
        "upgraded"
    } else if subject.starts_with("Your upgrade to") && subject.ends_with("was reversed") {
        "upgrade_reversed"
    } else if subject.starts_with("Your install token") {
        "receipt"
    } else if subject.ends_with("is restored") {
        "access_restored"
    } else if subject.ends_with("has ended") {
        "access_ended"
    } else if subject.starts_with("Your sign-in link") {
        "portal_link"
    } else {
        "unknown"
    }
}

/// The purchase a message names in its footer (`Purchase <id> · …`).
fn purchase_named(text: &str) -> Option<Uuid> {
    text.match_indices("Purchase ")
        .find_map(|(at, m)| text.get(at + m.len()..at + m.len() + 36)?.parse().ok())
}

pub async fn check(
    c: &mut Checker,
    db: &PgPool,
    messages: &[ReceivedMail],
    tokens: &[Token],
) -> MailFigures {
    let rows: Vec<Row> = sqlx::query_as(
        "select mail_id, kind, fact, purchase_id, recipient, state, attempts, last_error
         from mail_message",
    )
    .fetch_all(db)
    .await
    .expect("read the outbox");
    let buyers: Vec<Buyer> = sqlx::query_as(
        "select purchase_id, status::text as status, email, fulfilled_at is not null as fulfilled,
                paid_at is not null as paid, upgrade_of
         from purchase",
    )
    .fetch_all(db)
    .await
    .expect("read purchases");
    let rotations: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
        "select rotation_id, purchase_id, old_token_id from token_rotation where state = 'done'",
    )
    .fetch_all(db)
    .await
    .expect("read rotations");

    let mut figures = MailFigures {
        at_server: messages.len(),
        ..MailFigures::default()
    };
    let mut copies: HashMap<&str, Vec<&ReceivedMail>> = HashMap::new();
    for m in messages {
        copies
            .entry(m.message_id().unwrap_or_default())
            .or_default()
            .push(m);
    }
    figures.distinct = copies.len();
    figures.duplicates = messages.len() - copies.len();
    let id_of = |mail: Uuid| format!("<{mail}@{DOMAIN}>");
    let by_id: HashMap<String, &Row> = rows.iter().map(|r| (id_of(r.mail_id), r)).collect();
    let facts: HashSet<&str> = rows.iter().map(|r| r.fact.as_str()).collect();
    // The purchase a message is about as its footer names it: an upgrade's base.
    let base_of: HashMap<Uuid, Uuid> = buyers
        .iter()
        .filter_map(|b| Some((b.purchase_id, b.upgrade_of?)))
        .collect();
    let about = |p: Uuid| base_of.get(&p).copied().unwrap_or(p);

    // Each row: left the outbox, and arrived as what it says.
    for row in &rows {
        *figures
            .rows
            .entry(format!("{}:{}", row.kind, row.state))
            .or_default() += 1;
        figures.retried += usize::from(row.attempts > 1);
        let what = || {
            format!(
                "message {} ({}) is {} after {} attempts (last error {:?})",
                row.mail_id, row.fact, row.state, row.attempts, row.last_error
            )
        };
        c.check(
            row.state == "sent" || row.kind == "portal_link",
            row.purchase_id,
            what,
        );
        if row.state != "sent" {
            continue;
        }
        let arrived = copies
            .get(id_of(row.mail_id).as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        c.check(!arrived.is_empty(), row.purchase_id, || {
            format!(
                "message {} ({}) is sent but never reached the SMTP server",
                row.mail_id, row.fact
            )
        });
        for m in arrived {
            let subject = m.subject().unwrap_or_default();
            let named = purchase_named(&m.text_parts());
            let ok = m.rcpt_tos == [row.recipient.clone()]
                && kind_of(&subject) == row.kind
                && (row.purchase_id.is_none() || named == row.purchase_id.map(about));
            c.check(ok, row.purchase_id, || {
                format!(
                    "message {} ({}, to {}) arrived to {:?} as {subject:?} naming purchase {named:?}",
                    row.mail_id, row.fact, row.recipient, m.rcpt_tos
                )
            });
        }
    }

    // Each Message-ID at the server: a sent row's; and per purchase and kind, one per fact.
    let mut expected: HashMap<(Uuid, &str), usize> = HashMap::new();
    for row in rows.iter().filter(|r| r.state == "sent") {
        if let Some(p) = row.purchase_id {
            *expected.entry((about(p), row.kind.as_str())).or_default() += 1;
        }
    }
    let mut observed: HashMap<(Uuid, &str), usize> = HashMap::new();
    let owner: HashMap<&str, (i64, Option<Uuid>)> = tokens
        .iter()
        .map(|t| (t.value.as_str(), (t.id, t.purchase_id)))
        .collect();
    let old_of: HashMap<String, i64> = rotations
        .iter()
        .map(|(r, p, old)| (format!("{p}:token_rotated:{r}"), *old))
        .collect();
    for (id, list) in &copies {
        let row = by_id.get(*id);
        c.check(row.is_some_and(|r| r.state == "sent"), None, || {
            format!(
                "the SMTP server holds {} copies of Message-ID {id} that no sent row accounts for (row: {:?})",
                list.len(),
                row.map(|r| (&r.fact, &r.state))
            )
        });
        let m = list[0];
        let text = m.text_parts();
        let named = purchase_named(&text);
        if let Some(p) = named {
            *observed
                .entry((p, kind_of(&m.subject().unwrap_or_default())))
                .or_default() += 1;
        }
        let carried: Vec<(i64, Option<Uuid>)> = text
            .split(|ch: char| !ch.is_ascii_alphanumeric())
            .filter_map(|word| owner.get(word).copied())
            .collect();
        let old = row.and_then(|r| old_of.get(&r.fact));
        figures.with_token += usize::from(!carried.is_empty());
        for (token, holder) in carried {
            c.check(
                holder.is_some() && holder == named && Some(&token) != old,
                named,
                || {
                    format!(
                        "message {id} ({:?}) carries token {token} (held by {holder:?}; the rotation's old token: {old:?})",
                        row.map(|r| &r.fact)
                    )
                },
            );
        }
    }
    for key in expected
        .keys()
        .chain(observed.keys())
        .collect::<HashSet<_>>()
    {
        let (e, o) = (
            expected.get(key).copied().unwrap_or(0),
            observed.get(key).copied().unwrap_or(0),
        );
        c.check(e == o, Some(key.0), || {
            format!(
                "{o} distinct {} messages at the SMTP server for {e} sent facts",
                key.1
            )
        });
    }

    // Every fact has its message.
    for b in &buyers {
        let p = b.purchase_id;
        c.check(b.email.is_some(), Some(p), || {
            "a purchase without the buyer's email (the driver gives one)".to_owned()
        });
        if b.email.is_none() {
            continue;
        }
        let has = |fact: &str| facts.contains(fact);
        if b.upgrade_of.is_some() {
            upgrade_facts(c, b, &has);
            continue;
        }
        c.check(b.fulfilled == has(&format!("{p}:receipt")), Some(p), || {
            if b.fulfilled {
                "fulfilled, but no receipt in the outbox".to_owned()
            } else {
                "never fulfilled, but a receipt in the outbox".to_owned()
            }
        });
        if b.fulfilled && matches!(b.status.as_str(), "refunded" | "disputed" | "dispute_lost") {
            let ended = ["refunded", "disputed", "dispute_lost", "revoked"]
                .iter()
                .any(|s| has(&format!("{p}:access_ended:{s}")));
            c.check(ended, Some(p), || {
                format!("{} after fulfilment, but no access-ended message", b.status)
            });
        }
    }
    for (rotation, p, _) in &rotations {
        c.check(
            facts.contains(format!("{p}:token_rotated:{rotation}").as_str()),
            Some(*p),
            || format!("rotation {rotation} is done, but its buyer has no message of it"),
        );
    }
    figures
}

/// An upgrade's facts: applied, reversed after it was paid; none of a purchase's own.
fn upgrade_facts(c: &mut Checker, b: &Buyer, has: &impl Fn(&str) -> bool) {
    let p = b.purchase_id;
    c.check(
        b.fulfilled == has(&format!("{p}:upgraded")),
        Some(p),
        || {
            format!(
                "an upgrade {} applied, but {} \"upgraded\" message in the outbox",
                if b.fulfilled { "was" } else { "never" },
                if b.fulfilled { "no" } else { "an" }
            )
        },
    );
    let closed = ["refunded", "disputed", "dispute_lost", "revoked"];
    let reversed = closed
        .iter()
        .any(|s| has(&format!("{p}:upgrade_reversed:{s}")));
    let owed = b.paid && closed.contains(&b.status.as_str());
    c.check(reversed == owed, Some(p), || {
        format!(
            "an upgrade {} (paid before: {}), but {} \"upgrade reversed\" message in the outbox",
            b.status,
            b.paid,
            if reversed { "an" } else { "no" }
        )
    });
    let own = ["receipt", "access_restored"]
        .iter()
        .map(|k| format!("{p}:{k}"))
        .chain(closed.iter().map(|s| format!("{p}:access_ended:{s}")))
        .any(|f| has(&f));
    c.check(!own, Some(p), || {
        "an upgrade has a receipt, access-ended or access-restored message".to_owned()
    });
}
