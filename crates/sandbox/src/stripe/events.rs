//! `GET /v1/events/{id}` and `GET /v1/events`: the events the simulator generated, for a
//! service that reconciles missed webhooks the way Stripe recommends (list with
//! `delivery_success=false` and a `created` window, then process what it missed).
//!
//! The list is newest first; events born in the same second keep their creation order (the
//! store's order), so paging is stable. `starting_after` is a position in that whole list, as at
//! Stripe: it may name an event the filters leave out, and the page starts after it all the same.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::error::ApiError;
use super::form::{self, Hash, Param, Params};
use super::model::SimEvent;
use super::state::SimState;

fn body(event: &SimEvent) -> Value {
    serde_json::from_str(&event.payload).unwrap_or(Value::Null)
}

pub(crate) fn retrieve(state: &SimState, id: &str) -> Result<Value, ApiError> {
    state
        .event(id)
        .map(body)
        .ok_or_else(|| ApiError::no_such("event", id))
}

/// Newest first; filters `type`, `types[]`, `delivery_success` and `created` (exact, or
/// `created[gt|gte|lt|lte]`); pages with `limit` (1–100, default 10) and `starting_after`.
pub(crate) fn list(state: &SimState, params: &Params) -> Result<Value, ApiError> {
    let root = &params.root;
    let limit = form::integer(root, "limit", "limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "This value must be between 1 and 100.",
        ));
    }
    let mut types = form::strings(root, "types")?;
    if let Some(type_) = form::text(root, "type", "type")? {
        types.push(type_.to_owned());
    }
    let delivery_success = match form::text(root, "delivery_success", "delivery_success")? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::invalid(
                "delivery_success",
                "Invalid boolean: must be true or false",
            ));
        }
    };
    let delivered: HashSet<&str> = state
        .deliveries
        .iter()
        .filter(|record| record.succeeded())
        .map(|record| record.event_id.as_str())
        .collect();
    let created = Created::parse(root)?;
    let starting_after = form::text(root, "starting_after", "starting_after")?;
    let mut matching = state
        .events
        .iter()
        .rev()
        .skip_while(|event| starting_after.is_some_and(|after| event.id != after))
        .skip(usize::from(starting_after.is_some()))
        .filter(|event| created.contains(event.created))
        .filter(|event| types.is_empty() || types.iter().any(|t| type_matches(t, &event.type_)))
        .filter(|event| {
            delivery_success.is_none_or(|wanted| {
                // An event no endpoint was waiting for counts as delivered.
                let pending = body(event)["pending_webhooks"].as_i64().unwrap_or(0) > 0;
                let ok = !pending || delivered.contains(event.id.as_str());
                ok == wanted
            })
        });
    let limit = usize::try_from(limit).unwrap_or(10);
    let data: Vec<Value> = matching.by_ref().take(limit).map(body).collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": matching.next().is_some(),
        "url": "/v1/events",
    }))
}

/// Stripe's type filters accept a trailing `*` wildcard (`charge.dispute.*`).
fn type_matches(filter: &str, type_: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => type_.starts_with(prefix),
        None => filter == type_,
    }
}

/// The `created` filter: `created=<unix>` or any of `created[gt]`, `[gte]`, `[lt]`, `[lte]`.
#[derive(Debug, Default)]
struct Created {
    gt: Option<i64>,
    gte: Option<i64>,
    lt: Option<i64>,
    lte: Option<i64>,
}

impl Created {
    fn parse(root: &Hash) -> Result<Self, ApiError> {
        match root.get("created") {
            None => Ok(Self::default()),
            Some(Param::Text(_)) => {
                let exact = form::integer(root, "created", "created")?;
                Ok(Self {
                    gte: exact,
                    lte: exact,
                    ..Self::default()
                })
            }
            Some(Param::Map(range)) => {
                if let Some(unknown) = range
                    .keys()
                    .find(|key| !["gt", "gte", "lt", "lte"].contains(&key.as_str()))
                {
                    return Err(ApiError::unknown_param(&format!("created[{unknown}]")));
                }
                let bound = |key: &str| form::integer(range, key, &format!("created[{key}]"));
                Ok(Self {
                    gt: bound("gt")?,
                    gte: bound("gte")?,
                    lt: bound("lt")?,
                    lte: bound("lte")?,
                })
            }
        }
    }

    fn contains(&self, created: i64) -> bool {
        self.gt.is_none_or(|gt| created > gt)
            && self.gte.is_none_or(|gte| created >= gte)
            && self.lt.is_none_or(|lt| created < lt)
            && self.lte.is_none_or(|lte| created <= lte)
    }
}
