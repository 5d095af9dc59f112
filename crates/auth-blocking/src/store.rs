//! Where the session's tokens live between runs: the blocking [`TokenStore`] trait, a
//! [`MemoryStore`], and auth-store's [`FileStore`] (crash-safe).
//!
//! A [`TokenStore`] belongs to one process: two processes on one store would each refresh with
//! the same refresh token. Processes that share a session use a shared store instead
//! ([`crate::Builder::shared_store`]).

use std::sync::{Arc, Mutex, MutexGuard};

use auth_core::Snapshot;
pub use auth_store::{FileStore, StoreError};

/// Durable storage of one session's tokens, as blocking calls made by the session's driver.
///
/// The driver finishes [`TokenStore::save`] before any request goes out with the new tokens
/// (auth-core's `Persist` rule), and [`TokenStore::clear`] on logout before `logout()` returns.
pub trait TokenStore: Send + Sync + 'static {
    /// The stored session, or `None` when there is none.
    fn load(&self) -> Result<Option<Snapshot>, StoreError>;

    /// Replaces the stored session atomically: after a crash the store holds the old session or
    /// the new one, never a mix.
    fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// Forgets the stored session. Clearing an empty store succeeds.
    fn clear(&self) -> Result<(), StoreError>;
}

/// auth-store's file store: atomic `fsync`ed writes, `0600`, the versioned snapshot.
impl TokenStore for FileStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        FileStore::load(self)
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        FileStore::save(self, snapshot)
    }

    fn clear(&self) -> Result<(), StoreError> {
        FileStore::clear(self)
    }
}

impl<S: TokenStore> TokenStore for Arc<S> {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        S::load(self)
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        S::save(self, snapshot)
    }

    fn clear(&self) -> Result<(), StoreError> {
        S::clear(self)
    }
}

/// A store in memory: the session survives nothing but lives as long as the store. Clones share
/// the same slot. The default store of [`crate::SessionHandle::builder`].
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    slot: Arc<Mutex<Option<Snapshot>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A store that already holds `snapshot`.
    pub fn with(snapshot: Snapshot) -> Self {
        MemoryStore {
            slot: Arc::new(Mutex::new(Some(snapshot))),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Snapshot>> {
        // A panic while holding the lock cannot leave a half-written `Option`.
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.slot().clone())
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        *self.slot() = Some(snapshot.clone());
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        *self.slot() = None;
        Ok(())
    }
}
