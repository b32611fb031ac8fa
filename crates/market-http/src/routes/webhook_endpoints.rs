//! What the seller's and the operator's webhook routes share: each route parses its own path and
//! credential into a [`Scope`] (a seller: its own endpoints; the operator: all) and calls one of
//! these, so the two APIs cannot drift apart.

use std::time::Duration;

use actix_web::HttpResponse;
use market_core::audit::Actor;
use market_core::courier::Guard;
use market_core::webhooks::{self, EndpointPatch, EndpointSpec, Scope, endpoints, history};
use url::Url;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::webhooks::{
    AttemptBody, AttemptsBody, CreatedEndpointBody, DeliveriesBody, DeliveriesQuery, DeliveryBody,
    EndpointBody, EventTypeName, LogQuery, ReplayRequest, ReplayedBody, RollQuery,
    RolledSecretBody, UpdateEndpointRequest, event_types,
};

/// The previous secret signs this long after a roll unless the caller says otherwise.
const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
const MAX_OVERLAP_SECONDS: u32 = 7 * 24 * 3600;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

/// The guard new URLs are checked with: the one deliveries go through.
fn guard(state: &AppState) -> Guard {
    state
        .market
        .courier()
        .map_or_else(Guard::strict, |courier| courier.guard().clone())
}

fn url(text: &str) -> Result<Url, ApiError> {
    Url::parse(text).map_err(|e| ApiError::invalid(format!("url: {e}")))
}

/// Makes an endpoint for `owner` (`None`: the platform's).
pub(crate) async fn create(
    state: &AppState,
    actor: &Actor,
    owner: Option<Uuid>,
    url_text: &str,
    description: String,
    types: &[EventTypeName],
    include_token: bool,
) -> Result<HttpResponse, ApiError> {
    let spec = EndpointSpec {
        url: url(url_text)?,
        description,
        event_types: event_types(types),
        include_token,
    };
    let (endpoint, secret) = endpoints::create(
        state.db(),
        &state.market.envelope,
        &guard(state),
        actor,
        owner,
        spec,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(CreatedEndpointBody {
            endpoint: endpoint.into(),
            secret: secret.expose().to_owned(),
        }))
}

pub(crate) async fn get(
    state: &AppState,
    scope: Scope,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    let endpoint = endpoints::get(state.db(), scope, id).await?;
    Ok(HttpResponse::Ok().json(EndpointBody::from(endpoint)))
}

pub(crate) async fn update(
    state: &AppState,
    scope: Scope,
    actor: &Actor,
    id: Uuid,
    body: UpdateEndpointRequest,
) -> Result<HttpResponse, ApiError> {
    let patch = EndpointPatch {
        url: body.url.as_deref().map(url).transpose()?,
        description: body.description,
        event_types: body.event_types.as_deref().map(event_types),
        include_token: body.include_token,
        enabled: body.enabled,
    };
    let endpoint = endpoints::update(state.db(), &guard(state), scope, actor, id, patch).await?;
    Ok(HttpResponse::Ok().json(EndpointBody::from(endpoint)))
}

pub(crate) async fn delete(
    state: &AppState,
    scope: Scope,
    actor: &Actor,
    id: Uuid,
) -> Result<HttpResponse, ApiError> {
    endpoints::delete(state.db(), scope, actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) async fn roll(
    state: &AppState,
    scope: Scope,
    actor: &Actor,
    id: Uuid,
    query: &RollQuery,
) -> Result<HttpResponse, ApiError> {
    let overlap = match query.overlap_seconds {
        None => DEFAULT_OVERLAP,
        Some(seconds) if seconds <= MAX_OVERLAP_SECONDS => Duration::from_secs(seconds.into()),
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "overlap_seconds: at most {MAX_OVERLAP_SECONDS} (7 days)"
            )));
        }
    };
    let (secret, previous_expires_at) = endpoints::roll_secret(
        state.db(),
        &state.market.envelope,
        scope,
        actor,
        id,
        overlap,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(RolledSecretBody {
            secret: secret.expose().to_owned(),
            previous_expires_at,
        }))
}

fn page(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::invalid(format!("limit: 1 to {MAX_PAGE}"))),
    }
}

pub(crate) async fn deliveries(
    state: &AppState,
    scope: Scope,
    id: Uuid,
    query: &DeliveriesQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = page(query.limit)?;
    let rows = history::list(
        state.db(),
        scope,
        id,
        query.state.as_deref(),
        query.before,
        limit,
    )
    .await?;
    let next_before = (i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit)
        .then(|| rows.last().map(|d| d.delivery_id))
        .flatten();
    Ok(HttpResponse::Ok().json(DeliveriesBody {
        deliveries: rows.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

pub(crate) async fn attempts(
    state: &AppState,
    scope: Scope,
    id: Uuid,
    query: &LogQuery,
) -> Result<HttpResponse, ApiError> {
    let limit = page(query.limit)?;
    let rows = history::attempts(state.db(), scope, id, query.before, limit).await?;
    let next_before = (i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit)
        .then(|| rows.last().map(|a| a.attempt_id))
        .flatten();
    Ok(HttpResponse::Ok().json(AttemptsBody {
        attempts: rows.into_iter().map(AttemptBody::from).collect(),
        next_before,
    }))
}

pub(crate) async fn redeliver(
    state: &AppState,
    scope: Scope,
    actor: &Actor,
    id: Uuid,
    delivery: i64,
) -> Result<HttpResponse, ApiError> {
    let again = history::redeliver(state.db(), scope, actor, id, delivery).await?;
    Ok(HttpResponse::Accepted().json(DeliveryBody::from(again)))
}

pub(crate) async fn replay(
    state: &AppState,
    scope: Scope,
    actor: &Actor,
    id: Uuid,
    body: &ReplayRequest,
) -> Result<HttpResponse, ApiError> {
    let queued = history::replay(state.db(), scope, actor, id, body.from, body.to).await?;
    Ok(HttpResponse::Accepted().json(ReplayedBody { queued }))
}

/// The list of endpoints in `scope`.
pub(crate) async fn list(
    state: &AppState,
    scope: Scope,
    filter: webhooks::EndpointFilter,
) -> Result<HttpResponse, ApiError> {
    let rows = endpoints::list(state.db(), scope, filter).await?;
    Ok(
        HttpResponse::Ok().json(crate::wire::webhooks::EndpointsBody {
            endpoints: rows.into_iter().map(Into::into).collect(),
        }),
    )
}
