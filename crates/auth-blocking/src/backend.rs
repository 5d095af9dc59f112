//! What the app's backend does for the session: the silent login and the refresh, as blocking
//! calls.

use std::error::Error as StdError;

use auth_core::{LoginFailure, RefreshFailure, RefreshToken, TokenResponseError, TokenSet};

/// A boxed error from the app's own code (HTTP client, platform SDK...), kept as the source of
/// [`LoginError`] and [`RefreshError`] for logs. It must not contain a token.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How the session gets tokens: the app's silent login and the refresh-token grant, as blocking
/// calls.
///
/// The driver runs each call on a thread of its own, at most one login or refresh at a time
/// (single flight), and gives it `Config::operation_timeout`: a call that takes longer counts as
/// a transient failure and its late result is ignored. Bound your HTTP calls by about that much
/// (e.g. ureq's `timeout_global`) so a hung server does not keep threads around.
///
/// For a token endpoint answer, `From<TokenResponseError>` classifies the failure with
/// auth-core's rules; [`crate::ureq::TokenEndpoint`] does the whole exchange.
pub trait Backend: Send + Sync + 'static {
    /// Silent login: get a one-time platform code (a mini-program's `login()`, a device code, a
    /// client-credentials grant...) and exchange it on the backend for tokens. No user action.
    fn login(&self) -> Result<TokenSet, LoginError>;

    /// Exchanges the refresh token for new tokens (RFC 6749 §6). A server that rotates refresh
    /// tokens returns the new one in the [`TokenSet`].
    fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError>;

    /// Revokes the refresh token at the server (RFC 7009), on logout when
    /// `Config::revoke_on_logout` is set. Best effort: the default does nothing.
    fn revoke(&self, refresh_token: &RefreshToken) {
        let _ = refresh_token;
    }
}

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
