//! The errors a backend's silent login and refresh report, classified by what the session does
//! next. Shared by the async and the blocking `Backend` traits.

use std::error::Error as StdError;

use auth_core::{LoginFailure, RefreshFailure, TokenResponseError};

/// A boxed error from the app's own code (HTTP client, platform SDK...), kept as the source of
/// [`LoginError`] and [`RefreshError`] for logs. It must not contain a token.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a silent login failed, by what the session does next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Network trouble, 5xx, timeout: the session retries with backoff.
    #[error("silent login failed, will retry: {0}")]
    Transient(#[source] BoxError),
    /// The platform or backend refused for good (e.g. the user must bind a phone number): the
    /// session goes to `LoginRequired` and waits for an explicit login.
    #[error("silent login refused: {0}")]
    Refused(#[source] BoxError),
}

/// Why a refresh failed, by what the session does next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// Network trouble, 5xx, timeout: the session retries with backoff.
    #[error("refresh failed, will retry: {0}")]
    Transient(#[source] BoxError),
    /// The refresh token is dead (`invalid_grant`): the session falls back to silent login.
    #[error("refresh token refused: {0}")]
    InvalidGrant(#[source] BoxError),
}

impl LoginError {
    /// The core's view of this failure.
    pub fn failure(&self) -> LoginFailure {
        match self {
            LoginError::Transient(_) => LoginFailure::Transient,
            LoginError::Refused(_) => LoginFailure::Fatal,
        }
    }
}

impl RefreshError {
    /// The core's view of this failure.
    pub fn failure(&self) -> RefreshFailure {
        match self {
            RefreshError::Transient(_) => RefreshFailure::Transient,
            RefreshError::InvalidGrant(_) => RefreshFailure::InvalidGrant,
        }
    }
}

impl From<TokenResponseError> for LoginError {
    /// Classified by [`TokenResponseError::login_failure`].
    fn from(error: TokenResponseError) -> Self {
        match error.login_failure() {
            LoginFailure::Fatal => LoginError::Refused(Box::new(error)),
            LoginFailure::Transient => LoginError::Transient(Box::new(error)),
        }
    }
}

impl From<TokenResponseError> for RefreshError {
    /// Classified by [`TokenResponseError::refresh_failure`].
    fn from(error: TokenResponseError) -> Self {
        match error.refresh_failure() {
            RefreshFailure::InvalidGrant => RefreshError::InvalidGrant(Box::new(error)),
            RefreshFailure::Transient => RefreshError::Transient(Box::new(error)),
        }
    }
}

/// Why a call to an RFC 6749 token endpoint failed, for a client whose transport error is `E`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenEndpointError<E> {
    /// The request did not get an answer (connection refused, reset, timeout): transient.
    #[error("token endpoint unreachable: {0}")]
    Transport(#[source] E),
    /// The endpoint answered with something other than tokens; classified by auth-core.
    #[error(transparent)]
    Response(#[from] TokenResponseError),
    /// The endpoint answered with a redirect (3xx). It is never followed, so no credential
    /// reaches another URL. Transient for the session (retried with backoff); one that lasts
    /// means the configured endpoint URL is wrong. The server-chosen `Location` is not kept.
    #[error("token endpoint answered with a redirect (HTTP {status}), not followed")]
    Redirect {
        /// The HTTP status (301, 302, 303, 307, 308...).
        status: u16,
    },
}

impl<E: StdError + Send + Sync + 'static> From<TokenEndpointError<E>> for LoginError {
    /// Unreachable is transient; an answer is classified by auth-core.
    fn from(error: TokenEndpointError<E>) -> Self {
        match error {
            TokenEndpointError::Response(error) => error.into(),
            transport => LoginError::Transient(Box::new(transport)),
        }
    }
}

impl<E: StdError + Send + Sync + 'static> From<TokenEndpointError<E>> for RefreshError {
    /// Unreachable is transient; an answer is classified by auth-core.
    fn from(error: TokenEndpointError<E>) -> Self {
        match error {
            TokenEndpointError::Response(error) => error.into(),
            transport => RefreshError::Transient(Box::new(transport)),
        }
    }
}
