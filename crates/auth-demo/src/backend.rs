//! The demo app's [`Backend`]: a WeChat-style silent login against the demo server, and the
//! RFC 6749 refresh grant.

use auth_tokio::auth_core::{RefreshToken, TokenSet};
use auth_tokio::reqwest::TokenEndpoint;
use auth_tokio::{Backend, LoginError, RefreshError};
use serde::Deserialize;

/// Silent login = get a one-time code from the "platform" (`POST /platform/code`, standing in for
/// a mini-program's `login()`), exchange it at `POST /login`; refresh at `POST /refresh`;
/// revoke at `POST /revoke`.
///
/// The three calls that carry a credential (the code, the refresh token) go through
/// [`TokenEndpoint`]s, whose client never follows a redirect: a redirect is an error, and the
/// credential reaches the configured URL only. The platform call carries none and uses the
/// app's client.
#[derive(Clone, Debug)]
pub struct DemoBackend {
    http: reqwest::Client,
    platform: reqwest::Url,
    login: TokenEndpoint,
    refresh: TokenEndpoint,
    revoke: TokenEndpoint,
}

/// Why a [`DemoBackend`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoBackendError {
    /// The server's base URL is not an absolute URL.
    #[error("invalid server base URL {0:?}")]
    InvalidBaseUrl(String),
    /// reqwest could not build the token endpoints' client (its TLS backend did not
    /// initialise).
    #[error("could not build the token endpoint client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A platform code request that failed: no code, so the login is worth retrying.
#[derive(Debug, thiserror::Error)]
#[error("the platform gave no login code: {0}")]
struct PlatformError(String);

#[derive(Deserialize)]
struct CodeResponse {
    code: String,
}

impl DemoBackend {
    /// A backend for the demo server at `base_url` (`http://127.0.0.1:<port>`), calling the
    /// platform with `http` and the token endpoints with their own client (no redirects).
    pub fn new(http: reqwest::Client, base_url: &str) -> Result<Self, DemoBackendError> {
        let join = |path: &str| {
            reqwest::Url::parse(base_url)
                .and_then(|base| base.join(path))
                .map_err(|_| DemoBackendError::InvalidBaseUrl(base_url.to_owned()))
        };
        let login = TokenEndpoint::new(join("/login")?).map_err(DemoBackendError::Client)?;
        Ok(DemoBackend {
            platform: join("/platform/code")?,
            refresh: login.at(join("/refresh")?),
            revoke: login.at(join("/revoke")?),
            login,
            http,
        })
    }

    async fn platform_code(&self) -> Result<String, PlatformError> {
        let response = self
            .http
            .post(self.platform.clone())
            .send()
            .await
            .map_err(|error| PlatformError(error.to_string()))?;
        if !response.status().is_success() {
            return Err(PlatformError(format!("HTTP {}", response.status())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| PlatformError(error.to_string()))?;
        let parsed: CodeResponse = serde_json::from_slice(&body)
            .map_err(|_| PlatformError("malformed answer".to_owned()))?;
        Ok(parsed.code)
    }
}

impl Backend for DemoBackend {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        let code = self
            .platform_code()
            .await
            .map_err(|error| LoginError::Transient(Box::new(error)))?;
        Ok(self.login.post_form(&[("code", &code)]).await?)
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.refresh.refresh(refresh_token).await
    }

    async fn revoke(&self, refresh_token: &RefreshToken) {
        if let Err(error) = self.revoke.revoke(refresh_token).await {
            tracing::warn!(%error, "revocation failed");
        }
    }
}
