//! A rendered message, and why handing one over can fail.

/// A rendered message, ready to go.
#[derive(Clone)]
pub struct Letter {
    /// `<uuid@host>`, from [`Postman::message_id`].
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Letter {
    /// The bodies may hold the buyer's token: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter")
            .field("message_id", &self.message_id)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a message was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server refused it for good (SMTP 5xx): retrying sends nothing.
    #[error("the mail server refused the message: {0}")]
    Permanent(String),
    /// Not sent this time (SMTP 4xx, no connection, a timeout): retry later.
    #[error("the message could not be handed to the mail server: {0}")]
    Transient(String),
}

/// `s` made safe inside HTML text or a double-quoted attribute: the message bodies, and the sandbox
/// page that shows them.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
