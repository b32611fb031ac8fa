//! Install counts that are fresh where a buyer sees them (the receipt, the portal).
//!
//! Xano counts installs; we only learn them by listing a snippet's tokens. Reconciliation does so
//! every few minutes; a buyer looking at their receipt wants now. So a read finds the listing's
//! counts older than [`FRESH_FOR`], one instance (a compare-and-set on the listing) lists the tokens
//! again, waiting at most [`XANO_WAIT`], through the same rate-limited client as every job; a
//! refused, slow or failed call leaves the last counts, shown with their age
//! (`listing.installs_as_of`). Counts only grow here (`greatest`): a list read while another writer
//! raised a count cannot lower it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::accounts;
use crate::portal;
use crate::purchases::{self, Receipt};
use crate::receipt::ReceiptKey;
use crate::{Email, ListingId, Market, PurchaseId, Result, keys};

/// Most listings one portal read refreshes (the others show their last counts).
const PORTAL_REFRESH_LIMIT: usize = 8;

/// Counts younger than this are shown as they are.
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// Longest wait for Xano on a buyer's read.
pub const XANO_WAIT: Duration = Duration::from_secs(2);

/// Refreshes the install counts of `listing` from Xano if they are older than [`FRESH_FOR`] and
/// no other read is refreshing them; returns when the counts are as of. Never fails the read it
/// serves: Xano's errors and timeouts leave the last counts.
pub async fn refresh(market: &Market, listing: ListingId) -> Result<Option<DateTime<Utc>>> {
    let claimed = sqlx::query_scalar::<_, String>(
        "update listing set installs_refresh_claimed_at = now()
         where listing_id = $1
           and coalesce(installs_as_of, '-infinity') < now() - make_interval(secs => $2)
           and coalesce(installs_refresh_claimed_at, '-infinity') < now() - make_interval(secs => $2)
         returning canonical",
    )
    .bind(listing)
    .bind(FRESH_FOR.as_secs_f64())
    .fetch_optional(&market.db)
    .await?;
    if let Some(canonical) = claimed {
        let xano = accounts::for_listing(market, listing).await?;
        match tokio::time::timeout(XANO_WAIT, xano.client.tokens(&canonical)).await {
            Ok(Ok(tokens)) => {
                let prints: Vec<Vec<u8>> = tokens
                    .iter()
                    .map(|t| keys::fingerprint(&market.envelope, &t.token).to_vec())
                    .collect();
                let counts: Vec<i64> = tokens.iter().map(|t| t.current_installs).collect();
                sqlx::query(
                    "with listed as (select * from unnest($2::bytea[], $3::bigint[]) as l (print, installs))
                     update install_token it set current_installs = greatest(it.current_installs, listed.installs)
                     from listed
                     where it.listing_id = $1 and it.token_fingerprint = listed.print",
                )
                .bind(listing)
                .bind(&prints)
                .bind(&counts)
                .execute(&market.db)
                .await?;
                mark_as_of(market, listing).await?;
            }
            Ok(Err(e)) => {
                tracing::info!(listing.id = %listing, error = %e, "install counts not refreshed; showing the last ones");
            }
            Err(_) => {
                tracing::info!(listing.id = %listing, "Xano slow to list tokens; showing the last install counts");
            }
        }
    }
    Ok(
        sqlx::query_scalar("select installs_as_of from listing where listing_id = $1")
            .bind(listing)
            .fetch_optional(&market.db)
            .await?
            .flatten(),
    )
}

/// The receipt of `id` for the holder of `key` (`purchases::receipt`), its install count read
/// from Xano first when stale.
pub async fn receipt(market: &Market, id: PurchaseId, key: &ReceiptKey) -> Result<Option<Receipt>> {
    let Some(receipt) = purchases::receipt(&market.db, &market.envelope, id, key).await? else {
        return Ok(None);
    };
    if !needs_refresh(&receipt) {
        return Ok(Some(receipt));
    }
    refresh(market, receipt.listing_id).await?;
    purchases::receipt(&market.db, &market.envelope, id, key).await
}

/// The portal's list for the session `token` (`portal::purchases_of`), the install counts of the
/// live tokens' listings read from Xano first when stale (at most a few listings per read).
pub async fn portal_purchases(market: &Market, email: &Email) -> Result<Vec<Receipt>> {
    let receipts = portal::purchases_of(&market.db, &market.envelope, email).await?;
    let mut stale: Vec<ListingId> = receipts
        .iter()
        .filter(|r| needs_refresh(r))
        .map(|r| r.listing_id)
        .collect();
    stale.sort_by_key(|l| l.0);
    stale.dedup();
    if stale.is_empty() {
        return Ok(receipts);
    }
    // Concurrently: each waits for Xano at most XANO_WAIT, so the read waits about that long.
    let mut refreshes = tokio::task::JoinSet::new();
    for listing in stale.into_iter().take(PORTAL_REFRESH_LIMIT) {
        let market = market.clone();
        refreshes.spawn(async move { refresh(&market, listing).await });
    }
    while let Some(done) = refreshes.join_next().await {
        if let Ok(result) = done {
            result?;
        }
    }
    portal::purchases_of(&market.db, &market.envelope, email).await
}

fn needs_refresh(receipt: &Receipt) -> bool {
    let live = receipt.token.as_ref().is_some_and(|t| t.value.is_some());
    let stale = receipt
        .usage_as_of
        .is_none_or(|at| (Utc::now() - at).to_std().unwrap_or_default() >= FRESH_FOR);
    live && stale
}

/// Records that `listing`'s counts were read from Xano just now (also by reconciliation).
pub async fn mark_as_of(market: &Market, listing: ListingId) -> Result<()> {
    sqlx::query("update listing set installs_as_of = now() where listing_id = $1")
        .bind(listing)
        .execute(&market.db)
        .await?;
    Ok(())
}
