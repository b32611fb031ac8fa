//! One error type for every call, classified by meaning rather than by layer.
//!
//! Nothing in an [`Error`] (its `Display`, `Debug` or source chain) contains the access token or
//! an install token: reqwest errors are stored with their URL stripped (token paths such as
//! `/snippet/{canonical}/token/{token}` would otherwise leak), and decode messages have quoted
//! values masked because serde quotes the offending input.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

/// Everything a Master API call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401: the access token is unknown, expired or revoked.
    #[error("Xano rejected the access token (401 Unauthorized)")]
    Unauthorized,
    /// 403: the access token lacks rights for this resource.
    #[error("the access token lacks rights for this resource (403 Forbidden)")]
    Forbidden,
    /// 404: the instance, snippet or token does not exist (or is not the caller's).
    #[error("not found (404)")]
    NotFound,
    /// 400: Xano refused the input. Fields come from Xano's error body when present.
    #[error("Xano rejected the input ({}): {}", code.as_deref().unwrap_or("no code"), message.as_deref().unwrap_or("no message"))]
    InvalidInput {
        /// Xano's error code, e.g. `ERROR_CODE_INPUT_ERROR`.
        code: Option<String>,
        /// Xano's free-text message.
        message: Option<String>,
        /// Xano's `payload`, e.g. `{"param": "max_installs"}`.
        payload: Option<serde_json::Value>,
    },
    /// 429: Xano refused the request because of its rate limit; nothing was done.
    #[error("rate limited by Xano (429){}", retry_after.map(|d| format!(", retry after {} s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// 5xx from Xano.
    #[error("Xano server error ({status}){}", unknown_suffix(*outcome_unknown))]
    Server {
        /// The status received.
        status: StatusCode,
        /// The request was not idempotent and may have been applied; see [`Error::is_outcome_unknown`].
        outcome_unknown: bool,
    },
    /// No complete response within the configured timeout.
    #[error("the request to Xano timed out{}", unknown_suffix(*outcome_unknown))]
    Timeout {
        /// The request was not idempotent and may have been applied.
        outcome_unknown: bool,
    },
    /// Connection-level failure (refused, reset, dropped mid-response, TLS).
    #[error("transport error talking to Xano{}", unknown_suffix(*outcome_unknown))]
    Transport {
        /// The request was not idempotent and may have been applied. False when the connection
        /// could not even be opened (nothing was sent).
        outcome_unknown: bool,
        /// The underlying error, URL stripped.
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx response whose body did not have the expected shape.
    #[error("could not decode Xano's response at `{path}`: {message}")]
    Decode {
        /// JSON path of the value that failed, e.g. `items[3].created_at` (`.` for the root).
        path: String,
        /// What was wrong, with quoted input values masked.
        message: String,
    },
    /// A status the API does not document (e.g. 405, 409, 422, 3xx).
    #[error("unexpected HTTP status {status} from Xano")]
    UnexpectedStatus {
        /// The status received.
        status: StatusCode,
    },
    /// An argument the client refuses before sending anything (e.g. an empty path segment, or
    /// `..`, which would change which endpoint is called). The value itself is not included.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The parameter's name.
        name: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The client configuration is unusable (base URL, rate limit, access token characters).
    #[error("invalid master-api client configuration: {0}")]
    Config(&'static str),
    /// reqwest could not build its HTTP client (e.g. TLS initialisation).
    #[error("could not build the HTTP client")]
    Build(#[source] reqwest::Error),
}

fn unknown_suffix(outcome_unknown: bool) -> &'static str {
    if outcome_unknown {
        " (outcome unknown: the request may have been applied)"
    } else {
        ""
    }
}

impl Error {
    /// True when a non-idempotent request (token creation) may or may not have taken effect:
    /// a timeout, 5xx or broken connection after the request was sent. The caller must reconcile
    /// (list tokens) before trying again.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Server {
                outcome_unknown: true,
                ..
            } | Self::Timeout {
                outcome_unknown: true
            } | Self::Transport {
                outcome_unknown: true,
                ..
            }
        )
    }

    /// True when sending the same request again later is safe and may succeed: rate limiting,
    /// and 5xx/timeouts/transport errors whose outcome is known (idempotent requests, or
    /// requests that never left the client). Outcome-unknown errors are not retryable: retrying
    /// could apply the request twice.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Server {
                outcome_unknown, ..
            }
            | Self::Timeout { outcome_unknown }
            | Self::Transport {
                outcome_unknown, ..
            } => !outcome_unknown,
            _ => false,
        }
    }

    /// A short, stable name for the error class (`rate_limited`, `timeout`, ...), for logs and
    /// metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidInput { .. } => "invalid_input",
            Self::RateLimited { .. } => "rate_limited",
            Self::Server { .. } => "server",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::Decode { .. } => "decode",
            Self::UnexpectedStatus { .. } => "unexpected_status",
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::Config(_) => "config",
            Self::Build(_) => "build",
        }
    }

    /// The HTTP status behind this error, when a response was received.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Unauthorized => Some(StatusCode::UNAUTHORIZED),
            Self::Forbidden => Some(StatusCode::FORBIDDEN),
            Self::NotFound => Some(StatusCode::NOT_FOUND),
            Self::InvalidInput { .. } => Some(StatusCode::BAD_REQUEST),
            Self::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
            Self::Server { status, .. } | Self::UnexpectedStatus { status } => Some(*status),
            _ => None,
        }
    }

    /// The server's `Retry-After`, for [`Error::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Maps a non-2xx response. `ambiguous_if_applied` is true for non-idempotent requests,
    /// whose 5xx leaves the outcome unknown.
    pub(crate) fn from_status(
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
        ambiguous_if_applied: bool,
    ) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited { retry_after },
            StatusCode::BAD_REQUEST => {
                let body = serde_json::from_slice::<XanoErrorBody>(body).unwrap_or_default();
                Self::InvalidInput {
                    code: body.code,
                    message: body.message,
                    payload: body.payload,
                }
            }
            status if status.is_server_error() => Self::Server {
                status,
                outcome_unknown: ambiguous_if_applied,
            },
            status => Self::UnexpectedStatus { status },
        }
    }

    /// Maps a reqwest failure. A failure to connect means nothing was sent, so the outcome is
    /// known even for non-idempotent requests; anything later is ambiguous for them.
    pub(crate) fn from_reqwest(err: reqwest::Error, ambiguous_if_applied: bool) -> Self {
        let nothing_sent = err.is_connect();
        let outcome_unknown = ambiguous_if_applied && !nothing_sent;
        if err.is_timeout() {
            Self::Timeout { outcome_unknown }
        } else {
            Self::Transport {
                outcome_unknown,
                source: err.without_url(),
            }
        }
    }

    pub(crate) fn decode(err: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        Self::Decode {
            path: err.path().to_string(),
            message: mask_quoted(&err.inner().to_string()),
        }
    }
}

