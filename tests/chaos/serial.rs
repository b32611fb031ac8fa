//! One cluster at a time. `cargo test` runs a binary's tests in parallel, and each test here starts
//! three instances, two simulators and an SMTP server on a small machine: two such runs side by
//! side would load it enough to break the timing bounds both state (claimable jobs, settling,
//! payment to token). Every test of the suite takes this lock first.

use tokio::sync::{Mutex, MutexGuard};

static ONE_CLUSTER: Mutex<()> = Mutex::const_new(());

/// Waits until no other test of the suite has a cluster running, and keeps it so while held.
pub async fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    ONE_CLUSTER.lock().await
}
