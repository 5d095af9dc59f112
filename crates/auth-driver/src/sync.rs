//! The synchronization primitives of the driver core: std's, or loom's under `--cfg loom`, so
//! the loom tests explore every interleaving of the real code.

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`. A panic while the lock was held (a bug in a waker or in the state hook) leaves
/// the state whole: every mutation under the lock completes before anything that can panic runs,
/// so a poisoned lock is taken over rather than propagated to every caller.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(loom)]
    {
        #[allow(clippy::unwrap_used)] // loom never poisons: a panic ends the model run.
        mutex.lock().unwrap()
    }
    #[cfg(not(loom))]
    {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
