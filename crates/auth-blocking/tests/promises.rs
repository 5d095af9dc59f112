//! The shell keeps the core's promises at its edges: a store that cannot be cleared, a token
//! endpoint that hangs or redirects, an agent configured to forward credentials. Each test runs
//! the real path: real files, a real loopback HTTP server that misbehaves on purpose (a few
//! lines of `std::net` below, or auth-demo's server), and the driver's logs captured and checked
//! for `ERROR` lines and secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::time::Duration;

use auth_blocking::auth_core::{RequestError, SessionState};
use auth_blocking::ureq::{ApiClient, Scope};
use auth_blocking::{CallError, FileStore, SessionHandle, StoreError};
use auth_demo::testing::LogCapture;

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
