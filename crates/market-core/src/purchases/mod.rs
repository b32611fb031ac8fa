//! Purchases: created pending at checkout, read by their buyer with a receipt key.
//!
//! Status changes after creation come from Stripe's facts (`payments`) and from the workers (`jobs`);
//! every change goes through the state machine in `status`. What the buyer reads is in
//! [`receipts`]; an upgrade, a purchase raising another's entitlement, is priced in `upgrade`.

mod receipts;
mod row;
mod split;
pub mod stale;
mod upgrade;

pub use receipts::{Receipt, ReceiptToken, receipt, receipt_of, receipts_of_buyer};
pub use row::{Created, PaymentMoves, Purchase, by_checkout_session, by_id, payment_moves};
pub use upgrade::{create_upgrade, upgrades_of};

use split::split;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::audit::{Actor, Audit};
use crate::catalog::on_sale_sql;
use crate::receipt::ReceiptSecret;
use crate::{
    Conflict, Email, Error, FeeRate, ListingId, Money, PurchaseId, PurchaseStatus, Result, TierId,
    db,
};

/// A checkout request, already parsed.
#[derive(Clone, Debug)]
pub struct NewPurchase {
    pub tier: TierId,
    pub email: Option<Email>,
    /// The storefront's `Idempotency-Key`: the same key returns the same purchase (and its receipt
    /// key) for 24 hours, so it must be a secret: at least [`MIN_IDEMPOTENCY_KEY_CHARS`] characters.
    pub idempotency_key: Option<String>,
}

/// Shortest `Idempotency-Key` accepted: a random UUID (36 characters) passes, an order number does
/// not. A replay answers with the purchase's receipt key, so guessing a key must be as hard as
/// guessing a random 128-bit value.
pub const MIN_IDEMPOTENCY_KEY_CHARS: usize = 32;

/// How long a key is kept: after that, the same key starts a new purchase (as at Stripe).
const IDEMPOTENCY_KEY_HOURS: i32 = 24;

/// Creates a pending purchase of an active tier at the tier's current price (the server's price:
/// nothing in the request can change what is charged or minted). A seller's tier is on sale only
/// while Stripe has enabled charges on the seller's connected account; its purchase records the
/// split (`split`): the account and the platform's fee at `fee` (or the seller's own rate).
pub async fn create(
    pool: &PgPool,
    secret: &ReceiptSecret,
    new: &NewPurchase,
    fee: FeeRate,
    actor: &Actor,
) -> Result<Created> {
    if let Some(key) = &new.idempotency_key {
        validate_idempotency_key(key)?;
    }
    db::retry_transient(|| create_once(pool, secret, new, fee, actor)).await
}

