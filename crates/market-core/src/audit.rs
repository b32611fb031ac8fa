//! The append-only audit log: every state change, and every Xano call that changed something, with
//! who caused it. Written in the same transaction as the change it describes, so the log and the
//! data never disagree. Token strings are never written here; rows name tokens by id.

use serde::Serialize;
use sqlx::PgConnection;

use crate::{ListingId, PurchaseId, Result, TierId, TokenId};

/// Who caused a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A Stripe event (webhook, or the success page re-reading a Checkout Session).
    Stripe,
    /// The buyer, through the public API.
    Buyer,
    /// A background worker of this service.
    System,
    /// An operator, through the admin API or the CLI, by name.
    Admin(String),
    /// A seller, through the seller API, by id.
    Seller(uuid::Uuid),
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Self::Stripe => "stripe".into(),
            Self::Buyer => "buyer".into(),
            Self::System => "system".into(),
            Self::Admin(name) => format!("admin:{name}"),
            Self::Seller(id) => format!("seller:{id}"),
        }
    }
}

/// One audit entry, built with the chained setters and written with [`Audit::write`].
#[derive(Debug)]
#[must_use = "an audit entry does nothing until written"]
pub struct Audit<'a> {
    actor: &'a Actor,
    action: &'static str,
    listing: Option<ListingId>,
    tier: Option<TierId>,
    purchase: Option<PurchaseId>,
    token: Option<TokenId>,
    detail: serde_json::Value,
}

impl<'a> Audit<'a> {
    /// `action` is a dotted name such as `purchase.paid` or `xano.token_created`.
    pub fn new(actor: &'a Actor, action: &'static str) -> Self {
        Self {
            actor,
            action,
            listing: None,
            tier: None,
            purchase: None,
            token: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    pub fn listing(mut self, id: ListingId) -> Self {
        self.listing = Some(id);
        self
    }

    pub fn tier(mut self, id: TierId) -> Self {
        self.tier = Some(id);
        self
    }

    pub fn purchase(mut self, id: PurchaseId) -> Self {
        self.purchase = Some(id);
        self
    }

    pub fn token(mut self, id: TokenId) -> Self {
        self.token = Some(id);
        self
    }

    /// Structured detail; must never contain a secret.
    pub fn detail(mut self, detail: impl Serialize) -> Self {
        self.detail = serde_json::to_value(detail).unwrap_or(serde_json::Value::Null);
        self
    }

    pub async fn write(self, conn: &mut PgConnection) -> Result<()> {
        sqlx::query(
            "insert into audit_event (actor, action, listing_id, tier_id, purchase_id, install_token_id, detail)
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.actor.label())
        .bind(self.action)
        .bind(self.listing)
        .bind(self.tier)
        .bind(self.purchase)
        .bind(self.token)
        .bind(&self.detail)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Writes several entries in one statement (one round trip), in the given order.
pub async fn write_all(conn: &mut PgConnection, entries: &[Audit<'_>]) -> Result<()> {
    sqlx::query(
        "insert into audit_event (actor, action, listing_id, tier_id, purchase_id, install_token_id, detail)
         select actor, action, listing_id, tier_id, purchase_id, install_token_id, detail
         from unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bigint[], $7::jsonb[])
              with ordinality as e(actor, action, listing_id, tier_id, purchase_id, install_token_id, detail, n)
         order by n",
    )
    .bind(entries.iter().map(|e| e.actor.label()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.action).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.listing.map(|id| id.0)).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.tier.map(|id| id.0)).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.purchase.map(|id| id.0)).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.token.map(|id| id.0)).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| &e.detail).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// One row of the log, as operators read it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditEntry {
    pub audit_event_id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub listing_id: Option<ListingId>,
    pub tier_id: Option<TierId>,
    pub purchase_id: Option<PurchaseId>,
    pub install_token_id: Option<TokenId>,
    pub detail: serde_json::Value,
}

/// A purchase's trail, oldest first, including entries about the tokens it held.
///
/// The two halves are found apart, each through its own index, and the rows read by id: written
/// as `purchase_id = $1 or install_token_id in (…)`, the condition fits no index, and PostgreSQL
/// read the whole log (0.7-4 s on 1.9 million entries, `market-scale`).
pub async fn for_purchase(pool: &sqlx::PgPool, purchase: PurchaseId) -> Result<Vec<AuditEntry>> {
    let entries = sqlx::query_as::<_, AuditEntry>(
        "select * from audit_event
         where audit_event_id in (
             select audit_event_id from audit_event where purchase_id = $1
             union all
             select a.audit_event_id
             from install_token it join audit_event a on a.install_token_id = it.install_token_id
             where it.purchase_id = $1)
         order by audit_event_id",
    )
    .bind(purchase)
    .fetch_all(pool)
    .await?;
    Ok(entries)
}
