//! The database's side of the [`envelope`](crate::envelope): its lookup key, install tokens as
//! they are stored (sealed, with a fingerprint), and the work a key roll needs.
//!
//! Every module that writes or reads a token's value goes through [`SealedToken`] and
//! [`open_token`]; nothing else touches `install_token.token_sealed`. Sellers' Xano credentials and
//! webhook endpoints' signing secrets are sealed here too, so a key roll reaches every secret.

use master_api::TokenValue;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

use crate::courier::WebhookSecret;
use crate::envelope::{DataKeys, Envelope, EnvelopeError, LOOKUP_KEY_BYTES, Sealed};
use crate::{ListingId, Result, TokenId};

/// Where the lookup key's seal belongs.
const LOOKUP_CONTEXT: &str = "data_lookup_key";
/// The kind of value fingerprints of install tokens are made for.
const TOKEN_KIND: &str = "install_token";
/// Rows sealed again per transaction by [`rotate`] and [`seal_plain_tokens`].
const BATCH: i64 = 500;

/// The envelope of this database: `keys` and the lookup key, made on first use (by whichever
/// instance gets there first) and opened with `keys` afterwards.
pub async fn open(db: &PgPool, keys: DataKeys) -> Result<Envelope> {
    let fresh: [u8; LOOKUP_KEY_BYTES] = rand::random();
    let sealed = keys.seal(LOOKUP_CONTEXT, &fresh)?;
    // One transaction, so the read follows the write on the same server connection (behind a
    // pooler in transaction mode a write at pool level commits only after it returns), and the
    // read is a statement of its own: it sees the key another instance inserted first.
    let mut tx = db.begin().await?;
    sqlx::query(
        "insert into data_lookup_key (key_id, sealed) values ($1, $2) on conflict do nothing",
    )
    .bind(&sealed.key_id)
    .bind(&sealed.bytes)
    .execute(&mut *tx)
    .await?;
    let (key_id, bytes) =
        sqlx::query_as::<_, (String, Vec<u8>)>("select key_id, sealed from data_lookup_key")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let opened = keys.open(LOOKUP_CONTEXT, &Sealed { key_id, bytes })?;
    let lookup: [u8; LOOKUP_KEY_BYTES] = opened
        .try_into()
        .map_err(|_| EnvelopeError::Corrupt("data_lookup_key".into()))?;
    Ok(Envelope::new(keys, &lookup))
}

/// An install token as a row stores it.
#[derive(Debug)]
pub struct SealedToken {
    pub key_id: String,
    pub sealed: Vec<u8>,
    pub fingerprint: Vec<u8>,
}

impl SealedToken {
    pub fn new(envelope: &Envelope, listing: ListingId, token: &TokenValue) -> Result<Self> {
        let sealed = envelope.seal(&token_context(listing), token.expose().as_bytes())?;
        Ok(Self {
            key_id: sealed.key_id,
            sealed: sealed.bytes,
            fingerprint: fingerprint(envelope, token).to_vec(),
        })
    }
}

/// The fingerprint a row of `token` carries.
pub fn fingerprint(envelope: &Envelope, token: &TokenValue) -> [u8; LOOKUP_KEY_BYTES] {
    envelope.fingerprint(TOKEN_KIND, token.expose().as_bytes())
}

/// The token a row of `listing` holds sealed as `(key_id, sealed)`.
pub fn open_token(
    envelope: &Envelope,
    listing: ListingId,
    key_id: String,
    sealed: Vec<u8>,
) -> Result<TokenValue> {
    let bytes = envelope.open(
        &token_context(listing),
        &Sealed {
            key_id: key_id.clone(),
            bytes: sealed,
        },
    )?;
    let text = String::from_utf8(bytes).map_err(|_| EnvelopeError::Corrupt(key_id))?;
    Ok(TokenValue::new(text))
}

/// The token the row `install_token_id` holds, opened (a job about to send it to Xano).
pub async fn open_stored(
    db: &PgPool,
    envelope: &Envelope,
    install_token_id: TokenId,
) -> Result<TokenValue> {
    let (listing, key_id, sealed) = sqlx::query_as::<_, (ListingId, String, Vec<u8>)>(
        "select listing_id, token_key_id, token_sealed from install_token where install_token_id = $1",
    )
    .bind(install_token_id)
    .fetch_one(db)
    .await?;
    open_token(envelope, listing, key_id, sealed)
}

fn token_context(listing: ListingId) -> String {
    format!("install_token/{listing}")
}

