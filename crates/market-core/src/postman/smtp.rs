//! SMTP through lettre: one pooled transport per instance, `smtp://` (STARTTLS when the server
//! offers it, `?tls=required` to insist) or `smtps://` (TLS from the first byte), with credentials
//! in the URL.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::letter::{Letter, MailError};

/// Longest wait for the server at each step of one message.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A pooled SMTP transport.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Smtp {
    /// The URL holds the server's password: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Smtp { .. }")
    }
}

impl Smtp {
    /// A transport for `url` (`smtp://[user:password@]host[:port][?tls=required]` or `smtps://…`).
    /// The error never repeats the URL, which may hold a password.
    pub fn from_url(url: &SecretString) -> Result<Self, String> {
        let builder =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret()).map_err(|_| {
                "SMTP_URL is not a valid smtp:// or smtps:// URL (smtp://user:password@host:port)"
                    .to_owned()
            })?;
        Ok(Self {
            transport: builder.timeout(Some(TIMEOUT)).build(),
        })
    }

    pub(super) async fn send(&self, from: &Mailbox, letter: &Letter) -> Result<(), MailError> {
        let to: Mailbox = letter
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("recipient is not a mailbox: {e}")))?;
        let message = Message::builder()
            .message_id(Some(letter.message_id.clone()))
            .from(from.clone())
            .to(to)
            .subject(letter.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                letter.text.clone(),
                letter.html.clone(),
            ))
            .map_err(|e| MailError::Permanent(format!("message could not be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Transient(e.to_string())),
        }
    }
}
