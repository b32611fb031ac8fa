//! How a sale is split between a seller and the platform: fixed when the purchase is made, like its
//! price, by checkout and by an upgrade alike.

use sqlx::PgConnection;

use crate::{FeeRate, Money, Result, TierId};

/// How a sale of `tier` at `price` is split: for a seller's tier, the seller's connected account and
/// the platform's fee (the seller's own rate, else `fee`); for the house's, nothing (paid directly).
/// Fixed when the purchase is made, like its price.
pub(super) async fn split(
    conn: &mut PgConnection,
    tier: TierId,
    price: &Money,
    fee: FeeRate,
) -> Result<(Option<String>, Option<i64>)> {
    let (account, own_rate) = sqlx::query_as::<_, (Option<String>, Option<i32>)>(
        "select case when s.house then null else s.stripe_account_id end, s.platform_fee_bps
         from tier t join listing l using (listing_id) join seller s on s.seller_id = l.seller_id
         where t.tier_id = $1",
    )
    .bind(tier)
    .fetch_one(&mut *conn)
    .await?;
    let Some(account) = account else {
        return Ok((None, None));
    };
    let rate = match own_rate {
        Some(bps) => FeeRate::from_bps(i64::from(bps))?,
        None => fee,
    };
    Ok((Some(account), Some(rate.of(price.amount))))
}
