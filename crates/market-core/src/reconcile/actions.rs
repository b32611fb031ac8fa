//! What one pass does to one token: refresh it, bring back what reappeared, adopt or remove what
//! we did not know, and record what Xano no longer lists.

use std::collections::HashMap;

use master_api::InstallToken;
use sqlx::PgConnection;

use super::report::{Known, Report};
use crate::audit::{Actor, Audit};
use crate::envelope::Envelope;
use crate::keys::SealedToken;
use crate::queue::{self, JobKind};
use crate::{ListingId, PurchaseId, Result, TierId, TokenId};

/// A token both sides know: refresh its installs count, correct a limit Xano does not hold, and
/// delete again what should be gone.
pub(super) async fn refresh(
    conn: &mut PgConnection,
    known: &Known,
    at_xano: &InstallToken,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    let current_installs = at_xano.current_installs;
    let buyers = match (known.purchase_id, known.state.as_str()) {
        (Some(purchase), "assigned") => Some(purchase),
        _ => None,
    };
    if let Some(purchase) = buyers
        && known.max_installs != at_xano.max_installs
    {
        let limit = at_xano.max_installs;
        written_again(conn, known, purchase, Drift::Limit, limit, actor).await?;
        report.limits_drifted += 1;
    }
    if let Some(purchase) = buyers
        && current_installs < known.current_installs
    {
        // Installs only grow at Xano; ours were read there (or written by us). A lower count is
        // an update of ours that Xano applied late, over installs made since: kept here, and
        // written back by the same job.
        written_again(conn, known, purchase, Drift::Count, current_installs, actor).await?;
        report.counts_set_back += 1;
    } else if known.current_installs != current_installs {
        sqlx::query("update install_token set current_installs = $2, seen_at = now() where install_token_id = $1")
            .bind(known.install_token_id)
            .bind(current_installs)
            .execute(&mut *conn)
            .await?;
        report.refreshed += 1;
    }
    let again = match known.state.as_str() {
        "revoked" => "revoking",
        "retired" => "retiring",
        "missing" => return reappeared(conn, known, actor, report).await,
        _ => return Ok(()),
    };
    let updated = sqlx::query(
        "update install_token set state = $2::token_state, released_at = null
         where install_token_id = $1 and state = $3::token_state",
    )
    .bind(known.install_token_id)
    .bind(again)
    .bind(&known.state)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 1 {
        queue::enqueue(
            &mut *conn,
            JobKind::DeleteToken,
            &known.install_token_id.to_string(),
        )
        .await?;
        Audit::new(actor, "reconcile.redelete")
            .token(known.install_token_id)
            .write(&mut *conn)
            .await?;
        report.redeleted += 1;
    }
    Ok(())
}

/// What an assigned token shows at Xano that is not ours.
#[derive(Clone, Copy)]
enum Drift {
    /// A limit that is not its purchase's.
    Limit,
    /// An installs count below the one we read there before: Xano applied an update of ours
    /// late. The installs a buyer made between that update and this pass are counted from the
    /// lower figure: a count can be set back by at most those.
    Count,
}

/// An assigned token that shows at Xano a [`Drift`]: the upgrade job converges the purchase, its
/// token and Xano on the entitlement (it reads Xano's limit and count, and writes the right limit
/// with the greater of Xano's count and ours), so queueing it is the whole repair. A job already
/// queued or running for the purchase is enough (`enqueue` adds none); this pass may also catch
/// the job between its write to Xano and its commit, which the next run of the job finds settled.
async fn written_again(
    conn: &mut PgConnection,
    known: &Known,
    purchase: PurchaseId,
    drift: Drift,
    at_xano: i64,
    actor: &Actor,
) -> Result<()> {
    let (ours, action, what) = match drift {
        Drift::Limit => (
            known.max_installs,
            "reconcile.limit_drift",
            "a token's limit at Xano is not ours; its limit is written again",
        ),
        Drift::Count => (
            known.current_installs,
            "reconcile.count_set_back",
            "a token's installs count at Xano fell below the one read there before; it is written again",
        ),
    };
    queue::enqueue(&mut *conn, JobKind::ApplyUpgrade, &purchase.to_string()).await?;
    tracing::warn!(
        purchase.id = %purchase,
        token.id = %known.install_token_id,
        ours,
        at_xano,
        "{what}"
    );
    Audit::new(actor, action)
        .purchase(purchase)
        .token(known.install_token_id)
        .detail(serde_json::json!({ "ours": ours, "at_xano": at_xano }))
        .write(&mut *conn)
        .await
}

