//! Listing Stripe's events (`GET /v1/events`), kept raw: the backfill reads each listed event
//! with `intake`, leniently, exactly as a webhook body, so an event of another API version or with
//! fields async-stripe's types do not know is applied rather than refused. (async-stripe's typed
//! `Event` would reject precisely the events the lenient intake exists for.)

use serde::Serialize;
use stripe_client_core::{RequestBuilder, StripeMethod};

use crate::stripe::{StripeFailure, StripeGateway, failure};

/// Stripe's largest page.
const PAGE: u32 = 100;

/// One listed event: its id, its `created` (Unix seconds) and its JSON as Stripe sent it.
#[derive(Debug)]
pub struct ListedEvent {
    pub id: String,
    pub created: i64,
    pub payload: String,
}

#[derive(Serialize)]
struct Query<'a> {
    types: &'a [&'a str],
    created: Created,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

#[derive(Serialize)]
struct Created {
    gte: i64,
}

/// One page of Stripe's list.
#[derive(Debug)]
pub struct Page {
    /// Newest first, as Stripe lists them.
    pub events: Vec<ListedEvent>,
    pub has_more: bool,
}

/// The page of events of `types` created at or after `created_gte` (Unix seconds) that follows
/// `starting_after` (the first page when `None`). Stripe lists newest first.
pub async fn page(
    stripe: &StripeGateway,
    types: &[&str],
    created_gte: i64,
    starting_after: Option<&str>,
) -> Result<Page, StripeFailure> {
    let query = Query {
        types,
        created: Created { gte: created_gte },
        limit: PAGE,
        starting_after,
    };
    let page = RequestBuilder::new(StripeMethod::Get, "/events")
        .query(&query)
        .customize::<miniserde::json::Value>()
        .send(stripe.client())
        .await
        .map_err(|e| failure(&e))?;
    let page: serde_json::Value = serde_json::from_str(&miniserde::json::to_string(&page))
        .map_err(|_| StripeFailure::Failed("unreadable list of events".into()))?;
    let mut events = Vec::new();
    for event in page["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(id), Some(created)) = (event["id"].as_str(), event["created"].as_i64()) else {
            return Err(StripeFailure::Failed(
                "a listed event without id or created".into(),
            ));
        };
        events.push(ListedEvent {
            id: id.to_owned(),
            created,
            payload: event.to_string(),
        });
    }
    Ok(Page {
        events,
        has_more: page["has_more"].as_bool().unwrap_or(false),
    })
}
