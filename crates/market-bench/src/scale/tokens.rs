//! Each sold purchase's install token, sealed as the service seals it.
//!
//! A token's value is stored encrypted under the data key, with its fingerprint under the
//! database's lookup key (market-core `keys`), and SQL has neither key: so the values are sealed
//! here, with market-core's own `SealedToken` and the data key the server runs with, and written a
//! chunk at a time by one `insert … select … from unnest(…)` each (20 statements for a million,
//! not a million). A receipt read by the benchmark then opens a real sealed token, as in
//! production. (`market serve` would seal plain tokens itself at start-up, but one row per
//! statement: minutes for a million.)

use std::time::Instant;

use anyhow::Context;
use market_core::ListingId;
use market_core::envelope::DataKeys;
use market_core::keys::{self, SealedToken};
use master_api::TokenValue;
use sqlx::PgPool;
use uuid::Uuid;

use crate::say;
use crate::server::ServerConfig;

/// Statuses whose purchases were paid (and so got a token), as SQL and as a list.
pub const SOLD: &str =
    "('fulfilled', 'reinstated', 'refunded', 'disputed', 'dispute_lost', 'revoked')";
pub const SOLD_STATUSES: [&str; 6] = [
    "fulfilled",
    "reinstated",
    "refunded",
    "disputed",
    "dispute_lost",
    "revoked",
];

/// Tokens sealed and written per statement.
const CHUNK: i64 = 50_000;

/// Gives every sold purchase its token: `assigned` while the purchase holds access (fulfilled,
/// reinstated), `revoked` once it lost it (refunded, disputed, lost, revoked).
pub async fn seed_tokens(db: &PgPool, config: &ServerConfig, begun: Instant) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_keys = DataKeys::parse(&config.data_key).context("the bench's data key")?;
    let envelope = keys::open(db, data_keys).await?;
    let mut after = Uuid::nil();
    let mut written = 0;
    loop {
        let sold: Vec<(Uuid, ListingId)> = sqlx::query_as(&format!(
            "select p.purchase_id, t.listing_id from purchase p join tier t using (tier_id)
             where p.status in {SOLD} and p.purchase_id > $1
             order by p.purchase_id limit $2"
        ))
        .bind(after)
        .bind(CHUNK)
        .fetch_all(db)
        .await?;
        let Some(&(last, _)) = sold.last() else {
            break;
        };
        after = last;
        let mut ids = Vec::with_capacity(sold.len());
        let mut key_ids = Vec::with_capacity(sold.len());
        let mut sealed = Vec::with_capacity(sold.len());
        let mut fingerprints = Vec::with_capacity(sold.len());
        for (purchase, listing) in sold {
            let value = TokenValue::new(format!("scale_{}", purchase.simple()));
            let token = SealedToken::new(&envelope, listing, &value)?;
            ids.push(purchase);
            key_ids.push(token.key_id);
            sealed.push(token.sealed);
            fingerprints.push(token.fingerprint);
        }
        written += sqlx::query(INSERT)
            .bind(&ids)
            .bind(&key_ids)
            .bind(&sealed)
            .bind(&fingerprints)
            .execute(db)
            .await?
            .rows_affected();
    }
    say(
        begun,
        &format!(
            "seeded {written} sealed install tokens in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

/// One chunk: the purchases' ids with their tokens' seals, joined to the purchases for the rest.
/// A token carries its purchase's entitlement (I5), and its install count is somewhere in it.
const INSERT: &str = "
insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                           token_fingerprint, current_installs, state, purchase_id, origin,
                           created_at, updated_at, assigned_at, released_at, seen_at)
select t.listing_id, p.tier_id, p.max_installs, s.key_id, s.sealed, s.fingerprint,
       floor(random() * (p.max_installs + 1))::bigint,
       case when p.status in ('fulfilled', 'reinstated') then 'assigned' else 'revoked' end::token_state,
       p.purchase_id, 'minted', p.paid_at, p.paid_at, p.fulfilled_at,
       case when p.status not in ('fulfilled', 'reinstated') then p.closed_at end,
       now()
from unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[]) s (purchase_id, key_id, sealed, fingerprint)
         join purchase p using (purchase_id)
         join tier t using (tier_id)";
