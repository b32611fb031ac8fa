//! The public catalog, cached in each instance's memory.
//!
//! Storefronts read `GET /v1/listings` on every page view; it changes only when an operator edits
//! listings or tiers. Each instance keeps the catalog as ready-to-send JSON and answers from memory,
//! asking PostgreSQL again at most once per `ttl` (1 s by default). Asking is cheap: it reads the
//! catalog's version (one row, migration 32) and re-reads the listings only when it moved, so
//! 10 000 unchanged listings are not read and rebuilt every second. How fresh it is:
//! - a change made through this instance's admin API is seen by the very next read: the handler calls
//!   [`CatalogCache::invalidate`] after its commit, and a read never serves an invalidated copy;
//! - a change made anywhere else (another instance, `market tiers apply`, SQL) is seen within `ttl`
//!   plus two queries (every change to what the catalog shows moves the version, in its own
//!   transaction).
//!
//! The copy holds each listing's JSON once ([`Bytes`], ready to send), in canonical order, with
//! each seller's listings as positions in that order; a page (`GET /v1/listings`, at most
//! [`MAX_PAGE`] listings) is assembled per request from them. So memory grows with the catalog
//! once, not once per view (a 10 000-listing catalog is about 6 MB of JSON), and no page view sends
//! megabytes.
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
use crate::wire::catalog::{ListingBody, MAX_PAGE, encode_cursor};

#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    current: RwLock<Option<Current>>,
    /// Bumped by every invalidation; a copy read before the latest bump is never served.
    generation: AtomicU64,
    /// Held by the one request that re-reads the catalog.
    refreshing: tokio::sync::Mutex<()>,
}

/// The copy being served, and when and under which invalidation it was last found current.
#[derive(Debug)]
struct Current {
    snapshot: Arc<Snapshot>,
    checked_at: Instant,
    generation: u64,
}

/// The catalog as read at one moment: every listing on sale, each as the JSON both endpoints send.
#[derive(Debug)]
pub struct Snapshot {
    /// The catalog's version read just before the listings.
    version: i64,
    /// Every listing on sale, by canonical in byte order (a binary search finds one).
    ordered: Vec<Listed>,
    /// Each seller's listings with one on sale, as positions in `ordered` (ascending).
    by_seller: HashMap<Uuid, Vec<usize>>,
}

/// One listing of the copy: its canonical, and its JSON as `GET /v1/listings/{canonical}` sends it.
#[derive(Debug)]
struct Listed {
    canonical: String,
    body: Bytes,
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
        // Read the generation before the queries: an invalidation during them makes this copy
        // unservable. Then the version, before the listings: a copy read after version `n` holds
        // every change up to `n`, so while the version stays `n` the copy held is current.
        let generation = self.generation.load(Ordering::Acquire);
        let checked_at = Instant::now();
        let version = catalog::version(db).await?;
        let held = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| c.snapshot.clone());
        let snapshot = match held {
            Some(held) if held.version == version => held,
            _ => Arc::new(Snapshot::of(catalog::listings(db, None).await?, version)?),
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Current {
            snapshot: snapshot.clone(),
            checked_at,
            generation,
        });
        Ok(snapshot)
    }

    /// The cached copy, unless invalidated since it was read or, unless `expired_ok`, older than `ttl`.
    fn servable(&self, expired_ok: bool) -> Option<Arc<Snapshot>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let current = current.as_ref()?;
        let valid = current.generation == self.generation.load(Ordering::Acquire);
        let recent = expired_ok || current.checked_at.elapsed() < self.ttl;
        (valid && recent).then(|| current.snapshot.clone())
    }
}

/// A writer that only counts the bytes written to it.
struct Counted(usize);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Snapshot {
    fn of(listings: Vec<catalog::CatalogListing>, version: i64) -> Result<Self, ApiError> {
        // Every listing's JSON goes into one buffer, each listing a slice of it: one allocation
        // for the whole copy instead of one per listing, so the copies made each second do not
        // leave the heap in pieces around the ones still being served. Its size is measured
        // first: a buffer grown by doubling held up to twice the copy, and kept it (a heap profile
        // of 10 000 listings found 15.4 MiB of buffer for their 8 MiB of JSON).
        let bodies: Vec<ListingBody> = listings.into_iter().map(ListingBody::from).collect();
        let mut size = Counted(0);
        for body in &bodies {
            serde_json::to_writer(&mut size, body).map_err(ApiError::internal)?;
        }
        let mut json = Vec::with_capacity(size.0);
        let mut rows = Vec::with_capacity(bodies.len());
        for body in bodies {
            let start = json.len();
            serde_json::to_writer(&mut json, &body).map_err(ApiError::internal)?;
            rows.push((body.canonical, body.seller.id, start..json.len()));
        }
        let json = Bytes::from(json);
        let mut rows: Vec<(Listed, Uuid)> = rows
            .into_iter()
            .map(|(canonical, seller, range)| {
                let body = json.slice(range);
                (Listed { canonical, body }, seller)
            })
            .collect();
        // `catalog::listings` sorts the same way (by bytes), so this is one pass over sorted
        // rows; it keeps the binary searches right whatever the core's order.
        rows.sort_by(|(a, _), (b, _)| a.canonical.cmp(&b.canonical));
        let mut by_seller: HashMap<Uuid, Vec<usize>> = HashMap::new();
        let ordered = rows
            .into_iter()
            .enumerate()
            .map(|(position, (listed, seller))| {
                by_seller.entry(seller).or_default().push(position);
                listed
            })
            .collect();
        Ok(Self {
            version,
            ordered,
            by_seller,
        })
    }

    /// One listing's JSON.
    pub fn listing(&self, canonical: &str) -> Option<Bytes> {
        self.ordered
            .binary_search_by(|l| l.canonical.as_str().cmp(canonical))
            .ok()
            .map(|i| self.ordered[i].body.clone())
    }

    /// A page of `GET /v1/listings` as sent: up to `limit` listings (at most [`MAX_PAGE`]) whose
    /// canonical comes after `after`, every seller's or `seller`'s, and the cursor of the next page
    /// when there is one.
    pub fn page(&self, seller: Option<Uuid>, after: Option<&str>, limit: usize) -> Bytes {
        let limit = limit.clamp(1, MAX_PAGE);
        let is_before = |l: &Listed| after.is_some_and(|a| l.canonical.as_str() <= a);
        let chosen: Vec<&Listed> = match seller {
            None => {
                let start = self.ordered.partition_point(is_before);
                self.ordered[start..].iter().take(limit + 1).collect()
            }
            Some(seller) => {
                let positions = self.by_seller.get(&seller).map_or(&[][..], Vec::as_slice);
                let start = positions.partition_point(|&i| is_before(&self.ordered[i]));
                positions[start..]
                    .iter()
                    .take(limit + 1)
                    .map(|&i| &self.ordered[i])
                    .collect()
            }
        };
        let shown = &chosen[..chosen.len().min(limit)];
        let next = (chosen.len() > limit)
            .then(|| shown.last().map(|l| encode_cursor(&l.canonical)))
            .flatten();
        let size: usize = shown.iter().map(|l| l.body.len() + 1).sum();
        let mut out = Vec::with_capacity(size + 160);
        out.extend_from_slice(br#"{"listings":["#);
        for (n, listed) in shown.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&listed.body);
        }
        out.extend_from_slice(br#"],"next_cursor":"#);
        match next {
            // Hex digits only: nothing to escape.
            Some(cursor) => {
                out.push(b'"');
                out.extend_from_slice(cursor.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        Bytes::from(out)
    }
}
