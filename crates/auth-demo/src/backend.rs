//! The demo app's [`Backend`]: a WeChat-style silent login against the demo server, and the
//! RFC 6749 refresh grant.

use auth_tokio::auth_core::{RefreshToken, TokenSet};
use auth_tokio::reqwest::TokenEndpoint;
use auth_tokio::{Backend, LoginError, RefreshError};
use serde::Deserialize;

/// Silent login = get a one-time code from the "platform" (`POST /platform/code`, standing in for
/// a mini-program's `login()`), exchange it at `POST /login`; refresh at `POST /refresh`;
/// revoke at `POST /revoke`.
#[derive(Clone, Debug)]
pub struct DemoBackend {
    http: reqwest::Client,
    platform: reqwest::Url,
    login: TokenEndpoint,
    refresh: TokenEndpoint,
    revoke: reqwest::Url,
}

/// Why a [`DemoBackend`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoBackendError {
    /// The server's base URL is not an absolute URL.
    #[error("invalid server base URL {0:?}")]
    InvalidBaseUrl(String),
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
    /// A backend for the demo server at `base_url` (`http://127.0.0.1:<port>`), calling it with
    /// `http`.
    pub fn new(http: reqwest::Client, base_url: &str) -> Result<Self, DemoBackendError> {
        let join = |path: &str| {
            reqwest::Url::parse(base_url)
                .and_then(|base| base.join(path))
                .map_err(|_| DemoBackendError::InvalidBaseUrl(base_url.to_owned()))
        };
        Ok(DemoBackend {
            platform: join("/platform/code")?,
            login: TokenEndpoint::new(http.clone(), join("/login")?),
            refresh: TokenEndpoint::new(http.clone(), join("/refresh")?),
            revoke: join("/revoke")?,
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

    async fn refresh(&self, refresh_token: RefreshToken) -> Result<TokenSet, RefreshError> {
        self.refresh.refresh(&refresh_token).await
    }

    async fn revoke(&self, refresh_token: RefreshToken) {
        let form = [("token", refresh_token.expose_secret())];
        let sent = self.http.post(self.revoke.clone()).form(&form).send().await;
        if let Err(error) = sent {
            tracing::warn!(%error, "revocation failed");
        }
    }
}
