//! What this service POSTs to webhook endpoints: the document's `webhooks` section (OpenAPI 3.1),
//! one entry per event type, each with its payload schema, headers and an example.
//!
//! The payloads themselves are written by the database (migration 29's triggers build `data`), so
//! these types are the documentation of that JSON, not its source; the conformance test
//! (`tests/webhooks`) checks every delivered payload against this document.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// The listing an event is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventListing {
    pub listing_id: Uuid,
    /// The Xano snippet's canonical id.
    pub canonical: String,
    pub title: String,
}

/// The tier version an event is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTier {
    pub tier_id: Uuid,
    pub slug: String,
    pub name: String,
}

/// A purchase as its events describe it, at the moment of the fact.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseData {
    pub purchase_id: Uuid,
    /// paid, fulfilled, reinstated, refunded, disputed, dispute_lost, revoked
    pub status: String,
    pub seller_id: Uuid,
    pub listing: EventListing,
    pub tier: EventTier,
    /// What the buyer paid, in the currency's minor unit.
    pub amount: i64,
    pub currency: String,
    /// The platform's fee on a seller's sale (`null` for the house's own sales).
    pub application_fee_amount: Option<i64>,
    pub amount_refunded: i64,
    pub max_installs: i64,
    pub email: Option<String>,
    /// Set on an upgrade: the purchase it upgrades (whose token it raises).
    pub upgrade_of: Option<Uuid>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// purchase.upgraded (and other events of an upgrade): the upgraded purchase's install limit
    /// after this fact.
    #[schema(nullable = false)]
    pub entitlement: Option<i64>,
    /// purchase.fulfilled, to endpoints that opted in (`include_token`): the buyer's install token.
    #[schema(nullable = false)]
    pub token: Option<String>,
}

/// token.revoked: a sold token deleted at Xano because its purchase closed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenRevokedData {
    #[serde(flatten)]
    pub purchase: PurchaseData,
    pub token_id: i64,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// token.rotated: the purchase's token was replaced; the old one no longer works.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenRotatedData {
    #[serde(flatten)]
    pub purchase: PurchaseData,
    pub rotation_id: Uuid,
    pub old_token_id: i64,
    pub token_id: i64,
    /// Installs the new token carries over from the old one.
    pub installs_carried: i64,
    /// `buyer` or `operator`.
    pub requested_by: String,
}

/// pool.low: a tier's pool of ready tokens fell under its low-water mark; a refill is queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolLowData {
    pub listing: EventListing,
    pub tier: EventTier,
    pub available: i64,
    pub low_water: i64,
    pub target: i64,
}

/// credential.unhealthy / credential.healthy: Xano refuses (401/403) or accepts again the
/// seller's Xano credential (the house's: the service's own).
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialData {
    pub seller_id: Uuid,
    /// A seller's Xano account.
    #[schema(nullable = false)]
    pub account_id: Option<String>,
    /// The house's credential: the first 8 hex digits of its fingerprint.
    #[schema(nullable = false)]
    pub credential: Option<String>,
    /// healthy, unauthorized or forbidden
    pub state: String,
    pub last_error: Option<String>,
    pub since: DateTime<Utc>,
}

/// job.dead: background work gave up; an operator (or the seller) should look.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDeadData {
    pub job_id: i64,
    pub kind: String,
    pub subject: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub died_at: DateTime<Utc>,
}

macro_rules! event {
    ($name:ident, $data:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            /// The event type.
            #[serde(rename = "type")]
            pub kind: String,
            /// When the fact happened (the same on every delivery).
            pub timestamp: DateTime<Utc>,
            pub data: $data,
        }
    };
}

event!(PurchaseEvent, PurchaseData, "A purchase event's body.");
event!(TokenRevokedEvent, TokenRevokedData, "token.revoked's body.");
event!(TokenRotatedEvent, TokenRotatedData, "token.rotated's body.");
event!(PoolLowEvent, PoolLowData, "pool.low's body.");
event!(
    CredentialEvent,
    CredentialData,
    "A credential event's body."
);
event!(JobDeadEvent, JobDeadData, "job.dead's body.");

