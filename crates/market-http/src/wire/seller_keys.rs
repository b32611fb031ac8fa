//! A seller's API keys on the wire: what is known of each (never the key), and a new key, shown in
//! the one answer that issues it.

use chrono::{DateTime, Utc};
use market_core::seller_keys::KeyRecord;
use market_core::sellers::SellerKey;
use serde::Serialize;
use utoipa::ToSchema;

/// One of a seller's API keys, without the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct SellerKeyBody {
    /// The key's id: the first 16 hex digits of its SHA-256. Names it to revoke it.
    #[schema(example = "3fa85f6457174562")]
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    /// When it was revoked; `null` while it opens the seller API.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRecord> for SellerKeyBody {
    fn from(k: KeyRecord) -> Self {
        Self {
            key_id: k.key_id,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new API key: the only time it is shown. The seller's other keys keep working until revoked.
#[derive(Serialize, ToSchema)]
pub struct IssuedKeyBody {
    /// The new key's id (`DELETE …/keys/{key_id}` revokes it).
    #[schema(example = "3fa85f6457174562")]
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    /// `Authorization: Bearer <api_key>` on the seller API. Not stored; cannot be shown again.
    pub api_key: String,
}

impl IssuedKeyBody {
    pub fn of(record: KeyRecord, key: &SellerKey) -> Self {
        Self {
            key_id: record.key_id,
            created_at: record.created_at,
            api_key: key.expose().to_owned(),
        }
    }
}

/// The key stays out of `Debug` (and so out of any log line).
impl std::fmt::Debug for IssuedKeyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKeyBody")
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .field("api_key", &"[redacted]")
            .finish()
    }
}
