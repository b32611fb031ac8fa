//! `reconcile_listing`: the standing job that reconciles one listing with Xano
//! ([`crate::reconcile`]); it comes back after `reconcile_interval`.

use super::error::JobError;
use crate::audit::Actor;
use crate::queue::Job;
use crate::{ListingId, Market, reconcile};

/// The standing reconciliation job of one listing.
pub(super) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let listing_id: ListingId = job
        .subject
        .parse()
        .map_err(|_| JobError::Permanent("bad listing id".into()))?;
    reconcile::listing(market, listing_id, &Actor::System).await?;
    Ok(())
}
