//! End-to-end tests of the blocking driver over real loopback HTTP against auth-demo's server,
//! started by each test on its own thread and port. They mirror auth-tokio's: storms from many
//! threads make one refresh, a dead refresh token one silent login, logout during a refresh fails
//! the waiting requests and writes nothing after, hung and failing refreshes end in clear errors
//! by their deadlines, a caller that gives up cancels its request.
//!
//! Every test captures the driver's logs and fails on an `ERROR` line or on any secret the
//! server issued appearing in them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{Config, RequestError, SessionState};
use auth_blocking::ureq::{ApiClient, Error, RequestOptions, Scope};
use auth_blocking::{FileStore, SessionHandle, TokenStore};
use auth_demo::server::ThreadedServer;
use auth_demo::testing::LogCapture;
use ureq::http::Request;

use common::{backend, demo, fast_config, server, wait_for_event, PATIENCE};

/// One test's world: the server, the log capture (current on the test thread, inherited by
/// the driver's threads), and the session's client.
struct World {
    server: ThreadedServer,
    logs: LogCapture,
    _guard: tracing::dispatcher::DefaultGuard,
}

impl World {
    fn new() -> World {
        let logs = LogCapture::new();
        let guard = logs.install();
        World {
            server: server(),
            logs,
            _guard: guard,
        }
    }

    fn session(&self, config: Config) -> SessionHandle {
        SessionHandle::builder(backend(&self.server))
            .config(config)
            .start()
            .unwrap()
    }

    fn session_with<S: TokenStore>(&self, config: Config, store: S) -> SessionHandle {
        SessionHandle::builder(backend(&self.server))
            .config(config)
            .store(store)
            .start()
            .unwrap()
    }

    fn api(&self, session: SessionHandle) -> ApiClient {
        let scope = Scope::new(self.server.base_url())
            .unwrap()
            .public_path("/public");
        ApiClient::new(demo::agent(Duration::from_secs(5)), session, scope)
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn counters(&self) -> auth_demo::server::Counters {
        self.server.admin().counters()
    }

    /// No `ERROR` line and no issued secret in the logs.
    fn check_logs(&self) {
        let secrets = self.server.admin().issued_secrets();
        assert!(!secrets.is_empty());
        self.logs.check(&secrets).unwrap();
        assert!(
            self.logs.lines() > 0,
            "the driver's threads log to the capture"
        );
    }
}

/// `GET <prefix>/<i>` from `n` threads at once; the status of each, or its error.
fn storm(api: &ApiClient, prefix: &str, n: usize) -> Vec<Result<u16, Error>> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (api, barrier) = (api.clone(), Arc::clone(&barrier));
            let url = format!("{prefix}/{i}");
            thread::spawn(move || {
                barrier.wait();
                api.get(&url).map(|response| response.status().as_u16())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn all_ok(results: &[Result<u16, Error>]) -> bool {
    results.iter().all(|result| matches!(result, Ok(200)))
}

fn get_status(api: &ApiClient, url: &str) -> u16 {
    api.get(url).unwrap().status().as_u16()
}

#[test]
fn first_requests_from_many_threads_wait_for_one_silent_login() {
    let world = World::new();
    let api = world.api(world.session(fast_config()));
    let results = storm(&api, &world.url("/api/first"), 16);
    assert!(all_ok(&results), "{results:?}");
    let counters = world.counters();
    assert_eq!(counters.logins, 1);
    assert_eq!(
        counters.api_unauthorized, 0,
        "nothing went out without a token"
    );
    world.check_logs();
}

#[test]
fn storm_of_64_threads_after_expiry_makes_exactly_one_refresh() {
    let world = World::new();
    let api = world.api(world.session(fast_config()));
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    world.server.admin().expire_access_tokens();
    let results = storm(&api, &world.url("/api/storm"), 64);
    assert!(all_ok(&results), "{results:?}");
    let counters = world.counters();
    assert_eq!((counters.logins, counters.refresh_calls), (1, 1));
    assert_eq!(counters.invalid_grant, 0);
    assert_eq!(
        counters.requests_per_token.get(&2),
        Some(&64),
        "every request of the storm went out once with the refreshed token"
    );
    world.check_logs();
}

#[test]
fn dead_refresh_token_falls_back_to_exactly_one_silent_login() {
    let world = World::new();
    let api = world.api(world.session(fast_config()));
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    world.server.admin().expire_access_tokens();
    world.server.admin().revoke_refresh_tokens();
    let results = storm(&api, &world.url("/api/dead"), 32);
    assert!(all_ok(&results), "{results:?}");
    let counters = world.counters();
    assert_eq!(counters.refresh_calls, 1);
    assert_eq!(counters.invalid_grant, 1);
    assert_eq!(
        counters.logins, 2,
        "the first login and exactly one fallback"
    );
    world.check_logs();
}

#[test]
fn logout_during_refresh_fails_waiting_requests_and_never_refreshes_or_persists_again() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("session.json"));
    let session = world.session_with(fast_config(), store.clone());
    let api = world.api(session.clone());
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    assert!(store.load().unwrap().is_some());

    world.server.admin().expire_access_tokens();
    world
        .server
        .admin()
        .delay_refreshes(1, Duration::from_millis(400));
    let events = session.events();
    let waiting = {
        let (api, url) = (api.clone(), world.url("/api/waiting"));
        thread::spawn(move || storm(&api, &url, 8))
    };
    wait_for_event(&events, SessionState::Refreshing);
    session.logout().unwrap();
    assert!(
        store.load().unwrap().is_none(),
        "cleared when logout returns"
    );
    wait_for_event(&events, SessionState::LoggedOut);
    let results = waiting.join().unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(e) if e.session() == Some(RequestError::LoggedOut))),
        "{results:?}"
    );
    let after = api.get(&world.url("/api/after-logout")).unwrap_err();
    assert_eq!(after.session(), Some(RequestError::LoggedOut));

    // Shutdown waits for the refresh in flight: its (rotated) result comes back and is dropped.
    session.shutdown(PATIENCE).unwrap();
    let counters = world.counters();
    assert_eq!(
        counters.refreshes, 1,
        "the delayed refresh did complete at the server"
    );
    assert_eq!(
        (counters.refresh_calls, counters.logins),
        (1, 1),
        "nothing refreshed or logged in after the logout"
    );
    assert!(
        store.load().unwrap().is_none(),
        "the late refresh result was not written back"
    );
    world.check_logs();
}

