//! `/v1/checkout/sessions`: create (payment mode, inline `price_data` line items), retrieve,
//! list, expire, and list a session's line items. Parameters are checked the way Stripe checks
//! them, with Stripe's messages; parameters the simulator has no use for are accepted and
//! ignored.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use url::Url;

use super::connect;
use super::error::ApiError;
use super::form::{self, Hash, Param, Params};
use super::model::{PaymentStatus, SessionStatus};
use super::objects;
use super::state::{Origin, SimState};
use super::store::{LineItem, Session};

/// Stripe's bounds on `expires_at`: 30 minutes to 24 hours after creation.
const MIN_EXPIRY_SECS: i64 = 30 * 60;
const MAX_EXPIRY_SECS: i64 = 24 * 3600;
/// Client clocks drift; a few seconds either way are let through.
const CLOCK_SLACK_SECS: i64 = 10;

pub(crate) fn create(state: &mut SimState, params: &Params) -> Result<Value, ApiError> {
    let root = &params.root;
    match form::text(root, "mode", "mode")? {
        None | Some("") => return Err(ApiError::missing("mode")),
        Some("payment") => {}
        Some("setup" | "subscription") => {
            return Err(ApiError::invalid(
                "mode",
                "The Stripe simulator supports only `mode=payment` Checkout Sessions.",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "mode",
                "Invalid mode: must be one of payment, setup, or subscription",
            ));
        }
    }
    if let Some(ui_mode) = form::text(root, "ui_mode", "ui_mode")?
        && !matches!(ui_mode, "hosted" | "hosted_page")
    {
        return Err(ApiError::invalid(
            "ui_mode",
            "The Stripe simulator serves only hosted Checkout pages (`ui_mode=hosted_page`).",
        ));
    }
    let line_items = line_items(state, root)?;
    let currency = line_items
        .first()
        .map(|item| item.currency.clone())
        .ok_or_else(|| ApiError::missing("line_items"))?;
    let success_url = url_param(root, "success_url")?;
    let cancel_url = url_param(root, "cancel_url")?;
    let (client_reference_id, customer_email) = references(root)?;
    let metadata = form::metadata(root, "metadata", "metadata")?;
    let intent_data = form::hash(root, "payment_intent_data", "payment_intent_data")?;
    let payment_intent_metadata = match intent_data {
        Some(data) => form::metadata(data, "metadata", "payment_intent_data[metadata]")?,
        None => BTreeMap::default(),
    };
    let amount_total = line_items.iter().map(LineItem::amount).sum();
    let destination = connect::destination_charge(state, intent_data, amount_total)?;
    let created = SimState::now();
    let expires_at = expires_at(root, created)?;
    let locale = form::text(root, "locale", "locale")?.map(str::to_owned);
    let expand = form::strings(root, "expand")?;

    let id = format!("cs_{}_a1", state.mode());
    let id = state.new_id(&id, 56);
    let session = Session {
        id: id.clone(),
        created,
        expires_at,
        status: SessionStatus::Open,
        payment_status: PaymentStatus::Unpaid,
        currency,
        line_items,
        client_reference_id,
        customer_email,
        metadata,
        payment_intent_metadata,
        success_url,
        cancel_url,
        locale,
        payment_intent: None,
        paid_by: None,
        destination,
    };
    let body = objects::session(
        &session,
        state.livemode,
        &state.public_base,
        expands_line_items(&expand),
    );
    state.store.add_session(session);
    Ok(body)
}

/// `client_reference_id` (at most 200 characters) and `customer_email`.
fn references(root: &Hash) -> Result<(Option<String>, Option<String>), ApiError> {
    let client_reference_id = form::text(root, "client_reference_id", "client_reference_id")?
        .filter(|text| !text.is_empty())
        .map(str::to_owned);
    if client_reference_id
        .as_ref()
        .is_some_and(|id| id.chars().count() > 200)
    {
        return Err(ApiError::invalid(
            "client_reference_id",
            "client_reference_id can be at most 200 characters long.",
        ));
    }
    let customer_email = form::text(root, "customer_email", "customer_email")?
        .filter(|text| !text.is_empty())
        .map(str::to_owned);
    if let Some(email) = &customer_email
        && !plausible_email(email)
    {
        return Err(ApiError::invalid(
            "customer_email",
            format!("Invalid email address: {email}"),
        ));
    }
    Ok((client_reference_id, customer_email))
}

