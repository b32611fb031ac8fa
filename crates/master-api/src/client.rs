//! [`Client`] and its builder: configuration, the shared connection pool and rate limiter.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::rate_limit::{Limiter, RateLimit};
use crate::{Error, RetryPolicy, install_crypto_provider};

/// Where the account-level Master Metadata API lives.
pub const DEFAULT_BASE_URL: &str = "https://app.xano.com/api:meta";

/// Default time allowed to open a connection (TCP + TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time allowed for one whole attempt, response body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A typed client for Xano's Master Metadata API.
///
/// Cheap to clone: clones share one connection pool, one rate limiter and one configuration.
/// Build it with [`Client::builder`]; the endpoint methods are documented where they are
/// defined (`endpoints/`).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: Url,
    /// `Bearer <token>`, built once and marked sensitive so that even http's own `Debug` hides it.
    pub(crate) authorization: HeaderValue,
    /// The token itself, kept only for [`Client::access_token_digest`].
    pub(crate) access_token: SecretString,
    pub(crate) retry: RetryPolicy,
    pub(crate) rate_limit: RateLimit,
    pub(crate) limiter: Option<Limiter>,
}

impl Client {
    /// Starts configuring a client for the account that owns `access_token`.
    pub fn builder(access_token: SecretString) -> ClientBuilder {
        ClientBuilder {
            access_token,
            base_url: None,
            retry: RetryPolicy::default(),
            rate_limit: RateLimit::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The base URL every path is appended to (no trailing slash).
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// The client-side rate limit in force.
    pub fn rate_limit(&self) -> RateLimit {
        self.inner.rate_limit
    }

    /// A client for another account on the same Xano: this one's connection pool, base URL,
    /// timeouts and retry policy, with `access_token` and a rate limiter of its own (Xano's limits
    /// are per account, so one account's calls never wait on another's budget).
    pub fn for_account(
        &self,
        access_token: SecretString,
        rate_limit: RateLimit,
    ) -> Result<Client, Error> {
        Ok(Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base_url: self.inner.base_url.clone(),
                authorization: authorization_header(&access_token)?,
                access_token,
                retry: self.inner.retry,
                rate_limit,
                limiter: Limiter::new(rate_limit)?,
            }),
        })
    }

    /// Lends the access token's bytes to `digest` and returns what it computes. This is how a
    /// caller names the credential a client uses (a keyed fingerprint for a database row, a metric
    /// label or a log line) without holding the token: there is no other way to read it back from
    /// a built client, and nothing here logs or formats it.
    pub fn access_token_digest<T>(&self, digest: impl FnOnce(&[u8]) -> T) -> T {
        digest(self.inner.access_token.expose_secret().as_bytes())
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("access_token", &"[redacted]")
            .field("retry", &self.inner.retry)
            .field("rate_limit", &self.inner.rate_limit)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    access_token: SecretString,
    base_url: Option<Url>,
    retry: RetryPolicy,
    rate_limit: RateLimit,
    connect_timeout: Duration,
    timeout: Duration,
}

impl ClientBuilder {
    /// Overrides [`DEFAULT_BASE_URL`] (a simulator, or a self-hosted origin's `/api:meta`).
    #[must_use]
    pub fn base_url(mut self, base_url: Url) -> Self {
        self.base_url = Some(base_url);
        self
    }

    /// How idempotent calls retry (default: [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Client-side rate limit shared by all clones (default: unlimited; use
    /// [`RateLimit::XANO_FREE_PLAN`] for free-plan accounts).
    #[must_use]
    pub fn rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Time allowed to open a connection (default [`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one attempt, body included (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Validates the configuration and builds the client (and its connection pool).
    pub fn build(self) -> Result<Client, Error> {
        // Before reqwest touches rustls, so no path can run with zero or two providers.
        install_crypto_provider();

        let base_url = match self.base_url {
            Some(url) => url,
            None => Url::parse(DEFAULT_BASE_URL).map_err(|_| Error::Config("default base URL"))?,
        };
        let base_url = normalise_base_url(base_url)?;
        let authorization = authorization_header(&self.access_token)?;
        let limiter = Limiter::new(self.rate_limit)?;
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            // The API never redirects; following one could carry the bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("market-master-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Build(err.without_url()))?;

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                authorization,
                access_token: self.access_token,
                retry: self.retry,
                rate_limit: self.rate_limit,
                limiter,
            }),
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("access_token", &"[redacted]")
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Requires an http(s) URL that can take path segments, without query or fragment, and drops a
/// trailing slash so that joining never produces `//`.
fn normalise_base_url(mut url: Url) -> Result<Url, Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config("base URL must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config("base URL must not have a query or fragment"));
    }
    url.path_segments_mut()
        .map_err(|()| Error::Config("base URL cannot take path segments"))?
        .pop_if_empty();
    Ok(url)
}

fn authorization_header(token: &SecretString) -> Result<HeaderValue, Error> {
    let token = token.expose_secret();
    if token.trim().is_empty() {
        return Err(Error::Config("access token is empty"));
    }
    // The error deliberately says nothing about the value.
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Error::Config("access token has characters not allowed in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ClientBuilder {
        Client::builder(SecretString::from("pat-super-secret-value"))
    }

    #[test]
    fn debug_output_of_client_and_builder_redacts_the_access_token() {
        let client = builder().build().unwrap();

        let shown = format!("{client:?} {:?}", builder());

        assert!(!shown.contains("pat-super-secret-value"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn the_default_base_url_is_xanos_master_api() {
        let client = builder().build().unwrap();

        assert_eq!(client.base_url().as_str(), "https://app.xano.com/api:meta");
    }

    #[test]
    fn a_trailing_slash_on_the_base_url_is_dropped() {
        let url = Url::parse("http://127.0.0.1:9/api:meta/").unwrap();

        let client = builder().base_url(url).build().unwrap();

        assert_eq!(client.base_url().as_str(), "http://127.0.0.1:9/api:meta");
    }

    #[test]
    fn unusable_configurations_are_refused_without_echoing_the_token() {
        let bad_token = Client::builder(SecretString::from("line\nbreak-secret")).build();
        let empty_token = Client::builder(SecretString::from(" ")).build();
        let bad_scheme = builder()
            .base_url(Url::parse("ftp://example.com/").unwrap())
            .build();
        let bad_rate = builder()
            .rate_limit(RateLimit::new(0, Duration::from_secs(1)))
            .build();

        for result in [bad_token, empty_token, bad_scheme, bad_rate] {
            let error = result.unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{error:?}");
            assert!(!format!("{error} {error:?}").contains("secret"));
        }
    }

    #[test]
    fn a_digest_is_computed_from_the_access_token_the_client_was_built_with() {
        let client = builder().build().unwrap();

        let length = client.access_token_digest(<[u8]>::len);
        let same = client.access_token_digest(|t| t == b"pat-super-secret-value");

        assert_eq!(length, "pat-super-secret-value".len());
        assert!(same);
    }

    #[test]
    fn clones_share_one_configuration() {
        let client = builder()
            .rate_limit(RateLimit::XANO_FREE_PLAN)
            .build()
            .unwrap();

        let clone = client.clone();

        assert!(Arc::ptr_eq(&client.inner, &clone.inner));
    }
}
