//! One call = URL building, then attempts through the rate limiter until success or a
//! non-retryable error, all inside one `tracing` span.
//!
//! The span records the path *template* (`/snippet/{canonical}/token/{token}`), never the real
//! path: install tokens travel in paths. The Authorization header and response bodies are never
//! recorded.

use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{Instrument, field};
use url::Url;

use crate::retry::parse_retry_after;
use crate::{Client, Error};

/// Everything except RFC 3986 "unreserved" characters is encoded, `%` and `/` included, so a
/// value always stays one segment and arrives at the server exactly as given.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment: a fixed word of the API, or a caller-supplied value.
#[derive(Clone, Copy)]
pub(crate) enum Segment<'a> {
    Fixed(&'static str),
    Value { name: &'static str, value: &'a str },
}

/// A call's description, built by the endpoint methods.
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    /// For logs: `/snippet/{canonical}/token/{token}`.
    pub(crate) template: &'static str,
    pub(crate) segments: Vec<Segment<'a>>,
    pub(crate) page: Option<i64>,
    pub(crate) body: Option<serde_json::Value>,
    /// Safe to send twice (all our GET/DELETE/update POSTs set absolute values). Only
    /// idempotent requests are retried after they may have reached the server.
    pub(crate) idempotent: bool,
    /// Logged to correlate calls about one snippet; canonicals are public (they are in URLs).
    pub(crate) canonical: Option<&'a str>,
}

