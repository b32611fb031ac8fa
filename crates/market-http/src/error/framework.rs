//! The errors actix-web itself meets before a handler runs (a body that is not JSON, a path or
//! query that does not parse, an unknown route, a wrong method), put into the same envelope as
//! everything else. `startup` installs each.

use std::collections::HashMap;
use std::hash::BuildHasher;

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse};

use super::{ApiError, Code, envelope_with_status};

/// Malformed JSON, wrong content type, oversized bodies: the same envelope as everything else.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix-web's error_handler requires"
)]
pub fn json_error(err: actix_web::error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "send the body as application/json",
        ),
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::new(Code::PayloadTooLarge, "the request body is too large")
        }
        J::Deserialize(e) if e.is_data() => ApiError::invalid(e.to_string()),
        J::Deserialize(_) | J::Serialize(_) => {
            ApiError::new(Code::MalformedJson, "the body is not valid JSON")
        }
        _ => ApiError::new(Code::MalformedJson, "the body could not be read"),
    };
    api.into()
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix-web's error_handler requires"
)]
pub fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::NotFound, format!("no such resource ({err})")).into()
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix-web's error_handler requires"
)]
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::invalid(format!("query string: {err}")).into()
}

/// Unknown routes.
pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(Code::RouteNotFound, "no such route"))
}

/// A 405 in the envelope, with the `Allow` header RFC 9110 asks for: the methods of the matched
/// route, from `allowed` (route pattern → `GET, POST`); `GET` for a route it does not list.
pub fn method_not_allowed<B, S: BuildHasher>(
    res: ServiceResponse<B>,
    allowed: &HashMap<String, String, S>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let allow = res
        .request()
        .match_pattern()
        .and_then(|pattern| allowed.get(&pattern).cloned())
        .unwrap_or_else(|| "GET".to_owned());
    let mut handled = envelope_bare_errors(res)?;
    if let ErrorHandlerResponse::Response(response) = &mut handled
        && let Ok(value) = HeaderValue::from_str(&allow)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(handled)
}

/// Rewrites responses actix itself produced without our envelope (405 for a wrong method on a
/// known route, and any other empty error response) into the envelope.
pub fn envelope_bare_errors<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            Code::MethodNotAllowed,
            "this route does not accept that method",
        ),
        StatusCode::NOT_FOUND => (Code::RouteNotFound, "no such route"),
        StatusCode::PAYLOAD_TOO_LARGE => (Code::PayloadTooLarge, "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (Code::UnsupportedMediaType, "unsupported content type")
        }
        s if s.is_client_error() => (Code::BadRequest, "the request could not be processed"),
        _ => (
            Code::InternalError,
            "something went wrong on our side; try again",
        ),
    };
    let (req, _) = res.into_parts();
    let response = envelope_with_status(status, code, message);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
