//! Deleting a token at Xano: a refunded or disputed purchase's token (`revoking` → `revoked`), or an
//! unsold one nobody needs (`retiring` → `retired`).
//!
//! `DELETE` is idempotent (the client counts "already gone" as success), so this job needs no fencing:
//! two runs delete once and record the same end state.
//!
//! A purchase whose dispute was won while its token was still being deleted waits for this job
//! (one live token per purchase): the deletion's finish gives it its new token, in the same
//! transaction.

use super::error::JobError;
use crate::audit::{Actor, Audit};
use crate::queue::Job;
use crate::{ListingId, Market, PurchaseId, TokenId, keys, payments};
use crate::{accounts, seller_xano};

pub(crate) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let id = TokenId(
        job.subject
            .parse()
            .map_err(|_| JobError::Permanent("bad token id".into()))?,
    );
    let row = sqlx::query_as::<
        _,
        (
            ListingId,
            String,
            String,
            Vec<u8>,
            String,
            Option<PurchaseId>,
        ),
    >(
        "select it.listing_id, l.canonical, it.token_key_id, it.token_sealed, it.state::text,
                it.purchase_id
         from install_token it join listing l using (listing_id)
         where it.install_token_id = $1",
    )
    .bind(id)
    .fetch_optional(&market.db)
    .await?;
    let Some((listing, canonical, key_id, sealed, state, purchase)) = row else {
        return Ok(());
    };
    let (done_state, action) = match state.as_str() {
        "revoking" => ("revoked", "xano.token_revoked"),
        "retiring" => ("retired", "xano.token_retired"),
        _ => return Ok(()),
    };

    let token = keys::open_token(&market.envelope, listing, key_id, sealed)?;
    let xano = accounts::for_listing(market, listing).await?;
    xano.client.delete_token(&canonical, &token).await?;
    seller_xano::record_success(market, &xano).await?;

    let mut tx = market.db.begin().await?;
    // Lock order as on every payment path: the purchase before its tokens.
    let holder = match purchase {
        Some(purchase) => payments::lock(&mut tx, purchase).await?,
        None => None,
    };
    let updated = sqlx::query(
        "update install_token set state = $2::token_state, released_at = now()
         where install_token_id = $1 and state = $3::token_state",
    )
    .bind(id)
    .bind(done_state)
    .bind(&state)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 1 {
        let mut audit = Audit::new(&Actor::System, action)
            .listing(listing)
            .token(id);
        if let Some(purchase) = purchase {
            audit = audit.purchase(purchase);
        }
        audit.write(&mut tx).await?;
    }
    if let Some(holder) = holder.filter(|p| p.status.is_owed_a_token()) {
        payments::fulfil_locked(&mut tx, &holder, &Actor::System).await?;
    }
    tx.commit().await?;
    Ok(())
}
