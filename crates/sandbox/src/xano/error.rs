//! Xano's error responses: `{"code": "ERROR_CODE_…", "message": "…", "payload"?: …}` with the
//! matching HTTP status. Every non-200 answer under `/api:meta` is built here.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

use super::rate_limit::FreePlanPolicy;

/// An error response as Xano would send it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct XanoError {
    status: StatusCode,
    code: &'static str,
    message: String,
    payload: Option<Value>,
    /// Seconds for a `Retry-After` header; only injected 429s carry one (Xano documents none).
    retry_after: Option<u64>,
}

impl XanoError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            payload: None,
            retry_after: None,
        }
    }

    /// 400 naming the offending input in `payload.param`, as Xano's input validation does.
    pub(crate) fn input(param: &str, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::BAD_REQUEST, "ERROR_CODE_INPUT_ERROR", message);
        error.payload = Some(json!({ "param": param }));
        error
    }

    pub(crate) fn missing(param: &str) -> Self {
        Self::input(param, format!("Missing param: {param}"))
    }

    /// 400 for a body that is not parseable at all (no single param to blame).
    pub(crate) fn unreadable_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ERROR_CODE_INPUT_ERROR",
            "Unable to parse request body.",
        )
    }

    pub(crate) fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "ERROR_CODE_UNAUTHORIZED", message)
    }

    pub(crate) fn access_denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ERROR_CODE_ACCESS_DENIED",
            "Access denied. Additional privileges are needed access the requested resource.",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ERROR_CODE_NOT_FOUND", "Not Found.")
    }

    /// 404 for a path or method that is not one of the ten endpoints.
    pub(crate) fn unknown_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ERROR_CODE_NOT_FOUND",
            "Unable to locate request.",
        )
    }

    pub(crate) fn too_many_requests(policy: FreePlanPolicy, retry_after: Option<u64>) -> Self {
        let message = format!(
            "Whoa there! Your plan only supports {} requests per {} seconds.",
            policy.requests,
            policy.window.as_secs()
        );
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ERROR_CODE_TOO_MANY_REQUESTS",
            message,
        );
        error.retry_after = retry_after;
        error
    }

    /// A 5xx with Xano's `ERROR_FATAL` body; `status` outside 500..=599 falls back to 500.
    pub(crate) fn fatal(status: u16) -> Self {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(StatusCode::is_server_error)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, "ERROR_FATAL", "An unexpected error occurred.")
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(payload), Some(map)) = (&self.payload, body.as_object_mut()) {
            map.insert("payload".to_owned(), payload.clone());
        }
        body
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(self.body())
    }
}