#[test]
fn hung_refresh_fails_waiting_requests_by_the_operation_deadline() {
    let world = World::new();
    let config = Config {
        operation_timeout: Duration::from_millis(300),
        max_operation_retries: 0,
        max_refresh_failures: 0,
        ..fast_config()
    };
    let session = world.session(config);
    let api = world.api(session.clone());
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    world.server.admin().expire_access_tokens();
    world.server.admin().hang_refreshes(1);
    let started = Instant::now();
    let results = storm(&api, &world.url("/api/hung"), 8);
    let took = started.elapsed();
    assert!(
        results.iter().all(|r| matches!(
            r,
            Err(e) if e.session() == Some(RequestError::AuthUnavailable { attempts: 1 })
        )),
        "{results:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "failed by the deadline, took {took:?}"
    );
    // The next request tries again and recovers.
    assert_eq!(get_status(&api, &world.url("/api/recovered")), 200);
    assert_eq!(world.counters().refreshes, 1);
    world.check_logs();
}

#[test]
fn refresh_5xx_backs_off_then_fails_with_a_clear_error() {
    let world = World::new();
    let config = Config {
        max_operation_retries: 2,
        max_refresh_failures: 0,
        ..fast_config()
    };
    let api = world.api(world.session(config));
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    world.server.admin().expire_access_tokens();
    world.server.admin().fail_refreshes(3, 503);
    let error = api.get(&world.url("/api/failing")).unwrap_err();
    assert_eq!(
        error.session(),
        Some(RequestError::AuthUnavailable { attempts: 3 })
    );
    assert_eq!(world.counters().refresh_failures, 3);
    assert_eq!(get_status(&api, &world.url("/api/recovered")), 200);
    assert_eq!(world.counters().logins, 1, "a 5xx never costs a login");
    world.check_logs();
}

#[test]
fn caller_that_gives_up_cancels_its_request_and_it_is_never_sent() {
    let world = World::new();
    let session = world.session(fast_config());
    world
        .server
        .admin()
        .delay_logins(1, Duration::from_millis(500));
    let impatient = world.api(session.with_wait_timeout(Duration::from_millis(100)));
    let started = Instant::now();
    let error = impatient.get(&world.url("/api/impatient")).unwrap_err();
    assert!(matches!(error, Error::TimedOut), "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(450));
    // A patient request waits for the same login and goes out.
    let api = world.api(session);
    assert_eq!(get_status(&api, &world.url("/api/patient")), 200);
    let counters = world.counters();
    assert_eq!(counters.logins, 1);
    assert!(counters.requests_per_path.contains_key("/api/patient"));
    assert!(
        !counters.requests_per_path.contains_key("/api/impatient"),
        "the cancelled request was never sent"
    );
    world.check_logs();
}

#[test]
fn restart_with_the_file_store_needs_no_login() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/session.json");
    let first = world.session_with(fast_config(), FileStore::new(&path));
    assert_eq!(
        get_status(&world.api(first.clone()), &world.url("/api/first-run")),
        200
    );
    first.shutdown(PATIENCE).unwrap();
    let second = world.session_with(fast_config(), FileStore::new(&path));
    assert_eq!(second.state(), SessionState::Active, "restored");
    assert_eq!(
        get_status(&world.api(second), &world.url("/api/second-run")),
        200
    );
    assert_eq!(world.counters().logins, 1);
    world.check_logs();
}

