//! How a webhook leaves: one signed POST to a URL a seller registered, through an SSRF guard, its
//! outcome written down as the delivery log keeps it.
//!
//! The outbox (`webhook_event`, `webhook_delivery`, written by the database with the fact) and the
//! deliverer decide *what* is sent, to whom, in which order and how often; this module only
//! carries one attempt. It never fails: whatever happens (an answer, a refused connection, a
//! timeout, an address the guard refused) is an [`Attempt`], because every one of them is a line
//! in the seller's delivery log, and all but a 2xx are retried on the deliverer's backoff (a 4xx
//! included, as Standard Webhooks senders do). What cannot succeed on a retry is caught before
//! sending: a secret or body that does not sign is a [`CourierError`], and a URL the guard refuses
//! by itself is refused when the endpoint is saved ([`Refusal::is_permanent`]).
//!
//! Why the client is built the way it is:
//! - **The guard resolves.** The client's only resolver is the guard's, which refuses a name when
//!   any of its addresses is refused, so the addresses connected to are the ones checked (a name
//!   re-pointed at 127.0.0.1 after the endpoint was saved is refused at send time). IP-literal
//!   hosts never reach a resolver, so [`Guard::check_url`] runs before every send. No proxy is
//!   used: a proxy would resolve the name itself, out of the guard's sight.
//! - **No redirects.** A 3xx is the endpoint's answer, recorded and not a success: following it
//!   would send the signed body to a URL nobody checked (`Location: http://169.254.169.254/`).
//! - **Bounded.** The timeout covers the whole exchange, connection to the last byte read, and at
//!   most [`RESPONSE_LIMIT`] bytes of the answer are read: an endpoint cannot hold a worker, or
//!   fill its memory, for longer than one attempt's budget.
//! - **Nothing secret in errors.** An error never repeats the URL, whose query may hold the
//!   seller's token; a [`Refusal`] names only the host and the address.

mod guard;
mod ranges;
mod sign;

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use url::Url;

pub use guard::{Guard, Refusal};
pub use sign::{CourierError, Signed, WebhookSecret, message_id, sign};

/// How much of an answer's body is read and kept (`webhook_attempt.response`).
pub const RESPONSE_LIMIT: usize = 1024;
/// How an [`Attempt`]'s error begins when the guard refused it (and nothing was sent).
pub const GUARD_REFUSED: &str = "refused by the SSRF guard: ";
/// The longest error kept (`webhook_attempt.error`), in characters.
const ERROR_LIMIT: usize = 1024;

/// How the [`Courier`] sends.
#[derive(Debug, Clone)]
pub struct CourierConfig {
    /// The whole exchange of one attempt: connecting, sending, the answer's first KiB.
    pub timeout: Duration,
    pub guard: Guard,
    pub user_agent: String,
}

impl Default for CourierConfig {
    /// Production: 10 s, https only, public addresses only.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            guard: Guard::strict(),
            user_agent: concat!("market-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Sends webhooks. Cheap to clone: one HTTP client (and connection pool) per instance.
#[derive(Clone)]
pub struct Courier {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    guard: Arc<Guard>,
    timeout: Duration,
    user_agent: String,
}

impl fmt::Debug for Courier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Courier")
            .field("guard", &self.inner.guard)
            .field("timeout", &self.inner.timeout)
            .field("user_agent", &self.inner.user_agent)
            .finish_non_exhaustive()
    }
}

impl Courier {
    pub fn new(config: CourierConfig) -> Result<Self, CourierError> {
        let guard = Arc::new(config.guard);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(guard::GuardedResolver(Arc::clone(&guard))))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .user_agent(config.user_agent.as_str())
            .build()
            .map_err(|e| CourierError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                guard,
                timeout: config.timeout,
                user_agent: config.user_agent,
            }),
        })
    }

    /// The guard every send goes through (the API checks new URLs with it).
    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    /// POSTs `body` (JSON) to `url` with the three Standard Webhooks headers and `content-type:
    /// application/json`, and says what came of it. Never follows a redirect; refuses, without
    /// connecting, a URL or a resolved address the guard refuses.
    pub async fn post(&self, url: &Url, message: &Signed, body: &[u8]) -> Attempt {
        let started = Instant::now();
        if let Err(refusal) = self.inner.guard.check_url(url) {
            return Attempt::refused(&refusal, started);
        }
        let deadline = tokio::time::Instant::from_std(started + self.inner.timeout);
        let request = self
            .inner
            .client
            .post(url.clone())
            .header("webhook-id", message.id.as_str())
            .header("webhook-timestamp", message.timestamp)
            .header("webhook-signature", message.signature.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Attempt::from_error(&error, self.inner.timeout, started),
            Err(_) => return Attempt::failed(&timed_out(self.inner.timeout), started),
        };
        let status = response.status().as_u16();
        let (snippet, error) = read_snippet(response, deadline, self.inner.timeout).await;
        Attempt {
            status: Some(status),
            latency: started.elapsed(),
            response: Some(snippet),
            error,
            refusal: None,
        }
    }
}

/// The outcome of one attempt, as the delivery log records it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The answer's status, when there was one (a 3xx included: it is not followed).
    pub status: Option<u16>,
    /// From the start of the attempt to the last byte read of the answer (or the failure).
    pub latency: Duration,
    /// The answer's first [`RESPONSE_LIMIT`] bytes, as UTF-8 with bad bytes replaced.
    pub response: Option<String>,
    /// Why there was no (whole) answer: the guard's refusal ([`GUARD_REFUSED`] and the
    /// [`Refusal`]), a connection error, a timeout.
    pub error: Option<String>,
    /// The guard's refusal, when that is why nothing was sent.
    pub refusal: Option<Refusal>,
}