/// `expires_at`, within Stripe's bounds; 24 hours after `created` when absent.
fn expires_at(root: &Hash, created: i64) -> Result<i64, ApiError> {
    match form::integer(root, "expires_at", "expires_at")? {
        None => Ok(created + MAX_EXPIRY_SECS),
        Some(at) if at < created + MIN_EXPIRY_SECS - CLOCK_SLACK_SECS => Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
        )),
        Some(at) if at > created + MAX_EXPIRY_SECS + CLOCK_SLACK_SECS => Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
        )),
        Some(at) => Ok(at),
    }
}

fn expands_line_items(expand: &[String]) -> bool {
    expand
        .iter()
        .any(|path| path == "line_items" || path.starts_with("line_items."))
}

pub(crate) fn plausible_email(email: &str) -> bool {
    email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

/// An `http(s)` URL parameter; absent or empty is `None`.
pub(crate) fn url_param(root: &Hash, key: &str) -> Result<Option<String>, ApiError> {
    let Some(text) = form::text(root, key, key)?.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(text.to_owned())),
        _ => Err(ApiError::invalid(key, "Not a valid URL")),
    }
}

fn line_items(state: &mut SimState, root: &Hash) -> Result<Vec<LineItem>, ApiError> {
    let items = form::list(root, "line_items", "line_items")?;
    if items.is_empty() {
        return Err(ApiError::missing("line_items"));
    }
    if items.len() > 100 {
        return Err(ApiError::invalid(
            "line_items",
            "A Checkout Session can have at most 100 line items.",
        ));
    }
    let mut out: Vec<LineItem> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let path = format!("line_items[{index}]");
        let Param::Map(item) = item else {
            return Err(ApiError::invalid(&path, "Invalid hash"));
        };
        let item = line_item(state, item, &path)?;
        if out
            .first()
            .is_some_and(|first| first.currency != item.currency)
        {
            return Err(ApiError::invalid(
                &format!("{path}[price_data][currency]"),
                "All line items must use the same currency.",
            ));
        }
        out.push(item);
    }
    if out.iter().map(LineItem::amount).sum::<i64>() <= 0 {
        return Err(ApiError::invalid(
            "line_items",
            "The Checkout Session's total amount due must be greater than 0.",
        ));
    }
    Ok(out)
}

fn line_item(state: &mut SimState, item: &Hash, path: &str) -> Result<LineItem, ApiError> {
    // The simulator has no catalogue, so an existing Price or Product id names nothing.
    if let Some(price) = form::text(item, "price", &format!("{path}[price]"))? {
        return Err(ApiError::no_such_param(
            &format!("{path}[price]"),
            "price",
            price,
        ));
    }
    let data_path = format!("{path}[price_data]");
    let data = form::hash(item, "price_data", &data_path)?
        .ok_or_else(|| ApiError::missing(&format!("{path}[price]")))?;
    let currency = form::required_text(data, "currency", &format!("{data_path}[currency]"))?
        .to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid(
            &format!("{data_path}[currency]"),
            format!("Invalid currency: {currency}"),
        ));
    }
    let amount_path = format!("{data_path}[unit_amount]");
    let unit_amount = match form::integer(data, "unit_amount", &amount_path)? {
        Some(amount) => amount,
        // `unit_amount_decimal` is accepted when it is a whole number of minor units.
        None => match form::text(data, "unit_amount_decimal", &amount_path)? {
            Some(text) => text
                .trim()
                .trim_end_matches(".0")
                .parse()
                .map_err(|_| ApiError::invalid_integer(&amount_path, text))?,
            None => return Err(ApiError::missing(&amount_path)),
        },
    };
    if unit_amount < 0 {
        return Err(ApiError::invalid(
            &amount_path,
            "This value must be greater than or equal to 0.",
        ));
    }
    if let Some(product) = form::text(data, "product", &format!("{data_path}[product]"))? {
        return Err(ApiError::no_such_param(
            &format!("{data_path}[product]"),
            "product",
            product,
        ));
    }
    let product_path = format!("{data_path}[product_data]");
    let product = form::hash(data, "product_data", &product_path)?
        .ok_or_else(|| ApiError::missing(&product_path))?;
    let name = form::required_text(product, "name", &format!("{product_path}[name]"))?.to_owned();
    let description = form::text(
        product,
        "description",
        &format!("{product_path}[description]"),
    )?
    .map(str::to_owned);
    let quantity_path = format!("{path}[quantity]");
    let quantity = form::integer(item, "quantity", &quantity_path)?.ok_or_else(|| {
        ApiError::invalid(
            &quantity_path,
            format!("Quantity is required. Add `quantity` to `{path}`"),
        )
    })?;
    if quantity < 1 {
        return Err(ApiError::invalid(
            &quantity_path,
            "This value must be greater than or equal to 1.",
        ));
    }
    Ok(LineItem {
        id: state.new_id("li_1", 24),
        price_id: state.new_id("price_1", 24),
        product_id: state.new_id("prod_", 14),
        name,
        description,
        unit_amount,
        quantity,
        currency,
    })
}

