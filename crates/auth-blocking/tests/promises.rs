//! The shell keeps the core's promises at its edges: a store that cannot be cleared, a token
//! endpoint that hangs or redirects, an agent configured to forward credentials. Each test runs
//! the real path: real files, a real loopback HTTP server that misbehaves on purpose (a few
//! lines of `std::net` below, or auth-demo's server), and the driver's logs captured and checked
//! for `ERROR` lines and secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{
    AccessToken, Config, RefreshToken, RequestError, RequestSpec, SessionState, Snapshot, TokenSet,
    Verdict,
};
use auth_blocking::ureq::{ApiClient, Scope, TokenEndpoint, TokenEndpointError};
use auth_blocking::{
    Attempt, Backend, CallError, FileStore, LoginError, MemoryStore, RefreshError, SessionHandle,
    StoreError,
};
use auth_demo::testing::LogCapture;
use ureq::config::RedirectAuthHeaders;

use common::{backend, fast_config, server, PATIENCE};

/// The driver's logs, captured for the whole test (the driver's threads inherit the dispatcher
/// current at `start`).
struct Logs {
    capture: LogCapture,
    _guard: tracing::dispatcher::DefaultGuard,
}

impl Logs {
    fn capture() -> Logs {
        let capture = LogCapture::new();
        let guard = capture.install();
        Logs {
            capture,
            _guard: guard,
        }
    }

    /// No `ERROR` line and none of `secrets` anywhere.
    fn check(&self, secrets: &[String]) {
        self.capture.check(secrets).unwrap();
    }

    fn contain(&self, text: &str) -> bool {
        self.capture.text().contains(text)
    }
}

#[test]
fn logout_that_cannot_clear_the_store_says_so_and_a_retry_makes_it_durable() {
    let logs = Logs::capture();
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let start = || {
        SessionHandle::builder(backend(&server))
            .config(fast_config())
            .store(FileStore::new(&path))
            .start()
            .unwrap()
    };
    let session = start();
    let api = ApiClient::new(
        common::demo::agent(Duration::from_secs(5)),
        session.clone(),
        Scope::new(server.base_url()).unwrap(),
    );
    let status = api.get(&server.url("/api/signed-in")).unwrap().status();
    assert_eq!(status.as_u16(), 200);
    let signed_in = fs::read(&path).unwrap();

    // The store cannot be cleared: something no process can unlink sits at the session path (a
    // non-empty directory fails `unlink` for root too, whom permission bits do not stop).
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("in-the-way"), b"").unwrap();
    let error = session.logout().unwrap_err();
    assert!(
        matches!(error, CallError::LogoutNotDurable(StoreError::Io(_))),
        "{error:?}"
    );
    // Logged out in memory all the same.
    assert_eq!(session.state(), SessionState::LoggedOut);
    let refused = api.get(&server.url("/api/after-logout")).unwrap_err();
    assert_eq!(refused.session(), Some(RequestError::LoggedOut));
    assert!(logs.contain("the logout is not durable"));

    // The cause goes away, but the tokens are still on disk: a restart now would sign the user
    // back in. That is what the error warned about.
    fs::remove_dir_all(&path).unwrap();
    fs::write(&path, &signed_in).unwrap();
    let restarted = start();
    assert_eq!(restarted.state(), SessionState::Active);
    restarted.shutdown(PATIENCE).unwrap();

    // Logging out again retries the clear; now it is durable: no restart comes back signed in.
    session.logout().unwrap();
    assert!(FileStore::new(&path).load().unwrap().is_none());
    let restarted = start();
    assert_eq!(restarted.state(), SessionState::Anonymous);
    restarted.shutdown(PATIENCE).unwrap();
    session.shutdown(PATIENCE).unwrap();

    let counters = server.admin().counters();
    assert_eq!(
        (counters.logins, counters.refresh_calls),
        (1, 0),
        "nothing signed in again"
    );
    logs.check(&server.admin().issued_secrets());
}

