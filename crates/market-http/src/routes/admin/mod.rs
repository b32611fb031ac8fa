//! The admin API, under `/v1/admin`, for operators. Every route requires an admin token
//! ([`crate::extract::Admin`]); every change is written to the audit log with the admin's name.

pub mod catalog;
pub mod ops;
pub mod purchases;
pub mod sellers;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/listings").route(web::get().to(catalog::list_listings)))
        .service(
            web::resource("/v1/admin/listings/{canonical}")
                .route(web::put().to(catalog::put_listing)),
        )
        .service(
            web::resource("/v1/admin/listings/{canonical}/tiers/{slug}")
                .route(web::put().to(catalog::put_tier)),
        )
        .service(
            web::resource("/v1/admin/tiers/{tier_id}/deactivate")
                .route(web::post().to(catalog::deactivate_tier)),
        )
        .service(web::resource("/v1/admin/snippets").route(web::get().to(catalog::list_snippets)))
        .service(
            web::resource("/v1/admin/purchases").route(web::get().to(purchases::list_purchases)),
        )
        .service(
            web::resource("/v1/admin/purchases/{id}").route(web::get().to(purchases::get_purchase)),
        )
        .service(
            web::resource("/v1/admin/purchases/{id}/revoke")
                .route(web::post().to(purchases::revoke_purchase)),
        )
        .service(
            web::resource("/v1/admin/purchases/{id}/refund")
                .route(web::post().to(purchases::refund_purchase)),
        )
        .service(
            web::resource("/v1/admin/reports/sales")
                .route(web::get().to(super::reports::admin_sales)),
        )
        .service(web::resource("/v1/admin/pools").route(web::get().to(ops::pools)))
        .service(web::resource("/v1/admin/jobs").route(web::get().to(ops::jobs)))
        .service(
            web::resource("/v1/admin/jobs/{job_id}/requeue")
                .route(web::post().to(ops::requeue_job)),
        )
        .service(web::resource("/v1/admin/health").route(web::get().to(ops::credential_health)))
        .service(web::resource("/v1/admin/reconcile").route(web::post().to(ops::reconcile_now)))
        .service(web::resource("/v1/admin/instances").route(web::get().to(ops::instances)))
        .service(web::resource("/v1/admin/instances/{name}").route(web::get().to(ops::instance)))
        .service(
            web::resource("/v1/admin/sellers")
                .route(web::get().to(sellers::list))
                .route(web::post().to(sellers::invite)),
        )
        .service(
            web::resource("/v1/admin/sellers/{seller_id}/platform_fee")
                .route(web::put().to(sellers::set_fee)),
        )
        .service(
            web::resource("/v1/admin/sellers/{seller_id}/keys")
                .route(web::get().to(sellers::list_keys))
                .route(web::post().to(sellers::issue_key)),
        )
        .service(
            web::resource("/v1/admin/sellers/{seller_id}/keys/{key_id}")
                .route(web::delete().to(sellers::revoke_key)),
        )
        .service(
            web::resource("/v1/admin/sellers/{seller_id}/suspend")
                .route(web::post().to(sellers::suspend)),
        )
        .service(
            web::resource("/v1/admin/sellers/{seller_id}/reactivate")
                .route(web::post().to(sellers::reactivate)),
        )
        .configure(webhooks::configure);
}
