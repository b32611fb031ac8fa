//! The OpenAPI 3.1 document, assembled from the handlers' `#[utoipa::path]` annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::admin;
use crate::routes::{catalog, checkout, ops, purchases, webhooks};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "market",
        description = "Sell Xano snippets in priced tiers: Stripe Checkout in, one Xano install token per paid purchase out.\n\nErrors always have the shape `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}`; codes are stable. Money is in the currency's minor unit.",
    ),
    paths(
        catalog::list_listings,
        catalog::get_listing,
        checkout::create_checkout,
        checkout::checkout_session,
        purchases::get_purchase,
        webhooks::stripe_webhook,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        crate::routes::docs::openapi_json,
        admin::catalog::list_listings,
        admin::catalog::put_listing,
        admin::catalog::put_tier,
        admin::catalog::deactivate_tier,
        admin::catalog::list_snippets,
        admin::purchases::list_purchases,
        admin::purchases::get_purchase,
        admin::purchases::revoke_purchase,
        admin::purchases::refund_purchase,
        admin::ops::pools,
        admin::ops::jobs,
        admin::ops::credential_health,
        admin::ops::reconcile_now,
        admin::ops::instances,
        admin::ops::instance,
    ),
    modifiers(&Security),
    tags(
        (name = "catalog", description = "What is for sale"),
        (name = "checkout", description = "Buying"),
        (name = "purchases", description = "A buyer's purchase and token"),
        (name = "webhooks", description = "Stripe's events"),
        (name = "admin", description = "Operators (admin token)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "receipt_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the receipt key from checkout"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an admin token"))
                    .build(),
            ),
        );
    }
}
