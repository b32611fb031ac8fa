//! What every phase of the run needs, borrowed from `lib.rs`'s set-up.

use std::path::Path;
use std::time::Instant;

use sandbox::stripe::StripeSim;
use sandbox::xano::XanoSim;

use crate::Plan;
use crate::server::ServerConfig;

/// What every phase needs.
pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub config: &'a ServerConfig,
    pub xano: &'a XanoSim,
    pub stripe: &'a StripeSim,
    pub webhook_secret: &'a str,
    pub admin_token: &'a str,
    pub database_url: &'a str,
    pub db_name: &'a str,
    pub work_dir: &'a Path,
    pub begun: Instant,
}