impl Client {
    /// Sends `request` (with retries) and decodes a 2xx body as `T`.
    pub(crate) async fn call<T: DeserializeOwned>(&self, request: Request<'_>) -> Result<T, Error> {
        let body = self.send(request).await?;
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| Error::decode(&err))
    }

    /// Sends `request` with retries, returning the 2xx body.
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Vec<u8>, Error> {
        let span = tracing::info_span!(
            "xano.call",
            http.method = %request.method,
            xano.path = request.template,
            snippet.canonical = request.canonical,
            http.status = field::Empty,
            attempt = field::Empty,
            duration_ms = field::Empty,
            outcome = field::Empty,
        );
        self.send_in_span(request).instrument(span).await
    }

    async fn send_in_span(&self, request: Request<'_>) -> Result<Vec<u8>, Error> {
        let url = self.url_for(&request)?;
        let policy = self.inner.retry;
        let max_attempts = policy.max_attempts.max(1);
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let (status, result) = loop {
            attempt += 1;
            if let Some(limiter) = &self.inner.limiter {
                limiter.acquire().await;
            }
            let attempt_started = Instant::now();
            let (status, result) = match self.attempt(&request, url.clone()).await {
                Ok((status, body)) => (Some(status), Ok(body)),
                Err(err) => (err.status(), Err(err)),
            };
            tracing::debug!(
                attempt,
                http.status = status.map(|s| s.as_u16()),
                duration_ms = millis(attempt_started.elapsed()),
                "Xano attempt finished"
            );

            let err = match result {
                Ok(body) => break (status, Ok(body)),
                Err(err) => err,
            };
            if !err.is_retryable() || attempt >= max_attempts {
                break (status, Err(err));
            }
            let delay = policy.delay(attempt, err.retry_after());
            if started.elapsed() + delay > policy.max_elapsed {
                tracing::debug!(attempt, delay_ms = millis(delay), "retry budget exhausted");
                break (status, Err(err));
            }
            tracing::info!(attempt, delay_ms = millis(delay), error = %err, "retrying Xano call");
            tokio::time::sleep(delay).await;
        };

        // Recorded once, at the end, so the span shows the call's final state.
        let span = tracing::Span::current();
        let outcome = result.as_ref().map_or_else(Error::kind, |_| "ok");
        span.record("attempt", attempt);
        span.record("duration_ms", millis(started.elapsed()));
        span.record("outcome", outcome);
        // A no-op unless the application installed a metrics recorder.
        metrics::counter!("xano_calls_total", "endpoint" => request.template, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("xano_call_duration_seconds", "endpoint" => request.template)
            .record(started.elapsed().as_secs_f64());
        if let Some(status) = status {
            span.record("http.status", status.as_u16());
        }
        result
    }

    /// One HTTP exchange. Non-2xx statuses become errors here.
    async fn attempt(
        &self,
        request: &Request<'_>,
        url: Url,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let ambiguous = !request.idempotent;
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url)
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|err| Error::from_reqwest(err, ambiguous))?;
        let status = response.status();
        if status.is_success() {
            let body = response
                .bytes()
                .await
                .map_err(|err| Error::from_reqwest(err, ambiguous))?;
            return Ok((status, body.to_vec()));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        // The status alone decides the error; a body that fails to arrive only loses detail.
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Err(Error::from_status(status, retry_after, &body, ambiguous))
    }

    /// Base URL + percent-encoded segments (+ `?page=`). Values that would change which
    /// endpoint is addressed (empty, `.`, `..`) are refused before anything is sent.
    fn url_for(&self, request: &Request<'_>) -> Result<Url, Error> {
        let mut url = self.inner.base_url.clone();
        // Built as text and set once: `path_segments_mut` would re-encode our `%XX` escapes, and
        // its own set leaves sub-delimiters such as `;` and `=` raw, which some servers treat
        // specially. With every non-unreserved byte escaped, the only dots left are literal
        // ones, so refusing `.` and `..` rules out dot segments entirely.
        let mut path = url.path().trim_end_matches('/').to_owned();
        for segment in &request.segments {
            path.push('/');
            match *segment {
                Segment::Fixed(word) => path.push_str(word),
                Segment::Value { name, value } => {
                    if value.is_empty() {
                        return Err(Error::InvalidArgument {
                            name,
                            reason: "must not be empty",
                        });
                    }
                    if value == "." || value == ".." {
                        return Err(Error::InvalidArgument {
                            name,
                            reason: "must not be a dot segment",
                        });
                    }
                    path.extend(utf8_percent_encode(value, SEGMENT));
                }
            }
        }
        url.set_path(&path);
        if let Some(page) = request.page {
            url.query_pairs_mut().append_pair("page", &page.to_string());
        }
        Ok(url)
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client() -> Client {
        Client::builder(SecretString::from("t"))
            .base_url(Url::parse("http://127.0.0.1:9/api:meta").unwrap())
            .build()
            .unwrap()
    }

    fn token_path<'a>(canonical: &'a str, token: &'a str) -> Request<'a> {
        Request {
            method: Method::DELETE,
            template: "/snippet/{canonical}/token/{token}",
            segments: vec![
                Segment::Fixed("snippet"),
                Segment::Value {
                    name: "canonical",
                    value: canonical,
                },
                Segment::Fixed("token"),
                Segment::Value {
                    name: "token",
                    value: token,
                },
            ],
            page: None,
            body: None,
            idempotent: true,
            canonical: Some(canonical),
        }
    }

    #[test]
    fn values_with_slashes_dots_and_query_characters_stay_inside_their_segment() {
        let cases = [
            ("a/../b", "x?y", "/api:meta/snippet/a%2F..%2Fb/token/x%3Fy"),
            (
                "kRG3t_-i",
                "OL3T4JYM",
                "/api:meta/snippet/kRG3t_-i/token/OL3T4JYM",
            ),
            ("%2F", "a#b", "/api:meta/snippet/%252F/token/a%23b"),
            ("sp ace", "ü", "/api:meta/snippet/sp%20ace/token/%C3%BC"),
            ("a\\b", "a;b=c", "/api:meta/snippet/a%5Cb/token/a%3Bb%3Dc"),
            ("%2e%2e", "..a", "/api:meta/snippet/%252e%252e/token/..a"),
        ];
        for (canonical, token, expected) in cases {
            let url = client().url_for(&token_path(canonical, token)).unwrap();

            assert_eq!(url.path(), expected, "{canonical:?} / {token:?}");
            assert_eq!(url.query(), None);
            assert_eq!(url.fragment(), None);
        }
    }

    #[test]
    fn empty_and_dot_segments_are_refused_before_sending() {
        for (canonical, token) in [("", "T"), ("c", ".."), (".", "T")] {
            let result = client().url_for(&token_path(canonical, token));

            assert!(
                matches!(result, Err(Error::InvalidArgument { .. })),
                "{canonical:?} {token:?}"
            );
        }
    }

    #[test]
    fn the_page_goes_in_the_query_string() {
        let mut request = token_path("c", "t");
        request.segments.truncate(1);
        request.page = Some(3);

        let url = client().url_for(&request).unwrap();

        assert_eq!(url.as_str(), "http://127.0.0.1:9/api:meta/snippet?page=3");
    }
}
