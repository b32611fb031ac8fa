//! The service's pages (the storefront at `/`, the API reference at `/docs`, the operator's
//! dashboard at `/admin`): everything they load
//! comes from the service itself, and every response carries the security headers.

use crate::helpers::spawn_app;

/// Found from outside (security issue, finding 7): `/docs` loaded its viewer from an unpinned CDN
/// (blank offline, and a supply-chain hole), and no page sent a Content-Security-Policy or a
/// Referrer-Policy while buyers' receipt keys live in the storefront's storage. Before the fix the
/// page named `cdn.jsdelivr.net` and the headers were absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_load_only_from_the_service_and_carry_the_security_headers() {
    let app = spawn_app().await;
    for (page, assets) in [
        (
            "/",
            &["/static/app.css", "/static/app.js", "/static/portal.js"][..],
        ),
        (
            "/docs",
            &["/static/app.css", "/static/docs.css", "/static/docs.js"][..],
        ),
        (
            "/admin",
            &["/static/app.css", "/static/admin.css", "/static/admin.js"][..],
        ),
    ] {
        // Act
        let response = app.get(page).await;

        // Assert: the headers.
        assert_eq!(response.status(), 200, "{page}");
        let header = |name: &str| {
            response.headers()[name]
                .to_str()
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{page}: {csp}");
        }
        assert_eq!(header("referrer-policy"), "no-referrer", "{page}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{page}");

        // Assert: every script and stylesheet is the service's own, and is served.
        let html = response.text().await.unwrap();
        let linked: Vec<&str> = html
            .split(['"', '\''])
            .filter(|part| part.starts_with("/static/") || part.contains("://"))
            .collect();
        assert_eq!(linked, assets, "{page}");
        assert!(
            !html.contains("//cdn") && !html.contains("https://"),
            "{page}"
        );
        for asset in assets {
            assert_eq!(app.get(asset).await.status(), 200, "{asset}");
        }
    }
    let api = app.get("/v1/listings").await;
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    app.stop().await;
}
