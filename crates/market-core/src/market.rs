//! [`Market`]: what the domain needs from the outside world, bundled once at start-up.

use sqlx::PgPool;

use crate::JobsConfig;

/// The database, the Xano client and the workers' tuning. Cheap to clone (all three are handles).
#[derive(Clone, Debug)]
pub struct Market {
    pub db: PgPool,
    pub xano: master_api::Client,
    pub jobs: JobsConfig,
}

impl Market {
    pub fn new(db: PgPool, xano: master_api::Client, jobs: JobsConfig) -> Self {
        Self { db, xano, jobs }
    }
}
