//! The app's blocking [`Backend`] for auth-demo's server: a WeChat-style silent login (a one-time
//! code from `POST /platform/code`, exchanged at `POST /login`), the RFC 6749 refresh grant at
//! `POST /refresh`, RFC 7009 revocation at `POST /revoke`.
//!
//! Shared by the probe binary (the child process of the crash and multi-process tests) and the
//! in-process tests; it only uses auth-blocking's own dependencies.

use std::time::Duration;

use auth_blocking::auth_core::{RefreshToken, TokenSet};
use auth_blocking::ureq::TokenEndpoint;
use auth_blocking::{Backend, LoginError, RefreshError};

/// Silent login and refresh against the demo server at one base URL.
#[derive(Clone, Debug)]
pub(crate) struct DemoBackend {
    agent: ureq::Agent,
    platform: String,
    login: TokenEndpoint,
    refresh: TokenEndpoint,
    revoke: String,
}

/// The platform gave no code: the login is worth retrying.
#[derive(Debug)]
struct PlatformError(String);

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the platform gave no login code: {}", self.0)
    }
}

impl std::error::Error for PlatformError {}

impl DemoBackend {
    /// A backend for the server at `base_url`, every HTTP call bounded by `timeout`.
    pub(crate) fn new(base_url: &str, timeout: Duration) -> Self {
        let agent = agent(timeout);
        DemoBackend {
            platform: format!("{base_url}/platform/code"),
            login: TokenEndpoint::new(agent.clone(), format!("{base_url}/login")),
            refresh: TokenEndpoint::new(agent.clone(), format!("{base_url}/refresh")),
            revoke: format!("{base_url}/revoke"),
            agent,
        }
    }

    fn platform_code(&self) -> Result<String, PlatformError> {
        let mut response = self
            .agent
            .post(&self.platform)
            .send_empty()
            .map_err(|error| PlatformError(error.to_string()))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|error| PlatformError(error.to_string()))?;
        code_of(&body).ok_or_else(|| PlatformError("malformed answer".into()))
    }
}

impl Backend for DemoBackend {
    fn login(&self) -> Result<TokenSet, LoginError> {
        let code = self
            .platform_code()
            .map_err(|error| LoginError::Transient(Box::new(error)))?;
        Ok(self.login.post_form(&[("code", &code)])?)
    }

    fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.refresh.refresh(refresh_token)
    }

    fn revoke(&self, refresh_token: &RefreshToken) {
        let form = [("token", refresh_token.expose_secret())];
        if let Err(error) = self.agent.post(&self.revoke).send_form(form) {
            tracing::warn!(%error, "revocation failed");
        }
    }
}

/// An agent for tests: every call bounded by `timeout`, statuses returned as responses.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The code in the platform's `{"code":"…"}` (the demo's codes are plain ASCII without escapes;
/// the probe binary has no JSON parser among auth-blocking's dependencies).
fn code_of(body: &str) -> Option<String> {
    let rest = body.split_once("\"code\"")?.1.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let code = rest.split_once('"')?.0;
    (!code.is_empty() && !code.contains('\\')).then(|| code.to_owned())
}
