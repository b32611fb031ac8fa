//! A seller's API keys after the invitation: listed, issued (rotation without downtime) and
//! revoked.
//!
//! A key is named by its **key id**: the first 16 hex digits (8 bytes) of the SHA-256 the table
//! keeps, so no column is needed and the id says nothing of the key (the hash of 256 random bits
//! cannot be reversed). Rotation is issue, switch, revoke: a new key works from its commit, the old
//! ones until they are revoked, so there is no moment without a working key.
//!
//! Every change locks the seller's row first, so two revocations at once cannot both see the
//! other's key as the one left: a seller never revokes its own last unrevoked key
//! ([`Conflict::LastSellerKey`]); an operator may ([`LastKey::MayGo`]), to lock a seller out. A seller
//! holds at most [`MAX_LIVE_KEYS`] unrevoked keys, so a leaked key cannot make an endless supply of
//! others: after a leak, list the keys and revoke every one not known to be the seller's.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{Actor, Audit};
use crate::db;
use crate::receipt::hex;
use crate::sellers::SellerKey;
use crate::{Conflict, Error, Result};

/// How many unrevoked keys a seller may hold at once.
pub const MAX_LIVE_KEYS: i64 = 10;

/// A key's public name: 16 lowercase hex digits, the first 8 bytes of its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    /// The id a caller named, when it has the shape of one (anything else names no key).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 16
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(text.to_owned()))
    }

    fn of(key: &SellerKey) -> Self {
        let hash = key.hash();
        Self(hex(hash.get(..8).unwrap_or_default()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is known of a key without the key: its id, when it was made and when revoked.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyRecord {
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    /// `None` while the key opens the seller API (and its seller is active).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whether a revocation may take the seller's last unrevoked key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastKey {
    /// The seller itself: refused with [`Conflict::LastSellerKey`].
    Refused,
    /// An operator, who may lock a seller out.
    MayGo,
}

/// The columns of a [`KeyRecord`], the id derived from the stored hash.
const RECORD: &str = "encode(substr(key_hash, 1, 8), 'hex') as key_id, created_at, revoked_at";

/// The seller's keys, revoked ones included, oldest first. An unknown seller has none.
pub async fn list(pool: &PgPool, seller: Uuid) -> Result<Vec<KeyRecord>> {
    Ok(sqlx::query_as::<_, KeyRecord>(&format!(
        "select {RECORD} from seller_key where seller_id = $1 order by created_at, key_hash"
    ))
    .bind(seller)
    .fetch_all(pool)
    .await?)
}

/// Issues the seller a new key, returned here and never again; the seller's other keys keep
/// working. Refused for the house ([`Conflict::HouseHasNoKey`]) and for a seller already holding
/// [`MAX_LIVE_KEYS`] unrevoked keys ([`Conflict::SellerKeyLimit`]); an unknown seller is `NotFound`.
/// A suspended seller may be issued one: it opens nothing until the seller is reactivated.
pub async fn issue(pool: &PgPool, seller: Uuid, actor: &Actor) -> Result<(KeyRecord, SellerKey)> {
    let key = SellerKey::random();
    let id = KeyId::of(&key);
    let record = db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        if lock_seller(&mut tx, seller).await? {
            return Err(Conflict::HouseHasNoKey.into());
        }
        let live: i64 = sqlx::query_scalar(
            "select count(*) from seller_key where seller_id = $1 and revoked_at is null",
        )
        .bind(seller)
        .fetch_one(&mut *tx)
        .await?;
        if live >= MAX_LIVE_KEYS {
            return Err(Conflict::SellerKeyLimit.into());
        }
        let record = sqlx::query_as::<_, KeyRecord>(&format!(
            "insert into seller_key (key_hash, seller_id) values ($1, $2) returning {RECORD}"
        ))
        .bind(key.hash().as_slice())
        .bind(seller)
        .fetch_one(&mut *tx)
        .await?;
        Audit::new(actor, "seller.key_issued")
            .detail(serde_json::json!({ "seller_id": seller, "key_id": id.as_str() }))
            .write(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(record)
    })
    .await?;
    Ok((record, key))
}

/// Revokes one of the seller's keys: from the commit on it opens nothing. A key of another seller,
/// or a `key_id` of no key, is `NotFound` (so ids of others' keys reveal nothing). Revoking a
/// revoked key changes nothing and answers it as it is.
pub async fn revoke(
    pool: &PgPool,
    seller: Uuid,
    key_id: &str,
    last: LastKey,
    actor: &Actor,
) -> Result<KeyRecord> {
    let id = KeyId::parse(key_id).ok_or(Error::NotFound("seller key"))?;
    db::retry_transient(|| async {
        let mut tx = pool.begin().await?;
        lock_seller(&mut tx, seller).await?;
        let key = sqlx::query_as::<_, KeyRecord>(&format!(
            "select {RECORD} from seller_key
             where seller_id = $1 and substr(key_hash, 1, 8) = decode($2, 'hex')
             order by revoked_at nulls first limit 1"
        ))
        .bind(seller)
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound("seller key"))?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        if last == LastKey::Refused {
            let others: i64 = sqlx::query_scalar(
                "select count(*) from seller_key
                 where seller_id = $1 and revoked_at is null
                   and substr(key_hash, 1, 8) <> decode($2, 'hex')",
            )
            .bind(seller)
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if others == 0 {
                return Err(Conflict::LastSellerKey.into());
            }
        }
        let revoked = sqlx::query_as::<_, KeyRecord>(&format!(
            "update seller_key set revoked_at = now()
             where seller_id = $1 and substr(key_hash, 1, 8) = decode($2, 'hex')
               and revoked_at is null
             returning {RECORD}"
        ))
        .bind(seller)
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        Audit::new(actor, "seller.key_revoked")
            .detail(serde_json::json!({ "seller_id": seller, "key_id": id.as_str() }))
            .write(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(revoked)
    })
    .await
}

/// Locks the seller's row (every key change of one seller runs one at a time); whether it is the
/// house. An unknown seller is `NotFound`.
async fn lock_seller(conn: &mut PgConnection, seller: Uuid) -> Result<bool> {
    sqlx::query_scalar("select house from seller where seller_id = $1 for update")
        .bind(seller)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound("seller"))
}
