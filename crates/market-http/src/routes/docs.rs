//! The API's description: `/openapi.json` (OpenAPI 3.1, generated from the handlers) and `/docs`, a
//! page that renders it.

use actix_web::HttpResponse;
use utoipa::OpenApi;

use crate::openapi::ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// A page rendering the document with Scalar's viewer (loaded from its CDN by the reader's browser;
/// the JSON itself is always at `/openapi.json`).
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>market API</title>
</head>
<body>
  <noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
  <script id="api-reference" data-url="/openapi.json"></script>
  <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
</body>
</html>
"#;
