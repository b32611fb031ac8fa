//! Where events go: a seller's endpoints (at most [`MAX_ENDPOINTS`]) and the platform's.
//!
//! An endpoint's URL is checked by the SSRF guard when it is set (scheme, literal addresses, and
//! what its name resolves to now); the deliverer checks again at every delivery, because a name
//! accepted today can resolve to an internal address tomorrow.
//!
//! Its signing secret is made here and shown once, when the endpoint is made or its secret rolled;
//! only its seal is stored. A roll keeps the previous secret signing for an overlap the caller
//! chooses, so a receiver can change its secret after the roll without refusing anything meanwhile.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use url::Url;
use uuid::Uuid;

use super::kinds::{EventType, Scope};
use crate::audit::{Actor, Audit};
use crate::courier::{Guard, WebhookSecret};
use crate::envelope::Envelope;
use crate::{Conflict, Error, Result, keys};

/// How many endpoints one owner (a seller, or the platform) may have.
pub const MAX_ENDPOINTS: i64 = 10;

/// An endpoint as stored (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Endpoint {
    pub endpoint_id: Uuid,
    /// `None`: the platform's, receiving every seller's events.
    pub seller_id: Option<Uuid>,
    pub url: String,
    pub description: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub include_token: bool,
    /// `enabled` or `disabled`.
    pub state: String,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint.
#[derive(Clone, Debug)]
pub struct EndpointSpec {
    pub url: Url,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub include_token: bool,
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<Url>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub include_token: Option<bool>,
    /// `true` enables (and forgets the failures that disabled it); `false` disables.
    pub enabled: Option<bool>,
}

/// Which endpoints a list shows, within its scope.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndpointFilter {
    /// The operator's filter by seller.
    pub seller: Option<Uuid>,
    /// Only the platform's endpoints (the operator's).
    pub platform_only: bool,
    /// Only endpoints disabled or failing now.
    pub failing_only: bool,
}

const COLUMNS: &str = "endpoint_id, seller_id, url, description, event_types, include_token, state,
    disabled_reason, disabled_at, failing_since, consecutive_failures, last_success_at, created_at,
    updated_at";

/// Makes an endpoint for `owner` (`None`: the platform) and returns it with its secret, which is
/// never shown again.
pub async fn create(
    db: &PgPool,
    envelope: &Envelope,
    guard: &Guard,
    actor: &Actor,
    owner: Option<Uuid>,
    spec: EndpointSpec,
) -> Result<(Endpoint, WebhookSecret)> {
    check_url(guard, &spec.url).await?;
    check_description(&spec.description)?;
    let endpoint_id = Uuid::new_v4();
    let secret = WebhookSecret::generate();
    let sealed = keys::seal_webhook_secret(envelope, endpoint_id, &secret)?;
    let types = names(&spec.event_types);
    let mut tx = db.begin().await?;
    // One owner's endpoints are counted under a lock on the owner (the seller row; the platform
    // has none, so a transaction-scoped advisory lock stands in).
    match owner {
        Some(seller) => {
            sqlx::query("select 1 from seller where seller_id = $1 for update")
                .bind(seller)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::NotFound("seller"))?;
        }
        None => {
            sqlx::query("select pg_advisory_xact_lock(hashtext('webhook_endpoint:platform'))")
                .execute(&mut *tx)
                .await?;
        }
    }
    let count: i64 = sqlx::query_scalar(
        "select count(*) from webhook_endpoint where seller_id is not distinct from $1",
    )
    .bind(owner)
    .fetch_one(&mut *tx)
    .await?;
    if count >= MAX_ENDPOINTS {
        return Err(Conflict::WebhookEndpointLimit.into());
    }
    let endpoint = sqlx::query_as::<_, Endpoint>(&format!(
        "insert into webhook_endpoint (endpoint_id, seller_id, url, description, event_types, include_token)
         values ($1, $2, $3, $4, $5, $6)
         returning {COLUMNS}"
    ))
    .bind(endpoint_id)
    .bind(owner)
    .bind(spec.url.as_str())
    .bind(&spec.description)
    .bind(&types)
    .bind(spec.include_token)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("insert into webhook_secret (endpoint_id, key_id, sealed) values ($1, $2, $3)")
        .bind(endpoint_id)
        .bind(&sealed.key_id)
        .bind(&sealed.bytes)
        .execute(&mut *tx)
        .await?;
    audit(&mut tx, actor, "webhook.endpoint_created", &endpoint).await?;
    tx.commit().await?;
    Ok((endpoint, secret))
}

