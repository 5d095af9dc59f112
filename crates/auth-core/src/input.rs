//! Everything that can happen to a session: the inputs of the machine.
//!
//! `Input` is serializable because a trace is nothing but inputs with their times.

use serde::{Deserialize, Serialize};

use crate::shared::{LeaseResult, Observed, PublishResult};
use crate::token::TokenSet;

/// Identifies one request for its whole life. Assigned by the session: the submit counter
/// ([`RequestId::sequence`]) with the request's table slot packed into the low bits, so lookups
/// are O(1) and an id is never reused. Treat the number as opaque.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

impl RequestId {
    /// The submit counter: 1 for the session's first request, 2 for the next, ...
    pub const fn sequence(self) -> u64 {
        self.0 >> crate::requests::SLOT_BITS
    }
}

impl core::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RequestId(#{})", self.sequence())
    }
}

impl core::fmt::Display for RequestId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.sequence())
    }
}

/// Identifies one login or refresh operation. A result carrying any other id is ignored (rule 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub u64);

/// Numbers each token set the session adopts, so a late 401 for an older set is recognised
/// (rule 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Generation(pub u64);

/// Whether a request carries the session's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Auth {
    /// Sent with the access token; waits for the session when there is none.
    Bearer,
    /// One of the configured public endpoints: never waits, never carries a token.
    Public,
}

/// Whether a rejected request may be sent again after the session is reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Retry {
    /// Retry after a refresh (within the budget of `Config::max_retries`).
    Allow,
    /// Deliver the 401 as is: the caller opted out of the retry.
    Deny,
}

/// What the driver knows about a request when it is submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestSpec {
    /// Bearer or public.
    pub auth: Auth,
    /// Retry opt-in or opt-out.
    pub retry: Retry,
    /// `false` when the body cannot be sent twice (a stream): its 401 is delivered, never retried.
    pub replayable: bool,
}

impl RequestSpec {
    /// An authenticated, retryable, replayable request: the common case.
    pub const fn bearer() -> Self {
        RequestSpec {
            auth: Auth::Bearer,
            retry: Retry::Allow,
            replayable: true,
        }
    }

    /// A request to a public endpoint.
    pub const fn public() -> Self {
        RequestSpec {
            auth: Auth::Public,
            retry: Retry::Allow,
            replayable: true,
        }
    }

    /// The same request, opted out of the retry.
    pub const fn no_retry(mut self) -> Self {
        self.retry = Retry::Deny;
        self
    }

    /// The same request, marked as having a body that cannot be sent twice.
    pub const fn not_replayable(mut self) -> Self {
        self.replayable = false;
        self
    }
}

/// How the API answered a request, classified by [`crate::Verdict::classify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// Anything that is not an auth rejection, including 403 `insufficient_scope`: delivered as is.
    Accepted,
    /// 401 with `invalid_token` or no error code (RFC 6750 §3): the token is bad.
    Rejected,
}

/// Why a silent login failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LoginFailure {
    /// Network trouble, 5xx, timeout: worth retrying with backoff.
    Transient,
    /// The platform or backend refused for good (e.g. the user must bind a phone number).
    Fatal,
}

/// Why a refresh failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RefreshFailure {
    /// Network trouble, 5xx, timeout: worth retrying with backoff.
    Transient,
    /// The refresh token is dead (`invalid_grant`): fall back to silent login.
    InvalidGrant,
}

/// One thing that happened, fed to [`crate::Session::handle`] with the time it happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Input {
    /// The app issued a request. The session assigns it the next [`RequestId`].
    Submit(RequestSpec),
    /// The app gave up on a request.
    Cancel(RequestId),
    /// The API answered attempt `attempt` of a request.
    Response {
        /// The request.
        id: RequestId,
        /// Which send this answers (1 for the first), so a duplicate of an old answer is ignored.
        attempt: u16,
        /// How the answer was classified.
        verdict: Verdict,
    },
    /// A silent login finished.
    LoginResult {
        /// The operation it answers.
        op: OpId,
        /// Tokens, or why not.
        result: Result<TokenSet, LoginFailure>,
    },
    /// A refresh finished.
    RefreshResult {
        /// The operation it answers.
        op: OpId,
        /// Tokens, or why not.
        result: Result<TokenSet, RefreshFailure>,
    },
    /// The user logged out.
    Logout,
    /// The app asks for a login (e.g. after the user authorised, or after a logout).
    Login,
    /// A timer may have fired. Spurious calls are harmless.
    Timeout,
    /// A shared store answered [`crate::Command::Acquire`] (shared sessions only).
    Lease {
        /// The operation that asked.
        op: OpId,
        /// Granted, busy or unreachable, with the record read.
        result: LeaseResult,
    },
    /// A shared store answered [`crate::Command::Publish`] (shared sessions only).
    Published {
        /// The operation whose tokens were offered.
        op: OpId,
        /// Written, conflict or unreachable.
        result: PublishResult,
    },
    /// The driver noticed the shared record changed (a notification, a periodic read, or the
    /// answer to its own `ClearStore`). Shared sessions only; a local session ignores it.
    StoreChanged(Observed),
}
