//! Express accounts: `POST /v1/accounts`, `GET /v1/accounts/{id}`, `POST
//! /v1/accounts/{id}/login_links`, and the two things that change an account afterwards, the
//! seller finishing onboarding and Stripe disabling (or re-enabling) it.
//!
//! A new account can do nothing yet: `charges_enabled` and `payouts_enabled` are false, its
//! requested capabilities `inactive`, its requirements overdue (`requirements.past_due`). Once
//! onboarded it is enabled and its capabilities `active`; disabled it is `rejected.other` with
//! capabilities `inactive` until enabled again. Every change sends `account.updated` with the
//! changed attributes' old values in `previous_attributes`, and the account's id at the top
//! level of the event, as Stripe's Connect events carry it.

use serde_json::Value;

use super::objects;
use super::store::Account;
use crate::stripe::error::{ApiError, SimError};
use crate::stripe::form::{self, Hash, Param, Params};
use crate::stripe::sessions::plausible_email;
use crate::stripe::state::{Origin, SimState, previous_attributes};

/// The capabilities the simulator plays; requesting `transfers` is required (an Express account
/// exists to be paid out).
const CAPABILITIES: [&str; 2] = ["card_payments", "transfers"];
const BUSINESS_TYPES: [&str; 4] = ["company", "government_entity", "individual", "non_profit"];
/// Why a disabled account is disabled.
const REJECTED: &str = "rejected.other";

/// `POST /v1/accounts`: `type=express`, `country` (default `US`), `email`, `business_type`,
/// `capabilities[<name>][requested]`, `metadata`.
pub(crate) fn create(state: &mut SimState, params: &Params) -> Result<Value, ApiError> {
    let root = &params.root;
    match form::text(root, "type", "type")? {
        Some("express") => {}
        Some("custom" | "standard") | None => {
            return Err(ApiError::invalid(
                "type",
                "The Stripe simulator supports only `type=express` accounts.",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "type",
                "Invalid type: must be one of custom, express, or standard",
            ));
        }
    }
    let country = form::text(root, "country", "country")?
        .filter(|country| !country.is_empty())
        .unwrap_or("US")
        .to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "country",
            format!("Invalid country: {country}"),
        ));
    }
    let email = form::text(root, "email", "email")?
        .filter(|email| !email.is_empty())
        .map(str::to_owned);
    if let Some(email) = &email
        && !plausible_email(email)
    {
        return Err(ApiError::invalid(
            "email",
            format!("Invalid email address: {email}"),
        ));
    }
    let business_type = form::text(root, "business_type", "business_type")?
        .filter(|kind| !kind.is_empty())
        .map(str::to_owned);
    if business_type
        .as_deref()
        .is_some_and(|kind| !BUSINESS_TYPES.contains(&kind))
    {
        return Err(ApiError::invalid(
            "business_type",
            "Invalid business_type: must be one of company, government_entity, individual, or \
             non_profit",
        ));
    }
    let capabilities = capabilities(root)?;
    let metadata = form::metadata(root, "metadata", "metadata")?;
    let account = Account {
        id: state.new_id("acct_1", 15),
        created: SimState::now(),
        email,
        default_currency: default_currency(&country).to_owned(),
        country,
        business_type,
        capabilities,
        metadata,
        details_submitted: false,
        tos_accepted_at: None,
        rejected: None,
    };
    let body = objects::account(&account);
    state.store.connect.add_account(account);
    Ok(body)
}

/// The names of the capabilities requested with `capabilities[<name>][requested]=true`.
fn capabilities(root: &Hash) -> Result<Vec<String>, ApiError> {
    let mut requested = Vec::new();
    if let Some(asked) = form::hash(root, "capabilities", "capabilities")? {
        for (name, value) in asked {
            let path = format!("capabilities[{name}]");
            if !CAPABILITIES.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    &path,
                    "The Stripe simulator plays only the `card_payments` and `transfers` \
                     capabilities.",
                ));
            }
            let Param::Map(value) = value else {
                return Err(ApiError::invalid(&path, "Invalid hash"));
            };
            if form::boolean(value, "requested", &format!("{path}[requested]"))? == Some(true) {
                requested.push(name.clone());
            }
        }
    }
    if !requested.iter().any(|name| name == "transfers") {
        return Err(ApiError::invalid(
            "capabilities",
            "An Express account must request the `transfers` capability \
             (`capabilities[transfers][requested]=true`).",
        ));
    }
    Ok(requested)
}

/// The currency an account in `country` is paid out in, for the countries a seller is likely in.
fn default_currency(country: &str) -> &'static str {
    match country {
        "GB" => "gbp",
        "CA" => "cad",
        "AU" => "aud",
        "CH" => "chf",
        "JP" => "jpy",
        "AT" | "BE" | "DE" | "ES" | "FI" | "FR" | "IE" | "IT" | "NL" | "PT" => "eur",
        _ => "usd",
    }
}

/// `GET /v1/accounts/{id}`.
pub(crate) fn retrieve(state: &SimState, id: &str) -> Result<Value, ApiError> {
    state
        .store
        .connect
        .accounts
        .get(id)
        .map(objects::account)
        .ok_or_else(|| ApiError::no_such("account", id))
}

/// `POST /v1/accounts/{id}/login_links`: a link to the account's Express dashboard, once it has
/// finished onboarding.
pub(crate) fn create_login_link(state: &SimState, id: &str) -> Result<Value, ApiError> {
    let account = state
        .store
        .connect
        .accounts
        .get(id)
        .ok_or_else(|| ApiError::no_such("account", id))?;
    if !account.details_submitted {
        return Err(ApiError::bad_request(
            "Cannot create a login link for an account that has not completed onboarding.",
        ));
    }
    Ok(objects::login_link(id, SimState::now(), &state.public_base))
}

impl SimState {
    /// The seller submits the onboarding form: details submitted, terms accepted, the account
    /// enabled (unless Stripe disabled it). Nothing changes, and nothing is sent, when it was
    /// already onboarded.
    pub(crate) fn complete_onboarding(
        &mut self,
        id: &str,
        origin: &Origin,
    ) -> Result<(), SimError> {
        let now = Self::now();
        self.change_account(id, origin, |account| {
            if !account.details_submitted {
                account.details_submitted = true;
                account.tos_accepted_at = Some(now);
            }
        })
    }

    /// Stripe disables the account (`rejected.other`) or lifts that; sends `account.updated`
    /// when that changed anything.
    pub(crate) fn set_account_enabled(&mut self, id: &str, enabled: bool) -> Result<(), SimError> {
        self.change_account(id, &Origin::default(), |account| {
            account.rejected = (!enabled).then(|| REJECTED.to_owned());
        })
    }

    /// Applies `change` to the account and sends `account.updated` if its JSON changed.
    fn change_account(
        &mut self,
        id: &str,
        origin: &Origin,
        change: impl FnOnce(&mut Account),
    ) -> Result<(), SimError> {
        let account = self
            .store
            .connect
            .accounts
            .get_mut(id)
            .ok_or_else(|| SimError::UnknownAccount(id.to_owned()))?;
        let before = objects::account(account);
        change(account);
        let after = objects::account(account);
        let previous = previous_attributes(&before, &after);
        if !previous.is_empty() {
            self.emit_connect_event(
                "account.updated",
                &after,
                Some(Value::Object(previous)),
                id,
                origin,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_paid_out_in_its_countrys_currency() {
        assert_eq!(default_currency("FR"), "eur");
        assert_eq!(default_currency("GB"), "gbp");
        assert_eq!(default_currency("US"), "usd");
    }
}