async fn create_once(
    pool: &PgPool,
    secret: &ReceiptSecret,
    new: &NewPurchase,
    fee: FeeRate,
    actor: &Actor,
) -> Result<Created> {
    let mut tx = pool.begin().await?;
    let key_hash = new.idempotency_key.as_deref().map(key_hash);
    if let Some(hash) = &key_hash {
        forget_expired_key(&mut tx, hash).await?;
        if let Some(existing) = by_key_hash(&mut tx, hash).await? {
            return replay(&mut tx, secret, existing, new).await;
        }
    }

    let offer = sqlx::query_as::<_, (i64, String, i64, bool, String, String)>(concat!(
        "select t.price_amount, t.currency, t.max_installs, ",
        on_sale_sql!(),
        ", l.canonical, t.name
         from tier t join listing l using (listing_id) join seller s on s.seller_id = l.seller_id
         where t.tier_id = $1"
    ))
    .bind(new.tier)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("tier"))?;
    let (amount, currency, max_installs, on_sale, canonical, tier_name) = offer;
    let price = Money::from_columns(amount, &currency)?;
    if !on_sale {
        return Err(Conflict::TierNotOnSale.into());
    }
    let (destination, application_fee) = split(&mut tx, new.tier, &price, fee).await?;

    let purchase_id = PurchaseId::random();
    let receipt_key = secret.key_for(purchase_id);
    let inserted = sqlx::query_as::<_, Purchase>(
        "insert into purchase (purchase_id, tier_id, amount, currency, max_installs, email,
                               checkout_key_hash, receipt_hash, connect_destination,
                               application_fee_amount)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (checkout_key_hash) do nothing
         returning *",
    )
    .bind(purchase_id)
    .bind(new.tier)
    .bind(price.amount)
    .bind(price.currency.as_str())
    .bind(max_installs)
    .bind(new.email.as_ref().map(Email::as_str))
    .bind(&key_hash)
    .bind(receipt_key.hash().as_slice())
    .bind(&destination)
    .bind(application_fee)
    .fetch_optional(&mut *tx)
    .await?;

    let Some(purchase) = inserted else {
        // A concurrent request with the same idempotency key won the insert; answer as it did.
        let hash = key_hash.unwrap_or_default();
        let existing = by_key_hash(&mut tx, &hash)
            .await?
            .ok_or(Error::NotFound("purchase"))?;
        return replay(&mut tx, secret, existing, new).await;
    };
    Audit::new(actor, "purchase.created")
        .purchase(purchase_id)
        .tier(new.tier)
        .detail(serde_json::json!({
            "amount": price.amount,
            "currency": price.currency.as_str(),
            "max_installs": max_installs,
        }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(Created {
        purchase,
        receipt_key,
        canonical,
        tier_name,
        replayed: false,
    })
}

async fn replay(
    conn: &mut PgConnection,
    secret: &ReceiptSecret,
    existing: Purchase,
    new: &NewPurchase,
) -> Result<Created> {
    if existing.tier_id != new.tier
        || existing.email.as_deref() != new.email.as_ref().map(Email::as_str)
    {
        return Err(Conflict::IdempotencyKeyReused.into());
    }
    let (canonical, tier_name) = sqlx::query_as::<_, (String, String)>(
        "select l.canonical, t.name from tier t join listing l using (listing_id) where t.tier_id = $1",
    )
    .bind(existing.tier_id)
    .fetch_one(conn)
    .await?;
    let receipt_key = secret.key_for(existing.purchase_id);
    Ok(Created {
        purchase: existing,
        receipt_key,
        canonical,
        tier_name,
        replayed: true,
    })
}

fn validate_idempotency_key(key: &str) -> Result<()> {
    if key.len() < MIN_IDEMPOTENCY_KEY_CHARS
        || key.len() > 255
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "Idempotency-Key",
            format!(
                "must be {MIN_IDEMPOTENCY_KEY_CHARS}-255 visible ASCII characters, and random (a \
                 UUID will do): the key is what proves a retry is the same buyer's"
            ),
        ));
    }
    Ok(())
}

/// Only the key's SHA-256 is stored: a database dump cannot replay a checkout.
fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// A key older than [`IDEMPOTENCY_KEY_HOURS`] no longer names its purchase: its hash is cleared, so
/// the same key starts a new purchase.
async fn forget_expired_key(conn: &mut PgConnection, hash: &[u8]) -> Result<()> {
    sqlx::query(
        "update purchase set checkout_key_hash = null
         where checkout_key_hash = $1 and created_at < now() - make_interval(hours => $2)",
    )
    .bind(hash)
    .bind(IDEMPOTENCY_KEY_HOURS)
    .execute(conn)
    .await?;
    Ok(())
}

