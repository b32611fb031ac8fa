//! Account Links: `POST /v1/account_links` gives a URL to the hosted onboarding form, and the
//! rules the form (`connect::hosted`) follows when that URL is used.
//!
//! As at Stripe, a link lives five minutes (`expires_at = created + 300`) and is single-use: the
//! first visit shows the form, a second visit (a reload, a shared link) is sent to
//! `refresh_url`, where the platform makes a new link; submitting the form uses the link up and
//! returns the seller to `return_url`. An expired or used link sends the seller to
//! `refresh_url` too. `account_onboarding` and `account_update` links show the same form.

use serde_json::Value;

use super::objects;
use super::store::{AccountLink, LinkState};
use crate::stripe::error::ApiError;
use crate::stripe::form::{self, Params};
use crate::stripe::sessions::url_param;
use crate::stripe::state::{Origin, SimState};

/// How long a link can be used, in seconds.
const LIFETIME_SECS: i64 = 300;

/// `POST /v1/account_links`: `account`, `type`, `refresh_url`, `return_url`.
pub(crate) fn create(state: &mut SimState, params: &Params) -> Result<Value, ApiError> {
    let root = &params.root;
    let account = form::required_text(root, "account", "account")?.to_owned();
    let kind = form::required_text(root, "type", "type")?;
    if !matches!(kind, "account_onboarding" | "account_update") {
        return Err(ApiError::invalid(
            "type",
            "Invalid type: must be one of account_onboarding or account_update",
        ));
    }
    let refresh_url =
        url_param(root, "refresh_url")?.ok_or_else(|| ApiError::missing("refresh_url"))?;
    let return_url =
        url_param(root, "return_url")?.ok_or_else(|| ApiError::missing("return_url"))?;
    if !state.store.connect.accounts.contains_key(&account) {
        return Err(ApiError::no_such_param("account", "account", &account));
    }
    let created = SimState::now();
    let link = AccountLink {
        token: state.new_id("", 12),
        account,
        refresh_url,
        return_url,
        created,
        expires_at: created + LIFETIME_SECS,
        state: LinkState::Fresh,
    };
    let body = objects::account_link(&link, &state.public_base);
    state.store.connect.links.insert(link.token.clone(), link);
    Ok(body)
}

/// What a visit to, or a submission of, an onboarding link leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkOutcome {
    /// Show the form for this account.
    Form(String),
    /// The form was submitted: back to the platform's `return_url`.
    Return(String),
    /// Expired or already used: to the platform's `refresh_url`.
    Refresh(String),
    /// No such link.
    Unknown,
}

impl SimState {
    /// `GET` on a link: the form on the first visit, `refresh_url` after that.
    pub(crate) fn visit_link(&mut self, token: &str) -> LinkOutcome {
        let now = Self::now();
        let Some(link) = self.store.connect.links.get_mut(token) else {
            return LinkOutcome::Unknown;
        };
        if link.expires_at <= now || link.state != LinkState::Fresh {
            return LinkOutcome::Refresh(link.refresh_url.clone());
        }
        link.state = LinkState::Visited;
        LinkOutcome::Form(link.account.clone())
    }

    /// `POST` on a link: completes the account's onboarding and returns to `return_url`, unless
    /// the link expired or was used.
    pub(crate) fn submit_link(&mut self, token: &str) -> LinkOutcome {
        let now = Self::now();
        let Some(link) = self.store.connect.links.get_mut(token) else {
            return LinkOutcome::Unknown;
        };
        if link.expires_at <= now || link.state == LinkState::Used {
            return LinkOutcome::Refresh(link.refresh_url.clone());
        }
        link.state = LinkState::Used;
        let (account, return_url) = (link.account.clone(), link.return_url.clone());
        match self.complete_onboarding(&account, &Origin::default()) {
            Ok(()) => LinkOutcome::Return(return_url),
            Err(_) => LinkOutcome::Unknown,
        }
    }

    /// Makes every link expire now, as if five minutes had passed.
    pub(crate) fn expire_account_links(&mut self) {
        let now = Self::now();
        for link in self.store.connect.links.values_mut() {
            link.expires_at = link.expires_at.min(now);
        }
    }
}
