//! The refresh token never leaves for another origin: a token endpoint that answers with a
//! redirect (301, 302, 303, 307, 308) gets a typed, transient error back, and the redirect is
//! never followed, so the other origin receives nothing (a followed 307/308 would re-post
//! `grant_type=refresh_token&refresh_token=…` there, and its answer would be taken as tokens).
//!
//! Two loopback servers: the token endpoint, which redirects every request to the second one,
//! and that "foreign" origin, which records whatever reaches it and answers with tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{
    AccessToken, Config, RefreshToken, RequestError, RequestSpec, Snapshot, TokenSet, UnixTime,
};
use auth_tokio::reqwest::{TokenEndpoint, TokenEndpointError};
use auth_tokio::{Backend, CallError, LoginError, MemoryStore, RefreshError, SessionHandle};
use axum::body::Bytes;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

const TEST_LIMIT: Duration = Duration::from_secs(30);
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];
const ACCESS_SECRET: &str = "access-token-redirect-test";
const REFRESH_SECRET: &str = "refresh-token-redirect-test";
const CODE_SECRET: &str = "login-code-redirect-test";
/// The path the token endpoint redirects to; it must appear in no error and no log line.
const LOCATION_PATH: &str = "/collected-by-the-other-origin";

/// What one server received, one line per request: method, path and body.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<String>>>);

impl Received {
    fn record(&self, method: &Method, uri: &Uri, body: &[u8]) {
        let line = format!("{method} {uri} {}", String::from_utf8_lossy(body));
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The other origin: records every request and answers each with a token set, so a client
/// that followed a redirect here would come back with "tokens".
async fn foreign_origin(received: Received) -> SocketAddr {
    let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let received = received.clone();
        async move {
            received.record(&method, &uri, &body);
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"access_token":"from-the-other-origin","token_type":"Bearer","refresh_token":"other","expires_in":3600}"#,
            )
        }
    });
    serve(app).await
}

/// The token endpoint: `POST /<status>/…` answers `<status>` with a `Location` on `foreign`.
async fn redirecting_endpoint(received: Received, foreign: SocketAddr) -> SocketAddr {
    let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let received = received.clone();
        async move {
            received.record(&method, &uri, &body);
            let status = uri
                .path()
                .split('/')
                .nth(1)
                .and_then(|segment| segment.parse::<u16>().ok())
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::NOT_FOUND);
            let location = format!("http://{foreign}{LOCATION_PATH}");
            (status, [(header::LOCATION, location)]).into_response()
        }
    });
    serve(app).await
}

fn url(addr: SocketAddr, path: &str) -> reqwest::Url {
    reqwest::Url::parse(&format!("http://{addr}{path}")).unwrap()
}

/// Fails if `text` names the redirect's target or a credential.
fn assert_clean(text: &str, foreign: SocketAddr) {
    for secret in [
        REFRESH_SECRET,
        CODE_SECRET,
        ACCESS_SECRET,
        LOCATION_PATH,
        &foreign.to_string(),
    ] {
        assert!(!text.contains(secret), "{secret:?} appears in {text:?}");
    }
}

fn assert_redirect(error: &TokenEndpointError, status: u16, foreign: SocketAddr) {
    assert!(
        matches!(error, TokenEndpointError::Redirect { status: s } if *s == status),
        "HTTP {status}: expected Redirect, got {error:?}"
    );
    assert_clean(&error.to_string(), foreign);
    assert_clean(&format!("{error:?}"), foreign);
}

/// Runs `test` on a current-thread runtime whose logs are captured; fails on an `ERROR` log or
/// on any of the strings `test` returns in any log line. Hands back the logs.
fn with_logs<Fut: std::future::Future<Output = Vec<String>>>(test: impl FnOnce() -> Fut) -> String {
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(None).unwrap();
    let forbidden = runtime.block_on(async {
        tokio::time::timeout(TEST_LIMIT, test())
            .await
            .expect("the test did not finish in time")
    });
    drop(runtime);
    if let Err(problem) = logs.check(&forbidden) {
        panic!("{problem}\n--- captured logs ---\n{}", logs.text());
    }
    logs.text()
}

fn forbidden_in_logs(foreign: SocketAddr) -> Vec<String> {
    vec![
        REFRESH_SECRET.to_owned(),
        CODE_SECRET.to_owned(),
        ACCESS_SECRET.to_owned(),
        LOCATION_PATH.to_owned(),
        foreign.to_string(),
    ]
}

