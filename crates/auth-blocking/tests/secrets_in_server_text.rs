//! No secret in any text a server can shape, through the blocking driver and ureq's
//! `TokenEndpoint`, with every `tracing` event down to `TRACE` captured.
//!
//! The same hostile loopback token endpoint as auth-demo's test of the tokio driver
//! ([`auth_demo::hostile::EchoEndpoint`], a hand-written HTTP server that answers every call
//! with 400 and the refresh token it was sent echoed as the `error` code, in `error_description`
//! and in `error_uri`), and token endpoints
//! whose URL carries a client secret in its query: one that refuses connections, and one that an
//! https-only agent refuses to call (ureq quotes the whole URL in that error). Neither secret may
//! appear in any log line, while the lines that report the failures are still there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth_blocking::auth_core::{RefreshToken, RequestError, RequestSpec, TokenSet, Verdict};
use auth_blocking::ureq::TokenEndpoint;
use auth_blocking::{Backend, CallError, LoginError, MemoryStore, RefreshError, SessionHandle};
use auth_demo::hostile::{
    assert_logged, assert_no_secret, expired_snapshot, fast_config, refusal_shown,
    secret_query_url, EchoEndpoint, ACCESS, QUERY_SECRET, REFRESH,
};
use auth_demo::testing::LogCapture;

/// Login (client credentials) and refresh both at one token endpoint.
struct EndpointBackend {
    endpoint: TokenEndpoint,
}

impl Backend for EndpointBackend {
    fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(self
            .endpoint
            .post_form(&[("grant_type", "client_credentials")])?)
    }

    fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.endpoint.refresh(refresh_token)
    }
}

/// An agent bounded in time, statuses returned as responses; `https_only` as given.
fn agent(https_only: bool) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .https_only(https_only)
        .build()
        .into()
}

/// Restores a session whose access token has expired from a store holding [`REFRESH`], talking
/// to the token endpoint at `url` with `agent`; submits one authenticated request (which needs
/// a refresh) and returns how it ended and everything logged.
fn run_refresh(agent: ureq::Agent, url: &str) -> (Result<(), CallError>, LogCapture) {
    let logs = LogCapture::new();
    let guard = logs.install();
    let endpoint = TokenEndpoint::new(agent, url);
    let session = SessionHandle::builder(EndpointBackend { endpoint })
        .config(fast_config())
        .store(MemoryStore::with(expired_snapshot()))
        .start()
        .unwrap();
    let outcome = session.request(RequestSpec::bearer(), |_| ((), Verdict::Accepted));
    session.shutdown(Duration::from_secs(5)).unwrap();
    drop(guard);
    (outcome, logs)
}

#[test]
fn token_endpoint_echoing_the_refresh_token_never_gets_it_into_the_logs() {
    let endpoint = EchoEndpoint::start().unwrap();
    let (outcome, logs) = run_refresh(agent(false), endpoint.url());

    // The refresh really presented the token, and the echo came back for it and for the login.
    endpoint.assert_refresh_then_login();
    // Unrecognised code: the refresh token is dead, and the login is refused for good.
    assert!(
        matches!(
            outcome,
            Err(CallError::Session(RequestError::LoginRequired))
        ),
        "{outcome:?}"
    );

    assert_no_secret(&logs, &[REFRESH, ACCESS]);
    let shown = refusal_shown();
    assert_logged(&logs, "refresh failed", &shown);
    assert_logged(&logs, "silent login failed", &shown);
}

#[test]
fn unreachable_token_endpoint_never_logs_its_url_query() {
    let url = secret_query_url().unwrap();
    let (outcome, logs) = run_refresh(agent(false), &url);
    assert!(outcome.is_err(), "{outcome:?}");

    assert_no_secret(&logs, &[QUERY_SECRET, "client_secret", REFRESH, ACCESS]);
    let redacted = url.split_once('?').unwrap().0;
    let shown = format!("token endpoint unreachable: connection failed calling {redacted}");
    assert_logged(&logs, "refresh failed", &shown);
}

#[test]
fn token_endpoint_refused_by_an_https_only_agent_never_logs_its_url_query() {
    let url = secret_query_url().unwrap();
    let (outcome, logs) = run_refresh(agent(true), &url);
    assert!(outcome.is_err(), "{outcome:?}");

    assert_no_secret(&logs, &[QUERY_SECRET, "client_secret", REFRESH, ACCESS]);
    let redacted = url.split_once('?').unwrap().0;
    let shown = format!("token endpoint unreachable: invalid request calling {redacted}");
    assert_logged(&logs, "refresh failed", &shown);
}