#[test]
fn a_hung_refresh_ends_by_the_operation_deadline_and_a_later_refresh_proceeds() {
    let logs = Logs::capture();
    let endpoint = Loopback::start(|n, _| {
        if n == 0 {
            Reply::Hang
        } else {
            tokens("at-hung-2", "rt-hung-2")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    FileStore::new(&path)
        .save(&Snapshot {
            access_token: AccessToken::new("at-hung-1"),
            refresh_token: Some(RefreshToken::new("rt-hung-1")),
            expires_at: None,
        })
        .unwrap();
    let config = Config {
        operation_timeout: Duration::from_millis(300),
        max_operation_retries: 0,
        max_refresh_failures: 0,
        ..fast_config()
    };
    // ureq's defaults: no timeout at all, so the hung call waits forever.
    let token = TokenEndpoint::new(ureq::Agent::new_with_defaults(), endpoint.url("/token"));
    let session = SessionHandle::builder(TokenBackend(token))
        .config(config)
        .store(FileStore::new(&path))
        .start()
        .unwrap();
    assert_eq!(session.state(), SessionState::Active, "restored");
    // The API rejects the stored access token: a refresh, which hangs.
    let send = |attempt: &Attempt| {
        let bearer = attempt.bearer().unwrap().to_string();
        let verdict = if bearer.ends_with("at-hung-1") {
            Verdict::Rejected
        } else {
            Verdict::Accepted
        };
        (bearer, verdict)
    };
    let started = Instant::now();
    let error = session.request(RequestSpec::bearer(), send).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            error,
            CallError::Session(RequestError::AuthUnavailable { attempts: 1 })
        ),
        "{error:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "failed by the deadline, took {took:?}"
    );
    assert_eq!(endpoint.hanging(), 1, "the refresh call still hangs");

    // A later refresh proceeds, and its tokens are used and stored.
    let sent = session.request(RequestSpec::bearer(), send).unwrap();
    assert_eq!(sent, "Bearer at-hung-2");
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests
        .iter()
        .all(|r| r.contains("refresh_token=rt-hung-1")));
    let stored = FileStore::new(&path).load().unwrap().unwrap();
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-hung-2");

    // The driver stops at once: no operation thread waits for the hung call.
    let stopping = Instant::now();
    session.shutdown(PATIENCE).unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(1));
    assert!(logs.contain("refresh still running at its deadline"));
    logs.check(&secrets(&[
        "at-hung-1",
        "rt-hung-1",
        "at-hung-2",
        "rt-hung-2",
    ]));
}

#[test]
fn a_token_endpoint_redirect_is_a_typed_error_and_nothing_reaches_the_other_origin() {
    let foreign = Loopback::start(|_, _| tokens("at-foreign", "rt-foreign"));
    for status in [301, 302, 303, 307, 308] {
        let location = format!("Location: {}?stolen=1\r\n", foreign.url("/collect"));
        let endpoint = Loopback::start(move |_, _| respond(status, &location, ""));
        // ureq's defaults follow up to 10 redirects.
        let token = TokenEndpoint::new(ureq::Agent::new_with_defaults(), endpoint.url("/token"));

        let error = token
            .refresh(&RefreshToken::new("rt-redirect-secret"))
            .unwrap_err();
        let RefreshError::Transient(source) = &error else {
            panic!("a redirect is transient for the session: {error:?}")
        };
        let typed = source.downcast_ref::<TokenEndpointError>().unwrap();
        assert!(
            matches!(typed, TokenEndpointError::Redirect { status: s } if *s == status),
            "{typed:?}"
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            for hidden in ["collect", "stolen", "rt-redirect-secret"] {
                assert!(!shown.contains(hidden), "{hidden} in {shown}");
            }
        }
        // A login's form goes through the same call.
        let error = token
            .post_form(&[("grant_type", "authorization_code"), ("code", "c-secret")])
            .unwrap_err();
        assert!(
            matches!(error, TokenEndpointError::Redirect { status: s } if s == status),
            "{error:?}"
        );
        assert_eq!(endpoint.requests().len(), 2, "HTTP {status}");
    }
    assert_eq!(
        foreign.connections(),
        0,
        "the other origin received nothing"
    );
}

