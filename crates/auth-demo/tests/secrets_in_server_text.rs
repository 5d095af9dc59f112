//! No secret in any text a server can shape, through the tokio driver and reqwest's
//! `TokenEndpoint`, with every `tracing` event down to `TRACE` captured.
//!
//! A hostile token endpoint on loopback ([`auth_demo::hostile::EchoEndpoint`], a hand-written
//! HTTP server) answers every call with 400 and the refresh token it was sent echoed as the
//! `error` code, in `error_description` and in `error_uri`; a token endpoint that refuses
//! connections is configured with a client secret in its URL's query. Neither secret may appear
//! in any log line, while the lines that report the failures are still there and still say what
//! happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth_demo::hostile::{
    assert_logged, assert_no_secret, expired_snapshot, fast_config, refusal_shown,
    secret_query_url, EchoEndpoint, ACCESS, QUERY_SECRET, REFRESH,
};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{RefreshToken, RequestError, RequestSpec, TokenSet};
use auth_tokio::reqwest::TokenEndpoint;
use auth_tokio::{Backend, CallError, LoginError, MemoryStore, RefreshError, SessionHandle};

/// Upper bound of one test.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Login (client credentials) and refresh both at one token endpoint.
struct EndpointBackend {
    endpoint: TokenEndpoint,
}

impl Backend for EndpointBackend {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        let form = [("grant_type", "client_credentials")];
        Ok(self.endpoint.post_form(&form).await?)
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.endpoint.refresh(refresh_token).await
    }
}

/// Restores a session whose access token has expired from a store holding [`REFRESH`], talking
/// to the token endpoint at `url`; submits one authenticated request (which needs a refresh) and
/// returns how it ended and everything logged.
fn run_refresh(url: &str) -> (Result<(), CallError>, LogCapture) {
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(None).unwrap();
    let outcome = runtime.block_on(async {
        let builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
        let endpoint = TokenEndpoint::with_client_builder(builder, url.parse().unwrap()).unwrap();
        let session = SessionHandle::builder(EndpointBackend { endpoint })
            .config(fast_config())
            .store(MemoryStore::with_snapshot(&expired_snapshot()))
            .start()
            .await;
        let mut call = session.call::<()>(RequestSpec::bearer());
        let next = tokio::time::timeout(TEST_LIMIT, call.next_step())
            .await
            .expect("the request did not end in time");
        next.map(|_| ())
    });
    drop(runtime);
    (outcome, logs)
}

#[test]
fn token_endpoint_echoing_the_refresh_token_never_gets_it_into_the_logs() {
    let endpoint = EchoEndpoint::start().unwrap();
    let (outcome, logs) = run_refresh(endpoint.url());

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
    let (outcome, logs) = run_refresh(&url);
    assert!(outcome.is_err(), "{outcome:?}");

    assert_no_secret(&logs, &[QUERY_SECRET, "client_secret", REFRESH, ACCESS]);
    let redacted = url.split_once('?').unwrap().0;
    let shown = format!("token endpoint unreachable: connection failed calling {redacted}");
    assert_logged(&logs, "refresh failed", &shown);
}
