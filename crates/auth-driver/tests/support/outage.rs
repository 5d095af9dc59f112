//! [`Outage`]: a shared store that a test can take down and bring back, for the shared-session
//! tests of both drivers (`auth-tokio` and `auth-blocking` include this file with `#[path]`, so
//! the two suites use one helper; it needs only `auth-store`).
//!
//! While down, every call fails at once with `SharedStoreError::Unavailable`, as a Redis that
//! went away would answer a client with a connect timeout; with a hang set, calls first block
//! for that long (a store that stopped answering), to show the driver's own deadline ends the
//! wait. The inner store is untouched meanwhile.
#![allow(dead_code)] // each suite uses its own subset

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Snapshot, StoreVersion};
use auth_store::shared::{Acquired, LeaseOwner, Published, Record, SharedStore, SharedStoreError};

/// `inner`, with a switch that makes it unreachable. Clones share the switch and the store.
#[derive(Clone)]
pub(crate) struct Outage<S> {
    inner: S,
    down: Arc<AtomicBool>,
    /// How long a call blocks before failing while down (milliseconds; 0: fail at once).
    hang_ms: Arc<AtomicU64>,
    /// Calls that failed because the store was down.
    refused: Arc<AtomicUsize>,
    /// Leases asked for, up or down.
    acquires: Arc<AtomicUsize>,
}

impl<S: SharedStore + Clone> Outage<S> {
    /// `inner`, up.
    pub(crate) fn new(inner: S) -> Self {
        Outage {
            inner,
            down: Arc::new(AtomicBool::new(false)),
            hang_ms: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicUsize::new(0)),
            acquires: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes the store down (`true`) or brings it back.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// While down, each call blocks for `hang` before it fails.
    pub(crate) fn set_hang(&self, hang: Duration) {
        let millis = u64::try_from(hang.as_millis()).unwrap_or(u64::MAX);
        self.hang_ms.store(millis, Ordering::SeqCst);
    }

    /// How many calls failed because the store was down.
    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// How many leases were asked for.
    pub(crate) fn acquires(&self) -> usize {
        self.acquires.load(Ordering::SeqCst)
    }

    /// The store behind the switch.
    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }

    fn check(&self) -> Result<(), SharedStoreError> {
        if !self.down.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::SeqCst);
        let hang = self.hang_ms.load(Ordering::SeqCst);
        if hang > 0 {
            std::thread::sleep(Duration::from_millis(hang));
        }
        Err(SharedStoreError::Unavailable(
            "the test took the store down".into(),
        ))
    }
}

impl<S: SharedStore + Clone> SharedStore for Outage<S> {
    fn read(&self) -> Result<Record, SharedStoreError> {
        self.check()?;
        self.inner.read()
    }

    fn acquire(&self, owner: &LeaseOwner, ttl: Duration) -> Result<Acquired, SharedStoreError> {
        self.acquires.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.acquire(owner, ttl)
    }

    fn publish(
        &self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> Result<Published, SharedStoreError> {
        self.check()?;
        self.inner.publish(expected, snapshot)
    }

    fn release(
        &self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
    ) -> Result<(), SharedStoreError> {
        self.check()?;
        self.inner.release(owner, version, spent)
    }

    fn logout(&self) -> Result<Record, SharedStoreError> {
        self.check()?;
        self.inner.logout()
    }
}
