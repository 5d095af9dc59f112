//! No secret in any text a server can shape, through the tokio driver and reqwest's
//! `TokenEndpoint`, with every `tracing` event down to `TRACE` captured.
//!
//! A hostile token endpoint on loopback (a hand-written HTTP server, so its answers are exactly
//! the bytes below) answers every call with 400 and the refresh token it was sent echoed as the
//! `error` code, in `error_description` and in `error_uri`; a token endpoint that refuses
//! connections is configured with a client secret in its URL's query. Neither secret may appear
//! in any log line, while the lines that report the failures are still there and still say what
//! happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{
    fingerprint, AccessToken, Config, RefreshToken, RequestError, RequestSpec, Snapshot, TokenSet,
    UnixTime,
};
use auth_tokio::reqwest::TokenEndpoint;
use auth_tokio::{Backend, CallError, LoginError, MemoryStore, RefreshError, SessionHandle};

/// The stored refresh token, which the hostile endpoint echoes back.
const REFRESH: &str = "rt-echoed-s3cr3t-7a1f";
/// The stored (expired) access token.
const ACCESS: &str = "at-stale-s3cr3t-93c2";
/// A client secret in the query of the token endpoint's URL.
const QUERY_SECRET: &str = "cs-query-s3cr3t-55d0";
/// Upper bound of one test.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// A loopback token endpoint that answers every request with 400 and an RFC 6749 §5.2 body
/// echoing the `refresh_token` it was sent (or [`REFRESH`]) as `error`, `error_description` and
/// `error_uri`. Keeps the bodies it received.
struct EchoEndpoint {
    url: String,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoEndpoint {
    fn start() -> EchoEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(body) = answer(stream) {
                                received.lock().unwrap().push(body);
                            }
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        EchoEndpoint {
            url,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for EchoEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request and answers it with the echoing 400; returns the request's body.
fn answer(stream: TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = String::from_utf8(body).ok()?;
    let echoed = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("refresh_token="))
        .unwrap_or(REFRESH)
        .to_owned();
    let json = format!(
        r#"{{"error":"{echoed}","error_description":"refresh token {echoed} is not valid","error_uri":"https://auth.example/errors?token={echoed}"}}"#
    );
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
        json.len()
    );
    let mut stream = stream;
    stream.write_all(response.as_bytes()).ok()?;
    stream.flush().ok()?;
    Some(body)
}

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

/// A URL nothing listens on: a port just bound and released.
fn refusing_url(path_and_query: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path_and_query}")
}

/// Short timeouts and backoff, so failures end in milliseconds.
fn fast_config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..Config::default()
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
        let stored = Snapshot {
            access_token: AccessToken::new(ACCESS),
            refresh_token: Some(RefreshToken::new(REFRESH)),
            expires_at: Some(UnixTime::from_millis(1)),
        };
        let session = SessionHandle::builder(EndpointBackend { endpoint })
            .config(fast_config())
            .store(MemoryStore::with_snapshot(&stored))
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

/// Fails when any of `secrets` appears in the captured logs (or an `ERROR` was logged).
fn assert_no_secret(logs: &LogCapture, secrets: &[&str]) {
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    if let Err(problem) = logs.check(&secrets) {
        panic!("{problem}\n--- captured logs ---\n{}", logs.text());
    }
}

#[test]
fn token_endpoint_echoing_the_refresh_token_never_gets_it_into_the_logs() {
    let endpoint = EchoEndpoint::start();
    let (outcome, logs) = run_refresh(&endpoint.url);

    // The refresh really presented the token, and the echo came back for it and for the login.
    let received = endpoint.received();
    assert!(
        received
            .iter()
            .any(|body| body.contains(&format!("refresh_token={REFRESH}"))),
        "the endpoint never saw the refresh token: {received:?}"
    );
    assert!(
        received
            .iter()
            .any(|body| body.contains("grant_type=client_credentials")),
        "no silent login after the refusal: {received:?}"
    );
    // Unrecognised code: the refresh token is dead, and the login is refused for good.
    assert!(
        matches!(
            outcome,
            Err(CallError::Session(RequestError::LoginRequired))
        ),
        "{outcome:?}"
    );

    assert_no_secret(&logs, &[REFRESH, ACCESS]);
    let text = logs.text();
    let shown = format!(
        "token endpoint refused the request (HTTP 400): unrecognised {}",
        fingerprint(REFRESH)
    );
    for line in ["refresh token dead", "silent login failed"] {
        assert!(
            text.lines()
                .any(|logged| logged.contains(line) && logged.contains(&shown)),
            "no {line:?} line naming the code by its fingerprint\n--- captured logs ---\n{text}"
        );
    }
}

#[test]
fn unreachable_token_endpoint_never_logs_its_url_query() {
    let url = refusing_url(&format!(
        "/oauth/token?client_id=app&client_secret={QUERY_SECRET}"
    ));
    let (outcome, logs) = run_refresh(&url);
    assert!(outcome.is_err(), "{outcome:?}");

    assert_no_secret(&logs, &[QUERY_SECRET, "client_secret", REFRESH, ACCESS]);
    let text = logs.text();
    let redacted = url.split_once('?').unwrap().0;
    let shown = format!("token endpoint unreachable: connection failed calling {redacted}");
    assert!(
        text.lines()
            .any(|logged| logged.contains("refresh failed") && logged.contains(&shown)),
        "no \"refresh failed\" line with {shown:?}\n--- captured logs ---\n{text}"
    );
}