pub(crate) fn retrieve(state: &SimState, id: &str, params: &Params) -> Result<Value, ApiError> {
    let session = state
        .store
        .sessions
        .get(id)
        .ok_or_else(|| ApiError::no_such("checkout.session", id))?;
    let expand = form::strings(&params.root, "expand")?;
    Ok(objects::session(
        session,
        state.livemode,
        &state.public_base,
        expands_line_items(&expand),
    ))
}

pub(crate) fn line_items_list(state: &SimState, id: &str) -> Result<Value, ApiError> {
    let session = state
        .store
        .sessions
        .get(id)
        .ok_or_else(|| ApiError::no_such("checkout.session", id))?;
    Ok(objects::line_items(session, state.livemode))
}

/// `POST /v1/checkout/sessions/{id}/expire`.
pub(crate) fn expire(state: &mut SimState, id: &str, origin: &Origin) -> Result<Value, ApiError> {
    let status = state
        .store
        .sessions
        .get(id)
        .map(|session| session.status)
        .ok_or_else(|| ApiError::no_such("checkout.session", id))?;
    if status != SessionStatus::Open {
        return Err(ApiError::bad_request(
            "Only Checkout Sessions with a status in [\"open\"] can be expired.",
        ));
    }
    state.expire(id, origin)?;
    retrieve(state, id, &Params::default())
}

/// `GET /v1/checkout/sessions`: newest first, filtered by `status` and `payment_intent`, paged
/// with `limit` (1–100, default 10) and `starting_after`.
pub(crate) fn list(state: &SimState, params: &Params) -> Result<Value, ApiError> {
    let root = &params.root;
    let limit = form::integer(root, "limit", "limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "This value must be between 1 and 100.",
        ));
    }
    let status = form::text(root, "status", "status")?;
    let payment_intent = form::text(root, "payment_intent", "payment_intent")?;
    let starting_after = form::text(root, "starting_after", "starting_after")?;
    let mut matching = state
        .store
        .session_order
        .iter()
        .rev()
        .filter_map(|id| state.store.sessions.get(id))
        .filter(|session| status.is_none_or(|status| session.status.as_str() == status))
        .filter(|session| {
            payment_intent.is_none_or(|pi| session.payment_intent.as_deref() == Some(pi))
        })
        .skip_while(|session| starting_after.is_some_and(|after| session.id != after))
        .skip(usize::from(starting_after.is_some()));
    let limit = usize::try_from(limit).unwrap_or(10);
    let data: Vec<Value> = matching
        .by_ref()
        .take(limit)
        .map(|session| objects::session(session, state.livemode, &state.public_base, false))
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": matching.next().is_some(),
        "url": "/v1/checkout/sessions",
    }))
}
