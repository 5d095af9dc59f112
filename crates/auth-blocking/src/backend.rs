//! What the app's backend does for the session: the silent login and the refresh, as blocking
//! calls.

use auth_core::{RefreshToken, TokenSet};
pub use auth_http::{BoxError, LoginError, RefreshError};

/// How the session gets tokens: the app's silent login and the refresh-token grant, as blocking
/// calls.
///
/// The driver runs each call on a thread of its own, at most one login or refresh at a time
/// (single flight), and gives it `Config::operation_timeout`: a call that takes longer counts as
/// a transient failure and its late result is ignored. The driver stops waiting at that deadline
/// whatever the call does, so a hung call never holds up the session or its shutdown. A call
/// cannot be interrupted, though: its thread lingers until it returns, so bound your HTTP calls
/// too (with ureq: `timeout_connect` and `timeout_per_read`, which cost nothing per request; see
/// [`crate::ureq`]).
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
