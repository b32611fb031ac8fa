//! Applying a purchase's upgrades (`upgrades`): its token's limit at Xano, then the database, set
//! to the purchase's entitlement. Subject: the upgraded purchase (the base).
//!
//! 1. Read the base, its live token and its entitlement; wait ([`JobError::NotYet`]) while the
//!    base is owed a token it does not hold yet or a rotation of its token is under way.
//! 2. Read Xano's count of the token's installs and write the limit with the greater of that count
//!    and ours sent back; skipped when Xano already shows both (a run after a crash). A token Xano's
//!    list does not show is not written with our count, which may be behind the buyer's installs:
//!    the run is retried ([`JobError::Unlisted`]) and the listing reconciled.
//! 3. One transaction under the lease: nothing moved meanwhile (same token, same entitlement, no
//!    rotation), then the token's and the base's `max_installs`, and the paid upgrades `fulfilled`.
//!    When something moved, the job runs again from step 1.

use super::error::{JobError, lease_still_held, unlisted};
use crate::audit::{Actor, Audit};
use crate::keys;
use crate::payments::{lock, transition};
use crate::purchases::Purchase;
use crate::queue::{self, Job};
use crate::{ListingId, Market, PurchaseEvent, PurchaseId, PurchaseStatus, TokenId};
use crate::{accounts, seller_xano};

/// What the job reads of the base at the start of a run.
#[derive(sqlx::FromRow)]
struct Subject {
    status: PurchaseStatus,
    max_installs: i64,
    entitled: i64,
    canonical: String,
    listing_id: ListingId,
    token_id: Option<TokenId>,
    token_installs: Option<i64>,
    rotating: bool,
}

pub(crate) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let base: PurchaseId = job
        .subject
        .parse()
        .map_err(|_| JobError::Permanent("bad purchase id".into()))?;
    let Some(subject) = sqlx::query_as::<_, Subject>(
        "select p.status, p.max_installs, purchase_entitlement(p.purchase_id) as entitled,
                l.canonical, l.listing_id,
                it.install_token_id as token_id, it.current_installs as token_installs,
                exists (select 1 from token_rotation r
                        where r.purchase_id = p.purchase_id and r.state = 'pending') as rotating
         from purchase p
         join tier t using (tier_id)
         join listing l using (listing_id)
         left join install_token it on it.purchase_id = p.purchase_id and it.state = 'assigned'
         where p.purchase_id = $1",
    )
    .bind(base)
    .fetch_optional(&market.db)
    .await?
    else {
        return Err(JobError::Permanent("no such purchase".into()));
    };
    if !subject.status.is_owed_a_token() {
        // Closed: no token to change. An upgrade paid after its base closed stays `paid`, for an
        // operator to refund (docs/OPERATIONS.md).
        return Ok(());
    }
    if subject.rotating {
        return Err(JobError::NotYet("a rotation of the token is under way"));
    }
    let (Some(token), Some(stored_installs)) = (subject.token_id, subject.token_installs) else {
        // Owed a token it does not hold yet (a mint, a reinstatement): the token it gets is
        // minted at the purchase's limit, which this run will then correct.
        return Err(JobError::NotYet("the purchase is waiting for its token"));
    };

    let value = keys::open_stored(&market.db, &market.envelope, token).await?;
    let xano = accounts::for_listing(market, subject.listing_id).await?;
    let listed = xano.client.tokens(&subject.canonical).await?;
    let Some(at_xano) = listed.iter().find(|t| t.token.expose() == value.expose()) else {
        // Not listed: a list cut short, or a token gone. Writing our count could set back the
        // installs the buyer made since we last read it, and Xano's limit is unknown.
        return Err(unlisted(market, subject.listing_id).await);
    };
    let used = at_xano.current_installs.max(stored_installs);
    // Never below what is used: a refunded upgrade leaves the buyer the installs already made.
    let limit = subject.entitled.max(used);
    // Xano's own limit decides, not the database's: an earlier run may have written a limit the
    // entitlement no longer has (a refund landed between its write and its transaction). A count
    // below ours was set back by a write applied late (reconciliation queues this job for it).
    if at_xano.max_installs != limit || at_xano.current_installs < used {
        lease_still_held(market, job).await?;
        xano.client
            .update_token(&subject.canonical, &value, limit, used)
            .await?;
        seller_xano::record_success(market, &xano).await?;
    }
    fail::fail_point!("upgrade_before_recorded");
    finish(market, job, base, token, &subject, limit, used).await
}

/// Step 3, under the lease.
async fn finish(
    market: &Market,
    job: &Job,
    base: PurchaseId,
    token: TokenId,
    subject: &Subject,
    limit: i64,
    used: i64,
) -> Result<(), JobError> {
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        return Err(JobError::LostLease);
    }
    // Lock order as on every payment path: the purchase before its tokens; the base before its
    // upgrades.
    let Some(purchase) = lock(&mut tx, base).await? else {
        return Err(JobError::Permanent("no such purchase".into()));
    };
    let (entitled, token_still, rotating) = sqlx::query_as::<_, (i64, bool, bool)>(
        "select purchase_entitlement($1),
                exists (select 1 from install_token
                        where install_token_id = $2 and purchase_id = $1 and state = 'assigned'),
                exists (select 1 from token_rotation where purchase_id = $1 and state = 'pending')",
    )
    .bind(base)
    .bind(token)
    .fetch_one(&mut *tx)
    .await?;
    if entitled != subject.entitled || !token_still || rotating || purchase.status != subject.status
    {
        return Err(JobError::NotYet("the purchase changed during the run"));
    }
    sqlx::query(
        "update install_token set max_installs = $2, current_installs = greatest(current_installs, $3)
         where install_token_id = $1",
    )
    .bind(token)
    .bind(limit)
    .bind(used)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update purchase set max_installs = $2 where purchase_id = $1")
        .bind(base)
        .bind(limit)
        .execute(&mut *tx)
        .await?;
    if limit != subject.max_installs {
        Audit::new(&Actor::System, "token.limit_changed")
            .purchase(base)
            .token(token)
            .listing(subject.listing_id)
            .detail(serde_json::json!({ "from": subject.max_installs, "to": limit, "entitled": entitled, "installs": used }))
            .write(&mut tx)
            .await?;
    }
    let paid = sqlx::query_as::<_, Purchase>(
        "select * from purchase where upgrade_of = $1 and status = 'paid' order by purchase_id for update",
    )
    .bind(base)
    .fetch_all(&mut *tx)
    .await?;
    for upgrade in &paid {
        transition(&mut tx, upgrade, PurchaseEvent::Fulfilled, &Actor::System).await?;
    }
    tx.commit().await?;
    Ok(())
}
