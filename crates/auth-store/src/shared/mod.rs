//! Stores that several processes share one session through (auth-core's shared sessions,
//! DESIGN.md §7): one record with a version, a lease, and the spent mark.
//!
//! The session machine decides everything ([`auth_core::Session::shared`]); a store only carries
//! out four atomic operations and says what it holds. Every backend (memory, file, Redis) has the
//! same semantics, written down once here and checked by one conformance suite:
//!
//! - [`SharedStore::acquire`]: if no live lease exists (none, or its ttl ran out), the caller's
//!   `owner` takes it for `ttl` **and the record's spent mark is set, in the same atomic step**;
//!   the answer carries the record as it was *before* the mark was set. Otherwise `Busy` with the
//!   record as it is.
//! - [`SharedStore::publish`]: if the record's version is `expected`, write the tokens as
//!   `expected + 1` with the mark cleared, else `Conflict` with the record. The lease is not
//!   checked: the version is the guard, so an older token set never overwrites a newer one.
//! - [`SharedStore::release`]: if the lease is still `owner`'s and live, drop it, and when
//!   `spent` is `false` and the version is still `version`, clear the mark. A lease that is no
//!   longer the owner's is left alone (it expired and was taken over), and so is one past its
//!   ttl that nobody took yet: an expired lease is nobody's, so a late release changes nothing,
//!   not even the mark (as in a store that drops a lease at its ttl).
//! - [`SharedStore::logout`]: write the tombstone as version + 1 with the mark cleared (a
//!   tombstone holds no token to spend) and answer with the record, **every time**, over a
//!   tombstone too: a login granted on the earlier tombstone then loses its compare-and-swap, so a
//!   logout reported done is never undone by a login that was under way. Leases are left alone.
//!
//! A lease is not re-entrant: while it is live, an acquire by its own owner is `Busy` too.
//!
//! Versions start at 0 for a store never written. A store that loses its data (a Redis restart
//! without persistence) starts again from an empty record at 0: the session recognises the
//! change and logs in rather than presenting a refresh token whose history was lost.
//!
//! Backends: [`MemorySharedStore`] (one process: tests, threads), [`SharedFileStore`] (the
//! processes of one host, one file) and `auth_redis`'s (a fleet). The checks of the semantics
//! above are `auth_store::shared::conformance`, built with the crate's `conformance` feature;
//! every backend's tests run them.
//!
//! Errors are [`SharedStoreError`]: the session treats every one as the store being unavailable
//! (a transient failure of the operation that needed it), never as permission to refresh without
//! the lease.

mod file;
mod format;
mod lock;
mod memory;
mod state;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use file::{SharedFileStore, DEFAULT_LOCK_WAIT};
pub use memory::MemorySharedStore;

use std::time::Duration;

use auth_core::{
    LeaseResult, Observed, PublishResult, Snapshot, SnapshotError, StoreVersion, Stored, TokenSet,
    UnixTime,
};

/// What the shared record holds, as stored (tokens with their wall-clock expiry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordContent {
    /// Nothing yet.
    Empty,
    /// The session's tokens.
    Tokens(Snapshot),
    /// The tombstone of a logout.
    LoggedOut,
}

/// The shared record: version, content and spent mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Bumped by every write; 0 for a store never written.
    pub version: StoreVersion,
    /// What it holds.
    pub content: RecordContent,
    /// A lease holder may have presented this version's refresh token without writing the
    /// result.
    pub spent: bool,
}

impl Record {
    /// The record of a store never written.
    pub const fn empty() -> Record {
        Record {
            version: StoreVersion::EMPTY,
            content: RecordContent::Empty,
            spent: false,
        }
    }

    /// The record as the session sees it: token lifetimes counted from `wall_now` (read by the
    /// caller together with the monotonic time it feeds the session).
    pub fn observe(&self, wall_now: UnixTime) -> Observed {
        let content = match &self.content {
            RecordContent::Empty => Stored::Empty,
            RecordContent::LoggedOut => Stored::LoggedOut,
            RecordContent::Tokens(snapshot) => {
                Stored::Tokens(stored_tokens(snapshot.clone(), wall_now))
            }
        };
        Observed {
            version: self.version,
            content,
            spent: self.spent,
        }
    }
}

