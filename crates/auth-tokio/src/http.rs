//! HTTP glue of the integrations: the shared pieces from `auth-http` ([`Scope`], [`verdict`],
//! [`RequestOptions`], the rejection [`Classifier`]s) and the integrations' [`Error`].

use auth_core::RequestError;
pub use auth_http::{
    verdict, BodyCode, BodyCodeError, Classifier, Peeked, RequestOptions, Rfc6750, Scope,
    ScopeError, Target,
};

use crate::handle::CallError;
use crate::store::StoreError;

/// The error of an integration (tower, reqwest): the session's, the transport's, or a stopped
/// driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The session refused or gave up on the request; the [`RequestError`] says what the caller
    /// can do (log in again after `LoggedOut`/`LoginRequired`, retry later after `Timeout`,
    /// `AuthUnavailable`, `CircuitOpen`, `QueueFull`).
    #[error(transparent)]
    Session(RequestError),
    /// The transport failed; the request may or may not have reached the server.
    #[error("transport error: {0}")]
    Transport(#[source] E),
    /// The session has stopped ([`crate::SessionHandle::shutdown`], or its runtime shut down).
    #[error("the session driver has stopped")]
    Stopped,
    /// Never from a request: [`crate::SessionHandle::logout`]'s
    /// [`CallError::LogoutNotDurable`] turned into this type (by `?`). Logged out in memory,
    /// but the store still holds the session; call `logout()` again to retry the clear.
    #[error(
        "logged out, but the stored session could not be removed; a restart would sign back in"
    )]
    LogoutNotDurable(#[source] StoreError),
}

impl<E> From<CallError> for Error<E> {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Session(error) => Error::Session(error),
            CallError::Stopped | CallError::TimedOut | CallError::ResponseMissing => Error::Stopped,
            CallError::LogoutNotDurable(error) => Error::LogoutNotDurable(error),
        }
    }
}

impl<E> Error<E> {
    /// The session's reason, if the session failed the request.
    pub fn session(&self) -> Option<RequestError> {
        match self {
            Error::Session(error) => Some(*error),
            _ => None,
        }
    }
}