/// The kind of value seller credential fingerprints are made for.
const SELLER_XANO_KIND: &str = "seller_xano_token";

fn seller_context(seller: Uuid) -> String {
    format!("seller_xano/{seller}")
}

/// A seller's Xano access token as a `seller_xano_credential` row stores it.
#[derive(Debug)]
pub struct SealedCredential {
    pub key_id: String,
    pub sealed: Vec<u8>,
    pub fingerprint: Vec<u8>,
}

/// Seals `seller`'s Xano access token (the context names the seller: a sealed value copied to
/// another seller's row does not open).
pub fn seal_seller_credential(
    envelope: &Envelope,
    seller: Uuid,
    token: &SecretString,
) -> Result<SealedCredential> {
    let bytes = token.expose_secret().as_bytes();
    let sealed = envelope.seal(&seller_context(seller), bytes)?;
    Ok(SealedCredential {
        key_id: sealed.key_id,
        sealed: sealed.bytes,
        fingerprint: envelope.fingerprint(SELLER_XANO_KIND, bytes).to_vec(),
    })
}

/// The token a `seller_xano_credential` row holds sealed as `(key_id, sealed)`.
pub fn open_seller_credential(
    envelope: &Envelope,
    seller: Uuid,
    key_id: String,
    sealed: Vec<u8>,
) -> Result<SecretString> {
    let bytes = envelope.open(
        &seller_context(seller),
        &Sealed {
            key_id: key_id.clone(),
            bytes: sealed,
        },
    )?;
    let text = String::from_utf8(bytes).map_err(|_| EnvelopeError::Corrupt(key_id))?;
    Ok(SecretString::from(text))
}

/// What [`rotate`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Tokens sealed again under the first key.
    pub tokens: u64,
    /// Whether the lookup key was sealed again (it was under another key).
    pub lookup_key: bool,
    /// Tokens still in plain text from before encryption, sealed now.
    pub plain: u64,
    /// Sellers' Xano credentials sealed again under the first key.
    pub seller_credentials: u64,
    /// Webhook endpoints' signing secrets sealed again under the first key.
    pub webhook_secrets: u64,
}

/// Seals every secret not yet under the first data key again under it, so the others can leave
/// `MARKET_DATA_KEY`. Safe to run while the service runs, on any number of instances at once: a
/// row is rewritten only if it is still under the key it was read with.
pub async fn rotate(db: &PgPool, envelope: &Envelope) -> Result<Rotation> {
    let current = envelope.keys().sealing_id().as_str().to_owned();
    let mut rotation = Rotation {
        plain: seal_plain_tokens(db, envelope).await?,
        ..Rotation::default()
    };
    let (key_id, bytes) =
        sqlx::query_as::<_, (String, Vec<u8>)>("select key_id, sealed from data_lookup_key")
            .fetch_one(db)
            .await?;
    if key_id != current {
        let lookup = envelope.open(LOOKUP_CONTEXT, &Sealed { key_id, bytes })?;
        let sealed = envelope.seal(LOOKUP_CONTEXT, &lookup)?;
        sqlx::query("update data_lookup_key set key_id = $1, sealed = $2")
            .bind(&sealed.key_id)
            .bind(&sealed.bytes)
            .execute(db)
            .await?;
        rotation.lookup_key = true;
    }
    rotation.seller_credentials = reseal_seller_credentials(db, envelope, &current).await?;
    rotation.webhook_secrets = reseal_webhook_secrets(db, envelope, &current).await?;
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query_as::<_, (i64, ListingId, String, Vec<u8>)>(
            "select install_token_id, listing_id, token_key_id, token_sealed from install_token
             where install_token_id > $1 and token_key_id <> $2
             order by install_token_id limit $3",
        )
        .bind(after)
        .bind(&current)
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(rotation);
        };
        after = last.0;
        let mut tx = db.begin().await?;
        for (id, listing, key_id, sealed) in rows {
            let token = open_token(envelope, listing, key_id.clone(), sealed)?;
            let again = SealedToken::new(envelope, listing, &token)?;
            let done = sqlx::query(
                "update install_token set token_key_id = $3, token_sealed = $4
                 where install_token_id = $1 and token_key_id = $2",
            )
            .bind(id)
            .bind(&key_id)
            .bind(&again.key_id)
            .bind(&again.sealed)
            .execute(&mut *tx)
            .await?;
            rotation.tokens += done.rows_affected();
        }
        tx.commit().await?;
    }
}

