//! What the scenarios ask for, drawn from the seeded database: purchases, buyers, listings, tiers,
//! sellers and cursors picked at random among the purchases (so a popular listing is asked for
//! as often as its buyers would make an operator look at it), receipt keys, and portal sessions.

use market_core::PurchaseId;
use market_core::receipt::ReceiptSecret;
use sqlx::PgPool;
use uuid::Uuid;

use super::args::Size;
use super::tokens::SOLD_STATUSES;
use crate::server::ServerConfig;

/// How many of each are drawn: enough that the scenarios do not read one row over and over.
const DRAWN: i64 = 500;

/// Request targets for the scenarios and the plans.
#[derive(Debug)]
pub struct Samples {
    /// Purchases of any status.
    pub purchases: Vec<Uuid>,
    /// Sold purchases with their receipt keys (for `GET /v1/purchases/{id}`).
    pub receipts: Vec<(Uuid, String)>,
    pub emails: Vec<String>,
    pub listings: Vec<Uuid>,
    pub tiers: Vec<Uuid>,
    pub sellers: Vec<Uuid>,
    /// `(status, cursor)`: a page of that status starting at a random depth.
    pub status_cursors: Vec<(String, String)>,
    /// Cursors at random depths of the unfiltered list.
    pub cursors: Vec<String>,
    /// Bearer tokens of live portal sessions of buyers who bought.
    pub portal_tokens: Vec<String>,
}

/// One purchase drawn, with what the scenarios ask about it.
#[derive(sqlx::FromRow)]
struct Drawn {
    purchase_id: Uuid,
    status: String,
    email: Option<String>,
    listing_id: Uuid,
    tier_id: Uuid,
    seller_id: Uuid,
    /// The admin list's cursor just after it: `<microseconds>.<id>`.
    cursor: String,
}

impl Samples {
    /// Draws the samples, gives the drawn sold purchases receipt hashes of keys derived from the
    /// server's receipt secret, and opens a portal session for each drawn buyer (rows written as
    /// redeeming a link would write them).
    pub async fn draw(db: &PgPool, config: &ServerConfig, size: &Size) -> anyhow::Result<Self> {
        // A Bernoulli sample of the table (a few pages' worth at a million rows) is cheap and
        // unbiased; `order by random()` over a million rows is not.
        let rows: Vec<Drawn> = sqlx::query_as(
            "select p.purchase_id, p.status::text as status, p.email, t.listing_id, p.tier_id,
                    p.seller_id,
                    (extract(epoch from p.created_at) * 1000000)::bigint || '.'
                        || replace(p.purchase_id::text, '-', '') as cursor
             from purchase p tablesample bernoulli ($1::float4) join tier t using (tier_id)
             order by random() limit $2",
        )
        .bind(sample_percent(size.purchases))
        .bind(DRAWN)
        .fetch_all(db)
        .await?;
        anyhow::ensure!(!rows.is_empty(), "the database holds no purchases");
        let secret = ReceiptSecret::new(config.receipt_secret.as_bytes().to_vec())
            .ok_or_else(|| anyhow::anyhow!("the receipt secret is under 32 bytes"))?;
        let mut samples = Self {
            purchases: Vec::new(),
            receipts: Vec::new(),
            emails: Vec::new(),
            listings: Vec::new(),
            tiers: Vec::new(),
            sellers: Vec::new(),
            status_cursors: Vec::new(),
            cursors: Vec::new(),
            portal_tokens: Vec::new(),
        };
        for row in rows {
            samples.purchases.push(row.purchase_id);
            if SOLD_STATUSES.contains(&row.status.as_str()) {
                let key = secret.key_for(PurchaseId(row.purchase_id));
                samples
                    .receipts
                    .push((row.purchase_id, key.expose().to_owned()));
            }
            samples.emails.extend(row.email);
            samples.listings.push(row.listing_id);
            samples.tiers.push(row.tier_id);
            samples.sellers.push(row.seller_id);
            samples
                .status_cursors
                .push((row.status, row.cursor.clone()));
            samples.cursors.push(row.cursor);
        }
        samples.store_receipt_keys(db, &secret).await?;
        samples.open_portal_sessions(db).await?;
        Ok(samples)
    }

    async fn store_receipt_keys(&self, db: &PgPool, secret: &ReceiptSecret) -> anyhow::Result<()> {
        let ids: Vec<Uuid> = self.receipts.iter().map(|(id, _)| *id).collect();
        let hashes: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| secret.key_for(PurchaseId(*id)).hash().to_vec())
            .collect();
        sqlx::query(
            "update purchase p set receipt_hash = k.hash
             from unnest($1::uuid[], $2::bytea[]) k (purchase_id, hash)
             where p.purchase_id = k.purchase_id",
        )
        .bind(&ids)
        .bind(&hashes)
        .execute(db)
        .await?;
        Ok(())
    }

    async fn open_portal_sessions(&mut self, db: &PgPool) -> anyhow::Result<()> {
        let tokens: Vec<String> = self
            .emails
            .iter()
            .map(|_| format!("ps_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()))
            .collect();
        sqlx::query(
            "with link as (
                 insert into portal_link (portal_link_id, email, key_hash, created_at, expires_at, used_at)
                 select gen_random_uuid(), s.email, sha256(convert_to(s.token || ':link', 'UTF8')),
                        now(), now() + interval '15 minutes', now()
                 from unnest($1::text[], $2::text[]) s (email, token)
                 returning portal_link_id, email, key_hash
             )
             insert into portal_session (portal_session_id, email, token_hash, portal_link_id, expires_at)
             select gen_random_uuid(), l.email, sha256(convert_to(s.token, 'UTF8')), l.portal_link_id,
                    now() + interval '1 day'
             from link l join unnest($1::text[], $2::text[]) s (email, token)
                 on l.key_hash = sha256(convert_to(s.token || ':link', 'UTF8'))",
        )
        .bind(&self.emails)
        .bind(&tokens)
        .execute(db)
        .await?;
        self.portal_tokens = tokens;
        Ok(())
    }
}

/// The share of the purchases (in percent) that holds about four times [`DRAWN`] rows.
fn sample_percent(purchases: u64) -> f64 {
    let purchases = purchases.max(1) as f64;
    // 100 % × 4 × DRAWN (500) / purchases.
    (200_000.0 / purchases).clamp(0.01, 100.0)
}
