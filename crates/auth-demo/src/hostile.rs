//! A hostile token endpoint, for the tests that no secret a server can shape reaches the logs
//! (auth-demo's through the tokio driver, auth-blocking's through the blocking one).
//!
//! [`EchoEndpoint`] is a hand-written HTTP/1.1 server on loopback, so its answers are exactly
//! the bytes below: every call gets 400 and an RFC 6749 §5.2 body that echoes the refresh token
//! it was sent as the `error` code, in `error_description` and in `error_uri`.
//! [`secret_query_url`] is a token endpoint nobody listens on, with a client secret in its query.
//! The tests restore [`expired_snapshot`] (an expired [`ACCESS`] token and [`REFRESH`]), so the
//! first authenticated request refreshes, and then check the captured logs with
//! [`assert_no_secret`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use auth_core::{fingerprint, AccessToken, Config, RefreshToken, Snapshot, UnixTime};

use crate::testing::LogCapture;

/// The stored refresh token, which [`EchoEndpoint`] echoes back (also to a call that sent
/// none, such as a login).
pub const REFRESH: &str = "rt-echoed-s3cr3t-7a1f";
/// The stored (expired) access token.
pub const ACCESS: &str = "at-stale-s3cr3t-93c2";
/// A client secret for the query of a token endpoint's URL.
pub const QUERY_SECRET: &str = "cs-query-s3cr3t-55d0";

/// A loopback token endpoint that answers every request with 400 and an RFC 6749 §5.2 body
/// echoing the `refresh_token` it was sent (or [`REFRESH`]) as `error`, `error_description` and
/// `error_uri`. Keeps the bodies it received. Stops (and joins its thread) when dropped.
#[derive(Debug)]
pub struct EchoEndpoint {
    url: String,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoEndpoint {
    /// Binds an ephemeral loopback port and starts answering on a thread of its own.
    pub fn start() -> io::Result<EchoEndpoint> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/token", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            answer(stream, &received);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(EchoEndpoint {
            url,
            received,
            stop,
            thread: Some(thread),
        })
    }

    /// The token endpoint's URL (`http://127.0.0.1:<port>/token`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The form bodies received so far, in order.
    pub fn received(&self) -> Vec<String> {
        lock(&self.received).clone()
    }

    /// Panics unless the endpoint saw a refresh that presented [`REFRESH`] and, after refusing
    /// it, a silent login (client credentials): the echo came back for both.
    #[track_caller]
    pub fn assert_refresh_then_login(&self) {
        let received = self.received();
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

/// A URL nothing listens on (a port just bound and released), with `path_and_query`.
pub fn refusing_url(path_and_query: &str) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}{path_and_query}"))
}

/// A token endpoint nothing listens on, with [`QUERY_SECRET`] as `client_secret` in its query.
pub fn secret_query_url() -> io::Result<String> {
    refusing_url(&format!(
        "/oauth/token?client_id=app&client_secret={QUERY_SECRET}"
    ))
}

/// How a driver's log shows an [`EchoEndpoint`]'s refusal: the echoed `error` code (the refresh
/// token) by its fingerprint only.
pub fn refusal_shown() -> String {
    format!(
        "token endpoint refused the request (HTTP 400): unrecognised {}",
        fingerprint(REFRESH)
    )
}

/// A stored session whose access token ([`ACCESS`]) has expired, with [`REFRESH`]: the first
/// authenticated request refreshes.
pub fn expired_snapshot() -> Snapshot {
    Snapshot {
        access_token: AccessToken::new(ACCESS),
        refresh_token: Some(RefreshToken::new(REFRESH)),
        expires_at: Some(UnixTime::from_millis(1)),
    }
}

/// Short timeouts and backoff, so failures end in milliseconds.
pub fn fast_config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..Config::default()
    }
}

/// Panics, showing the captured logs, when any of `secrets` appears in them (or an `ERROR` was
/// logged).
pub fn assert_no_secret(logs: &LogCapture, secrets: &[&str]) {
    let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
    if let Err(problem) = logs.check(&secrets) {
        panic!("{problem}\n--- captured logs ---\n{}", logs.text());
    }
}

/// Panics, showing the captured logs, unless one logged line holds both `event` and `shown`.
pub fn assert_logged(logs: &LogCapture, event: &str, shown: &str) {
    let text = logs.text();
    assert!(
        text.lines()
            .any(|line| line.contains(event) && line.contains(shown)),
        "no {event:?} line with {shown:?}\n--- captured logs ---\n{text}"
    );
}

/// Reads one request, records its body and answers it with the echoing 400. The body is
/// recorded before the answer is written: a client that has its answer may look at once.
fn answer(stream: TcpStream, received: &Mutex<Vec<String>>) -> Option<()> {
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
    lock(received).push(body.clone());
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
    stream.flush().ok()
}

/// A panic while the list was locked (in the test's own thread) leaves it whole: take it over.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
