//! Everything the simulator knows, behind one mutex shared by the HTTP workers and the
//! [`XanoSim`](super::XanoSim) handle.
//!
//! Locking rule: take the lock, do synchronous work, let go. Nothing awaits while holding it
//! (delays and stalls are decided under the lock and slept outside it).

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::calls::CallRecord;
use super::config::XanoSimConfig;
use super::fault_engine::FaultRules;
use super::rate_limit::FreePlanLimiter;
use super::store::Store;

pub(crate) struct SimState {
    pub(crate) store: Store,
    /// Index of the account `XanoSimConfig` created and [`XanoSim::access_token`] returns.
    ///
    /// [`XanoSim::access_token`]: super::XanoSim::access_token
    pub(crate) default_account: usize,
    pub(crate) default_access_token: String,
    pub(crate) page_size: usize,
    pub(crate) faults: FaultRules,
    pub(crate) limiter: FreePlanLimiter,
    pub(crate) calls: Vec<CallRecord>,
    pub(crate) rng: StdRng,
    /// When the simulator started; the zero point of times sent over the control API.
    pub(crate) epoch: Instant,
}

impl SimState {
    pub(crate) fn new(config: &XanoSimConfig) -> Self {
        let mut rng = config
            .seed
            .map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64);
        let mut store = Store::default();
        let default_access_token = config
            .access_token
            .clone()
            .unwrap_or_else(|| store.new_access_token(&mut rng));
        let default_account =
            store.add_account(config.account.clone(), default_access_token.clone());
        Self {
            store,
            default_account,
            default_access_token,
            page_size: config.page_size.max(1),
            faults: FaultRules::default(),
            limiter: FreePlanLimiter::new(config.free_plan_rate_limit, config.free_plan_policy),
            calls: Vec::new(),
            rng,
            epoch: Instant::now(),
        }
    }

    /// The account an optional access token names: the default account when none is given.
    pub(crate) fn account_or_default(&self, access_token: Option<&str>) -> Option<usize> {
        match access_token {
            Some(token) => self.store.account_of(token),
            None => Some(self.default_account),
        }
    }
}

/// The shared handle on [`SimState`].
pub(crate) type Shared = crate::shared::Shared<SimState>;