async fn by_key_hash(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<Purchase>> {
    Ok(
        sqlx::query_as::<_, Purchase>("select * from purchase where checkout_key_hash = $1")
            .bind(hash)
            .fetch_optional(conn)
            .await?,
    )
}

/// Remembers the Checkout Session created for a purchase. A purchase has one session for life: a
/// different session id for the same purchase is refused.
pub async fn attach_checkout_session(
    pool: &PgPool,
    purchase: PurchaseId,
    session_id: &str,
    url: &str,
) -> Result<()> {
    let attached = sqlx::query(
        "update purchase set checkout_session_id = $2, checkout_url = $3
         where purchase_id = $1 and (checkout_session_id is null or checkout_session_id = $2)",
    )
    .bind(purchase)
    .bind(session_id)
    .bind(url)
    .execute(pool)
    .await?
    .rows_affected();
    if attached == 0 {
        return Err(Conflict::CheckoutSessionMismatch.into());
    }
    Ok(())
}

/// Filters for operators' purchase lists.
#[derive(Clone, Debug, Default)]
pub struct PurchaseFilter {
    pub status: Option<PurchaseStatus>,
    pub tier: Option<TierId>,
    /// Only purchases of this listing (any of its tiers and their versions).
    pub listing: Option<ListingId>,
    pub email: Option<String>,
    /// Only purchases of this seller's listings.
    pub seller: Option<uuid::Uuid>,
    /// Only purchases strictly older than this cursor (from the previous page).
    pub before: Option<(DateTime<Utc>, PurchaseId)>,
    pub limit: i64,
}

/// Newest first, keyset-paginated on `(created_at, purchase_id)` so pages stay stable while new
/// purchases arrive.
///
/// The statement names only the filters given, so PostgreSQL plans each combination for what it
/// is: a filter left as `($1 is null or status = $1)` can use no index once the prepared statement
/// falls back to its generic plan, and a million purchases would be read to show fifty. Every
/// single filter, and none, is answered by an index in `(…, created_at desc, purchase_id desc)`
/// order (migration 32), read from the cursor on and stopped after `limit` rows.
pub async fn list(pool: &PgPool, filter: &PurchaseFilter) -> Result<Vec<Purchase>> {
    Ok(list_statement("", filter)
        .build_query_as::<Purchase>()
        .fetch_all(pool)
        .await?)
}

/// The plan of [`list`]'s statement for `filter`, run (`explain (analyze, buffers)`): what
/// `market-scale` checks on a million purchases.
pub async fn explain_list(pool: &PgPool, filter: &PurchaseFilter) -> Result<Vec<String>> {
    Ok(list_statement("explain (analyze, buffers) ", filter)
        .build_query_scalar::<String>()
        .fetch_all(pool)
        .await?)
}

/// The page's size is written into the text (an integer clamped to 1-200, never the client's
/// text), not bound: PostgreSQL costs a generic plan's `limit $n` as a tenth of the rows, so the
/// prepared statement never kept its generic plan and was planned again on every call
/// (`pg_stat_statements` on 1 000 000 purchases: plans = calls for the newest, by-status and
/// by-e-mail lists, 0.12-0.16 ms each). A few page sizes make a few statements.
fn list_statement(prefix: &str, filter: &PurchaseFilter) -> QueryBuilder<'static, Postgres> {
    let limit = filter.limit.clamp(1, 200);
    let mut sql = QueryBuilder::<Postgres>::new(prefix);
    if let Some(listing) = filter.listing {
        // A listing's purchases are its tier versions' purchases: the newest `limit` of each tier
        // (one range of `purchase_by_tier` each), merged. However many purchases a popular
        // listing has, at most `limit` per tier version are read.
        sql.push("select p.* from tier lt cross join lateral (select * from purchase where tier_id = lt.tier_id");
        push_filters(&mut sql, filter);
        sql.push(" order by created_at desc, purchase_id desc limit ")
            .push(limit)
            .push(") p where lt.listing_id = ")
            .push_bind(listing)
            .push(" order by p.created_at desc, p.purchase_id desc limit ")
            .push(limit);
    } else {
        sql.push("select * from purchase where true");
        push_filters(&mut sql, filter);
        sql.push(" order by created_at desc, purchase_id desc limit ")
            .push(limit);
    }
    sql
}

/// `and …` for each filter given but the listing (which [`list_statement`] joins on).
fn push_filters(sql: &mut QueryBuilder<'static, Postgres>, filter: &PurchaseFilter) {
    if let Some(status) = filter.status {
        sql.push(" and status = ").push_bind(status);
    }
    if let Some(tier) = filter.tier {
        sql.push(" and tier_id = ").push_bind(tier);
    }
    if let Some(email) = &filter.email {
        sql.push(" and lower(email) = lower(")
            .push_bind(email.clone())
            .push(")");
    }
    if let Some(seller) = filter.seller {
        sql.push(" and seller_id = ").push_bind(seller);
    }
    if let Some((at, id)) = filter.before {
        sql.push(" and (created_at, purchase_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
}

/// How many purchases are in each status (statuses without any are absent).
pub async fn count_by_status(pool: &PgPool) -> Result<Vec<(PurchaseStatus, i64)>> {
    Ok(sqlx::query_as::<_, (PurchaseStatus, i64)>(
        "select status, count(*) from purchase group by status",
    )
    .fetch_all(pool)
    .await?)
}