#[test]
fn the_bearer_never_follows_a_redirect_even_to_the_same_host() {
    let api = Loopback::start(|_, request| {
        if request.starts_with("GET /api/moved ") {
            respond(302, "Location: /public/landing\r\n", "")
        } else {
            respond(200, "", "{}")
        }
    });
    let session = SessionHandle::builder(TokenBackend(TokenEndpoint::new(
        ureq::Agent::new_with_defaults(),
        api.url("/token"),
    )))
    .store(MemoryStore::with(Snapshot {
        access_token: AccessToken::new("at-redirect-secret"),
        refresh_token: None,
        expires_at: None,
    }))
    .start()
    .unwrap();
    // An agent told to forward `Authorization` across redirects to the same host.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .redirect_auth_headers(RedirectAuthHeaders::SameHost)
        .build()
        .into();
    let scope = Scope::new(&api.url("")).unwrap().public_path("/public");
    let client = ApiClient::new(agent, session, scope);
    let response = client.get(&api.url("/api/moved")).unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].contains("Bearer at-redirect-secret"));
    assert!(requests[1].starts_with("GET /public/landing "));
    assert!(
        !requests[1].contains("at-redirect-secret"),
        "the public path reached by the redirect got the token"
    );
}

/// The app's backend: one RFC 6749 token endpoint.
struct TokenBackend(TokenEndpoint);

impl Backend for TokenBackend {
    fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(self.0.post_form(&[("grant_type", "client_credentials")])?)
    }

    fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.0.refresh(refresh_token)
    }
}

fn secrets(secrets: &[&str]) -> Vec<String> {
    secrets.iter().map(|s| (*s).to_owned()).collect()
}

/// What [`Loopback`] does with a request.
enum Reply {
    /// Read it, never answer, keep the connection open.
    Hang,
    /// Answer with these bytes, then close.
    Raw(String),
}

/// An answer with `status`, extra header lines and a JSON body, closing the connection.
fn respond(status: u16, headers: &str, body: &str) -> Reply {
    Reply::Raw(format!(
        "HTTP/1.1 {status} Test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{headers}\r\n{body}",
        body.len()
    ))
}

/// A token endpoint's 200 with these tokens.
fn tokens(access: &str, refresh: &str) -> Reply {
    let body = format!(
        r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600,"refresh_token":"{refresh}"}}"#
    );
    respond(200, "", &body)
}

/// A loopback HTTP/1.1 server that misbehaves on purpose: `reply(n, request)` says what to do
/// with the `n`th request (counted from 0). It records every request read (head and body, as
/// text) and runs until the test process ends.
struct Loopback {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
    hanging: Arc<AtomicUsize>,
}

impl Loopback {
    fn start(reply: impl Fn(usize, &str) -> Reply + Send + 'static) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let loopback = Loopback {
            base: format!("http://{}", listener.local_addr().unwrap()),
            requests: Arc::default(),
            connections: Arc::default(),
            hanging: Arc::default(),
        };
        let (requests, connections, hanging) = (
            Arc::clone(&loopback.requests),
            Arc::clone(&loopback.connections),
            Arc::clone(&loopback.hanging),
        );
        thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let n = {
                    let mut requests = requests.lock().unwrap();
                    requests.push(request.clone());
                    requests.len() - 1
                };
                match reply(n, &request) {
                    Reply::Hang => {
                        hanging.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                    Reply::Raw(answer) => {
                        let _ = stream.write_all(answer.as_bytes());
                    }
                }
            }
        });
        loopback
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests left without an answer (their connections stay open).
    fn hanging(&self) -> usize {
        self.hanging.load(Ordering::SeqCst)
    }
}

/// One request's head and body (by `Content-Length`), as text; `None` if the client went away.
fn read_request(stream: &TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        text.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    text.push_str(&String::from_utf8_lossy(&body));
    Some(text)
}

#[cfg(unix)]
#[test]
fn start_with_a_fifo_at_the_store_path_does_not_block() {
    let logs = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let (started, rx) = std::sync::mpsc::channel();
    let store = FileStore::new(&path);
    let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            let token = TokenEndpoint::new(ureq::Agent::new_with_defaults(), "http://127.0.0.1:9/");
            let session = SessionHandle::builder(TokenBackend(token))
                .store(store)
                .start()
                .unwrap();
            let _ = started.send(session.state());
        });
    });
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(state) => assert_eq!(state, SessionState::Anonymous),
        Err(_) => {
            // Unblock the reader (a writer opening the FIFO ends its wait), then fail.
            let _ = fs::OpenOptions::new().write(true).open(&path);
            panic!("start blocked on a FIFO");
        }
    }
    assert!(
        logs.contain("not a regular file"),
        "{}",
        logs.capture.text()
    );
}
