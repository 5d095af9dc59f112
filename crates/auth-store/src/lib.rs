//! # auth-store: the crash-safe stores of Seamless
//!
//! Two kinds of store, both plain `std` code (no runtime), so the blocking driver calls them
//! directly and an async driver runs them on its blocking pool:
//!
//! - [`FileStore`]: one process's session in one file, the bytes of auth-core's versioned
//!   [`Snapshot`](auth_core::Snapshot). Every driver that stores a session in a file uses this one
//!   implementation, so they agree on the format and the guarantees. The rest of this page is
//!   about it.
//! - [`shared`]: one session shared by several processes (auth-core's
//!   [`Session::shared`](auth_core::Session::shared)): the [`shared::SharedStore`] trait with its
//!   lease, spent mark and compare-and-swap, an in-memory backend, a file backend for the
//!   processes of one host ([`shared::SharedFileStore`]), and (feature `conformance`) the checks
//!   every backend passes, the Redis one of `auth-redis` included.
//!
//! ## Format
//!
//! The file's content is exactly [`Snapshot::encode`](auth_core::Snapshot::encode): versioned JSON
//! (`{"version":1,"access_token":…,"refresh_token":…,"expires_at_unix_ms":…}`, see
//! [`auth_core::SNAPSHOT_VERSION`]). Expiry is wall-clock time so it survives a restart. A file
//! that does not decode (corrupt, truncated, another version) is an [`StoreError::Unreadable`]:
//! treat the store as empty, and the session logs in silently. One size limit,
//! [`MAX_SNAPSHOT_LEN`], holds both ways ([`StoreError::TooLarge`]): [`FileStore::save`] refuses
//! a larger session before writing anything, and [`FileStore::load`] a larger file, so what
//! `save` accepts always loads back. Anything but a regular file at the path (a FIFO, a device,
//! a directory) is [`StoreError::NotRegularFile`] at once: reading never blocks.
//!
//! ## Crash guarantees
//!
//! - [`FileStore::save`] writes a temporary file beside the target (`.<name>.tmp-<pid>-<n>`,
//!   created exclusively, mode `0600`), `fsync`s it, renames it over the target and `fsync`s the
//!   directory. A process killed at any instant leaves the old session or the new one, never a
//!   torn file; when `save` returns, the new session survives a power cut.
//! - A temporary file orphaned by a crash in the middle of a save is removed by a later save or
//!   load once it is a minute old (younger ones may belong to a save under way in another
//!   process; none ever shadows the real file: readers only open the target).
//! - [`FileStore::clear`] removes the file and **every** temporary file of the store, whatever
//!   its age (they hold tokens too), and `fsync`s the directory; a missing file is already
//!   clear. When it returns `Ok`, no file of the store holds a token.
//! - The file is created `0600` and a missing parent directory `0700` (Unix).
//!
//! ## One process
//!
//! A `FileStore` belongs to one process. Processes on one file would each restore the same
//! refresh token and each present it: the server rotates it once and sees every other
//! presentation as a reuse (those processes fall back to a login, or, where reuse revokes the
//! token family, every one of them is signed out). Processes that share one session use
//! [`shared::SharedFileStore`] (one host) or a Redis store (a fleet) with auth-core's shared
//! sessions: one refresh across all of them, decided inside the verified core.
//!
//! ```
//! use auth_core::{AccessToken, RefreshToken, Snapshot};
//! use auth_store::FileStore;
//! # let dir = tempfile::tempdir().unwrap();
//!
//! let store = FileStore::new(dir.path().join("session.json"));
//! assert!(store.load()?.is_none());
//! let snapshot = Snapshot {
//!     access_token: AccessToken::new("access"),
//!     refresh_token: Some(RefreshToken::new("refresh")),
//!     expires_at: None,
//! };
//! store.save(&snapshot)?;
//! assert_eq!(store.load()?, Some(snapshot));
//! store.clear()?;
//! assert!(store.load()?.is_none());
//! # Ok::<(), auth_store::StoreError>(())
//! ```
#![warn(missing_docs, unreachable_pub)]

mod file;
pub mod shared;

use std::io;

use auth_core::SnapshotError;

pub use file::{FileStore, MAX_SNAPSHOT_LEN};

/// Why the store could not be read or written, by what the caller can do.
///
/// A driver never fails a request because of the store: after a failed save the session goes on
/// with its tokens in memory (they will not survive a restart), and an unreadable store at start
/// counts as empty (the session logs in silently).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing failed (permissions, disk full, missing directory): fix the
    /// environment; the operation may be retried.
    #[error("token store I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The stored bytes are not a session this release can read (corrupt, truncated, another
    /// format version): treat the store as empty.
    #[error("stored session is unreadable: {0}")]
    Unreadable(#[from] SnapshotError),
    /// The session is larger than the store keeps ([`MAX_SNAPSHOT_LEN`]). From `save`: nothing
    /// was written (the store still holds what it held); the server issued unusually large
    /// tokens, which live in memory only and do not survive a restart. From `load`: the file is
    /// not one `save` wrote; treat the store as empty.
    #[error("the session is {len} bytes, over the store's limit of {max}")]
    TooLarge {
        /// Length of the encoded session.
        len: usize,
        /// The store's limit, [`MAX_SNAPSHOT_LEN`].
        max: usize,
    },
    /// Something other than a regular file (a FIFO, a device, a directory) is at the session
    /// path; nothing was read. Remove it; until then the store counts as empty.
    #[error("the token store's path is not a regular file")]
    NotRegularFile,
    /// A shared store ([`shared::SharedStore`]) failed, e.g. the tombstone of a logout could not
    /// be written: see the inner error.
    #[error(transparent)]
    Shared(#[from] shared::SharedStoreError),
}
