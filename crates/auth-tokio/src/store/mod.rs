//! Where the session's tokens live between runs: the [`TokenStore`] trait, a [`MemoryStore`] and
//! a [`FileStore`].
//!
//! Every store holds the bytes of auth-core's versioned [`Snapshot`] format
//! ([`Snapshot::encode`] / [`Snapshot::decode`]), so a file written by one driver (this one, or
//! the blocking driver) is read by the other.

mod file;
mod memory;

use std::future::Future;
use std::io;

use auth_core::{Snapshot, SnapshotError};

pub use file::FileStore;
pub use memory::MemoryStore;

/// Durable storage of one session's tokens.
///
/// The driver awaits [`TokenStore::save`] before any request goes out with the new tokens
/// (auth-core's `Persist` rule), and [`TokenStore::clear`] on logout before `logout()` returns.
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

/// Why the store could not be read or written.
///
/// The driver never fails a request because of the store: on a failed `save` the session goes on
/// with its tokens in memory (they will not survive a restart), and an unreadable store at start
/// counts as empty (the session logs in silently).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing failed (permissions, disk full, missing directory).
    #[error("token store I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The stored bytes are not a session this release can read (corrupt, truncated, another
    /// format version). Treat the store as empty.
    #[error("stored session is unreadable: {0}")]
    Unreadable(#[from] SnapshotError),
}
