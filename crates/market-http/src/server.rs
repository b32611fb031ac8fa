//! The public listener's HTTP server: the middleware stack (request ids, security headers, the
//! error envelope for what the framework answers itself, CORS) around the routes.

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::state::AppState;
use crate::{error, openapi, routes};

/// The public listener's server: the middleware stack, in the order a request meets it from the
/// bottom up (request id and log span first, CORS last), then the routes.
pub fn http_server(
    state: &web::Data<AppState>,
    cors_origins: Vec<String>,
    listener: TcpListener,
    shutdown_grace: Duration,
) -> std::io::Result<Server> {
    let allowed = std::sync::Arc::new(openapi::allowed_methods());
    let server_state = state.clone();
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(from_fn(answer_after_commits))
            .wrap(cors(&cors_origins))
            .wrap(from_fn(crate::metrics::track_requests))
            .wrap(
                ErrorHandlers::new()
                    .handler(StatusCode::METHOD_NOT_ALLOWED, {
                        let allowed = allowed.clone();
                        move |res| error::framework::method_not_allowed(res, &allowed)
                    })
                    .handler(
                        StatusCode::NOT_FOUND,
                        error::framework::envelope_bare_errors,
                    )
                    .handler(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        error::framework::envelope_bare_errors,
                    ),
            )
            .wrap(from_fn(request_id_header))
            .wrap(security_headers())
            .wrap(TracingLogger::default())
            .app_data(server_state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(error::framework::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::framework::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::framework::query_error))
            .configure(routes::configure)
            .configure(openapi::configure)
            .default_service(web::to(error::framework::route_not_found))
    })
    .listen(listener)?
    .shutdown_timeout(shutdown_grace.as_secs().max(1))
    .disable_signals()
    .run())
}

/// Behind a pooler in transaction mode, a write the request made at pool level commits after the
/// handler has its answer (`market_core::db::pooler`): the answer leaves only once every commit
/// begun by then has landed, and is a 503 `unavailable` (nothing may have been written; a retry
/// works) when one begun during the request failed. Directly to PostgreSQL this returns at once.
async fn answer_after_commits(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let mark = req
        .app_data::<web::Data<AppState>>()
        .map(|state| market_core::db::commit_mark(&state.market.db));
    let response = next.call(req).await?;
    let landed = match &mark {
        Some(mark) => market_core::db::commits_landed_since(mark).await,
        None => true,
    };
    if landed {
        return Ok(response.map_into_boxed_body());
    }
    tracing::warn!(
        status = response.status().as_u16(),
        "a commit begun while this request ran did not land; answering 503 instead"
    );
    let (request, _) = response.into_parts();
    let unavailable = error::envelope(
        error::Code::Unavailable,
        "the database did not confirm the write; try again",
    );
    Ok(actix_web::dev::ServiceResponse::new(request, unavailable))
}

/// Echoes the request id (made by `TracingLogger`, recorded in every log line of the request) in
/// the `x-request-id` response header, so a client can quote it.
async fn request_id_header(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(ToString::to_string);
    let mut response = next.call(req).await?;
    if let Some(value) = id.and_then(|id| actix_web::http::header::HeaderValue::from_str(&id).ok())
    {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    Ok(response)
}

/// Sent with every response (set only where a handler did not set its own). The pages (storefront,
/// `/docs`) load scripts, styles and data from this origin alone and may not be framed; no page
/// leaks its URL, which can carry a purchase id, to another site.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ))
        .add(("referrer-policy", "no-referrer"))
        .add(("x-content-type-options", "nosniff"))
        .add(("x-frame-options", "DENY"))
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers(["authorization", "content-type", "idempotency-key"])
        .expose_headers(["x-request-id"])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