#[test]
fn bearer_never_reaches_a_public_path_or_another_origin() {
    let world = World::new();
    let other = server();
    let api = world.api(world.session(fast_config()));
    // Before any session: neither waits for a login.
    assert_eq!(get_status(&api, &world.url("/public/status")), 200);
    assert_eq!(get_status(&api, &other.url("/api/elsewhere")), 401);
    assert_eq!(world.counters().logins, 0);
    assert_eq!(get_status(&api, &world.url("/api/mine")), 200);
    assert_eq!(get_status(&api, &world.url("/public/again")), 200);
    assert_eq!(get_status(&api, &other.url("/api/elsewhere-again")), 401);
    assert_eq!(world.counters().bearer_on_public, 0);
    assert_eq!(other.admin().counters().requests_with_bearer, 0);
    world.check_logs();
}

#[test]
fn non_replayable_body_gets_its_401_delivered_without_a_retry() {
    let world = World::new();
    let api = world.api(world.session(fast_config()));
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    world.server.admin().expire_access_tokens();
    let body: &[u8] = b"a stream, in spirit";
    let request = Request::post(world.url("/api/upload")).body(body).unwrap();
    let response = api.send_once(request, RequestOptions::default()).unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let no_retry = Request::get(world.url("/api/no-retry"))
        .body(Vec::new())
        .unwrap();
    let response = api.send_with(no_retry, RequestOptions::no_retry()).unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(world.counters().refresh_calls, 0);
    assert_eq!(
        world.counters().requests_per_path.get("/api/upload"),
        Some(&1)
    );
    world.check_logs();
}

#[test]
fn shutdown_during_a_refresh_persists_the_rotated_tokens() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("session.json"));
    let session = world.session_with(fast_config(), store.clone());
    let api = world.api(session.clone());
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    let before = store.load().unwrap().unwrap();
    world.server.admin().expire_access_tokens();
    world
        .server
        .admin()
        .delay_refreshes(1, Duration::from_millis(300));
    let events = session.events();
    let waiting = {
        let (api, url) = (api.clone(), world.url("/api/interrupted"));
        thread::spawn(move || api.get(&url).map(|_| ()))
    };
    wait_for_event(&events, SessionState::Refreshing);
    session.shutdown(PATIENCE).unwrap();
    let after = store.load().unwrap().unwrap();
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the rotated refresh token was persisted before the driver stopped"
    );
    assert!(matches!(waiting.join().unwrap(), Err(Error::Stopped)));
    // A restart uses the rotated tokens: no login, no second refresh.
    let restarted = world.api(world.session_with(fast_config(), store));
    assert_eq!(get_status(&restarted, &world.url("/api/restarted")), 200);
    let counters = world.counters();
    assert_eq!((counters.logins, counters.refresh_calls), (1, 1));
    world.check_logs();
}

#[test]
fn insufficient_scope_403_is_delivered_without_a_refresh() {
    let world = World::new();
    let api = world.api(world.session(fast_config()));
    assert_eq!(get_status(&api, &world.url("/api/forbidden")), 403);
    assert_eq!(
        world.counters().refresh_calls,
        0,
        "a 403 is not a reason to refresh"
    );
    world.check_logs();
}

#[test]
fn refused_silent_login_requires_the_user_then_an_explicit_login_recovers() {
    let world = World::new();
    let session = world.session(fast_config());
    let api = world.api(session.clone());
    world.server.admin().refuse_logins(1);
    let error = api.get(&world.url("/api/refused")).unwrap_err();
    assert_eq!(error.session(), Some(RequestError::LoginRequired));
    // The request hears its outcome in the same drain that notifies the state, just before.
    session
        .wait_for(PATIENCE, |state| state == SessionState::LoginRequired)
        .unwrap();
    let error = api.get(&world.url("/api/still-refused")).unwrap_err();
    assert_eq!(
        error.session(),
        Some(RequestError::LoginRequired),
        "fails fast, no new login"
    );
    assert_eq!(world.counters().logins_refused, 1);
    // The user acted: an explicit login.
    session.login().unwrap();
    session
        .wait_for(PATIENCE, |state| state == SessionState::Active)
        .unwrap();
    assert_eq!(get_status(&api, &world.url("/api/after-login")), 200);
    assert_eq!(world.counters().logins, 1);
    world.check_logs();
}

#[test]
fn logout_revokes_the_refresh_token_when_configured() {
    let world = World::new();
    let config = Config {
        revoke_on_logout: true,
        ..fast_config()
    };
    let session = world.session(config);
    let api = world.api(session.clone());
    assert_eq!(get_status(&api, &world.url("/api/warmup")), 200);
    session.logout().unwrap();
    // Shutdown waits for the revocation thread.
    session.shutdown(PATIENCE).unwrap();
    assert_eq!(world.counters().revocations, 1);
    world.check_logs();
}