/// Sellers' credentials not under the `current` key, sealed again under it (there are few: one per
/// seller).
async fn reseal_seller_credentials(db: &PgPool, envelope: &Envelope, current: &str) -> Result<u64> {
    let rows = sqlx::query_as::<_, (Uuid, String, Vec<u8>)>(
        "select seller_id, key_id, sealed from seller_xano_credential where key_id <> $1",
    )
    .bind(current)
    .fetch_all(db)
    .await?;
    let mut done = 0;
    for (seller, key_id, sealed) in rows {
        let token = open_seller_credential(envelope, seller, key_id.clone(), sealed)?;
        let again = seal_seller_credential(envelope, seller, &token)?;
        done += sqlx::query(
            "update seller_xano_credential set key_id = $3, sealed = $4
             where seller_id = $1 and key_id = $2",
        )
        .bind(seller)
        .bind(&key_id)
        .bind(&again.key_id)
        .bind(&again.sealed)
        .execute(db)
        .await?
        .rows_affected();
    }
    Ok(done)
}

fn webhook_context(endpoint: Uuid) -> String {
    format!("webhook_secret/{endpoint}")
}

/// Seals an endpoint's signing secret (the context names the endpoint: a sealed secret copied to
/// another endpoint's row does not open).
pub fn seal_webhook_secret(
    envelope: &Envelope,
    endpoint: Uuid,
    secret: &WebhookSecret,
) -> Result<Sealed> {
    Ok(envelope.seal(&webhook_context(endpoint), secret.expose().as_bytes())?)
}

/// The signing secret a `webhook_secret` row holds sealed as `(key_id, sealed)`.
pub fn open_webhook_secret(
    envelope: &Envelope,
    endpoint: Uuid,
    key_id: String,
    sealed: Vec<u8>,
) -> Result<WebhookSecret> {
    let bytes = envelope.open(
        &webhook_context(endpoint),
        &Sealed {
            key_id: key_id.clone(),
            bytes: sealed,
        },
    )?;
    String::from_utf8(bytes)
        .ok()
        .and_then(|text| WebhookSecret::parse(&text))
        .ok_or_else(|| EnvelopeError::Corrupt(key_id).into())
}

/// Webhook signing secrets not under the `current` key, sealed again under it.
async fn reseal_webhook_secrets(db: &PgPool, envelope: &Envelope, current: &str) -> Result<u64> {
    let rows = sqlx::query_as::<_, (Uuid, Uuid, String, Vec<u8>)>(
        "select secret_id, endpoint_id, key_id, sealed from webhook_secret where key_id <> $1",
    )
    .bind(current)
    .fetch_all(db)
    .await?;
    let mut done = 0;
    for (secret_id, endpoint, key_id, sealed) in rows {
        let secret = open_webhook_secret(envelope, endpoint, key_id.clone(), sealed)?;
        let again = seal_webhook_secret(envelope, endpoint, &secret)?;
        done += sqlx::query(
            "update webhook_secret set key_id = $3, sealed = $4 where secret_id = $1 and key_id = $2",
        )
        .bind(secret_id)
        .bind(&key_id)
        .bind(&again.key_id)
        .bind(&again.bytes)
        .execute(db)
        .await?
        .rows_affected();
    }
    Ok(done)
}

/// Seals tokens written in plain text before tokens were sealed (the migration could not: it has
/// no key). `market serve` runs it at start-up before its workers; it is a no-op once done.
pub async fn seal_plain_tokens(db: &PgPool, envelope: &Envelope) -> Result<u64> {
    let mut sealed_rows = 0;
    loop {
        let rows = sqlx::query_as::<_, (i64, ListingId, String)>(
            "select install_token_id, listing_id, token from install_token
             where token is not null order by install_token_id limit $1",
        )
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        if rows.is_empty() {
            return Ok(sealed_rows);
        }
        let mut tx = db.begin().await?;
        for (id, listing, plain) in rows {
            let sealed = SealedToken::new(envelope, listing, &TokenValue::new(plain))?;
            let done = sqlx::query(
                "update install_token
                 set token = null, token_key_id = $2, token_sealed = $3, token_fingerprint = $4
                 where install_token_id = $1 and token is not null",
            )
            .bind(id)
            .bind(&sealed.key_id)
            .bind(&sealed.sealed)
            .bind(&sealed.fingerprint)
            .execute(&mut *tx)
            .await?;
            sealed_rows += done.rows_affected();
        }
        tx.commit().await?;
    }
}
