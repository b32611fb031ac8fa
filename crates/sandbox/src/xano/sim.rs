//! [`XanoSim`]: a running simulator, and the Rust side of its controls.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use actix_web::web;
use chrono::Utc;
use url::Url;

use super::api::{self, BASE_PATH};
use super::calls::CallRecord;
use super::config::XanoSimConfig;
use super::control;
use super::faults::{Fault, FaultRule};
use super::model::{InstallError, SimAccount, SimInstance, SimSnippet, SimToken, TokenState};
use super::state::{Shared, SimState};
use crate::server::{Bound, Server};

/// A Xano Master API simulator listening on a loopback port, plus the handle that controls it.
///
/// Dropping it stops the server (without waiting); [`XanoSim::stop`] stops it and waits.
pub struct XanoSim {
    shared: Shared,
    base_url: Url,
    server: Server,
}

impl XanoSim {
    /// Binds `config.bind` and serves on the current tokio runtime (any flavour). The socket
    /// is listening when this returns, so requests can be sent at once.
    #[expect(
        clippy::unused_async,
        reason = "async in the contract, so starting can later wait for readiness without a breaking change"
    )]
    pub async fn start(config: XanoSimConfig) -> io::Result<Self> {
        let bound = Bound::bind(config.bind)?;
        let base_url =
            Url::parse(&format!("http://{}{BASE_PATH}", bound.addr())).map_err(io::Error::other)?;
        let shared = Shared::new(SimState::new(&config));
        let server = bound.serve(config.workers, shared.clone(), control::routes, routes)?;
        Ok(Self {
            shared,
            base_url,
            server,
        })
    }

    /// Starts with default settings on a fixed address (for a standalone simulator).
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        Self::start(XanoSimConfig {
            bind: addr,
            ..XanoSimConfig::default()
        })
        .await
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(mut self) {
        self.server.stop().await;
    }

    /// The API base, e.g. `http://127.0.0.1:40123/api:meta`, without a trailing slash.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The control API base, e.g. `http://127.0.0.1:40123/__sim`.
    pub fn control_url(&self) -> String {
        self.server.control_url()
    }

    /// The default account's access token.
    pub fn access_token(&self) -> String {
        self.shared.lock().default_access_token.clone()
    }

    pub fn set_page_size(&self, page_size: usize) {
        self.shared.lock().page_size = page_size.max(1);
    }

    /// Adds another account and returns its (random) access token.
    pub fn add_account(&self, account: SimAccount) -> String {
        let mut state = self.shared.lock();
        let state = &mut *state;
        let token = state.store.new_access_token(&mut state.rng);
        state.store.add_account(account, token.clone());
        token
    }

    /// Adds (or replaces, by name) an instance of the default account.
    pub fn add_instance(&self, instance: SimInstance) {
        let mut state = self.shared.lock();
        let account = state.default_account;
        state.store.add_instance(account, instance);
    }

    /// Adds an instance to the account holding `access_token`; false if no account holds it.
    pub fn add_instance_for(&self, access_token: &str, instance: SimInstance) -> bool {
        let mut state = self.shared.lock();
        let Some(account) = state.store.account_of(access_token) else {
            return false;
        };
        state.store.add_instance(account, instance);
        true
    }

    /// Adds a snippet owned by the default account, `install_access` `public`. A canonical that
    /// exists already is left as it is.
    pub fn add_snippet(&self, canonical: &str, name: &str) {
        let mut state = self.shared.lock();
        let account = state.default_account;
        state
            .store
            .add_snippet(account, canonical, name, Utc::now());
    }

    /// Adds a snippet owned by the account holding `access_token`; false if no account holds it.
    pub fn add_snippet_for(&self, access_token: &str, canonical: &str, name: &str) -> bool {
        let mut state = self.shared.lock();
        let Some(account) = state.store.account_of(access_token) else {
            return false;
        };
        state
            .store
            .add_snippet(account, canonical, name, Utc::now());
        true
    }

    /// Deletes a snippet (and its tokens), as its creator can at Xano; false if there was none.
    pub fn remove_snippet(&self, canonical: &str) -> bool {
        self.shared.lock().store.remove_snippet(canonical)
    }

    /// Gives the default account another access token (valid) and returns it, as creating a second
    /// token in Xano's *Manage Access Tokens* does: both see the same snippets, each can be
    /// expired or revoked on its own (a rotation).
    pub fn add_access_token(&self) -> String {
        let token = self.access_token();
        self.add_access_token_for(&token).unwrap_or_default()
    }

    /// Like [`XanoSim::add_access_token`] for the account holding `access_token`; `None` if no
    /// account holds it.
    pub fn add_access_token_for(&self, access_token: &str) -> Option<String> {
        let mut state = self.shared.lock();
        let state = &mut *state;
        let account = state.store.account_of(access_token)?;
        let token = state.store.new_access_token(&mut state.rng);
        state.store.add_access_token(account, token.clone());
        Some(token)
    }

    /// Makes the default access token valid, expired (401) or forbidden (403). The account's other
    /// tokens keep their state.
    pub fn set_access_token_state(&self, token_state: TokenState) {
        let mut state = self.shared.lock();
        let state = &mut *state;
        state
            .store
            .set_token_state(&state.default_access_token, token_state);
    }

    /// Like [`XanoSim::set_access_token_state`] for any one access token; false if no account
    /// holds it.
    pub fn set_access_token_state_for(&self, access_token: &str, token_state: TokenState) -> bool {
        self.shared
            .lock()
            .store
            .set_token_state(access_token, token_state)
    }

    /// Makes every call naming `canonical` answer 403 `ERROR_CODE_ACCESS_DENIED` whatever the
    /// access token (its rights were taken away), while other calls go on; `false` lifts it.
    pub fn set_snippet_forbidden(&self, canonical: &str, forbidden: bool) {
        self.shared
            .lock()
            .store
            .set_snippet_forbidden(canonical, forbidden);
    }

    /// Makes every call naming `canonical` answer 404 (deletions of its tokens aside), as if the
    /// snippet were gone for a while, while its tokens are kept; `false` brings it back with them.
    pub fn set_snippet_hidden(&self, canonical: &str, hidden: bool) {
        self.shared
            .lock()
            .store
            .set_snippet_hidden(canonical, hidden);
    }

    /// Cuts the next `count` lists of `canonical`'s tokens to their first `keep` (0: an empty
    /// list), as a Xano incident might; `count` 0 lifts it.
    pub fn truncate_token_lists(&self, canonical: &str, count: u32, keep: usize) {
        self.shared
            .lock()
            .store
            .truncate_token_lists(canonical, count, keep);
    }

    /// How many of `canonical`'s next token lists are still to be cut short.
    pub fn truncations_left(&self, canonical: &str) -> u32 {
        self.shared.lock().store.truncations_left(canonical)
    }

    pub fn snippet(&self, canonical: &str) -> Option<SimSnippet> {
        self.shared.lock().store.snippet_view(canonical)
    }

    /// The snippet's live install tokens in creation order (deleted ones are gone).
    pub fn tokens(&self, canonical: &str) -> Vec<SimToken> {
        self.shared.lock().store.live_tokens(canonical)
    }

    /// Acts as a buyer installing `canonical` with install token `token`; returns the new
    /// `current_installs`.
    pub fn install(&self, canonical: &str, token: &str) -> Result<i64, InstallError> {
        self.shared
            .lock()
            .store
            .install(canonical, token, Utc::now())
    }

    /// Every `/api:meta` request so far, in the order they finished.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// Adds a fault rule after the existing ones: a [`Fault`] for every account, or one narrowed
    /// to an account with [`Fault::for_account`]. An out-of-range value is made usable (see
    /// [`Fault::normalized`]) rather than rejected.
    pub fn inject(&self, rule: impl Into<FaultRule>) {
        self.shared.lock().faults.push(rule.into());
    }

    /// The faults of the rules still in force (used-up counted rules are gone), without their
    /// scope; [`XanoSim::fault_rules`] has it.
    pub fn faults(&self) -> Vec<Fault> {
        self.fault_rules()
            .into_iter()
            .map(|rule| rule.fault)
            .collect()
    }

    /// The rules still in force, each with the account it is narrowed to (if any).
    pub fn fault_rules(&self) -> Vec<FaultRule> {
        self.shared.lock().faults.rules()
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Turns the free-plan limit on or off; either way its window starts afresh.
    pub fn set_free_plan_rate_limit(&self, on: bool) {
        self.shared.lock().limiter.set_enabled(on);
    }
}

/// The Master API under [`BASE_PATH`]; the control API is mounted by [`Bound::serve`].
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope(BASE_PATH).default_service(web::to(api::serve)));
}

// Written by hand: the state holds access tokens, which must not reach a log through `{:?}`.
impl fmt::Debug for XanoSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XanoSim")
            .field("addr", &self.server.addr())
            .finish_non_exhaustive()
    }
}
