//! A purchase row as the table holds it, and reading one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::receipt::ReceiptKey;
use crate::{Money, PurchaseId, PurchaseStatus, Result, TierId};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Purchase {
    pub purchase_id: PurchaseId,
    pub tier_id: TierId,
    /// What the buyer is charged: the tier's price when the purchase was created.
    #[sqlx(flatten)]
    pub price: Money,
    pub max_installs: i64,
    pub email: Option<String>,
    pub status: PurchaseStatus,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    /// SHA-256 of the storefront's `Idempotency-Key`, while the key is kept (24 h).
    pub checkout_key_hash: Option<Vec<u8>>,
    pub payment_intent_id: Option<String>,
    pub amount_refunded: i64,
    pub receipt_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// For an upgrade (migration 21): the purchase whose entitlement it raises. An upgrade never
    /// holds a token.
    pub upgrade_of: Option<PurchaseId>,
}

/// A purchase as checkout returns it: with its receipt key, the only time the key is handed out.
#[derive(Debug)]
pub struct Created {
    pub purchase: Purchase,
    pub receipt_key: ReceiptKey,
    /// The canonical of the listing, for the Checkout Session's description.
    pub canonical: String,
    pub tier_name: String,
    /// True when an earlier request with the same idempotency key created it.
    pub replayed: bool,
}

pub async fn by_id(pool: &PgPool, id: PurchaseId) -> Result<Option<Purchase>> {
    Ok(
        sqlx::query_as::<_, Purchase>("select * from purchase where purchase_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn by_checkout_session(pool: &PgPool, session_id: &str) -> Result<Option<Purchase>> {
    Ok(
        sqlx::query_as::<_, Purchase>("select * from purchase where checkout_session_id = $1")
            .bind(session_id)
            .fetch_optional(pool)
            .await?,
    )
}
