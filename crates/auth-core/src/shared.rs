//! The vocabulary of a session shared by several processes (DESIGN.md §7): what a shared store
//! holds, and what its lease, read and compare-and-swap operations answer.
//!
//! A shared store keeps one *record*: a [`StoreVersion`] bumped by every write, the content
//! ([`Stored`]: nothing yet, tokens, or the tombstone of a logout), and the *spent mark*. The
//! session (built with [`crate::Session::shared`]) asks for a lease before any login or refresh
//! ([`crate::Command::Acquire`]); granting a lease marks the record's refresh token as spent in
//! the same atomic step, and only the holder that found it unspent may present it. A holder that
//! crashes, hangs or loses its answer therefore leaves the mark behind, and whoever takes over
//! logs in instead of presenting the token a second time: no refresh token is ever presented
//! twice, whatever the timing (P9). Tokens are written with a compare-and-swap on the version
//! ([`crate::Command::Publish`]), so a late result never overwrites a newer one.
//!
//! A store implementation has four atomic operations, each answering with what it holds:
//!
//! | command | the store does | answer |
//! |---|---|---|
//! | `Acquire { ttl }` | if no live lease: take it for `ttl`, set the spent mark | [`LeaseResult`] |
//! | `Publish { expected, .. }` | if the version is `expected`: write the tokens as `expected + 1`, mark cleared | [`PublishResult`] |
//! | `Release { version, spent }` | if the lease is still ours: drop it; if `!spent` and the version is still `version`: clear the mark | nothing |
//! | `ClearStore` | write the tombstone as version + 1 (over a tombstone too, so a login under way loses its compare-and-swap) | the new record, as [`crate::Input::StoreChanged`] |
//!
//! A driver also feeds [`crate::Input::StoreChanged`] whenever it notices the record changed
//! (a notification or a periodic read), so a logout or a refresh elsewhere reaches this process
//! without waiting for its next lease.

use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::token::TokenSet;

/// How long a session whose lease request found the lease busy waits before asking again. Each
/// answer carries the record, so a waiter adopts the holder's tokens within this delay even
/// without [`crate::Input::StoreChanged`] notifications; one request per waiting process, not
/// per waiting request.
pub const LEASE_RETRY: Duration = Duration::from_millis(20);

/// The version of a shared record: 0 for a store never written, bumped by every write.
///
/// The session compares versions only for equality ("is the record still the one my tokens came
/// from?"), so a store that lost its data and starts again from 0 is recognised as changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreVersion(pub u64);

impl StoreVersion {
    /// The version of a store nobody has written yet.
    pub const EMPTY: StoreVersion = StoreVersion(0);

    /// The version a successful write after this one gets.
    pub const fn next(self) -> StoreVersion {
        StoreVersion(self.0.wrapping_add(1))
    }
}

/// What the shared record holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stored {
    /// Nothing yet (or the store lost its data).
    Empty,
    /// A token set, with its remaining lifetime counted from when the driver read it.
    Tokens(TokenSet),
    /// The tombstone of a logout: no process logs in or refreshes until an explicit login.
    LoggedOut,
}

/// The shared record as a driver read it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observed {
    /// Its version.
    pub version: StoreVersion,
    /// Its content.
    pub content: Stored,
    /// Whether a lease holder may have presented this version's refresh token without writing
    /// the result: then nobody presents it again (the next holder logs in).
    pub spent: bool,
}

impl Observed {
    /// What a store that was never written holds.
    pub const fn empty() -> Observed {
        Observed {
            version: StoreVersion::EMPTY,
            content: Stored::Empty,
            spent: false,
        }
    }
}

/// The answer to [`crate::Command::Acquire`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaseResult {
    /// The lease is this session's until it releases it (or its ttl ends). `Observed` is the
    /// record as it was *before* the grant set the spent mark.
    Granted(Observed),
    /// Another process holds the lease; the record as it is now. The session waits for the
    /// record to change (or the lease to end) instead of refreshing.
    Busy(Observed),
    /// The store could not be reached: a transient failure of the operation.
    Unavailable,
}

/// The answer to [`crate::Command::Publish`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PublishResult {
    /// The tokens were written as the expected version + 1.
    Written,
    /// The record was no longer at the expected version; nothing was written. What it holds.
    Conflict(Observed),
    /// The store could not be reached; nothing is known to be written.
    Unavailable,
}
