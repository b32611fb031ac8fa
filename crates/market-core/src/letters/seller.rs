//! Messages to sellers (the outbox is the buyers' one; only the recipient differs): one of their
//! webhook endpoints was disabled.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::render::{Line, Rendered, letter};
use super::row::Mail;
use crate::Result;
use crate::postman::Postman;

/// The endpoint, why it was disabled, and how to turn it back on. Not sent when the endpoint was
/// deleted or enabled again before the message left.
pub(super) async fn webhook_disabled(
    db: &PgPool,
    postman: &Postman,
    mail: &Mail,
) -> Result<Rendered> {
    let Some(endpoint) = mail.webhook_endpoint_id else {
        return Ok(Rendered::Skip("the endpoint was deleted"));
    };
    let row = sqlx::query_as::<_, (String, String, Option<String>, Option<DateTime<Utc>>)>(
        "select split_part(split_part(url, '?', 1), '#', 1), state, disabled_reason, last_success_at
         from webhook_endpoint where endpoint_id = $1",
    )
    .bind(endpoint)
    .fetch_optional(db)
    .await?;
    let Some((url, state, reason, last_success)) = row else {
        return Ok(Rendered::Skip("the endpoint was deleted"));
    };
    if state != "disabled" {
        return Ok(Rendered::Skip("the endpoint was enabled again"));
    }
    let last = last_success.map_or_else(
        || "It has never answered with a 2xx status.".to_owned(),
        |at| {
            format!(
                "Its last 2xx answer was at {} UTC.",
                at.format("%Y-%m-%d %H:%M")
            )
        },
    );
    let lines = vec![
        Line::Text(format!(
            "We stopped sending webhooks to {url} (endpoint {endpoint}): it {}.",
            reason.as_deref().unwrap_or("kept failing")
        )),
        Line::Text(last),
        Line::Text(
            "Events are still recorded. When the endpoint works again, enable it \
             (PATCH /v1/seller/webhooks/{id} with {\"enabled\": true}): what was queued is sent \
             in order, and POST /v1/seller/webhooks/{id}/replay sends the events of any time range \
             again. Its delivery log (GET /v1/seller/webhooks/{id}/attempts) shows each answer."
                .to_owned(),
        ),
    ];
    Ok(Rendered::Letter(letter(
        postman,
        mail,
        "A webhook endpoint of yours was disabled".to_owned(),
        &lines,
    )))
}