/// Each event type: its body's schema, and what it says.
const EVENTS: &[(&str, &str, &str)] = &[
    (
        "purchase.paid",
        "PurchaseEvent",
        "Stripe says the purchase is paid (a token follows).",
    ),
    (
        "purchase.fulfilled",
        "PurchaseEvent",
        "The buyer holds a live token (also after a dispute won: `status` is `reinstated`). `data.token` only for endpoints that opted in.",
    ),
    (
        "purchase.refunded",
        "PurchaseEvent",
        "Fully refunded: the token is revoked (token.revoked follows).",
    ),
    (
        "purchase.disputed",
        "PurchaseEvent",
        "The buyer's bank disputed the charge (`disputed`), or the dispute was lost (`dispute_lost`).",
    ),
    (
        "purchase.upgraded",
        "PurchaseEvent",
        "An upgrade was applied: `upgrade_of`'s token now allows `entitlement` installs.",
    ),
    (
        "token.rotated",
        "TokenRotatedEvent",
        "The buyer's token was replaced. `data.token` (the new one) only for endpoints that opted in.",
    ),
    (
        "token.revoked",
        "TokenRevokedEvent",
        "A closed purchase's token was deleted at Xano.",
    ),
    (
        "pool.low",
        "PoolLowEvent",
        "A tier's pool of ready tokens fell under its low-water mark.",
    ),
    (
        "credential.unhealthy",
        "CredentialEvent",
        "Xano refuses the seller's credential: its sales wait until it is replaced.",
    ),
    (
        "credential.healthy",
        "CredentialEvent",
        "Xano accepts the seller's credential again.",
    ),
    (
        "job.dead",
        "JobDeadEvent",
        "Background work gave up after its retries.",
    ),
];

fn header(name: &str, description: &str, example: &str) -> Value {
    json!({"name": name, "in": "header", "required": true, "description": description,
           "schema": {"type": "string"}, "example": example})
}

/// An example body per schema.
fn example(kind: &str, schema: &str) -> Value {
    let listing = json!({"listing_id": "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "canonical": "webhook-relay_01", "title": "Webhook relay"});
    let tier =
        json!({"tier_id": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "slug": "solo", "name": "Solo"});
    let purchase = json!({
        "purchase_id": "3f2e1d0c-9b8a-4765-8432-10fedcba9876", "status": "fulfilled",
        "seller_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "listing": listing, "tier": tier,
        "amount": 1900, "currency": "usd", "application_fee_amount": 190, "amount_refunded": 0,
        "max_installs": 5, "email": "buyer@example.com", "upgrade_of": null,
        "paid_at": "2026-12-03T10:15:02Z", "fulfilled_at": "2026-12-03T10:15:02Z", "closed_at": null});
    let data = match schema {
        "TokenRevokedEvent" => {
            let mut d = purchase;
            d["status"] = "refunded".into();
            d["closed_at"] = "2026-12-04T08:00:00Z".into();
            d["token_id"] = 4211.into();
            d["revoked_at"] = "2026-12-04T08:00:01Z".into();
            d
        }
        "TokenRotatedEvent" => {
            let mut d = purchase;
            d["rotation_id"] = "7c6b5a4f-3e2d-4c1b-8a09-f8e7d6c5b4a3".into();
            d["old_token_id"] = 4211.into();
            d["token_id"] = 4310.into();
            d["installs_carried"] = 2.into();
            d["requested_by"] = "buyer".into();
            d
        }
        "PoolLowEvent" => {
            json!({"listing": listing, "tier": tier, "available": 4, "low_water": 5, "target": 10})
        }
        "CredentialEvent" => json!({
            "seller_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "account_id": "acct-1029",
            "state": if kind.ends_with("healthy") && !kind.ends_with("unhealthy") { "healthy" } else { "unauthorized" },
            "last_error": null, "since": "2026-12-03T10:15:02Z"}),
        "JobDeadEvent" => json!({
            "job_id": 912, "kind": "mint_for_purchase", "subject": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
            "attempts": 12, "last_error": "gave up after 12 attempts: Xano answered 503",
            "died_at": "2026-12-03T11:00:00Z"}),
        _ => purchase,
    };
    json!({"type": kind, "timestamp": "2026-12-03T10:15:02.318Z", "data": data})
}

/// The document's `webhooks`: every event this service sends, as the receiver gets it.
pub fn webhooks_section() -> Value {
    let mut section = serde_json::Map::new();
    for (kind, schema, summary) in EVENTS {
        section.insert(
            (*kind).to_owned(),
            json!({"post": {
                "operationId": format!("webhook_{}", kind.replace('.', "_")),
                "summary": summary,
                "description": "Signed to the Standard Webhooks specification with the endpoint's secret: verify `webhook-signature` over `webhook-id.webhook-timestamp.body` (any Standard Webhooks library). Delivered at least once, in order per purchase; a repeat has the same `webhook-id`. Answer 2xx within 10 s; anything else is retried with exponential backoff for about three days.",
                "tags": ["webhooks"],
                "parameters": [
                    header("webhook-id", "The event's id: the same on every retry (deduplicate on it).", "msg_2b9f3c4e8d7a4f0b9c1d2e3f4a5b6c7d"),
                    header("webhook-timestamp", "This attempt's time, Unix seconds.", "1764756902"),
                    header("webhook-signature", "`v1,<base64 HMAC-SHA256>`, one per live secret, space-separated (two during a secret roll).", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
                ],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{schema}")},
                    "example": example(kind, schema),
                }}},
                "responses": {"2XX": {"description": "Received."}},
            }}),
        );
    }
    Value::Object(section)
}
