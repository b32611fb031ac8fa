//! How a simulator starts: where it listens and what the default account looks like.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use super::model::SimAccount;
use super::rate_limit::FreePlanPolicy;

/// Settings for [`XanoSim::start`](super::XanoSim::start). `Default` gives a loopback listener on
/// a free port, one account with a random access token, 50 snippets per page and no limits.
#[derive(Clone)]
pub struct XanoSimConfig {
    /// Where to listen; port 0 picks a free port. A standalone simulator sets a fixed address.
    pub bind: SocketAddr,
    /// The default account, which [`XanoSim::access_token`](super::XanoSim::access_token) opens.
    pub account: SimAccount,
    /// A fixed access token for the default account (handy for a standalone simulator whose
    /// clients are configured ahead of time); `None` generates a random one.
    pub access_token: Option<String>,
    /// `GET /snippet` page size. The real size is undocumented; 0 is treated as 1.
    pub page_size: usize,
    pub free_plan_rate_limit: bool,
    /// The free-plan limit; tests may shorten the window to watch it slide.
    pub free_plan_policy: FreePlanPolicy,
    /// Seeds token generation and ratio faults, for reproducible runs; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// HTTP worker threads. One is plenty: handlers never block, they only await timers.
    pub workers: usize,
}

impl Default for XanoSimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            account: SimAccount::default(),
            access_token: None,
            page_size: 50,
            free_plan_rate_limit: false,
            free_plan_policy: FreePlanPolicy::default(),
            seed: None,
            workers: 1,
        }
    }
}

// Written by hand so a fixed access token never reaches a log through `{:?}`.
impl fmt::Debug for XanoSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XanoSimConfig")
            .field("bind", &self.bind)
            .field("account", &self.account)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[redacted]"),
            )
            .field("page_size", &self.page_size)
            .field("free_plan_rate_limit", &self.free_plan_rate_limit)
            .field("free_plan_policy", &self.free_plan_policy)
            .field("seed", &self.seed)
            .field("workers", &self.workers)
            .finish()
    }
}
