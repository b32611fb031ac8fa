//! The seed: a marketplace two years into its life, written with set-based SQL (one `insert …
//! select … from generate_series` per table, not a million round trips), with every constraint and
//! trigger of the schema on.
//!
//! What it holds, and why:
//! - sellers: the house and `--sellers` others, each with a Stripe account that takes charges (so
//!   all their listings are on sale);
//! - listings, three tiers each (Solo, Team, Agency), their pools empty and their low-water mark 0
//!   (the server must not fill 30 000 pools through the Xano simulator while it is measured), their
//!   usage counts dated tomorrow (the portal then shows them as read, without asking Xano), and a
//!   reconciliation queued for tomorrow (so the server's sweep queues none now: it would ask the
//!   Xano simulator, which knows none of these tokens, for every listing);
//! - purchases over two years, more of them recent (a growing shop), a few tiers selling far more
//!   than the rest (popularity squared), a buyer buying four times on average, 2 % without an
//!   e-mail, in the statuses a shop ends up with: 86 % fulfilled, 8 % expired (checkouts
//!   abandoned), 3 % refunded, 1 % failed, 1 % pending (never given a Checkout Session, so the
//!   stale-session backfill leaves them alone), 0.3 % disputed, 0.3 % lost, 0.2 % reinstated,
//!   0.2 % revoked; none `paid` (a paid purchase waits for a token for seconds, and the server
//!   would mint them through the simulator during the run), and no upgrades;
//! - each sold purchase's token (`tokens`): assigned while the purchase holds access, revoked once
//!   it lost it;
//! - the audit entries checkout and fulfilment write (`purchase.created`, `token.assigned`), so a
//!   purchase's trail is read from a table of millions, as in production.

use std::time::Instant;

use sqlx::PgPool;

use super::args::Size;
use super::tokens;
use crate::say;
use crate::server::ServerConfig;

