//! Every install token of the database with its value opened by the run's data key: read once after
//! settling and shared by the checks (`checker.rs`, `mail_check.rs`, `rotation_check.rs`), which
//! compare values with Xano's and with what was mailed.

use market_core::envelope::DataKeys;
use sqlx::PgPool;
use uuid::Uuid;

/// An install token of the database, its value opened.
#[derive(Debug, sqlx::FromRow)]
pub struct Token {
    #[sqlx(rename = "install_token_id")]
    pub id: i64,
    pub listing_id: Uuid,
    pub canonical: String,
    pub tier_id: Option<Uuid>,
    pub purchase_id: Option<Uuid>,
    pub reserved_for: Option<Uuid>,
    pub state: String,
    pub max_installs: i64,
    /// Opened from `sealed` after the read.
    #[sqlx(skip)]
    pub value: String,
    #[sqlx(rename = "token_key_id")]
    key_id: String,
    #[sqlx(rename = "token_sealed")]
    sealed: Vec<u8>,
}

/// Every token of the database, opened with the run's data key.
pub async fn read(db: &PgPool, data_key: &str) -> Vec<Token> {
    let mut tokens: Vec<Token> = sqlx::query_as(
        "select it.install_token_id, it.listing_id, l.canonical, it.tier_id, it.purchase_id,
                it.reserved_for, it.state::text as state, it.max_installs, it.token_key_id,
                it.token_sealed
         from install_token it join listing l using (listing_id)",
    )
    .fetch_all(db)
    .await
    .expect("read tokens");
    let keys = DataKeys::parse(data_key).expect("the run's data key");
    let envelope = market_core::keys::open(db, keys)
        .await
        .expect("open the envelope");
    for t in &mut tokens {
        let sealed = std::mem::take(&mut t.sealed);
        let listing = market_core::ListingId(t.listing_id);
        let value = market_core::keys::open_token(&envelope, listing, t.key_id.clone(), sealed)
            .expect("a token the run's key opens");
        value.expose().clone_into(&mut t.value);
    }
    tokens
}
