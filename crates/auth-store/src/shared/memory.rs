//! [`MemorySharedStore`]: the shared store of one process, for tests and for sessions shared by
//! threads of one host process.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use auth_core::{Snapshot, StoreVersion};

use super::state::State;
use super::{Acquired, LeaseOwner, Published, Record, SharedStore, SharedStoreError};

/// The longest lease this store keeps track of: longer ttls are cut to it (a year).
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A shared store in memory: one record and one lease behind a mutex, lease lifetimes on the
/// monotonic clock. Clones are handles to the same store, so threads (or the simulated processes
/// of a test) share a session by each holding one. Nothing survives the process.
///
/// Every call answers at once and never fails; it exists so tests of the drivers and of the
/// conformance suite itself need no disk and no server. `Debug` shows the record as the
/// session's vocabulary does (token fingerprints only, never a token).
#[derive(Clone, Debug, Default)]
pub struct MemorySharedStore {
    state: Arc<Mutex<State<Instant>>>,
}

impl Default for State<Instant> {
    fn default() -> Self {
        State::empty()
    }
}

impl MemorySharedStore {
    /// An empty store: [`Record::empty`], no lease.
    pub fn new() -> MemorySharedStore {
        MemorySharedStore::default()
    }

    /// The state, whatever another thread did while holding it: every operation changes it in
    /// one step that cannot panic half way, so a poisoned lock still guards a consistent state.
    fn state(&self) -> MutexGuard<'_, State<Instant>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SharedStore for MemorySharedStore {
    fn read(&self) -> Result<Record, SharedStoreError> {
        Ok(self.state().record.clone())
    }

    fn acquire(&self, owner: &LeaseOwner, ttl: Duration) -> Result<Acquired, SharedStoreError> {
        let now = Instant::now();
        // Capped so the sum cannot overflow; a lease of a year is one that never ends in practice.
        let expires_at = now + ttl.min(MAX_TTL);
        Ok(self.state().acquire(owner, now, expires_at).0)
    }

    fn publish(
        &self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> Result<Published, SharedStoreError> {
        Ok(self.state().publish(expected, snapshot).0)
    }

    fn release(
        &self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
    ) -> Result<(), SharedStoreError> {
        let _ = self.state().release(owner, version, spent, Instant::now());
        Ok(())
    }

    fn logout(&self) -> Result<Record, SharedStoreError> {
        Ok(self.state().logout().0)
    }
}
