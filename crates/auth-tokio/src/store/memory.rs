//! A store that keeps the encoded snapshot in memory: for tests, and for apps that must not
//! write tokens to disk.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use auth_core::Snapshot;
use zeroize::Zeroizing;

use super::{StoreError, TokenStore};

/// An in-memory [`TokenStore`]. Clones share the same slot, so a test can keep one and hand the
/// other to the driver, and a "restart" can build a new session from the same store.
///
/// It stores the encoded bytes (wiped when replaced), so it exercises the same format as the
/// [`super::FileStore`].
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    bytes: Mutex<Option<Zeroizing<Vec<u8>>>>,
    saves: AtomicU64,
    clears: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A store holding `snapshot`, as if a previous run had saved it.
    pub fn with_snapshot(snapshot: &Snapshot) -> Self {
        let store = MemoryStore::new();
        *store.slot() = Some(snapshot.encode());
        store
    }

    /// The stored session, if any (decoded; `None` when empty or unreadable).
    pub fn snapshot(&self) -> Option<Snapshot> {
        let slot = self.slot();
        slot.as_ref().and_then(|bytes| Snapshot::decode(bytes).ok())
    }

    /// How many times the driver saved a session.
    pub fn saves(&self) -> u64 {
        self.inner.saves.load(Ordering::SeqCst)
    }

    /// How many times the driver cleared the store.
    pub fn clears(&self) -> u64 {
        self.inner.clears.load(Ordering::SeqCst)
    }

    fn slot(&self) -> MutexGuard<'_, Option<Zeroizing<Vec<u8>>>> {
        // A panic while holding this lock cannot leave the slot half-written: it holds one value.
        self.inner
            .bytes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for MemoryStore {
    /// Never shows the stored bytes: they hold the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("holds_session", &self.slot().is_some())
            .field("saves", &self.saves())
            .field("clears", &self.clears())
            .finish()
    }
}

impl TokenStore for MemoryStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let slot = self.slot();
        match slot.as_ref() {
            None => Ok(None),
            Some(bytes) => Ok(Some(Snapshot::decode(bytes)?)),
        }
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        *self.slot() = Some(snapshot.encode());
        self.inner.saves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        *self.slot() = None;
        self.inner.clears.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