#[test]
fn token_endpoint_redirect_is_a_typed_error_and_no_credential_reaches_the_other_origin() {
    with_logs(|| async {
        let at_foreign = Received::default();
        let at_endpoint = Received::default();
        let foreign = foreign_origin(at_foreign.clone()).await;
        let endpoint = redirecting_endpoint(at_endpoint.clone(), foreign).await;
        let refresh_token = RefreshToken::new(REFRESH_SECRET);

        for status in REDIRECTS {
            let token = TokenEndpoint::new(url(endpoint, &format!("/{status}/token"))).unwrap();

            // The refresh grant: a transient failure, not the other origin's tokens.
            match token.refresh(&refresh_token).await {
                Err(RefreshError::Transient(source)) => {
                    let error = source.downcast_ref::<TokenEndpointError>().unwrap();
                    assert_redirect(error, status, foreign);
                }
                other => panic!("HTTP {status}: expected a transient refresh error, got {other:?}"),
            }
            // A login code and a revocation go nowhere else either.
            let login = token.post_form(&[("code", CODE_SECRET)]).await.unwrap_err();
            assert_redirect(&login, status, foreign);
            assert!(matches!(LoginError::from(login), LoginError::Transient(_)));
            let revoke = token.revoke(&refresh_token).await.unwrap_err();
            assert_redirect(&revoke, status, foreign);

            // Whatever redirect policy the app's client settings carry, it is replaced.
            let following =
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(10));
            let token = TokenEndpoint::with_client_builder(
                following,
                url(endpoint, &format!("/{status}/token")),
            )
            .unwrap();
            let error = token.refresh(&refresh_token).await.unwrap_err();
            assert!(matches!(error, RefreshError::Transient(_)), "{error:?}");
        }

        let sent = at_endpoint.lines();
        assert_eq!(sent.len(), 4 * REDIRECTS.len(), "{sent:#?}");
        assert!(sent.iter().any(|line| line.contains(REFRESH_SECRET)));
        assert_eq!(
            at_foreign.lines(),
            Vec::<String>::new(),
            "the other origin received requests"
        );
        forbidden_in_logs(foreign)
    });
}

/// A backend whose every call goes to a redirecting token endpoint.
struct Redirected {
    token: TokenEndpoint,
    revoke: TokenEndpoint,
}

impl Backend for Redirected {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(self.token.post_form(&[("code", CODE_SECRET)]).await?)
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.token.refresh(refresh_token).await
    }

    async fn revoke(&self, refresh_token: &RefreshToken) {
        if let Err(error) = self.revoke.revoke(refresh_token).await {
            tracing::warn!(%error, "revocation failed");
        }
    }
}

#[test]
fn session_whose_refresh_is_redirected_fails_transiently_and_sends_its_tokens_nowhere_else() {
    let logs = with_logs(|| async {
        let at_foreign = Received::default();
        let at_endpoint = Received::default();
        let foreign = foreign_origin(at_foreign.clone()).await;
        let endpoint = redirecting_endpoint(at_endpoint.clone(), foreign).await;
        let token = TokenEndpoint::new(url(endpoint, "/307/token")).unwrap();
        let backend = Redirected {
            revoke: token.at(url(endpoint, "/308/revoke")),
            token,
        };
        // A stored session whose access token expired long ago: the first request refreshes.
        let store = MemoryStore::with_snapshot(&Snapshot {
            access_token: AccessToken::new(ACCESS_SECRET),
            refresh_token: Some(RefreshToken::new(REFRESH_SECRET)),
            expires_at: Some(UnixTime::from_millis(1_000)),
        });
        let config = Config {
            max_operation_retries: 1,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(20),
            revoke_on_logout: true,
            ..Config::default()
        };
        let session = SessionHandle::builder(backend)
            .config(config)
            .store(store.clone())
            .start()
            .await;

        let mut call = session.call::<()>(RequestSpec::bearer());
        match call.next_step().await {
            Err(CallError::Session(RequestError::AuthUnavailable { .. })) => {}
            other => panic!("expected AuthUnavailable, got {other:?}"),
        }
        assert_eq!(
            store.saves(),
            0,
            "nothing from the other origin was taken as tokens"
        );

        session.logout().await.unwrap();
        // The revocation runs in the background; wait until it reached the endpoint.
        while !at_endpoint
            .lines()
            .iter()
            .any(|line| line.starts_with("POST /308/revoke"))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;

        let refreshes = at_endpoint
            .lines()
            .iter()
            .filter(|line| line.starts_with("POST /307/token"))
            .count();
        assert_eq!(refreshes, 2, "one refresh and one retry");
        assert_eq!(
            at_foreign.lines(),
            Vec::<String>::new(),
            "the other origin received requests"
        );
        forbidden_in_logs(foreign)
    });
    assert!(
        logs.contains("redirect (HTTP 307)") && logs.contains("redirect (HTTP 308)"),
        "the refresh and revocation failures are logged:\n{logs}"
    );
}
