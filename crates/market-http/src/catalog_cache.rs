//! The public catalog, cached in each instance's memory.
//!
//! Storefronts read `GET /v1/listings` on every page view; it changes only when an operator edits
//! listings or tiers. Each instance keeps the catalog as ready-to-send JSON and answers from memory,
//! asking PostgreSQL again at most once per `ttl` (1 s by default). How fresh it is:
//! - a change made through this instance's admin API is seen by the very next read: the handler calls
//!   [`CatalogCache::invalidate`] after its commit, and a read never serves an invalidated copy;
//! - a change made anywhere else (another instance, `market tiers apply`, SQL) is seen within `ttl`
//!   plus one query.
//!
//! Only one request per instance re-reads an expired copy; meanwhile the others keep serving the
//! expired one (stale-while-revalidate), so a slow query never queues every reader behind it. A stale
//! catalog cannot cost a buyer money: checkout charges the tier's price as its own transaction reads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use market_core::catalog;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;
use crate::wire::catalog::{ListingBody, ListingsBody};

#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Bumped by every invalidation; a copy read before the latest bump is never served.
    generation: AtomicU64,
    /// Held by the one request that re-reads the catalog.
    refreshing: tokio::sync::Mutex<()>,
}

/// The catalog as the two endpoints send it.
#[derive(Debug)]
pub struct Snapshot {
    read_at: Instant,
    generation: u64,
    /// `GET /v1/listings`.
    pub all: Bytes,
    /// `GET /v1/listings/{canonical}`, by canonical.
    pub by_canonical: HashMap<String, Bytes>,
    /// `{"listings": [...]}` of each seller with a listing on sale.
    pub by_seller: HashMap<Uuid, Bytes>,
}

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// Drops the cached copy: the next read asks PostgreSQL. Call it after committing a change.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The catalog: from memory when the copy is recent enough, else read (by one request at a time).
    pub async fn get(&self, db: &PgPool) -> Result<Arc<Snapshot>, ApiError> {
        if let Some(fresh) = self.servable(false) {
            return Ok(fresh);
        }
        let _refreshing = if let Ok(guard) = self.refreshing.try_lock() {
            guard
        } else {
            // Someone is re-reading it: an expired (but not invalidated) copy will do meanwhile.
            if let Some(expired) = self.servable(true) {
                return Ok(expired);
            }
            self.refreshing.lock().await
        };
        // It may have been re-read while this request waited for the lock.
        if let Some(fresh) = self.servable(false) {
            return Ok(fresh);
        }
        // Read the generation before the query: an invalidation during it makes this copy unservable.
        let generation = self.generation.load(Ordering::Acquire);
        let read_at = Instant::now();
        let listings = catalog::listings(db, None).await?;
        let snapshot = Arc::new(Snapshot::of(listings, generation, read_at)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// The cached copy, unless invalidated since it was read or, unless `expired_ok`, older than `ttl`.
    fn servable(&self, expired_ok: bool) -> Option<Arc<Snapshot>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let snapshot = current.as_ref()?;
        let valid = snapshot.generation == self.generation.load(Ordering::Acquire);
        let recent = expired_ok || snapshot.read_at.elapsed() < self.ttl;
        (valid && recent).then(|| snapshot.clone())
    }
}

impl Snapshot {
    fn of(
        listings: Vec<catalog::CatalogListing>,
        generation: u64,
        read_at: Instant,
    ) -> Result<Self, ApiError> {
        let bodies: Vec<ListingBody> = listings.into_iter().map(Into::into).collect();
        let by_canonical = bodies
            .iter()
            .map(|b| Ok((b.canonical.clone(), json(b)?)))
            .collect::<Result<_, ApiError>>()?;
        let mut sellers: HashMap<Uuid, Vec<&ListingBody>> = HashMap::new();
        for body in &bodies {
            sellers.entry(body.seller.id).or_default().push(body);
        }
        let by_seller = sellers
            .into_iter()
            .map(|(seller, listings)| {
                Ok((seller, json(&serde_json::json!({ "listings": listings }))?))
            })
            .collect::<Result<_, ApiError>>()?;
        let all = json(&ListingsBody { listings: bodies })?;
        Ok(Self {
            read_at,
            generation,
            all,
            by_canonical,
            by_seller,
        })
    }
}

fn json(value: &impl serde::Serialize) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(ApiError::internal)
}
