//! The seller API, under `/v1/seller`: a seller, signed in with its API key
//! ([`crate::extract::SellerAuth`]), sees and manages only what it owns, in the admin API's shapes
//! where the two overlap. Another seller's resources do not exist here (`404`, never `403`).

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use market_core::jobs::overview;
use market_core::seller_xano::XanoPlan;
use market_core::{PurchaseId, pool, purchases, seller_xano, sellers, tiers};
use secrecy::SecretString;
use uuid::Uuid;

use super::admin::catalog::admin_listing;
use super::admin::purchases::page;
use crate::error::{ApiError, ErrorBody};
use crate::extract::SellerAuth;
use crate::state::AppState;
use crate::wire::admin_catalog::{
    AdminListing, ListingChangeBody, ListingRequest, TierChangeBody, TierRequest,
};
use crate::wire::admin_purchases::{ListQuery, PurchasePage};
use crate::wire::ops::{JobRequeued, JobRowBody, PoolLevelBody, SellerJobsQuery};
use crate::wire::purchases::PurchaseBody;
use crate::wire::sellers::{SellerBody, XanoAccountBody, XanoCredentialRequest};

/// The seller API's routes; every one rate limited per client like the public API's.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/seller/me")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(me)),
    )
    .service(
        web::resource("/v1/seller/xano")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::get().to(xano))
            .route(web::put().to(set_xano)),
    )
    .service(
        web::resource("/v1/seller/listings")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(listings)),
    )
    .service(
        web::resource("/v1/seller/purchases")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(purchases)),
    )
    .service(
        web::resource("/v1/seller/purchases/{id}")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(purchase)),
    )
    .service(
        web::resource("/v1/seller/pools")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(pools)),
    )
    .service(
        web::resource("/v1/seller/reports/sales")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(super::reports::seller_sales)),
    )
    .service(
        web::resource("/v1/seller/listings/{canonical}")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::put().to(put_listing)),
    )
    .service(
        web::resource("/v1/seller/listings/{canonical}/tiers/{slug}")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::put().to(put_tier)),
    )
    .service(
        web::resource("/v1/seller/jobs")
            .wrap(from_fn(super::limited::limit_purchase_read))
            .route(web::get().to(jobs)),
    )
    .service(
        web::resource("/v1/seller/jobs/{job_id}/requeue")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::post().to(requeue_job)),
    )
    .service(
        web::resource("/v1/seller/stripe/onboarding")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::post().to(super::seller_stripe::onboarding)),
    )
    .service(
        web::resource("/v1/seller/stripe/login_link")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::post().to(super::seller_stripe::login_link)),
    )
    .service(
        web::resource("/v1/seller/keys")
            .route(
                web::get()
                    .to(super::seller_keys::list)
                    .wrap(from_fn(super::limited::limit_purchase_read)),
            )
            .route(
                web::post()
                    .to(super::seller_keys::issue)
                    .wrap(from_fn(super::limited::limit_portal)),
            ),
    )
    .service(
        web::resource("/v1/seller/keys/{key_id}")
            .wrap(from_fn(super::limited::limit_portal))
            .route(web::delete().to(super::seller_keys::revoke)),
    );
}

/// The seller the key belongs to.
#[utoipa::path(get, path = "/v1/seller/me", tag = "seller", operation_id = "seller_me", security(("seller_key" = [])),
    responses((status = 200, body = SellerBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn me(seller: SellerAuth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SellerBody::from(seller.0)))
}