/// Who holds a lease: unique per process and operation (the drivers use a random process id and
/// the operation id), so a late release never drops someone else's lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseOwner(pub String);

/// The answer to [`SharedStore::acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is the caller's; the record before the mark was set.
    Granted(Record),
    /// Another owner holds a live lease; the record as it is.
    Busy(Record),
}

impl Acquired {
    /// The session's input for this answer.
    pub fn observe(&self, wall_now: UnixTime) -> LeaseResult {
        match self {
            Acquired::Granted(record) => LeaseResult::Granted(record.observe(wall_now)),
            Acquired::Busy(record) => LeaseResult::Busy(record.observe(wall_now)),
        }
    }
}

/// The answer to [`SharedStore::publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// Written as the expected version + 1.
    Written,
    /// The record was at another version; nothing written. The record.
    Conflict(Record),
}

impl Published {
    /// The session's input for this answer.
    pub fn observe(&self, wall_now: UnixTime) -> PublishResult {
        match self {
            Published::Written => PublishResult::Written,
            Published::Conflict(record) => PublishResult::Conflict(record.observe(wall_now)),
        }
    }
}

/// Why a shared store could not answer, by what the caller can do. The session treats each as
/// the store being unavailable: a transient failure, retried within its deadlines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedStoreError {
    /// The store could not be reached or did not answer in time (network, server down, disk):
    /// retry later.
    #[error("the shared store is unavailable: {0}")]
    Unavailable(String),
    /// The stored record is not one this release can read: clear it (the session then logs in).
    #[error("the shared record is unreadable: {0}")]
    Unreadable(#[from] SnapshotError),
}

/// A store several processes share one session through. Blocking calls: the blocking driver
/// calls them directly, the async driver on its blocking pool. Each call must return within the
/// store's own timeout (a hung store is an [`SharedStoreError::Unavailable`], never a hang).
pub trait SharedStore: Send + Sync + 'static {
    /// The record as it is.
    fn read(&self) -> Result<Record, SharedStoreError>;

    /// Takes the lease for `owner` for `ttl` if nobody holds a live one, setting the spent mark.
    fn acquire(&self, owner: &LeaseOwner, ttl: Duration) -> Result<Acquired, SharedStoreError>;

    /// Writes `snapshot` as `expected + 1` if the record is still at `expected`.
    fn publish(
        &self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> Result<Published, SharedStoreError>;

    /// Gives `owner`'s lease back; with `spent: false` also clears the mark of `version`.
    fn release(
        &self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
    ) -> Result<(), SharedStoreError>;

    /// Writes the tombstone of a logout and returns the record.
    fn logout(&self) -> Result<Record, SharedStoreError>;
}

/// Stored tokens as the session takes them: their remaining lifetime is counted from
/// `wall_now`, so expired ones get zero and are refreshed before use.
fn stored_tokens(stored: Snapshot, wall_now: UnixTime) -> TokenSet {
    TokenSet {
        access_token: stored.access_token,
        refresh_token: stored.refresh_token,
        expires_in: stored
            .expires_at
            .map(|at| Duration::from_millis(at.as_millis().saturating_sub(wall_now.as_millis()))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use auth_core::{AccessToken, RefreshToken};

    use super::*;

    fn stored(refresh: Option<&str>, expires_at: Option<u64>) -> Snapshot {
        Snapshot {
            access_token: AccessToken::new("at-stored"),
            refresh_token: refresh.map(RefreshToken::new),
            expires_at: expires_at.map(UnixTime::from_millis),
        }
    }

    #[test]
    fn stored_tokens_keep_their_remaining_lifetime() {
        let now = UnixTime::from_millis(1_000_000);
        let tokens = stored_tokens(stored(Some("rt-2"), Some(1_060_000)), now);
        assert_eq!(tokens.access_token.expose_secret(), "at-stored");
        assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "rt-2");
        assert_eq!(tokens.expires_in, Some(Duration::from_secs(60)));
        let expired = stored_tokens(stored(Some("rt-2"), Some(999_000)), now);
        assert_eq!(expired.expires_in, Some(Duration::ZERO));
        assert_eq!(stored_tokens(stored(None, None), now).expires_in, None);
    }
}
