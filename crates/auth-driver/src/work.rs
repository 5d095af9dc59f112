//! What the driver core hands out: [`Step`]s to callers and [`Work`] to the runtime.

use core::fmt;
use core::time::Duration;

use auth_core::{AccessToken, OpId, Outcome, Persist, RefreshToken, StoreVersion};
use auth_store::StoreError;

/// What one caller does next.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send the request (again) with this token (`None` for a public request), then answer with
    /// [`crate::Core::respond`] and this attempt number.
    Send {
        /// 1 for the first send, 2 for the retry after a refresh, ...
        attempt: u16,
        /// The bearer token; `None` for a public request.
        token: Option<AccessToken>,
    },
    /// The request is finished: hand over the response held for it, or fail it.
    Done(Outcome),
    /// The driver stopped ([`crate::Core::stop`]); the request is abandoned.
    Stopped,
}

/// Names one `logout()` call, so it hears the result of its own clear of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogoutTicket(pub(crate) u64);

/// Why a logout is not known to be durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// The session in memory is logged out, but the store could not be cleared: a restart
    /// would bring the session back. Log out again to retry the clear.
    #[error("logged out, but the stored session could not be cleared: {0}")]
    NotDurable(#[source] StoreError),
    /// The driver stopped before the store was cleared.
    #[error("the session driver has stopped")]
    Stopped,
}

/// Work for the runtime, taken with [`crate::Core::take_work`] in the order the session emitted
/// it. `Login`, `Refresh` and `Revoke` are started (on a task or thread of their own) and their
/// results fed back with [`crate::Core::login_done`] / [`crate::Core::refresh_done`]; `Persist`
/// and `ClearStore` of a local store are carried out in order, each finished and reported before
/// the next work is taken.
///
/// A shared session (auth-core's `Session::shared`) never persists: it asks for the store's lease
/// before every login or refresh (`Acquire`), offers new tokens by compare-and-swap (`Publish`)
/// and gives the lease back (`Release`). A runtime runs each of these, and the `ClearStore` of a
/// shared store, as a call of its own bounded by the operation deadline
/// ([`crate::SharedLink::call`] turns the work into that call and its answer into the core's
/// input); their order does not matter for safety, since every store operation is atomic and the
/// session checks every answer against its current operation.
#[non_exhaustive]
pub enum Work {
    /// Start a silent login; answer with [`crate::Core::login_done`].
    Login {
        /// The operation id to answer with.
        op: OpId,
    },
    /// Exchange the refresh token; answer with [`crate::Core::refresh_done`].
    Refresh {
        /// The operation id to answer with.
        op: OpId,
        /// The token to exchange.
        refresh_token: RefreshToken,
    },
    /// Revoke a refresh token at the server (RFC 7009); best effort, nothing to report.
    Revoke {
        /// The token to revoke.
        refresh_token: RefreshToken,
    },
    /// Store the new tokens durably, then report with [`crate::Core::persisted`] (whether it
    /// worked or not): the requests that will carry these tokens are held until then.
    Persist {
        /// The tokens.
        persist: Persist,
    },
    /// Forget the stored session, then report with [`crate::Core::cleared`]. On a shared store:
    /// write the logout's tombstone, feed the record it answers with to
    /// [`crate::Core::store_changed`], then report with [`crate::Core::cleared`].
    ClearStore {
        /// The logout waiting for this clear, if any.
        logout: Option<LogoutTicket>,
    },
    /// Shared sessions: take the store's lease for `ttl` (the store sets the spent mark in the
    /// same step); answer with [`crate::Core::lease_done`].
    Acquire {
        /// The operation id to answer with (and to name the lease's owner by).
        op: OpId,
        /// How long the lease lasts if never released.
        ttl: Duration,
    },
    /// Shared sessions: write these tokens if the record is still at `expected`
    /// (compare-and-swap); answer with [`crate::Core::published`]. The requests that will carry
    /// them wait in the session until the answer.
    Publish {
        /// The operation whose result these tokens are.
        op: OpId,
        /// The version the lease was granted on.
        expected: StoreVersion,
        /// The tokens, as for [`Work::Persist`].
        persist: Persist,
    },
    /// Shared sessions: give the lease of `op` back; nothing to report (a release that fails
    /// leaves the lease to expire by its ttl).
    Release {
        /// The operation that holds the lease.
        op: OpId,
        /// The version the lease was granted on.
        version: StoreVersion,
        /// Whether that version's refresh token may have been presented (the store keeps the
        /// spent mark).
        spent: bool,
    },
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Login { op } => f.debug_struct("Login").field("op", op).finish(),
            Work::Refresh { op, .. } => f.debug_struct("Refresh").field("op", op).finish(),
            Work::Revoke { .. } => f.write_str("Revoke"),
            Work::Persist { persist } => f
                .debug_struct("Persist")
                .field("generation", &persist.generation)
                .finish(),
            Work::ClearStore { logout } => f
                .debug_struct("ClearStore")
                .field("logout", logout)
                .finish(),
            Work::Acquire { op, ttl } => f
                .debug_struct("Acquire")
                .field("op", op)
                .field("ttl", ttl)
                .finish(),
            Work::Publish {
                op,
                expected,
                persist,
            } => f
                .debug_struct("Publish")
                .field("op", op)
                .field("expected", expected)
                .field("generation", &persist.generation)
                .finish(),
            Work::Release { op, version, spent } => f
                .debug_struct("Release")
                .field("op", op)
                .field("version", version)
                .field("spent", spent)
                .finish(),
        }
    }
}
