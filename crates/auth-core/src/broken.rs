//! Deliberately broken variants of the machine: the bugs naive implementations have (DESIGN.md
//! §1). They exist only to prove the checks are not vacuous: each must be caught by the property
//! named beside it. The switches act only with the `broken-variants` feature
//! ([`crate::Session::with_bug`]); without it the type exists but nothing can plant a bug.

use serde::{Deserialize, Serialize};

/// A bug to plant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Bug {
    /// A late 401 for an older token generation starts another refresh (caught by P6).
    NoGenerationCheck,
    /// Login/refresh results are accepted whatever their operation id, even after logout
    /// (caught by P3).
    NoOperationIdCheck,
    /// A request arriving during a refresh starts a second refresh (caught by P2).
    SecondRefreshInFlight,
    /// Queued requests go out before the new tokens are persisted (caught by P7).
    ReleaseBeforePersist,
    /// Rejected requests are retried without a budget (caught by P5).
    RetryWithoutBudget,
    /// The retry budget is checked against a send counter that saturates at 255, as a `u8`
    /// counter did: with `max_retries: 255` the budget never runs out (caught by P5 in a world
    /// with that config and an API that rejects every call).
    SaturatingSendCounter,
    /// Shared sessions: logins and refreshes start without the store's lease, so two processes
    /// refresh at once and present one refresh token twice (caught by P9 and P10).
    NoLease,
    /// Shared sessions: the spent mark of a record is ignored, so the process that takes over
    /// from a holder that crashed or hung presents the same refresh token again (caught by P9).
    IgnoreSpentMark,
}
