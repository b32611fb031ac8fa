//! Pending purchases whose payment may have happened without a word from Stripe's webhook: claimed
//! a few at a time, so that instances share the work of reading their Checkout Sessions.

use std::time::Duration;

use sqlx::PgPool;

use crate::{PurchaseId, Result};

/// Claims up to `limit` purchases pending for longer than `older_than` (and less than a day, a
/// Checkout Session's life) with a Checkout Session, not read within the last quarter of their age
/// (nor within `older_than`); stamps them as read now, and returns them with their session ids.
/// Rows another instance is claiming are skipped, not waited for.
pub async fn claim_stale_pending(
    db: &PgPool,
    older_than: Duration,
    limit: i64,
) -> Result<Vec<(PurchaseId, String)>> {
    Ok(sqlx::query_as::<_, (PurchaseId, String)>(
        "with due as materialized (
             select purchase_id from purchase
             where status = 'pending' and checkout_session_id is not null
               and created_at < now() - make_interval(secs => $1)
               and created_at > now() - interval '1 day'
               and (session_checked_at is null
                    or session_checked_at < now() - greatest(make_interval(secs => $1),
                                                             (now() - created_at) / 4))
             order by created_at
             limit $2
             for update skip locked
         )
         update purchase p set session_checked_at = now()
         from due where p.purchase_id = due.purchase_id
         returning p.purchase_id, p.checkout_session_id",
    )
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .fetch_all(db)
    .await?)
}
