//! The buyer portal: a buyer who lost their receipt key (another device, a cleared browser) signs
//! in with a single-use link sent to the email they bought with, and sees every purchase of that
//! email, with its token, usage and status.
//!
//! **Asking reveals nothing.** [`request_link`] does the same work for every address (a link row,
//! its message, the message's job, in one transaction) and its caller answers the same way; the
//! sender job decides, later and out of sight, not to mail an address that bought nothing
//! (`letters`).
//!
//! **Nothing secret at rest.** A link's key is derived from the receipt secret and the link's id;
//! a session's token is random. Rows keep SHA-256s only, compared in constant time.
//!
//! **Single use, expiring.** A link opens one session at most: `portal_session.portal_link_id` is
//! unique, so two instances redeeming one link at once cannot both succeed; it works for
//! [`PORTAL_LINK_MINUTES`] minutes.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::purchases::{self, Purchase, Receipt};
pub use crate::receipt::PORTAL_LINK_MINUTES;
use crate::receipt::{ReceiptKey, ReceiptSecret, hex};
use crate::{Email, Result, db, letters};

/// How long a portal session lasts.
pub const SESSION_HOURS: i32 = 24;

const SESSION_PREFIX: &str = "ps_";

/// A portal session's bearer token: shown once, when the link is redeemed.
pub struct SessionToken(String);

impl SessionToken {
    /// Wraps what a caller presented (a cookie or an `Authorization: Bearer` value).
    pub fn presented(token: &str) -> Self {
        Self(token.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// A session just opened.
#[derive(Debug)]
pub struct Opened {
    pub token: SessionToken,
    pub expires_at: DateTime<Utc>,
}

/// Records a sign-in link for `email` and queues its message, in one transaction. The same work
/// whatever the address; whether it is mailed is decided when the message is due.
pub async fn request_link(pool: &PgPool, secret: &ReceiptSecret, email: &Email) -> Result<()> {
    db::retry_transient(|| async {
        let link = Uuid::new_v4();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "insert into portal_link (portal_link_id, email, key_hash, expires_at)
             values ($1, $2, $3, now() + make_interval(mins => $4))",
        )
        .bind(link)
        .bind(email.as_str())
        .bind(secret.portal_link_key(link).hash().as_slice())
        .bind(PORTAL_LINK_MINUTES)
        .execute(&mut *tx)
        .await?;
        letters::queue_portal_link(&mut tx, link, email).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

/// Redeems a sign-in link (`<link id>.<key>`, as the link's URL carries it) for a session. `None`
/// when it is malformed, unknown, wrong, used or expired: all look the same.
pub async fn open_session(pool: &PgPool, presented: &str) -> Result<Option<Opened>> {
    let Some((id, key)) = presented.trim().split_once('.') else {
        return Ok(None);
    };
    let Ok(link) = id.parse::<Uuid>() else {
        return Ok(None);
    };
    let key = ReceiptKey::presented(key);
    db::retry_transient(|| redeem(pool, link, &key)).await
}

async fn redeem(pool: &PgPool, link: Uuid, key: &ReceiptKey) -> Result<Option<Opened>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, (String, Vec<u8>)>(
        "select email, key_hash from portal_link
         where portal_link_id = $1 and used_at is null and expires_at > now()
         for update",
    )
    .bind(link)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((email, _)) = row.filter(|(_, hash)| key.matches(hash)) else {
        return Ok(None);
    };
    let token = SessionToken(format!(
        "{SESSION_PREFIX}{}",
        hex(&rand::random::<[u8; 32]>())
    ));
    sqlx::query("update portal_link set used_at = now() where portal_link_id = $1")
        .bind(link)
        .execute(&mut *tx)
        .await?;
    let expires_at = sqlx::query_scalar::<_, DateTime<Utc>>(
        "insert into portal_session (portal_session_id, email, token_hash, portal_link_id, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(hours => $5))
         returning expires_at",
    )
    .bind(Uuid::new_v4())
    .bind(&email)
    .bind(token.hash().as_slice())
    .bind(link)
    .bind(SESSION_HOURS)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Opened { token, expires_at }))
}

/// The email of the live session `token` is for; `None` for an unknown, ended or expired one.
pub async fn session_email(pool: &PgPool, token: &SessionToken) -> Result<Option<Email>> {
    let hash = token.hash();
    let row = sqlx::query_as::<_, (String, Vec<u8>)>(
        "select email, token_hash from portal_session
         where token_hash = $1 and ended_at is null and expires_at > now()",
    )
    .bind(hash.as_slice())
    .fetch_optional(pool)
    .await?;
    Ok(row
        .filter(|(_, stored)| bool::from(hash.ct_eq(stored.as_slice())))
        .and_then(|(email, _)| Email::parse(&email).ok()))
}

/// Whether `proof` (an `Authorization: Bearer` value) shows that `purchase` is the caller's: its
/// receipt key, or a live portal session of the email it was bought with.
pub async fn buyer_owns(pool: &PgPool, proof: &str, purchase: &Purchase) -> Result<bool> {
    Ok(ReceiptKey::presented(proof).matches(&purchase.receipt_hash)
        || session_owns(pool, &SessionToken::presented(proof), purchase).await?)
}

/// Whether the live session `token` is for the email `purchase` was made with.
pub async fn session_owns(
    pool: &PgPool,
    token: &SessionToken,
    purchase: &Purchase,
) -> Result<bool> {
    Ok(match (session_email(pool, token).await?, &purchase.email) {
        (Some(email), Some(bought_with)) => email.as_str().eq_ignore_ascii_case(bought_with),
        _ => false,
    })
}

/// Ends the session `token` (sign out). Ending an unknown one is not an error.
pub async fn end_session(pool: &PgPool, token: &SessionToken) -> Result<()> {
    sqlx::query(
        "update portal_session set ended_at = now() where token_hash = $1 and ended_at is null",
    )
    .bind(token.hash().as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// Every purchase made with `email` (newest first, at most 200), as its buyer sees it, tokens
/// opened. Purchases never paid for are left out.
pub async fn purchases_of(
    pool: &PgPool,
    envelope: &Envelope,
    email: &Email,
) -> Result<Vec<Receipt>> {
    purchases::receipts_of_buyer(pool, envelope, email).await
}