pub(super) async fn adopt_or_remove(
    conn: &mut PgConnection,
    envelope: &Envelope,
    listing: ListingId,
    active_tiers: &HashMap<i64, TierId>,
    token: &master_api::InstallToken,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    let tier = active_tiers.get(&token.max_installs).copied();
    let (state, origin, action) = match (token.current_installs, tier) {
        (0, Some(_)) => ("available", "adopted", "reconcile.adopted"),
        (0, None) => ("retiring", "found", "reconcile.removed"),
        _ => ("foreign", "found", "reconcile.foreign"),
    };
    let tier = tier.filter(|_| origin == "adopted");
    let sealed = SealedToken::new(envelope, listing, &token.token)?;
    let id = sqlx::query_scalar::<_, TokenId>(
        "insert into install_token (listing_id, tier_id, max_installs, token_key_id, token_sealed,
                                    token_fingerprint, current_installs, state, origin, seen_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8::token_state, $9, now())
         on conflict (listing_id, token_fingerprint) do nothing
         returning install_token_id",
    )
    .bind(listing)
    .bind(tier)
    .bind(token.max_installs)
    .bind(&sealed.key_id)
    .bind(&sealed.sealed)
    .bind(&sealed.fingerprint)
    .bind(token.current_installs)
    .bind(state)
    .bind(origin)
    .fetch_optional(&mut *conn)
    .await?;
    // No row: the token's own insert (by the worker that minted it) committed meanwhile.
    let Some(id) = id else { return Ok(()) };
    let mut audit = Audit::new(actor, action)
        .listing(listing)
        .token(id)
        .detail(serde_json::json!({ "max_installs": token.max_installs, "current_installs": token.current_installs }));
    if let Some(tier) = tier {
        audit = audit.tier(tier);
    }
    audit.write(&mut *conn).await?;
    match state {
        "available" => report.adopted += 1,
        "retiring" => {
            queue::enqueue(&mut *conn, JobKind::DeleteToken, &id.to_string()).await?;
            report.removed += 1;
        }
        _ => report.foreign += 1,
    }
    Ok(())
}

pub(super) async fn gone_at_xano(
    conn: &mut PgConnection,
    listing: ListingId,
    known: &Known,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    let (next, action) = match known.state.as_str() {
        "revoking" => ("revoked", "reconcile.confirmed_revoked"),
        "retiring" => ("retired", "reconcile.confirmed_retired"),
        "available" | "assigned" => ("missing", "reconcile.missing"),
        _ => return Ok(()),
    };
    let updated = sqlx::query(
        "update install_token
         set state = $2::token_state,
             released_at = case when $2 in ('revoked', 'retired') then now() else released_at end
         where install_token_id = $1 and state = $3::token_state
           -- A token being rotated out may be deleted at Xano before its rotation's last step.
           and not exists (select 1 from token_rotation r
                           where r.old_token_id = $1 and r.state = 'pending')",
    )
    .bind(known.install_token_id)
    .bind(next)
    .bind(&known.state)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(()); // changed meanwhile; the next run looks again
    }
    let mut audit = Audit::new(actor, action)
        .listing(listing)
        .token(known.install_token_id);
    if let Some(purchase) = known.purchase_id {
        audit = audit.purchase(purchase);
    }
    audit.write(&mut *conn).await?;
    match (next, known.state.as_str(), known.purchase_id) {
        ("missing", "assigned", Some(purchase)) => {
            // The buyer's token vanished at Xano (deleted by hand?): they paid, so they get a new one.
            queue::enqueue(&mut *conn, JobKind::MintForPurchase, &purchase.to_string()).await?;
            report.missing += 1;
            report.reissued += 1;
        }
        ("missing", ..) => report.missing += 1,
        _ => report.confirmed_deleted += 1,
    }
    Ok(())
}

/// A token marked `missing` that Xano lists again (a hiccup at Xano, a list that was cut short). It
/// must not stay both missing here and live there: its buyer would hold two working tokens once
/// the replacement comes, and Xano would never again equal the database. So:
/// - its purchase is still owed a token, holds no other, and is entitled to the token's limit (an
///   upgrade may have changed it meanwhile): it is given back (`assigned`), and the mint job queued
///   for a replacement then finds the purchase served;
/// - an unsold pool token: back in its pool if its tier is still on sale;
/// - otherwise (the buyer has a replacement, or was refunded meanwhile): deleted at Xano
///   (`retiring`), no longer anyone's.
async fn reappeared(
    conn: &mut PgConnection,
    known: &Known,
    actor: &Actor,
    report: &mut Report,
) -> Result<()> {
    let restore = sqlx::query_scalar::<_, bool>(
        "select case
                    when it.purchase_id is null then coalesce(t.active and t.max_installs = it.max_installs, false)
                    else p.status in ('fulfilled', 'reinstated')
                         and it.max_installs = p.max_installs
                         and not exists (select 1 from install_token other
                                         where other.purchase_id = it.purchase_id
                                           and other.state in ('assigned', 'revoking'))
                end
         from install_token it
         left join tier t on t.tier_id = it.tier_id
         left join purchase p on p.purchase_id = it.purchase_id
         where it.install_token_id = $1
         for update of it",
    )
    .bind(known.install_token_id)
    .fetch_one(&mut *conn)
    .await?;
    let (state, action) = match (restore, known.purchase_id) {
        (true, Some(_)) => ("assigned", "reconcile.reappeared_restored"),
        (true, None) => ("available", "reconcile.reappeared_restored"),
        (false, _) => ("retiring", "reconcile.reappeared_removed"),
    };
    let updated = sqlx::query(
        "update install_token
         set state = $2::token_state,
             purchase_id = case when $2 = 'retiring' then null else purchase_id end
         where install_token_id = $1 and state = 'missing'",
    )
    .bind(known.install_token_id)
    .bind(state)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(());
    }
    let mut audit = Audit::new(actor, action).token(known.install_token_id);
    if let Some(purchase) = known.purchase_id {
        audit = audit.purchase(purchase);
    }
    audit.write(&mut *conn).await?;
    if state == "retiring" {
        queue::enqueue(
            &mut *conn,
            JobKind::DeleteToken,
            &known.install_token_id.to_string(),
        )
        .await?;
    }
    report.reappeared += 1;
    Ok(())
}
