//! Copies of the API's read statements whose plans are checked (each names the function it was
//! copied from: keep them in step), and a look-up the plans need.

use sqlx::PgPool;
use uuid::Uuid;

/// What a statement's `$1` is.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    Purchase,
    Email,
    Seller,
    Nothing,
}

/// `(name, statement, its $1, hot)`.
pub const READS: [(&str, &str, Arg, bool); 7] = [
    (
        "one purchase: the row (purchases::by_id)",
        "select * from purchase where purchase_id = $1",
        Arg::Purchase,
        true,
    ),
    ("one purchase: the receipt (purchases::receipt_of)", RECEIPT, Arg::Purchase, true),
    (
        "one purchase: the audit trail (audit::for_purchase)",
        "select * from audit_event
         where audit_event_id in (
             select audit_event_id from audit_event where purchase_id = $1
             union all
             select a.audit_event_id
             from install_token it join audit_event a on a.install_token_id = it.install_token_id
             where it.purchase_id = $1)
         order by audit_event_id",
        Arg::Purchase,
        true,
    ),
    (
        "portal: a buyer's purchases (portal::purchases_of)",
        "select * from purchase
         where lower(email) = lower($1) and status not in ('pending', 'expired', 'failed')
         order by created_at desc
         limit 200",
        Arg::Email,
        true,
    ),
    (
        "sales report: the platform's last 30 days, its pass over the purchases (reports::sql)",
        SALES,
        Arg::Nothing,
        true,
    ),
    (
        "sales report: one seller's last 30 days, its pass over the purchases (reports::sql)",
        SELLER_SALES,
        Arg::Seller,
        true,
    ),
    (
        "catalog: every listing on sale, the cache's refresh (catalog::listings)",
        "select l.canonical, l.title, l.description, s.seller_id, s.name as seller_name,
                t.tier_id, t.listing_id, t.slug, t.name, t.price_amount as amount, t.currency,
                t.max_installs, true as purchasable
         from listing l join tier t using (listing_id) join seller s on s.seller_id = l.seller_id
         where (t.active and l.active and s.status = 'active' and (s.house or s.stripe_charges_enabled))
           and (null::text is null or l.canonical = null)",
        Arg::Nothing,
        false,
    ),
];

const RECEIPT: &str = "
select p.status, p.paid_at, p.fulfilled_at, p.closed_at, p.max_installs,
       t.name as tier_name, l.listing_id, l.canonical, l.installs_as_of,
       (select s.name from seller s where s.seller_id = l.seller_id) as seller_name,
       it.install_token_id, it.state::text as token_state, it.token,
       it.token_key_id, it.token_sealed,
       it.max_installs as token_max_installs, it.current_installs,
       up.tier_id as upgraded_tier_id, up.name as upgraded_tier_name
from purchase p
join tier t on t.tier_id = p.tier_id
join listing l on l.listing_id = t.listing_id
left join lateral (
    select install_token_id, state, token, token_key_id, token_sealed, max_installs,
           current_installs
    from install_token where purchase_id = p.purchase_id
    order by (state in ('assigned', 'revoking')) desc, install_token_id desc
    limit 1
) it on true
left join lateral (
    select u.tier_id, ut.name from purchase u join tier ut on ut.tier_id = u.tier_id
    where u.upgrade_of = p.purchase_id and u.status in ('fulfilled', 'reinstated')
    order by u.max_installs desc, u.created_at desc
    limit 1
) up on true
where p.purchase_id = $1";

/// The report's inner query (the only pass over the purchases), for the default range.
const SALES: &str = "
select p.seller_id, p.tier_id, p.currency, (p.paid_at at time zone 'UTC')::date as day,
       count(*) as sales, sum(p.amount) as gross, sum(p.amount_refunded) as refunds
from purchase p
where p.paid_at >= current_date - 29 and p.paid_at < current_date + 1
group by p.seller_id, p.tier_id, p.currency, day";

const SELLER_SALES: &str = "
select p.seller_id, p.tier_id, p.currency, (p.paid_at at time zone 'UTC')::date as day,
       count(*) as sales, sum(p.amount) as gross, sum(p.amount_refunded) as refunds
from purchase p
where p.paid_at >= current_date - 29 and p.paid_at < current_date + 1 and p.seller_id = $1
group by p.seller_id, p.tier_id, p.currency, day";

/// The listing with the most purchases: the admin list by listing's worst case.
pub async fn most_sold_listing(db: &PgPool) -> anyhow::Result<Uuid> {
    Ok(sqlx::query_scalar(
        "select t.listing_id from purchase p join tier t using (tier_id)
         group by t.listing_id order by count(*) desc limit 1",
    )
    .fetch_one(db)
    .await?)
}
