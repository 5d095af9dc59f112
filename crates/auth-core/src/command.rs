//! What the session asks its driver to do: the outputs of the machine.

use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::input::{Generation, OpId, RequestId};
use crate::shared::StoreVersion;
use crate::snapshot::Snapshot;
use crate::time::{millis_of, Instant, UnixTime};
use crate::token::{AccessToken, RefreshToken};

/// One instruction for the driver, taken from [`crate::Session::poll`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Command {
    /// Send (or send again) a request.
    Send {
        /// The request.
        id: RequestId,
        /// 1 for the first send, 2 for the retry, ...; the response must carry it back.
        attempt: u16,
        /// The bearer token; `None` for a public request.
        token: Option<AccessToken>,
        /// Which token set `token` belongs to; `None` for a public request.
        generation: Option<Generation>,
    },
    /// Start a silent login, then feed back `Input::LoginResult` with this `op`.
    Login {
        /// The operation id to answer with.
        op: OpId,
    },
    /// Exchange the refresh token, then feed back `Input::RefreshResult` with this `op`.
    Refresh {
        /// The operation id to answer with.
        op: OpId,
        /// The refresh token to exchange.
        refresh_token: RefreshToken,
    },
    /// Store the new tokens durably. Queued requests are released right after this command, so a
    /// driver that can fail to persist must finish persisting before executing what follows.
    Persist(Persist),
    /// Forget the stored session. Emitted on every logout (a repeated one too, so a driver can
    /// retry a clear that failed) and when a silent login fails for good (`LoginRequired`), so a
    /// restart never comes back with tokens the session gave up on.
    ClearStore,
    /// Revoke the refresh token at the server (RFC 7009); emitted on logout when configured.
    Revoke {
        /// The token to revoke.
        refresh_token: RefreshToken,
    },
    /// The request is finished: hand over its response, or fail it.
    Complete {
        /// The request.
        id: RequestId,
        /// What the caller gets.
        outcome: Outcome,
    },
    /// The session changed state; for UIs and event streams.
    Notify(SessionState),
    /// Shared sessions: take the store's lease for `ttl` (setting the spent mark), then feed back
    /// `Input::Lease` with this `op`. Emitted before every login or refresh.
    Acquire {
        /// The operation id to answer with.
        op: OpId,
        /// How long the lease lasts if never released: twice `operation_timeout` (at least one
        /// millisecond), so a holder abandons its operation well before the lease can pass on.
        ttl: Duration,
    },
    /// Shared sessions: write these tokens if the record is still at `expected` (compare-and-swap),
    /// then feed back `Input::Published` with this `op`. The waiting requests go out only after
    /// the answer, with these tokens or with whatever the store holds instead.
    Publish {
        /// The operation whose result this is.
        op: OpId,
        /// The version the lease was granted on.
        expected: StoreVersion,
        /// The tokens, as for [`Command::Persist`].
        persist: Persist,
    },
    /// Shared sessions: give the lease of `op` back (compare-and-delete on its owner). With
    /// `spent: false` the store also clears the spent mark of `version` if it is still current:
    /// this holder set the mark and never presented the refresh token. Nothing is fed back.
    Release {
        /// The operation that holds the lease.
        op: OpId,
        /// The version the lease was granted on.
        version: StoreVersion,
        /// Whether `version`'s refresh token may have been presented (keep the mark).
        spent: bool,
    },
    /// Shared sessions: the session took the tokens another process wrote as this generation.
    /// Nothing to store; for logs and monitors.
    Adopted(Generation),
}

/// What a finished request gives its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Hand the response the driver holds to the caller, as is (including a 401 that was not
    /// retried).
    Deliver,
    /// The request failed without a response the caller can use.
    Fail(RequestError),
}

/// Why a request failed, typed by what the caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The user logged out; log in again (`Input::Login`) before retrying.
    #[error("the user logged out")]
    LoggedOut,
    /// Silent login failed for good; the user must act (e.g. bind a phone number), then `Login`.
    #[error("silent login failed for good; the user must log in")]
    LoginRequired,
    /// The caller cancelled the request.
    #[error("the request was cancelled")]
    Cancelled,
    /// Too many requests were already waiting for the session; retry later.
    #[error("too many requests are waiting for the session")]
    QueueFull,
    /// The request waited longer than the queue timeout for the session.
    #[error("the request waited too long for the session")]
    Timeout,
    /// Login or refresh kept failing transiently (network, 5xx, deadline); a later request tries
    /// again.
    #[error("the auth server is unavailable after {attempts} attempts")]
    AuthUnavailable {
        /// How many operations were attempted.
        attempts: u32,
    },
    /// About a million requests are already outstanding; the session refuses more.
    #[error("too many requests are outstanding")]
    TooManyOutstanding,
    /// The circuit breaker is open after repeated failures; nothing is attempted until it closes.
    #[error("the auth server is failing; not retrying until the cool-down ends")]
    CircuitOpen,
    /// Shared sessions: the shared store (lease and tokens) kept failing to answer; a later
    /// request tries again. Requests that did not need new tokens were not affected.
    #[error("the shared session store is unavailable after {attempts} attempts")]
    StoreUnavailable {
        /// How many operations were attempted.
        attempts: u32,
    },
}

/// The session's externally visible state (DESIGN.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SessionState {
    /// No tokens yet.
    Anonymous,
    /// A silent login is in flight (or waiting for its backoff).
    LoggingIn,
    /// Tokens are held and not known to be bad.
    Active,
    /// A refresh is in flight (or waiting for its backoff).
    Refreshing,
    /// The user logged out; nothing happens by itself until `Login`.
    LoggedOut,
    /// Silent login failed for good.
    LoginRequired,
}

/// New tokens to store, emitted before any request is sent with them (rule 3, P7).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persist {
    /// The generation these tokens got.
    pub generation: Generation,
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token, if any.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires on the driver's monotonic clock.
    pub expires_at: Option<Instant>,
}

impl Persist {
    /// The snapshot to write to the store. `now` and `wall_now` are read together by the driver
    /// so that the monotonic expiry becomes a wall-clock one that survives a restart.
    pub fn snapshot(&self, now: Instant, wall_now: UnixTime) -> Snapshot {
        let expires_at = self.expires_at.map(|at| {
            let left: Duration = at.saturating_since(now);
            UnixTime::from_millis(wall_now.as_millis().saturating_add(millis_of(left)))
        });
        Snapshot {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            expires_at,
        }
    }
}
