//! The errors a backend's silent login and refresh report, classified by what the session does
//! next. Shared by the async and the blocking `Backend` traits.
//!
//! The drivers log these errors (`Display`), so nothing a server or a URL carries reaches their
//! text: auth-core's [`TokenResponseError`] shows codes by name and fingerprints, and a
//! [`TransportError`] shows the kind of failure and the endpoint without its query.

use std::error::Error as StdError;
use std::fmt;

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
    Transport(#[source] TransportError<E>),
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

/// A call that got no answer, in words safe to log: the [kind](TransportKind) of failure and the
/// endpoint as scheme, host, port and path (see [`redact_url`]).
///
/// HTTP clients put the whole URL, query included, in their errors' text; the query of a token
/// endpoint may carry a client secret. So `Display` and `Debug` show neither the URL nor the
/// client's message. The client's error stays available as the [source](StdError::source) and
/// through [`TransportError::get_ref`]; the driver that built this one has removed the URL from it
/// where the client allows.
pub struct TransportError<E> {
    kind: TransportKind,
    endpoint: String,
    source: E,
}

/// What kind of transport failure a [`TransportError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TransportKind {
    /// The request could not be made from the URL (no scheme or host, a scheme the client does
    /// not speak, https required).
    #[error("invalid request")]
    InvalidRequest,
    /// No connection: the host did not resolve, refused, or the TLS handshake failed.
    #[error("connection failed")]
    Connect,
    /// A timeout ran out.
    #[error("timed out")]
    Timeout,
    /// The connection broke while the request was sent or the answer read, or the answer is not
    /// valid HTTP.
    #[error("exchange failed")]
    Exchange,
    /// Anything else the client reports.
    #[error("transport error")]
    Other,
}

impl<E> TransportError<E> {
    /// A failure of kind `kind` calling `url`; only [`redact_url`]`(url)` is kept.
    pub fn new(kind: TransportKind, url: &str, source: E) -> Self {
        TransportError {
            kind,
            endpoint: redact_url(url),
            source,
        }
    }

    /// What kind of failure.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The endpoint called, as scheme, host, port and path.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The HTTP client's own error.
    pub fn get_ref(&self) -> &E {
        &self.source
    }

    /// The HTTP client's own error.
    pub fn into_inner(self) -> E {
        self.source
    }
}

impl<E> fmt::Display for TransportError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} calling {}", self.kind, self.endpoint)
    }
}

impl<E> fmt::Debug for TransportError<E> {
    /// Kind and endpoint only: the client's error is left out, as its `Debug` may hold the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl<E: StdError + 'static> StdError for TransportError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// A URL as the drivers show it: `scheme://host[:port]/path`, without user info, query or
/// fragment, which may carry credentials. Text that is not an absolute URL is not shown at all.
///
/// ```
/// use auth_http::redact_url;
///
/// let url = "https://user:pw@auth.example.com:8443/oauth/token?client_secret=s3cr3t#x";
/// assert_eq!(redact_url(url), "https://auth.example.com:8443/oauth/token");
/// assert_eq!(redact_url("not a URL ?client_secret=s3cr3t"), "<invalid URL>");
/// ```
pub fn redact_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return "<invalid URL>".to_owned();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return "<invalid URL>".to_owned();
    };
    let port = uri
        .port_u16()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!("{scheme}://{host}{port}{}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_scheme_host_port_and_path_only() {
        let cases = [
            (
                "http://127.0.0.1:8080/token?secret=s3cr3t",
                "http://127.0.0.1:8080/token",
            ),
            (
                "https://a.example/o/token#s3cr3t",
                "https://a.example/o/token",
            ),
            ("https://u:s3cr3t@a.example?s3cr3t", "https://a.example/"),
            ("http://[::1]:9/t?s3cr3t=1", "http://[::1]:9/t"),
            ("/token?s3cr3t", "<invalid URL>"),
            ("s3cr3t", "<invalid URL>"),
            ("http://a b/?s3cr3t", "<invalid URL>"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn transport_errors_never_show_the_url_query_or_the_client_message() {
        let client = std::io::Error::other("error sending request for url (http://h/t?s3cr3t)");
        let error: TokenEndpointError<std::io::Error> = TokenEndpointError::Transport(
            TransportError::new(TransportKind::Connect, "http://h/t?s3cr3t", client),
        );
        assert_eq!(
            error.to_string(),
            "token endpoint unreachable: connection failed calling http://h/t"
        );
        let refresh = RefreshError::from(error);
        for shown in [refresh.to_string(), format!("{refresh:?}")] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        assert_eq!(refresh.failure(), RefreshFailure::Transient);
    }
}