/// Xano's usual error body: `{"code": "ERROR_CODE_…", "message": "…", "payload"?: …}`.
#[derive(Debug, Default, Deserialize)]
struct XanoErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

/// Replaces every `"…"` and `` `…` `` span with `"…"`: serde_json quotes the offending value
/// ("invalid type: string \"OL3T4JYM\", expected i64"), and that value may be a token.
fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for ch in message.chars() {
        match open {
            Some(quote) if ch == quote => {
                out.push('…');
                out.push(ch);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(ch);
                if ch == '"' || ch == '`' {
                    open = Some(ch);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errors_by_meaning() {
        let cases = [
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "NotFound"),
            (429, "RateLimited"),
            (500, "Server"),
            (503, "Server"),
            (405, "UnexpectedStatus"),
        ];
        for (code, expected) in cases {
            let status = StatusCode::from_u16(code).unwrap();

            let error = Error::from_status(status, None, b"", false);

            let debug = format!("{error:?}");
            assert!(debug.starts_with(expected), "{code} mapped to {debug}");
        }
    }

    #[test]
    fn a_400_carries_xanos_code_message_and_payload() {
        let body = include_bytes!("../tests/fixtures/error_input.json");

        let error = Error::from_status(StatusCode::BAD_REQUEST, None, body, false);

        let Error::InvalidInput {
            code,
            message,
            payload,
        } = &error
        else {
            panic!("expected InvalidInput, got {error:?}");
        };
        assert_eq!(code.as_deref(), Some("ERROR_CODE_INPUT_ERROR"));
        assert!(
            message
                .as_deref()
                .unwrap()
                .contains("install_access_description")
        );
        assert_eq!(
            payload.as_ref().unwrap()["param"],
            "install_access_description"
        );
    }

    #[test]
    fn a_400_without_a_json_body_is_still_invalid_input() {
        let error = Error::from_status(StatusCode::BAD_REQUEST, None, b"<html>oops", false);

        assert!(matches!(
            error,
            Error::InvalidInput {
                code: None,
                message: None,
                payload: None
            }
        ));
    }

    #[test]
    fn a_5xx_on_a_non_idempotent_request_is_outcome_unknown_and_not_retryable() {
        let error = Error::from_status(StatusCode::INTERNAL_SERVER_ERROR, None, b"", true);

        assert!(error.is_outcome_unknown());
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("outcome unknown"));
    }

    #[test]
    fn a_5xx_on_an_idempotent_request_is_retryable_with_a_known_outcome() {
        let error = Error::from_status(StatusCode::BAD_GATEWAY, None, b"", false);

        assert!(!error.is_outcome_unknown());
        assert!(error.is_retryable());
    }

    #[test]
    fn a_429_is_retryable_and_keeps_retry_after() {
        let error = Error::from_status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            b"",
            true,
        );

        assert!(
            error.is_retryable(),
            "a refused request did nothing, even a create"
        );
        assert!(!error.is_outcome_unknown());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn client_errors_are_neither_retryable_nor_ambiguous() {
        for error in [Error::Unauthorized, Error::Forbidden, Error::NotFound] {
            assert!(!error.is_retryable(), "{error:?}");
            assert!(!error.is_outcome_unknown(), "{error:?}");
        }
    }

    #[test]
    fn decode_errors_name_the_path_and_mask_quoted_values() {
        let json = r#"[{"token": "AB12CD34", "max_installs": "OL3T4JYM"}]"#;
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let err =
            serde_path_to_error::deserialize::<_, Vec<crate::InstallToken>>(&mut deserializer)
                .unwrap_err();

        let error = Error::decode(&err);

        let Error::Decode { path, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(path, "[0].max_installs");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("OL3T4JYM"), "{shown}");
        assert!(!shown.contains("AB12CD34"), "{shown}");
    }

    #[test]
    fn masking_replaces_every_quoted_span() {
        assert_eq!(
            mask_quoted(r#"a "x" b `y` c "unterminated"#),
            r#"a "…" b `…` c "…"#
        );
    }
}