impl Attempt {
    /// Whether the endpoint accepted the webhook (2xx). An answer whose body then timed out
    /// still counts: the endpoint had said yes.
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// Whether the guard refused the URL or an address it resolved to (nothing was sent).
    pub fn refused_by_guard(&self) -> bool {
        self.refusal.is_some()
    }

    /// `latency` in whole milliseconds (`webhook_attempt.latency_ms`).
    pub fn latency_ms(&self) -> i32 {
        i32::try_from(self.latency.as_millis()).unwrap_or(i32::MAX)
    }

    fn refused(refusal: &Refusal, started: Instant) -> Self {
        Self {
            refusal: Some(refusal.clone()),
            ..Self::failed(&format!("{GUARD_REFUSED}{refusal}"), started)
        }
    }

    fn failed(error: &str, started: Instant) -> Self {
        Self {
            status: None,
            latency: started.elapsed(),
            response: None,
            error: Some(clip(error)),
            refusal: None,
        }
    }

    /// A failed send: the guard's refusal when the resolver gave one, else what went wrong,
    /// without the URL (reqwest's own message repeats it).
    fn from_error(error: &reqwest::Error, timeout: Duration, started: Instant) -> Self {
        let mut causes: Vec<String> = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(refusal) = cause.downcast_ref::<Refusal>() {
                return Self::refused(refusal, started);
            }
            let text = cause.to_string();
            // hyper's "client error (Connect)" says nothing the first words do not.
            if causes.last() != Some(&text) && !text.starts_with("client error (") {
                causes.push(text);
            }
            source = cause.source();
        }
        let what = if error.is_timeout() {
            timed_out(timeout)
        } else if error.is_connect() {
            "could not connect".to_owned()
        } else if error.is_builder() {
            "the request could not be built".to_owned()
        } else {
            "the request failed".to_owned()
        };
        causes.insert(0, what);
        Self::failed(&causes.join(": "), started)
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} ms", timeout.as_millis())
}

/// Reads the answer's first [`RESPONSE_LIMIT`] bytes, then stops (the rest is never read), and
/// says why it stopped early if it did.
async fn read_snippet(
    mut response: reqwest::Response,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> (String, Option<String>) {
    let mut kept: Vec<u8> = Vec::with_capacity(RESPONSE_LIMIT);
    let error = loop {
        if kept.len() >= RESPONSE_LIMIT {
            break None;
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = RESPONSE_LIMIT - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(Ok(None)) => break None,
            Ok(Err(error)) => {
                let cause = error.source().map_or(String::new(), |c| format!(": {c}"));
                break Some(format!("the answer broke off{cause}"));
            }
            Err(_) => break Some(format!("{} reading the answer", timed_out(timeout))),
        }
    };
    // PostgreSQL text holds no NUL.
    let text = String::from_utf8_lossy(&kept).replace('\0', "\u{fffd}");
    (text, error.map(|e| clip(&e)))
}

/// At most [`ERROR_LIMIT`] characters (`webhook_attempt.error`).
fn clip(text: &str) -> String {
    text.chars().take(ERROR_LIMIT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_courier_shows_its_guard_and_nothing_else() {
        let courier = Courier::new(CourierConfig::default()).unwrap();
        let shown = format!("{courier:?}");
        assert!(
            shown.starts_with("Courier { guard: Guard { allow_http: false"),
            "{shown}"
        );
        assert!(shown.contains("timeout: 10s"), "{shown}");
    }

    #[tokio::test]
    async fn a_refused_url_is_an_attempt_that_names_why() {
        let courier = Courier::new(CourierConfig::default()).unwrap();
        let signed = sign(&[WebhookSecret::generate()], "msg_1", 1, b"{}").unwrap();
        for (url, said) in [
            ("http://example.com/", "http is not allowed; use https"),
            ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
            ("https://[::1]:8443/", "::1 is a loopback address"),
            (
                "https://a:b@example.com/",
                "a URL with a user name or password is not allowed",
            ),
        ] {
            let attempt = courier
                .post(&Url::parse(url).unwrap(), &signed, b"{}")
                .await;
            assert!(attempt.refused_by_guard(), "{url}");
            assert_eq!(attempt.error, Some(format!("{GUARD_REFUSED}{said}")));
            assert_eq!((attempt.status, attempt.response.as_deref()), (None, None));
            assert!(!attempt.succeeded(), "{url}");
        }
    }

    #[test]
    fn only_2xx_succeeds_and_only_the_guards_refusal_is_one() {
        let attempt = |status: Option<u16>, error: Option<&str>| Attempt {
            status,
            latency: Duration::from_millis(5),
            response: None,
            error: error.map(str::to_owned),
            refusal: None,
        };
        assert!(attempt(Some(200), None).succeeded());
        assert!(attempt(Some(204), None).succeeded());
        for status in [101, 199, 302, 400, 410, 500, 503] {
            assert!(!attempt(Some(status), None).succeeded(), "{status}");
        }
        let refusal = Guard::strict()
            .check_ip("10.0.0.1".parse().unwrap())
            .unwrap_err();
        let refused = Attempt::refused(&refusal, Instant::now());
        assert!(refused.refused_by_guard());
        assert_eq!(
            refused.error.as_deref(),
            Some("refused by the SSRF guard: 10.0.0.1 is a private address")
        );
        assert!(!attempt(None, Some("could not connect")).refused_by_guard());
        assert!(!attempt(None, None).refused_by_guard());
        assert_eq!(attempt(None, None).latency_ms(), 5);
        assert_eq!(clip(&"é".repeat(2000)).chars().count(), ERROR_LIMIT);
    }
}
