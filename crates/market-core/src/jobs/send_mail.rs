//! Sending one outbox message (`letters`): rendered now, handed to the postman, and its end
//! recorded under the job's lease.
//!
//! At least once: a crash after the server's "250 OK" and before the commit sends the message
//! again, with the same `Message-ID`. A server's permanent refusal marks the message `failed` and
//! ends the job (retrying would be refused again); anything else is retried with the queue's capped
//! backoff until the job dies, when an operator sees it and can requeue it.

use uuid::Uuid;

use super::error::JobError;
use crate::audit::{Actor, Audit};
use crate::letters::{self, MailState, Rendered};
use crate::postman::MailError;
use crate::queue::{self, Job};
use crate::{Error, Market};

pub(crate) async fn run(market: &Market, job: &Job) -> Result<(), JobError> {
    let mail_id: Uuid = job
        .subject
        .parse()
        .map_err(|_| JobError::Permanent("bad mail id".into()))?;
    let Some(mail) = letters::by_id(&market.db, mail_id).await? else {
        return Ok(());
    };
    if mail.state != MailState::Queued {
        return Ok(());
    }
    let Some(postman) = market.postman() else {
        return record(
            market,
            job,
            &mail,
            MailState::NotSent,
            Some("mail is disabled"),
        )
        .await;
    };
    let letter = match letters::render(&market.db, &market.envelope, postman, &mail).await {
        Ok(Rendered::Letter(letter)) => letter,
        Ok(Rendered::Skip(why)) => {
            return record(market, job, &mail, MailState::NotSent, Some(why)).await;
        }
        Err(Error::NotFound(what)) => {
            return Err(JobError::Permanent(format!(
                "{what} of the message is gone"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    match postman.send(&letter).await {
        Ok(()) => record(market, job, &mail, MailState::Sent, None).await,
        Err(MailError::Permanent(why)) => {
            tracing::warn!(mail.id = %mail_id, error = %why, "the mail server refused a message for good");
            record(market, job, &mail, MailState::Failed, Some(&why)).await
        }
        Err(e @ MailError::Transient(_)) => {
            let why = e.to_string();
            record(market, job, &mail, MailState::Queued, Some(&why)).await?;
            Err(JobError::Mail(why))
        }
    }
}

/// Records how the try ended, if this worker still holds the job.
async fn record(
    market: &Market,
    job: &Job,
    mail: &letters::Mail,
    state: MailState,
    error: Option<&str>,
) -> Result<(), JobError> {
    let mut tx = market.db.begin().await?;
    if !queue::hold(&mut tx, job.lease()).await? {
        return Err(JobError::LostLease);
    }
    letters::record_try(&mut tx, mail.mail_id, state, error).await?;
    if state != MailState::Queued {
        let action = match state {
            MailState::Sent => "mail.sent",
            MailState::Failed => "mail.failed",
            _ => "mail.not_sent",
        };
        let mut audit = Audit::new(&Actor::System, action)
            .detail(serde_json::json!({ "mail_id": mail.mail_id, "kind": mail.kind.as_str() }));
        if let Some(purchase) = mail.purchase_id {
            audit = audit.purchase(purchase);
        }
        audit.write(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
