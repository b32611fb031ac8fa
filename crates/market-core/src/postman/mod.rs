//! How this instance hands a buyer's email to the world: over SMTP ([`Smtp`], lettre), or, in a
//! sandbox or development run without a mail server, into an in-process [`Capture`] that the
//! sandbox page shows, so a newcomer sees the receipt arrive.
//!
//! The outbox (`mail_message`, written by the database on the fact itself) and the `send_mail` job
//! decide *what* is sent and *that* it is sent once; this module only carries a rendered
//! [`Letter`]. Its [`MailError`] says whether trying again can help: an SMTP server's 5xx (no such
//! mailbox, …) cannot, so the message fails for good; anything else (a 4xx, a refused connection, a
//! timeout) is retried by the job with capped backoff.
//!
//! Every try of one message carries the same `Message-ID` ([`Postman::message_id`], made of the
//! outbox row's id), so a retry after a crash that came between the server's "250 OK" and our
//! commit is the same message to the receiving side.

mod capture;
mod letter;
mod smtp;

use uuid::Uuid;

use crate::receipt::ReceiptSecret;

pub use capture::{Capture, CapturedMail};
pub use letter::{Letter, MailError, escape_html};
pub use smtp::Smtp;

/// Where messages go.
#[derive(Clone, Debug)]
pub enum Transport {
    Smtp(Smtp),
    Capture(Capture),
}

/// This instance's way of sending mail: the transport, the sender and the public URL that links in
/// messages point to.
#[derive(Clone, Debug)]
pub struct Postman {
    transport: Transport,
    from: lettre::message::Mailbox,
    /// The domain of `Message-ID`s: the sender's.
    domain: String,
    public_url: String,
    /// What portal sign-in links' keys derive from (the receipt secret); without it, links are not
    /// sent.
    links: Option<ReceiptSecret>,
}

impl Postman {
    /// `from` is a mailbox (`Name <address>` or a bare address); `public_url` is where buyers reach
    /// this service (the portal's links are built from it).
    pub fn new(transport: Transport, from: &str, public_url: &str) -> Result<Self, String> {
        let from: lettre::message::Mailbox = from
            .parse()
            .map_err(|e| format!("MARKET_MAIL_FROM {from:?} is not a mailbox: {e}"))?;
        let domain = from.email.domain().to_owned();
        Ok(Self {
            transport,
            from,
            domain,
            public_url: public_url.trim_end_matches('/').to_owned(),
            links: None,
        })
    }

    /// Signs portal sign-in links with `secret` (the receipt secret every instance shares).
    #[must_use]
    pub fn with_link_secret(mut self, secret: ReceiptSecret) -> Self {
        self.links = Some(secret);
        self
    }

    /// The sign-in link `link` as the buyer follows it: the storefront's portal, the link's id and
    /// key in the fragment (which browsers never send to a server, nor in a `Referer`).
    pub fn portal_link_url(&self, link: Uuid) -> Option<String> {
        let key = self.links.as_ref()?.portal_link_key(link);
        Some(format!(
            "{}/#portal={link}.{}",
            self.public_url,
            key.expose()
        ))
    }

    /// The `Message-ID` of the outbox message `mail_id`, the same on every try.
    pub fn message_id(&self, mail_id: Uuid) -> String {
        format!("<{mail_id}@{}>", self.domain)
    }

    /// Where buyers reach this service, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The in-process capture, when that is where mail goes (sandbox runs).
    pub fn capture(&self) -> Option<&Capture> {
        match &self.transport {
            Transport::Capture(capture) => Some(capture),
            Transport::Smtp(_) => None,
        }
    }

    /// Hands `letter` over.
    pub async fn send(&self, letter: &Letter) -> Result<(), MailError> {
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(&self.from, letter).await,
            Transport::Capture(capture) => {
                capture.keep(&self.from.to_string(), letter);
                Ok(())
            }
        }
    }
}
