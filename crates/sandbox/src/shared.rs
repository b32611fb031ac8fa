//! The one mutex each simulator keeps its state behind, shared by the HTTP workers, background
//! tasks and the simulator's handle. Both simulators lock the same way (poisoning ignored), so the
//! handle is written once, generic over the state.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A cloneable handle on a simulator's state.
pub(crate) struct Shared<T>(Arc<Mutex<T>>);

impl<T> Shared<T> {
    pub(crate) fn new(state: T) -> Self {
        Self(Arc::new(Mutex::new(state)))
    }

    /// Locks the state. A panic while locked (only possible in a test) leaves data that is still
    /// consistent enough for a simulator, so poisoning is ignored rather than spread.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Written by hand: a derive would ask `T: Clone`, and the state is shared, never copied.
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}