/// Seeds the migrated, empty database; prints each table's time and the total.
pub async fn seed(
    db: &PgPool,
    config: &ServerConfig,
    size: &Size,
    begun: Instant,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // One connection, so `setseed` makes every `random()` below the same from run to run.
    let mut conn = db.acquire().await?;
    sqlx::query("select setseed(0.17)")
        .execute(&mut *conn)
        .await?;
    let steps: [(&str, &str, Option<i64>); 6] = [
        ("sellers", SELLERS, Some(count(size.sellers))),
        ("listings", LISTINGS, Some(count(size.listings))),
        ("tiers", TIERS, None),
        ("purchases", PURCHASES, Some(count(size.purchases))),
        ("audit: purchase.created", AUDIT_CREATED, None),
        ("reconciliations", RECONCILIATIONS, None),
    ];
    for (what, sql, n) in steps {
        let step = Instant::now();
        let mut query = sqlx::query(sql);
        if let Some(n) = n {
            query = query.bind(n);
        }
        if what == "purchases" {
            query = query.bind(count(size.buyers));
        }
        let rows = query.execute(&mut *conn).await?.rows_affected();
        say(
            begun,
            &format!(
                "seeded {rows} {what} in {:.1} s",
                step.elapsed().as_secs_f64()
            ),
        );
    }
    drop(conn);
    tokens::seed_tokens(db, config, begun).await?;
    for (what, sql) in [
        ("audit: token.assigned", AUDIT_ASSIGNED),
        ("vacuum analyze", "vacuum analyze"),
    ] {
        let step = Instant::now();
        let rows = sqlx::query(sql).execute(db).await?.rows_affected();
        say(
            begun,
            &format!(
                "{what}: {rows} rows in {:.1} s",
                step.elapsed().as_secs_f64()
            ),
        );
    }
    say(
        begun,
        &format!(
            "seeding took {:.1} s in all",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const SELLERS: &str = "
insert into seller (name, contact_email, stripe_account_id, stripe_charges_enabled,
                    stripe_payouts_enabled, stripe_details_submitted, stripe_read_at)
select 'Seller ' || i, 'seller' || i || '@example.com', 'acct_scale' || i, true, true, true, now()
from generate_series(1, $1) i";

/// Listings go round the sellers, the house first; canonicals sort as they are numbered.
const LISTINGS: &str = "
with owner as (select seller_id, row_number() over (order by house desc, name) - 1 as n,
                      count(*) over () as sellers
               from seller)
insert into listing (canonical, title, description, seller_id, installs_as_of, created_at)
select 'scale-' || lpad(i::text, 6, '0'),
       (array['Auth flow', 'Stripe billing', 'CSV import', 'E-mail digest', 'Rate limiter'])[1 + i % 5]
           || ' #' || i,
       'A Xano snippet of the scale benchmark: what it does, what it needs, how to install it, '
           || 'in about as many words as a real listing uses.',
       o.seller_id, now() + interval '1 day', now() - interval '800 days'
from generate_series(1, $1) i
         join owner o on o.n = i % o.sellers";

const TIERS: &str = "
insert into tier (listing_id, slug, name, price_amount, currency, max_installs, pool_low_water,
                  pool_target, created_at)
select l.listing_id, s.slug, s.name, s.price + (abs(hashtext(l.canonical)) % 10) * 100, 'usd',
       s.installs, 0, 0, l.created_at
from listing l
         cross join (values ('solo', 'Solo', 1900, 5), ('team', 'Team', 4900, 25),
                            ('agency', 'Agency', 9900, 100)) s (slug, name, price, installs)";

/// `$1` purchases, `$2` buyers. A tier is drawn with popularity squared (the most popular tier
/// sells about 80 times the median); the age with a power of 1.5 (recent months hold more).
const PURCHASES: &str = "
with offer as (
    select t.tier_id, t.price_amount, t.currency, t.max_installs, l.seller_id, s.house,
           s.stripe_account_id, row_number() over (order by t.tier_id) - 1 as n
    from tier t join listing l using (listing_id) join seller s using (seller_id)
),
tiers as (select count(*) as tiers from tier),
-- The tier's number is drawn here, so that the join below is on equal numbers (a hash join), not
-- a condition over both sides (a nested loop: a million times 30 000).
drawn as (
    select i, least(floor(power(random(), 2) * tiers)::bigint, tiers - 1) as n,
           random() as fate, random() as age, random() as buyer
    from generate_series(1, $1) i cross join tiers
),
shaped as (
    select d.i, o.tier_id, o.price_amount, o.currency, o.max_installs, o.seller_id, o.house,
           o.stripe_account_id,
           case when d.fate < 0.86 then 'fulfilled'
                when d.fate < 0.94 then 'expired'
                when d.fate < 0.97 then 'refunded'
                when d.fate < 0.98 then 'failed'
                when d.fate < 0.99 then 'pending'
                when d.fate < 0.993 then 'disputed'
                when d.fate < 0.996 then 'dispute_lost'
                when d.fate < 0.998 then 'reinstated'
                else 'revoked' end::purchase_status as status,
           now() - interval '730 days' * power(d.age, 1.5) as created_at,
           case when d.buyer >= 0.02
                then 'buyer' || floor(d.buyer * $2)::bigint || '@example.com' end as email
    from drawn d join offer o using (n)
),
dated as (
    select s.*,
           s.status in ('fulfilled', 'reinstated', 'refunded', 'disputed', 'dispute_lost', 'revoked')
               as sold,
           least(s.created_at + interval '2 minutes', now()) as paid
    from shaped s
)
insert into purchase (purchase_id, tier_id, amount, currency, max_installs, email, status,
                      checkout_session_id, payment_intent_id, amount_refunded, receipt_hash,
                      created_at, updated_at, paid_at, fulfilled_at, closed_at, seller_id,
                      connect_destination, application_fee_amount)
select gen_random_uuid(), tier_id, price_amount, currency, max_installs, email, status,
       case when status <> 'pending' then 'cs_scale_' || i end,
       case when status not in ('pending', 'expired') then 'pi_scale_' || i end,
       case when status = 'refunded' then price_amount else 0 end,
       sha256(convert_to('scale-receipt-' || i, 'UTF8')),
       created_at, created_at,
       case when sold then paid end,
       case when sold then paid end,
       case when status in ('refunded', 'disputed', 'dispute_lost', 'revoked')
                then least(created_at + interval '9 days', now())
            when status in ('expired', 'failed') then least(created_at + interval '1 day', now()) end,
       seller_id,
       case when not house then stripe_account_id end,
       case when not house then price_amount / 10 end
from dated";

const AUDIT_CREATED: &str = "
insert into audit_event (at, actor, action, listing_id, tier_id, purchase_id, detail)
select p.created_at, 'buyer', 'purchase.created', t.listing_id, p.tier_id, p.purchase_id,
       jsonb_build_object('amount', p.amount, 'currency', p.currency, 'max_installs', p.max_installs)
from purchase p join tier t using (tier_id)";

const AUDIT_ASSIGNED: &str = "
insert into audit_event (at, actor, action, listing_id, tier_id, purchase_id, install_token_id, detail)
select it.assigned_at, 'stripe', 'token.assigned', it.listing_id, it.tier_id, it.purchase_id,
       it.install_token_id, '{\"from\": \"pool\"}'
from install_token it
where it.purchase_id is not null";

const RECONCILIATIONS: &str = "
insert into job (kind, subject, due_at)
select 'reconcile_listing', listing_id::text, now() + interval '1 day' from listing";
