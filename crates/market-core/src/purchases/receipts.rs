//! A purchase as its buyer sees it: status, price and the live token, opened from its seal.

use chrono::{DateTime, Utc};
use master_api::TokenValue;
use sqlx::PgPool;

use super::row::{Purchase, by_id};
use crate::envelope::Envelope;
use crate::receipt::ReceiptKey;
use crate::{Email, ListingId, Money, PurchaseId, PurchaseStatus, Result, TierId, TokenId, keys};

/// A purchase as its buyer sees it.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub purchase_id: PurchaseId,
    pub status: PurchaseStatus,
    pub tier_id: TierId,
    pub tier_name: String,
    pub listing_id: ListingId,
    pub canonical: String,
    /// Who sells the listing.
    pub seller_name: String,
    pub price: Money,
    pub max_installs: i64,
    pub token: Option<ReceiptToken>,
    /// When the token's install count was last read from Xano (`usage`).
    pub usage_as_of: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// For an upgrade: the purchase it upgrades (an upgrade holds no token of its own).
    pub upgrade_of: Option<PurchaseId>,
    /// For an upgraded purchase: the tier whose installs its token now allows (its highest
    /// upgrade still standing), with that tier's name.
    pub upgraded_to: Option<(TierId, String)>,
}

impl Receipt {
    /// The snippet's page at Xano, where the buyer installs it.
    pub fn snippet_url(&self) -> String {
        crate::Canonical::parse(&self.canonical)
            .map(|c| c.snippet_url())
            .unwrap_or_default()
    }

    /// How to install the snippet with the token, as sentences (the receipt page and the email say
    /// the same).
    pub fn install_steps(&self) -> Vec<String> {
        vec![
            format!(
                "Open {} and sign in to your Xano account.",
                self.snippet_url()
            ),
            "Choose \"Add to your Xano Account\", then the instance and workspace to install into."
                .to_owned(),
            "Enter your install access token when asked for it.".to_owned(),
            format!("The token allows {} installs.", self.max_installs),
        ]
    }
}

/// The purchase's token. `value` is only there while the token is live and assigned: a revoked
/// token's string is of no use to anyone.
#[derive(Clone, Debug)]
pub struct ReceiptToken {
    pub install_token_id: TokenId,
    pub state: String,
    pub value: Option<TokenValue>,
    pub max_installs: i64,
    pub current_installs: i64,
}

/// The receipt of `id` if `key` is its receipt key. A wrong key and an unknown purchase look the
/// same (`None`), so a caller learns nothing about purchases that are not theirs.
pub async fn receipt(
    db: &PgPool,
    envelope: &Envelope,
    id: PurchaseId,
    key: &ReceiptKey,
) -> Result<Option<Receipt>> {
    let Some(purchase) = by_id(db, id).await? else {
        return Ok(None);
    };
    if !key.matches(&purchase.receipt_hash) {
        return Ok(None);
    }
    receipt_of(db, envelope, &purchase).await.map(Some)
}

/// The receipt of a purchase the caller is entitled to (operators, or after checking the key).
///
/// One statement, so one snapshot: the status and the token always agree (two reads could show a
/// purchase still `pending` beside the token its fulfilment had just assigned). The token is opened
/// only while it is live.
pub async fn receipt_of(db: &PgPool, envelope: &Envelope, purchase: &Purchase) -> Result<Receipt> {
    let row = sqlx::query_as::<_, ReceiptRow>(RECEIPT)
        .bind(purchase.purchase_id)
        .fetch_one(db)
        .await?;
    build(envelope, purchase, row)
}

/// Every purchase made with `email` that was paid for (newest first, at most 200), as its buyer
/// sees it, tokens opened: the buyer portal's list, in one statement (the purchases and their
/// receipts in one snapshot and one round trip).
///
/// Keyed by the e-mail, not by a list of ids: PostgreSQL keeps a generic plan for `lower(email) =
/// $1`, while `purchase_id = any($1)` was planned again on every call (a generic plan cannot know
/// the array holds a few ids: 1.8 ms to plan, 1.5 ms to run, on 1 000 000 purchases). The 200 is in
/// the text for the same reason: a bound `limit $n` is costed as a tenth of the rows.
pub async fn receipts_of_buyer(
    db: &PgPool,
    envelope: &Envelope,
    email: &Email,
) -> Result<Vec<Receipt>> {
    sqlx::query_as::<_, BuyersRow>(RECEIPTS_OF_BUYER)
        .bind(email.as_str())
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|row| build(envelope, &row.purchase, row.receipt))
        .collect()
}

