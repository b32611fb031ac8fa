//! Buyers' email, through a transactional outbox.
//!
//! **Written with the fact.** A trigger on `purchase` (migration 15) writes a `mail_message` row
//! and its `send_mail` job in the transaction that moves the purchase: fulfilled (the receipt, with
//! the token), reinstated (access restored), or closed while it held or was owed a token (access
//! ended). A fact that commits has its message; one that rolls back has none; a fact applied twice
//! finds its message there (`fact` is unique) and writes none.
//!
//! **Rendered when sent** ([`render`]): the row holds no secret, so the token is opened from its
//! seal only when the message leaves, and a receipt sent late shows the token that is live then. A
//! portal link's key is derived then too; a link asked for an address that has bought nothing is
//! not sent at all ([`Rendered::Skip`]), which is how asking reveals nothing (`portal`).
//!
//! **Sent at least once** by the `send_mail` job (`jobs`), with the same `Message-ID` on every try.
//! The job's retries, death and requeue are the queue's; a message the server refused for good is
//! `failed`, and one that met a disabled mailer is `not_sent`. Operators read them with [`list`].

mod render;
mod row;
mod seller;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use render::Rendered;
pub use row::{Mail, MailKind, MailState};

use crate::queue::{self, JobKind};
use crate::{Email, PurchaseId, Result};

/// The message `mail` as it goes out now (`Error::NotFound` when what it reports is gone): a
/// buyer's ([`render`](render::render)) or a seller's.
pub async fn render(
    db: &PgPool,
    envelope: &crate::envelope::Envelope,
    postman: &crate::postman::Postman,
    mail: &Mail,
) -> Result<Rendered> {
    if mail.kind == MailKind::WebhookDisabled {
        return seller::webhook_disabled(db, postman, mail).await;
    }
    render::render(db, envelope, postman, mail).await
}

/// Queues the message carrying the portal sign-in link `link` to `email`, with its job: call it in
/// the transaction that records the link.
pub async fn queue_portal_link(conn: &mut PgConnection, link: Uuid, email: &Email) -> Result<()> {
    let mail_id = Uuid::new_v4();
    sqlx::query(
        "insert into mail_message (mail_id, kind, fact, portal_link_id, recipient)
         values ($1, 'portal_link', 'portal_link:' || $2::text, $2, $3)",
    )
    .bind(mail_id)
    .bind(link)
    .bind(email.as_str())
    .execute(&mut *conn)
    .await?;
    queue::enqueue(conn, JobKind::SendMail, &mail_id.to_string()).await?;
    Ok(())
}

/// Queues the message telling the buyer of `purchase` their token was replaced (rotation
/// `rotation`), with its job: call it in the transaction that assigns the new token.
pub async fn queue_token_rotated(
    conn: &mut PgConnection,
    purchase: PurchaseId,
    rotation: Uuid,
) -> Result<()> {
    let mail_id = Uuid::new_v4();
    let queued = sqlx::query(
        "insert into mail_message (mail_id, kind, fact, purchase_id, recipient)
         select $1, 'token_rotated', $2::text || ':token_rotated:' || $3::text, purchase_id, email
         from purchase where purchase_id = $2 and email is not null
         on conflict (fact) do nothing",
    )
    .bind(mail_id)
    .bind(purchase)
    .bind(rotation)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if queued == 1 {
        queue::enqueue(conn, JobKind::SendMail, &mail_id.to_string()).await?;
    }
    Ok(())
}

/// The message `mail_id`.
pub async fn by_id(db: &PgPool, mail_id: Uuid) -> Result<Option<Mail>> {
    Ok(
        sqlx::query_as::<_, Mail>("select * from mail_message where mail_id = $1")
            .bind(mail_id)
            .fetch_optional(db)
            .await?,
    )
}

/// Messages for operators, newest first: of one purchase, in one state, or all (`limit` at most).
pub async fn list(
    db: &PgPool,
    purchase: Option<PurchaseId>,
    state: Option<MailState>,
    limit: i64,
) -> Result<Vec<Mail>> {
    Ok(sqlx::query_as::<_, Mail>(
        "select * from mail_message
         where ($1::uuid is null or purchase_id = $1) and ($2::text is null or state = $2)
         order by created_at desc, mail_id
         limit $3",
    )
    .bind(purchase)
    .bind(state)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Records the end of one try, inside the transaction that holds the job's lease: `state` is where
/// the message is now (`queued` again after a failed try), `error` why.
pub async fn record_try(
    conn: &mut PgConnection,
    mail_id: Uuid,
    state: MailState,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "update mail_message
         set state = $2, attempts = attempts + 1, last_error = $3,
             sent_at = case when $2 = 'sent' then now() end
         where mail_id = $1 and state = 'queued'",
    )
    .bind(mail_id)
    .bind(state)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}
