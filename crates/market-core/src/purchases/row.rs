//! A purchase row as the table holds it, and reading one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::provider::Split;

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
    /// The listing's seller when the purchase was made (migration 25).
    pub seller_id: Uuid,
    /// For a seller paid through Stripe Connect: the connected account the payment goes to, and
    /// the platform's fee kept from it. Both `None` for the house (paid directly).
    pub connect_destination: Option<String>,
    pub application_fee_amount: Option<i64>,
}

impl Purchase {
    /// How the payment is split, for the provider; `None` for the house.
    pub fn split(&self) -> Option<Split<'_>> {
        Some(Split {
            destination: self.connect_destination.as_deref()?,
            application_fee: self.application_fee_amount?,
        })
    }
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

/// What Stripe said about a purchase's payment beyond its status: the charge and, for a seller's
/// purchase, the transfer to the seller and the platform's application fee (`charge.succeeded`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PaymentMoves {
    pub charge_id: Option<String>,
    pub transfer_id: Option<String>,
    pub application_fee_id: Option<String>,
}

/// The money movements of `purchase`'s payment, once Stripe has told of them.
pub async fn payment_moves(pool: &PgPool, purchase: &Purchase) -> Result<Option<PaymentMoves>> {
    let Some(payment_intent) = &purchase.payment_intent_id else {
        return Ok(None);
    };
    Ok(sqlx::query_as::<_, PaymentMoves>(
        "select charge_id, transfer_id, application_fee_id from stripe_payment
         where payment_intent_id = $1 and charge_id is not null",
    )
    .bind(payment_intent)
    .fetch_optional(pool)
    .await?)
}