/// The receipt statement, ending in its filter (and starting with more columns, if given): one
/// text, two statements ([`RECEIPT`], [`RECEIPTS_OF_BUYER`]).
///
/// Why not one statement for a list of ids: PostgreSQL plans a prepared statement for its
/// parameters' values five times, then keeps one generic plan if that is estimated no dearer. For
/// `purchase_id = any($1)` it never is (a generic plan does not know the array holds one id), so
/// every execution was planned again, and this statement, with its two lateral joins, costs 1-2 ms
/// to plan and 0.3 ms to run (measured on 1 000 000 purchases with
/// `pg_stat_statements.track_planning`: 13 635 plans for 13 615 calls). With `purchase_id = $1`
/// the generic plan is the custom one and is kept.
macro_rules! receipts_where {
    ($filter:literal) => {
        receipts_where!("", $filter)
    };
    ($more:literal, $filter:literal) => {
        concat!(
            "select ",
            $more,
            "p.purchase_id, p.status, p.paid_at, p.fulfilled_at, p.closed_at, p.max_installs,
            t.name as tier_name, l.listing_id, l.canonical, l.installs_as_of,
            (select s.name from seller s where s.seller_id = l.seller_id) as seller_name,
            it.install_token_id, it.state::text as token_state, it.token,
            it.token_key_id, it.token_sealed,
            it.max_installs as token_max_installs, it.current_installs,
            up.tier_id as upgraded_tier_id, up.name as upgraded_tier_name
     from purchase p
     join tier t on t.tier_id = p.tier_id
     join listing l on l.listing_id = t.listing_id
     -- The live token if there is one, else the most recent one (to show it was revoked).
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
     ",
            $filter
        )
    };
}

/// One purchase's receipt: the purchase whose id is `$1`.
const RECEIPT: &str = receipts_where!("where p.purchase_id = $1");
/// The purchases (`p.*`) made with the e-mail `$1` and paid for, newest first, at most 200, each
/// with its receipt.
const RECEIPTS_OF_BUYER: &str = receipts_where!(
    "p.*, ",
    "where lower(p.email) = lower($1) and p.status not in ('pending', 'expired', 'failed')
     order by p.created_at desc
     limit 200"
);

fn build(envelope: &Envelope, purchase: &Purchase, row: ReceiptRow) -> Result<Receipt> {
    let token = match (row.install_token_id, row.token_state) {
        (Some(install_token_id), Some(state)) => {
            let value = if state == "assigned" {
                match (row.token_key_id, row.token_sealed, row.token) {
                    (Some(key_id), Some(sealed), _) => {
                        Some(keys::open_token(envelope, row.listing_id, key_id, sealed)?)
                    }
                    (_, _, plain) => plain.map(TokenValue::new),
                }
            } else {
                None
            };
            Some(ReceiptToken {
                value,
                install_token_id,
                state,
                max_installs: row.token_max_installs.unwrap_or(row.max_installs),
                current_installs: row.current_installs.unwrap_or(0),
            })
        }
        _ => None,
    };
    Ok(Receipt {
        purchase_id: purchase.purchase_id,
        status: row.status,
        tier_id: purchase.tier_id,
        tier_name: row.tier_name,
        listing_id: row.listing_id,
        canonical: row.canonical,
        seller_name: row.seller_name,
        price: purchase.price.clone(),
        max_installs: row.max_installs,
        token,
        usage_as_of: row.installs_as_of,
        created_at: purchase.created_at,
        paid_at: row.paid_at,
        fulfilled_at: row.fulfilled_at,
        closed_at: row.closed_at,
        upgrade_of: purchase.upgrade_of,
        upgraded_to: row.upgraded_tier_id.zip(row.upgraded_tier_name),
    })
}

/// A purchase and its receipt, as [`RECEIPTS_OF_BUYER`] reads them.
#[derive(sqlx::FromRow)]
struct BuyersRow {
    #[sqlx(flatten)]
    purchase: Purchase,
    #[sqlx(flatten)]
    receipt: ReceiptRow,
}

/// A purchase's receipt as one statement reads it.
#[derive(sqlx::FromRow)]
struct ReceiptRow {
    status: PurchaseStatus,
    /// Read with the token (for [`receipt_of`], not from the caller's copy: an upgrade may have
    /// changed both since).
    max_installs: i64,
    paid_at: Option<DateTime<Utc>>,
    fulfilled_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    tier_name: String,
    listing_id: ListingId,
    canonical: String,
    seller_name: String,
    installs_as_of: Option<DateTime<Utc>>,
    install_token_id: Option<TokenId>,
    token_state: Option<String>,
    /// Only in a row from before tokens were sealed (`keys::seal_plain_tokens`).
    token: Option<String>,
    token_key_id: Option<String>,
    token_sealed: Option<Vec<u8>>,
    token_max_installs: Option<i64>,
    current_installs: Option<i64>,
    upgraded_tier_id: Option<TierId>,
    upgraded_tier_name: Option<String>,
}
