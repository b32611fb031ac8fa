//! Webhook endpoints, their deliveries and their log, as the seller and admin APIs show them.

use chrono::{DateTime, Utc};
use market_core::webhooks::{self, Delivery, Endpoint, EventType, LoggedAttempt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// An event type, as endpoints filter on it and events carry it in `type`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
pub enum EventTypeName {
    #[serde(rename = "purchase.paid")]
    PurchasePaid,
    #[serde(rename = "purchase.fulfilled")]
    PurchaseFulfilled,
    #[serde(rename = "purchase.refunded")]
    PurchaseRefunded,
    #[serde(rename = "purchase.disputed")]
    PurchaseDisputed,
    #[serde(rename = "purchase.upgraded")]
    PurchaseUpgraded,
    #[serde(rename = "token.rotated")]
    TokenRotated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "pool.low")]
    PoolLow,
    #[serde(rename = "credential.unhealthy")]
    CredentialUnhealthy,
    #[serde(rename = "credential.healthy")]
    CredentialHealthy,
    #[serde(rename = "job.dead")]
    JobDead,
}

impl From<EventTypeName> for EventType {
    fn from(name: EventTypeName) -> Self {
        match name {
            EventTypeName::PurchasePaid => Self::PurchasePaid,
            EventTypeName::PurchaseFulfilled => Self::PurchaseFulfilled,
            EventTypeName::PurchaseRefunded => Self::PurchaseRefunded,
            EventTypeName::PurchaseDisputed => Self::PurchaseDisputed,
            EventTypeName::PurchaseUpgraded => Self::PurchaseUpgraded,
            EventTypeName::TokenRotated => Self::TokenRotated,
            EventTypeName::TokenRevoked => Self::TokenRevoked,
            EventTypeName::PoolLow => Self::PoolLow,
            EventTypeName::CredentialUnhealthy => Self::CredentialUnhealthy,
            EventTypeName::CredentialHealthy => Self::CredentialHealthy,
            EventTypeName::JobDead => Self::JobDead,
        }
    }
}

/// A new endpoint of the seller's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// Where events are POSTed: `https://`, a public address (checked again at every delivery).
    #[schema(
        example = "https://hooks.example.com/market",
        max_length = 2048,
        pattern = "^https?://[^\\s]+$"
    )]
    pub url: String,
    #[serde(default)]
    #[schema(example = "orders to the CRM", max_length = 500)]
    pub description: String,
    /// The event types to receive; empty or absent: all of them.
    #[serde(default)]
    pub event_types: Vec<EventTypeName>,
    /// Whether `purchase.fulfilled` and `token.rotated` carry the buyer's token in `data.token`.
    #[serde(default)]
    pub include_token: bool,
}

/// A new endpoint, made by the operator: the platform's (no `seller_id`: every seller's events)
/// or a seller's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminCreateEndpointRequest {
    /// The seller whose events it receives; absent or `null`: the platform's, receiving all.
    #[serde(default)]
    pub seller_id: Option<Uuid>,
    #[schema(
        example = "https://ops.example.com/market",
        max_length = 2048,
        pattern = "^https?://[^\\s]+$"
    )]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    #[serde(default)]
    pub event_types: Vec<EventTypeName>,
    #[serde(default)]
    pub include_token: bool,
}

/// A change to an endpoint: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    #[schema(max_length = 2048, pattern = "^https?://[^\\s]+$")]
    pub url: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub event_types: Option<Vec<EventTypeName>>,
    pub include_token: Option<bool>,
    /// `true` enables the endpoint (after it was disabled, what was queued is then sent, in
    /// order); `false` disables it (nothing new is queued for it).
    pub enabled: Option<bool>,
}

/// Events of `[from, to)` to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// How long the previous secret keeps signing after a roll.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RollQuery {
    /// Seconds, 0 to 604800 (7 days); 86400 when absent.
    #[param(minimum = 0, maximum = 604_800)]
    pub overlap_seconds: Option<u32>,
}

