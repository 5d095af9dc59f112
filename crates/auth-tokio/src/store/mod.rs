//! Where the session's tokens live between runs: the [`TokenStore`] trait, a [`MemoryStore`] and
//! a [`FileStore`].
//!
//! Every store holds the bytes of auth-core's versioned [`Snapshot`] format
//! ([`Snapshot::encode`] / [`Snapshot::decode`]). The [`FileStore`] is auth-store's (atomic
//! `fsync`ed writes, `0600`; see its crate documentation for the format and crash guarantees),
//! shared with the blocking driver, so a file written by one driver is read by the other.
//!
//! A [`TokenStore`] belongs to one process: two processes on one store would each refresh with
//! the same refresh token. Processes that share a session use a shared store instead
//! ([`crate::Builder::shared_store`]).

mod file;
mod memory;

use std::future::Future;

use auth_core::Snapshot;

pub use auth_store::FileStore;
pub use memory::MemoryStore;

/// Durable storage of one session's tokens.
///
/// The driver finishes [`TokenStore::save`] before any request goes out with the new tokens
/// (auth-core's `Persist` rule), and [`TokenStore::clear`] on logout before `logout()` returns:
/// a failed clear is `logout()`'s [`crate::CallError::LogoutNotDurable`].
/// The methods may be written as `async fn` in an impl.
pub trait TokenStore: Send + Sync + 'static {
    /// The stored session, or `None` when there is none.
    fn load(&self) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Replaces the stored session, atomically: after a crash the store holds the old session or
    /// the new one, never a mix.
    fn save(&self, snapshot: Snapshot) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets the stored session. Clearing an empty store succeeds.
    fn clear(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Why the store could not be read or written: auth-store's error, shared by every store.
///
/// The driver never fails a request because of the store: on a failed `save` the session goes on
/// with its tokens in memory (they will not survive a restart), and an unreadable store at start
/// counts as empty (the session logs in silently). Only `logout()` reports a store error, when
/// it could not clear the store ([`crate::CallError::LogoutNotDurable`]).
pub use auth_store::StoreError;
