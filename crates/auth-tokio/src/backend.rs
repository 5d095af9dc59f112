//! What the app's backend does for the session: the silent login and the refresh.

use std::future::Future;

use auth_core::{RefreshToken, TokenSet};
pub use auth_http::{BoxError, LoginError, RefreshError};

/// How the session gets tokens: the app's silent login and the refresh-token grant.
///
/// The driver calls at most one login or refresh at a time (single flight) and bounds each call
/// by `Config::operation_timeout`, whatever the HTTP client does: a call that takes longer
/// counts as a transient failure, its future is dropped and a late result is ignored. So no
/// client timeout is needed for correctness. Implementations classify their failures with the error's variants;
/// for a token endpoint answer, `From<TokenResponseError>` uses auth-core's classification.
///
/// The methods may be written as `async fn` in an impl.
pub trait Backend: Send + Sync + 'static {
    /// Silent login: get a one-time platform code (a mini-program's `login()`, a device code, a
    /// client-credentials grant...) and exchange it on the backend for tokens. No user action.
    fn login(&self) -> impl Future<Output = Result<TokenSet, LoginError>> + Send;

    /// Exchange the refresh token for new tokens (RFC 6749 §6). A server that rotates refresh
    /// tokens returns the new one in the [`TokenSet`].
    fn refresh(
        &self,
        refresh_token: &RefreshToken,
    ) -> impl Future<Output = Result<TokenSet, RefreshError>> + Send;

    /// Revoke the refresh token at the server (RFC 7009), on logout when
    /// `Config::revoke_on_logout` is set. Best effort, bounded by `Config::operation_timeout`
    /// like the others: the default does nothing.
    fn revoke(&self, refresh_token: &RefreshToken) -> impl Future<Output = ()> + Send {
        let _ = refresh_token;
        std::future::ready(())
    }
}