/// Which of an endpoint's deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// pending, delivered or failed.
    #[param(pattern = "^(pending|delivered|failed)$")]
    pub state: Option<String>,
    /// Rows older than this id (the `next_before` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Which of an endpoint's attempts to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Rows older than this id (the `next_before` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// 1 to 200; 50 when absent.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The operator's list filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EndpointsQuery {
    /// One seller's endpoints.
    pub seller_id: Option<Uuid>,
    /// Only the platform's own endpoints.
    pub platform: Option<bool>,
    /// Only endpoints disabled or failing now.
    pub failing: Option<bool>,
}

/// An endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointBody {
    pub endpoint_id: Uuid,
    /// `null`: the platform's, receiving every seller's events.
    pub seller_id: Option<Uuid>,
    pub url: String,
    pub description: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub include_token: bool,
    /// `enabled` or `disabled`.
    #[schema(example = "enabled")]
    pub state: String,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// When its current run of failed attempts began; `null` after a 2xx.
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointBody {
    fn from(e: Endpoint) -> Self {
        Self {
            endpoint_id: e.endpoint_id,
            seller_id: e.seller_id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            include_token: e.include_token,
            state: e.state,
            disabled_reason: e.disabled_reason,
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            consecutive_failures: e.consecutive_failures,
            last_success_at: e.last_success_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointsBody {
    pub endpoints: Vec<EndpointBody>,
}

/// A new endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpointBody {
    pub endpoint: EndpointBody,
    /// Verify each delivery's `webhook-signature` with it (any Standard Webhooks library).
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// A rolled secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolledSecretBody {
    pub secret: String,
    /// Until when the previous secret also signs (both signatures are sent meanwhile).
    pub previous_expires_at: DateTime<Utc>,
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    pub delivery_id: i64,
    /// The `webhook-id` the receiver sees.
    #[schema(example = "msg_2b9f3c4e8d7a4f0b9c1d2e3f4a5b6c7d")]
    pub webhook_id: String,
    #[schema(example = "purchase.fulfilled")]
    pub event_type: String,
    pub purchase_id: Option<Uuid>,
    /// pending (due at `due_at`), delivered, or failed (retries ran out).
    pub state: String,
    pub attempts: i32,
    pub due_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        Self {
            delivery_id: d.delivery_id,
            webhook_id: market_core::courier::message_id(d.event_id),
            event_type: d.event_type,
            purchase_id: d.purchase_id,
            state: d.state,
            attempts: d.attempts,
            due_at: d.due_at,
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveriesBody {
    pub deliveries: Vec<DeliveryBody>,
    /// Pass as `before` for the next page; `null` on the last.
    pub next_before: Option<i64>,
}

/// One attempt: its answer, or why there was none.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptBody {
    pub attempt_id: i64,
    pub delivery_id: i64,
    pub webhook_id: String,
    pub event_type: String,
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status; `null` when there was no answer.
    pub status: Option<i32>,
    pub latency_ms: i32,
    /// The answer's first KiB.
    pub response: Option<String>,
    /// Why there was no (2xx) answer: a timeout, a refused connection, an address refused.
    pub error: Option<String>,
}

impl From<LoggedAttempt> for AttemptBody {
    fn from(a: LoggedAttempt) -> Self {
        Self {
            attempt_id: a.attempt_id,
            delivery_id: a.delivery_id,
            webhook_id: market_core::courier::message_id(a.event_id),
            event_type: a.event_type,
            attempted_at: a.attempted_at,
            status: a.status,
            latency_ms: a.latency_ms,
            response: a.response,
            error: a.error,
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptsBody {
    pub attempts: Vec<AttemptBody>,
    pub next_before: Option<i64>,
}

/// What a replay queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedBody {
    /// Deliveries queued (each event of the range the endpoint receives, at most
    /// 10 000).
    pub queued: u64,
}

/// The event types of a request, checked: the domain's.
pub fn event_types(names: &[EventTypeName]) -> Vec<webhooks::EventType> {
    names.iter().copied().map(Into::into).collect()
}