/// The endpoints in `scope` that `filter` lets through, newest first.
pub async fn list(db: &PgPool, scope: Scope, filter: EndpointFilter) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query_as::<_, Endpoint>(&format!(
        "select {COLUMNS} from webhook_endpoint
         where ($1::uuid is null or seller_id = $1)
           and ($2::uuid is null or seller_id = $2)
           and (not $3 or seller_id is null)
           and (not $4 or state = 'disabled' or failing_since is not null)
         order by created_at desc, endpoint_id"
    ))
    .bind(scope.seller())
    .bind(filter.seller)
    .bind(filter.platform_only)
    .bind(filter.failing_only)
    .fetch_all(db)
    .await?)
}

/// One endpoint in `scope` (another seller's is not found).
pub async fn get(db: &PgPool, scope: Scope, endpoint: Uuid) -> Result<Endpoint> {
    sqlx::query_as::<_, Endpoint>(&format!(
        "select {COLUMNS} from webhook_endpoint where endpoint_id = $1 and ($2::uuid is null or seller_id = $2)"
    ))
    .bind(endpoint)
    .bind(scope.seller())
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))
}

/// Changes an endpoint in `scope`.
pub async fn update(
    db: &PgPool,
    guard: &Guard,
    scope: Scope,
    actor: &Actor,
    endpoint: Uuid,
    patch: EndpointPatch,
) -> Result<Endpoint> {
    if let Some(url) = &patch.url {
        check_url(guard, url).await?;
    }
    if let Some(description) = &patch.description {
        check_description(description)?;
    }
    let types = patch.event_types.as_deref().map(names);
    let mut tx = db.begin().await?;
    let changed = sqlx::query_as::<_, Endpoint>(&format!(
        "update webhook_endpoint set
             url = coalesce($3, url),
             description = coalesce($4, description),
             event_types = coalesce($5, event_types),
             include_token = coalesce($6, include_token),
             state = case when $7 is null then state when $7 then 'enabled' else 'disabled' end,
             disabled_at = case when $7 is null then disabled_at when $7 then null
                                else coalesce(disabled_at, now()) end,
             disabled_reason = case when $7 is null then disabled_reason when $7 then null
                                    when state = 'disabled' then disabled_reason
                                    else 'disabled by its owner' end,
             failing_since = case when $7 then null else failing_since end,
             consecutive_failures = case when $7 then 0 else consecutive_failures end
         where endpoint_id = $1 and ($2::uuid is null or seller_id = $2)
         returning {COLUMNS}"
    ))
    .bind(endpoint)
    .bind(scope.seller())
    .bind(patch.url.as_ref().map(Url::as_str))
    .bind(patch.description.as_deref())
    .bind(types)
    .bind(patch.include_token)
    .bind(patch.enabled)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))?;
    audit(&mut tx, actor, "webhook.endpoint_changed", &changed).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Deletes an endpoint in `scope`, with its secrets, deliveries and log.
pub async fn delete(db: &PgPool, scope: Scope, actor: &Actor, endpoint: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    let gone = sqlx::query_as::<_, Endpoint>(&format!(
        "delete from webhook_endpoint where endpoint_id = $1 and ($2::uuid is null or seller_id = $2)
         returning {COLUMNS}"
    ))
    .bind(endpoint)
    .bind(scope.seller())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))?;
    audit(&mut tx, actor, "webhook.endpoint_deleted", &gone).await?;
    tx.commit().await?;
    Ok(())
}