/// The seller's listings with their tiers (as `GET /v1/admin/listings` shows them).
#[utoipa::path(get, path = "/v1/seller/listings", tag = "seller", operation_id = "seller_list_listings", security(("seller_key" = [])),
    responses((status = 200, body = [AdminListing]), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn listings(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut out = Vec::new();
    for listing in sellers::listings_of(state.db(), seller.0.seller_id).await? {
        let tiers = tiers::of_listing(state.db(), listing.listing_id).await?;
        out.push(AdminListing::of(listing, tiers));
    }
    Ok(HttpResponse::Ok().json(out))
}

/// Sets (or replaces) the seller's Xano Metadata API access token: checked with Xano first
/// (`GET /auth/me`), then stored sealed; the one before stays in use until the new one has worked.
/// The token is never returned. `400` when Xano refuses it; `409 xano_account_changed` for a token
/// of another account while the seller has listings; `409 house_credential` for the house.
#[utoipa::path(put, path = "/v1/seller/xano", tag = "seller", operation_id = "seller_set_xano", security(("seller_key" = [])),
    request_body = XanoCredentialRequest,
    responses((status = 200, body = XanoAccountBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_xano(
    seller: SellerAuth,
    state: web::Data<AppState>,
    body: web::Json<XanoCredentialRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let plan = body.plan.as_deref().map(XanoPlan::parse).transpose()?;
    let token = SecretString::from(body.access_token);
    let account = seller_xano::set(
        &state.market,
        seller.0.seller_id,
        token,
        plan,
        &seller.actor(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(XanoAccountBody::from(account)))
}

/// The seller's Xano credential and its health: the account, which token (never the token), and
/// whether Xano refuses it, with the seller's jobs waiting for it. `404` until one is set.
#[utoipa::path(get, path = "/v1/seller/xano", tag = "seller", operation_id = "seller_get_xano", security(("seller_key" = [])),
    responses((status = 200, body = XanoAccountBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn xano(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let account = seller_xano::account(state.db(), seller.0.seller_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Xano credential"))?;
    Ok(HttpResponse::Ok().json(XanoAccountBody::from(account)))
}

/// Lists a snippet of the seller's own Xano account (checked with the seller's credential, its
/// install access set to `token`), or changes the seller's listing. `409 no_xano_credential` until
/// the seller's Xano credential is set; `409 listing_of_another_seller`.
#[utoipa::path(put, path = "/v1/seller/listings/{canonical}", tag = "seller", operation_id = "seller_put_listing", security(("seller_key" = [])),
    params(("canonical" = String, Path, description = "the snippet's canonical", pattern = "^[A-Za-z0-9_-]{1,64}$")), request_body = ListingRequest,
    responses((status = 200, body = ListingChangeBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn put_listing(
    seller: SellerAuth,
    state: web::Data<AppState>,
    canonical: web::Path<String>,
    body: web::Json<ListingRequest>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner().spec(&canonical)?;
    let (listing, change) =
        sellers::save_listing(&state.market, seller.0.seller_id, &spec, &seller.actor()).await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(ListingChangeBody {
        change: change.into(),
        listing: admin_listing(&state, listing).await?,
    }))
}

/// Creates or changes a tier of the seller's listing, as the admin API's tier route does (new
/// terms make a new version). Another seller's listing is `404`.
#[utoipa::path(put, path = "/v1/seller/listings/{canonical}/tiers/{slug}", tag = "seller", operation_id = "seller_put_tier", security(("seller_key" = [])),
    params(("canonical" = String, Path, description = "the snippet's canonical"), ("slug" = String, Path, description = "lowercase letters, digits and '-'", pattern = "^[a-z0-9][a-z0-9-]{0,62}$")), request_body = TierRequest,
    responses((status = 200, body = TierChangeBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn put_tier(
    seller: SellerAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<TierRequest>,
) -> Result<HttpResponse, ApiError> {
    let (canonical, slug) = path.into_inner();
    let spec = body.into_inner().spec(&slug)?;
    let (listing, change) = sellers::save_tier(
        state.db(),
        seller.0.seller_id,
        &canonical,
        &spec,
        &seller.actor(),
    )
    .await?;
    state.catalog.invalidate();
    Ok(HttpResponse::Ok().json(TierChangeBody {
        change: change.into(),
        listing: admin_listing(&state, listing).await?,
    }))
}

/// The seller's purchases (of its listings), newest first, filtered and paged as
/// `GET /v1/admin/purchases` is.
#[utoipa::path(get, path = "/v1/seller/purchases", tag = "seller", operation_id = "seller_list_purchases", security(("seller_key" = [])), params(ListQuery),
    responses((status = 200, body = PurchasePage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn purchases(
    seller: SellerAuth,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(&state, query.into_inner(), Some(seller.0.seller_id)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One purchase of the seller's listings, as its buyer sees it but without the token's value (the
/// buyer's secret). Another seller's purchase is `404`, like one that does not exist.
#[utoipa::path(get, path = "/v1/seller/purchases/{id}", tag = "seller", operation_id = "seller_get_purchase", security(("seller_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = PurchaseBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn purchase(
    seller: SellerAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("purchase");
    let purchase = purchases::by_id(state.db(), PurchaseId(*id))
        .await?
        .filter(|p| p.seller_id == seller.0.seller_id)
        .ok_or_else(not_found)?;
    let receipt = purchases::receipt_of(state.db(), &state.market.envelope, &purchase).await?;
    Ok(HttpResponse::Ok().json(PurchaseBody::of(receipt, false)))
}

/// The pools of the seller's tiers, as `GET /v1/admin/pools` shows them.
#[utoipa::path(get, path = "/v1/seller/pools", tag = "seller", operation_id = "seller_pools", security(("seller_key" = [])),
    responses((status = 200, body = [PoolLevelBody]), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn pools(
    seller: SellerAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let levels = pool::levels_of(state.db(), Some(seller.0.seller_id)).await?;
    Ok(HttpResponse::Ok().json(
        levels
            .into_iter()
            .map(PoolLevelBody::from)
            .collect::<Vec<_>>(),
    ))
}

/// The jobs about the seller's listings (pool refills, mints, deletions, reconciliations,
/// rotations, upgrades; a buyer's mail is nobody's), most recently changed first: what a refused
/// credential parked, what died and why.
#[utoipa::path(get, path = "/v1/seller/jobs", tag = "seller", operation_id = "seller_jobs", security(("seller_key" = [])),
    params(SellerJobsQuery),
    responses((status = 200, body = [JobRowBody]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn jobs(
    seller: SellerAuth,
    state: web::Data<AppState>,
    query: web::Query<SellerJobsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(job_state) = &query.state
        && !overview::STATES.contains(&job_state.as_str())
    {
        return Err(market_core::Error::invalid(
            "state",
            "must be queued, running, parked, done or dead",
        )
        .into());
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(market_core::Error::invalid("limit", "must be 1 to 1000").into());
    }
    let rows = overview::of_seller(
        state.db(),
        seller.0.seller_id,
        query.state.as_deref(),
        limit,
    )
    .await?;
    let rows: Vec<JobRowBody> = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(rows))
}

/// Puts one of the seller's dead jobs back in the queue, due now (after the cause is fixed: a
/// credential replaced, a snippet restored). Another seller's job is `404`.
#[utoipa::path(post, path = "/v1/seller/jobs/{job_id}/requeue", tag = "seller", operation_id = "seller_requeue_job", security(("seller_key" = [])),
    params(("job_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = JobRequeued), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the job is not dead (`job_not_dead`), or its work is queued again already (`job_already_live`)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn requeue_job(
    seller: SellerAuth,
    state: web::Data<AppState>,
    job_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    overview::requeue_for_seller(state.db(), *job_id, seller.0.seller_id, &seller.actor()).await?;
    Ok(HttpResponse::Ok().json(JobRequeued {
        job_id: *job_id,
        state: "queued".into(),
    }))
}
