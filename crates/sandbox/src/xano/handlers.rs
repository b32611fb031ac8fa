//! The ten endpoints' logic, run under the state lock once the request is authenticated.
//! Each returns the 200 JSON body or the Xano error to send instead.

use chrono::Utc;
use serde_json::{Value, json};

use super::body::Fields;
use super::endpoint::Route;
use super::error::XanoError;
use super::model::{InstallAccess, SimInstance, xano_timestamp};
use super::state::SimState;
use super::store::{SnippetRecord, TokenRecord};

/// Serves `route` for `account`. `fields` is the parsed body; its error only matters to the
/// endpoints that read a body, so a GET with junk in its body still succeeds.
pub(crate) fn handle(
    state: &mut SimState,
    account: usize,
    route: &Route,
    query: &str,
    fields: Result<Fields, XanoError>,
) -> Result<Value, XanoError> {
    match route {
        Route::Me => me(state, account),
        Route::Instances => Ok(instances(state, account)),
        Route::Instance { name } => instance(state, account, name),
        Route::Snippets => snippets(state, account, query),
        Route::Snippet { canonical } => Ok(snippet_json(state.store.owned(account, canonical)?)),
        Route::UpdateSnippet { canonical } => update_snippet(state, account, canonical, &fields?),
        Route::Tokens { canonical } => {
            state.store.owned(account, canonical)?;
            let keep = state.store.take_truncation(canonical).unwrap_or(usize::MAX);
            let snippet = state.store.owned(account, canonical)?;
            Ok(Value::Array(
                snippet.tokens.iter().take(keep).map(token_json).collect(),
            ))
        }
        Route::CreateToken { canonical } => create_token(state, account, canonical, &fields?),
        Route::UpdateToken { canonical, token } => {
            update_token(state, account, canonical, token, &fields?)
        }
        Route::DeleteToken { canonical, token } => {
            state.store.delete_token(account, canonical, token)?;
            Ok(json!({}))
        }
    }
}

fn me(state: &SimState, account: usize) -> Result<Value, XanoError> {
    let account = state
        .store
        .accounts
        .get(account)
        .ok_or_else(XanoError::not_found)?;
    let profile = &account.profile;
    // `extras` is typed as a string in the spec; its contents are undocumented.
    Ok(json!({ "id": profile.id, "name": profile.name, "email": profile.email, "extras": "" }))
}

fn instances(state: &SimState, account: usize) -> Value {
    let instances = state
        .store
        .accounts
        .get(account)
        .map(|a| a.instances.as_slice())
        .unwrap_or_default();
    Value::Array(instances.iter().map(instance_json).collect())
}

fn instance(state: &SimState, account: usize, name: &str) -> Result<Value, XanoError> {
    state
        .store
        .accounts
        .get(account)
        .and_then(|account| {
            account
                .instances
                .iter()
                .find(|instance| instance.name == name)
        })
        .map(instance_json)
        .ok_or_else(XanoError::not_found)
}

/// One page of the caller's snippets. Past the last page the items are empty and `nextPage` is
/// null, so a client that follows `nextPage` always stops.
fn snippets(state: &SimState, account: usize, query: &str) -> Result<Value, XanoError> {
    let page = page_param(query)?;
    let size = state.page_size.max(1);
    let owned: Vec<&SnippetRecord> = state.store.snippets_of(account).collect();
    let start = usize::try_from(page - 1)
        .unwrap_or(usize::MAX)
        .saturating_mul(size);
    let items: Vec<Value> = owned
        .iter()
        .skip(start)
        .take(size)
        .map(|s| snippet_json(s))
        .collect();
    let has_next = start.saturating_add(size) < owned.len();
    Ok(json!({
        "curPage": page,
        "nextPage": has_next.then_some(page + 1),
        "prevPage": (page > 1).then_some(page - 1),
        "items": items,
    }))
}

fn page_param(query: &str) -> Result<i64, XanoError> {
    let Some((_, raw)) =
        url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "page")
    else {
        return Ok(1);
    };
    match raw.trim().parse::<i64>() {
        Ok(page) if page >= 1 => Ok(page),
        _ => Err(XanoError::input(
            "page",
            "Value must be an integer of 1 or more: page",
        )),
    }
}

fn update_snippet(
    state: &mut SimState,
    account: usize,
    canonical: &str,
    fields: &Fields,
) -> Result<Value, XanoError> {
    // Inputs are validated before the snippet is looked up, as Xano checks inputs before it runs
    // an endpoint's logic: a bad body on a missing snippet is a 400, not a 404.
    let access = fields.text("install_access")?;
    let access = InstallAccess::parse(access).ok_or_else(|| {
        XanoError::input(
            "install_access",
            "Value must be one of: public, link, token",
        )
    })?;
    let description = fields.text("install_access_description")?.to_owned();
    let snippet = state.store.owned_mut(account, canonical)?;
    snippet.install_access = access;
    snippet.install_access_description = description;
    snippet.updated_at = Utc::now();
    Ok(snippet_json(snippet))
}

fn create_token(
    state: &mut SimState,
    account: usize,
    canonical: &str,
    fields: &Fields,
) -> Result<Value, XanoError> {
    let max_installs = fields.count("max_installs")?;
    state.store.owned(account, canonical)?;
    let token = state.store.issue_token_value(&mut state.rng);
    let now = Utc::now();
    let record = TokenRecord {
        token,
        max_installs,
        current_installs: 0,
        created_at: now,
        updated_at: now,
    };
    let body = token_json(&record);
    state
        .store
        .owned_mut(account, canonical)?
        .tokens
        .push(record);
    Ok(body)
}

fn update_token(
    state: &mut SimState,
    account: usize,
    canonical: &str,
    token: &str,
    fields: &Fields,
) -> Result<Value, XanoError> {
    let max_installs = fields.count("max_installs")?;
    let current_installs = fields.count("current_installs")?;
    let snippet = state.store.owned_mut(account, canonical)?;
    let record = snippet
        .tokens
        .iter_mut()
        .find(|record| record.token == token)
        .ok_or_else(XanoError::not_found)?;
    record.max_installs = max_installs;
    record.current_installs = current_installs;
    record.updated_at = Utc::now();
    Ok(token_json(record))
}

fn snippet_json(snippet: &SnippetRecord) -> Value {
    json!({
        "canonical": snippet.canonical,
        "created_at": xano_timestamp(snippet.created_at),
        "updated_at": xano_timestamp(snippet.updated_at),
        "name": snippet.name,
        "review": "pending",
        "review_exception": "",
        "install_access": snippet.install_access.as_str(),
        "install_access_description": snippet.install_access_description,
        "featured": false,
        "verified": false,
    })
}

fn token_json(token: &TokenRecord) -> Value {
    json!({
        "created_at": xano_timestamp(token.created_at),
        "updated_at": xano_timestamp(token.updated_at),
        "token": token.token,
        "max_installs": token.max_installs,
        "current_installs": token.current_installs,
    })
}

fn instance_json(instance: &SimInstance) -> Value {
    let domain = &instance.xano_domain;
    json!({
        "name": instance.name,
        "display": instance.display,
        "xano_domain": domain,
        "custom_domain": instance.custom_domain,
        "rate_limit": instance.rate_limit,
        "meta_api": format!("https://{domain}/api:meta"),
        "meta_swagger": format!("https://{domain}/apispec:meta?type=json"),
    })
}