/// Gives an endpoint in `scope` a new secret, returned once with the time the previous current
/// one stops signing (`overlap` from now by the database's clock; zero: at once); older ones stop
/// now.
pub async fn roll_secret(
    db: &PgPool,
    envelope: &Envelope,
    scope: Scope,
    actor: &Actor,
    endpoint: Uuid,
    overlap: Duration,
) -> Result<(WebhookSecret, DateTime<Utc>)> {
    let secret = WebhookSecret::generate();
    let sealed = keys::seal_webhook_secret(envelope, endpoint, &secret)?;
    let mut tx = db.begin().await?;
    let found = sqlx::query_as::<_, Endpoint>(&format!(
        "select {COLUMNS} from webhook_endpoint
         where endpoint_id = $1 and ($2::uuid is null or seller_id = $2) for update"
    ))
    .bind(endpoint)
    .bind(scope.seller())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))?;
    sqlx::query(
        "update webhook_secret set expires_at = least(expires_at, now())
         where endpoint_id = $1 and expires_at is not null",
    )
    .bind(endpoint)
    .execute(&mut *tx)
    .await?;
    let previous_expires_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "update webhook_secret set expires_at = now() + make_interval(secs => $2)
         where endpoint_id = $1 and expires_at is null
         returning expires_at",
    )
    .bind(endpoint)
    .bind(overlap.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("insert into webhook_secret (endpoint_id, key_id, sealed) values ($1, $2, $3)")
        .bind(endpoint)
        .bind(&sealed.key_id)
        .bind(&sealed.bytes)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from webhook_secret where endpoint_id = $1 and expires_at < now() - interval '1 day'")
        .bind(endpoint)
        .execute(&mut *tx)
        .await?;
    Audit::new(actor, "webhook.secret_rolled")
        .detail(serde_json::json!({
            "endpoint_id": found.endpoint_id,
            "overlap_seconds": overlap.as_secs(),
        }))
        .write(&mut tx)
        .await?;
    tx.commit().await?;
    // An endpoint always has a current secret; without one, nothing else signs from now.
    Ok((secret, previous_expires_at.unwrap_or_else(Utc::now)))
}

/// The secrets that sign a delivery to `endpoint` now: the current one first, then those still in
/// their overlap.
pub async fn signing_secrets(
    db: &PgPool,
    envelope: &Envelope,
    endpoint: Uuid,
) -> Result<Vec<WebhookSecret>> {
    let rows = sqlx::query_as::<_, (String, Vec<u8>)>(
        "select key_id, sealed from webhook_secret
         where endpoint_id = $1 and (expires_at is null or expires_at > now())
         order by expires_at is null desc, created_at desc",
    )
    .bind(endpoint)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(key_id, sealed)| keys::open_webhook_secret(envelope, endpoint, key_id, sealed))
        .collect()
}

async fn check_url(guard: &Guard, url: &Url) -> Result<()> {
    if url.as_str().len() > 2048 {
        return Err(invalid("url", "is longer than 2048 characters".into()));
    }
    if url.fragment().is_some() {
        return Err(invalid("url", "has a fragment (#…)".into()));
    }
    guard
        .check_now(url)
        .await
        .map_err(|refusal| invalid("url", refusal.to_string()))
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > 500 {
        return Err(invalid(
            "description",
            "is longer than 500 characters".into(),
        ));
    }
    Ok(())
}

fn invalid(field: &'static str, message: String) -> Error {
    Error::Invalid { field, message }
}

fn names(types: &[EventType]) -> Vec<String> {
    let mut names: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

async fn audit(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &'static str,
    endpoint: &Endpoint,
) -> Result<()> {
    Audit::new(actor, action)
        .detail(serde_json::json!({
            "endpoint_id": endpoint.endpoint_id,
            "seller_id": endpoint.seller_id,
            // Without its query: receivers sometimes put a credential there.
            "url": endpoint.url.split(['?', '#']).next().unwrap_or_default(),
            "event_types": endpoint.event_types,
            "include_token": endpoint.include_token,
            "state": endpoint.state,
        }))
        .write(conn)
        .await
}
