//! Sessions shared through one store (`Builder::shared_store`), end to end: two sessions of
//! this driver in one test process stand for two processes, over real loopback HTTP against
//! auth-demo's server (which rotates refresh tokens and revokes the whole family on reuse).
//! The same stories run in auth-tokio's `tests/shared.rs`.
//!
//! Every test captures the driver's logs and fails on an `ERROR` line or on any secret the
//! server issued appearing in them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../auth-driver/tests/support/outage.rs"]
mod outage;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{Config, RequestError, SessionState};
use auth_blocking::ureq::{ApiClient, Error, Scope};
use auth_blocking::{CallError, SessionHandle};
use auth_demo::multiprocess::assert_one_refresh;
use auth_demo::server::{Admin, Counters, ThreadedServer};
use auth_demo::testing::LogCapture;
use auth_store::shared::{
    Acquired, LeaseOwner, MemorySharedStore, RecordContent, SharedFileStore, SharedStore,
};

use common::{backend, demo, server, PATIENCE};
use outage::Outage;

/// How often the sessions of these tests read the store.
const WATCH: Duration = Duration::from_millis(200);

/// Short timeouts and backoff so failure paths finish in well under a second.
fn fast_config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..Config::default()
    }
}

/// One test's world: the server, and the log capture (current on the test thread, inherited by
/// the driver's threads).
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

    fn admin(&self) -> &Admin {
        self.server.admin()
    }

    fn counters(&self) -> Counters {
        self.admin().counters()
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A session (standing for one process) on `store`.
    fn session<S: SharedStore>(&self, config: Config, store: S) -> SessionHandle {
        SessionHandle::builder(backend(&self.server))
            .config(config)
            .shared_store(store)
            .watch_interval(WATCH)
            .start()
            .unwrap()
    }

    fn api(&self, session: &SessionHandle) -> ApiClient {
        let scope = Scope::new(self.server.base_url())
            .unwrap()
            .public_path("/public");
        ApiClient::new(demo::agent(Duration::from_secs(5)), session.clone(), scope)
    }
}

impl Drop for World {
    /// No `ERROR` line and no issued secret in the logs (unless the test already failed).
    fn drop(&mut self) {
        if thread::panicking() {
            return;
        }
        let secrets = self.server.admin().issued_secrets();
        assert!(!secrets.is_empty(), "the server issued no secret");
        if let Err(problem) = self.logs.check(&secrets) {
            panic!("{problem}\n--- captured logs ---\n{}", self.logs.text());
        }
    }
}

type Outcome = Result<u16, Error>;

fn get(api: &ApiClient, url: &str) -> Outcome {
    api.get(url).map(|response| response.status().as_u16())
}

/// `n` GETs of `/api/{prefix}/{p}/{i}` at once through each of `apis`, one thread each.
fn storm(world: &World, apis: &[&ApiClient], prefix: &str, n: usize) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(n * apis.len()));
    let threads: Vec<_> = apis
        .iter()
        .enumerate()
        .flat_map(|(p, api)| (0..n).map(move |i| (p, i, (*api).clone())))
        .map(|(p, i, api)| {
            let barrier = Arc::clone(&barrier);
            let url = world.url(&format!("/api/{prefix}/{p}/{i}"));
            thread::spawn(move || {
                barrier.wait();
                get(&api, &url)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn assert_all_delivered(outcomes: &[Outcome]) {
    let failed: Vec<_> = outcomes.iter().filter(|o| !matches!(o, Ok(200))).collect();
    assert!(
        failed.is_empty(),
        "{} not delivered: {failed:?}",
        failed.len()
    );
}

fn session_error(outcome: &Outcome) -> Option<RequestError> {
    outcome.as_ref().err().and_then(Error::session)
}

/// Waits at most `limit` for `condition`.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {limit:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// A shared file store in `dir`.
fn file_store(dir: &Path) -> SharedFileStore {
    SharedFileStore::new(dir.join("session.json"))
}

/// Two sessions, each on a store that `open` opens (the same session's store, as two processes
/// would open it): a storm from both makes one login, an expiry then one refresh, and every
/// request is delivered.
fn one_refresh_for_two_sessions<S: SharedStore>(world: &World, open: impl Fn() -> S) {
    let a = world.session(fast_config(), open());
    let b = world.session(fast_config(), open());
    let (api_a, api_b) = (world.api(&a), world.api(&b));
    assert_all_delivered(&storm(world, &[&api_a, &api_b], "first", 8));
    assert_eq!(world.counters().logins, 1, "one login for both sessions");

    world.admin().expire_access_tokens();
    let before = world.counters();
    assert_all_delivered(&storm(world, &[&api_a, &api_b], "expired", 24));
    let after = world.counters();
    assert_one_refresh(&before, &after);
    assert_eq!(after.reuse_detected, 0);
    assert_eq!(after.logins, 1, "nobody logged in again");
    assert!(
        after.api_requests - before.api_requests <= 96,
        "each request sent at most twice"
    );
    a.shutdown(PATIENCE).unwrap();
    b.shutdown(PATIENCE).unwrap();
}

#[test]
fn two_sessions_on_a_memory_store_make_one_refresh_through_an_expiry() {
    let world = World::new();
    let store = MemorySharedStore::new();
    one_refresh_for_two_sessions(&world, || store.clone());
}

#[test]
fn two_sessions_on_a_file_store_make_one_refresh_through_an_expiry() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    one_refresh_for_two_sessions(&world, || file_store(dir.path()));
}

#[cfg(unix)] // auth-redis's test server runs on Unix
#[test]
fn two_sessions_on_a_redis_store_make_one_refresh_through_an_expiry() {
    use auth_redis::testing::RedisServer;
    use auth_redis::RedisStore;

    let redis = RedisServer::start().expect("redis-server (.ci/run installs it)");
    let world = World::new();
    let url = redis.url();
    one_refresh_for_two_sessions(&world, || {
        RedisStore::open(&url, "seamless-blocking-test").unwrap()
    });
}

#[test]
fn a_logout_in_one_session_fails_the_others_waiting_and_new_requests_within_the_watch_interval() {
    let world = World::new();
    let store = MemorySharedStore::new();
    let a = world.session(fast_config(), store.clone());
    let b = world.session(fast_config(), store.clone());
    let (api_a, api_b) = (world.api(&a), world.api(&b));
    assert_all_delivered(&storm(&world, &[&api_a, &api_b], "first", 3));

    // B refreshes, slowly: its request waits in its queue.
    world
        .admin()
        .delay_refreshes(1, Duration::from_millis(1500));
    world.admin().expire_access_tokens();
    let waiting = {
        let api = api_b.clone();
        let url = world.url("/api/waiting");
        thread::spawn(move || get(&api, &url))
    };
    wait_until(PATIENCE, || world.counters().refresh_calls == 1);

    let logged_out = Instant::now();
    a.logout().unwrap();
    let outcome = waiting.join().unwrap();
    let took = logged_out.elapsed();
    assert_eq!(session_error(&outcome), Some(RequestError::LoggedOut));
    assert!(took < WATCH * 5, "within the watch interval: {took:?}");
    assert_eq!(b.state(), SessionState::LoggedOut);
    let later = get(&api_b, &world.url("/api/after-logout"));
    assert_eq!(session_error(&later), Some(RequestError::LoggedOut));

    // The delayed refresh answers now: its tokens are dropped, never written over the
    // tombstone, and nobody refreshes or logs in again.
    thread::sleep(Duration::from_millis(1700));
    let counters = world.counters();
    assert_eq!((counters.refresh_calls, counters.logins), (1, 1));
    assert!(!counters.requests_per_path.contains_key("/api/after-logout"));
    assert_eq!(store.read().unwrap().content, RecordContent::LoggedOut);
}

#[test]
fn an_unreachable_store_fails_only_the_requests_that_need_new_tokens_with_store_unavailable() {
    let world = World::new();
    let store = Outage::new(MemorySharedStore::new());
    let session = world.session(fast_config(), store.clone());
    let api = world.api(&session);
    assert_eq!(get(&api, &world.url("/api/first")).unwrap(), 200);

    store.set_down(true);
    // A usable token never touches the store.
    assert_eq!(get(&api, &world.url("/api/still-fine")).unwrap(), 200);
    assert_eq!(get(&api, &world.url("/public/page")).unwrap(), 200);

    world.admin().expire_access_tokens();
    let started = Instant::now();
    let outcomes = storm(&world, &[&api], "needs-tokens", 5);
    let elapsed = started.elapsed();
    for outcome in &outcomes {
        assert!(
            matches!(
                session_error(outcome),
                Some(RequestError::StoreUnavailable { .. })
            ),
            "{outcome:?}"
        );
    }
    assert!(elapsed < fast_config().queue_timeout, "{elapsed:?}");
    assert!(store.refused() > 0);
    let counters = world.counters();
    assert_eq!(
        (counters.refresh_calls, counters.logins),
        (0, 1),
        "nothing without the lease"
    );
    assert_eq!(get(&api, &world.url("/public/during")).unwrap(), 200);

    // Back: the next request takes the lease, refreshes once, and goes through.
    store.set_down(false);
    assert_eq!(get(&api, &world.url("/api/back")).unwrap(), 200);
    assert_eq!(world.counters().refreshes, 1);
}

#[test]
fn a_store_that_hangs_is_cut_off_by_the_operation_deadline() {
    let world = World::new();
    let config = Config {
        operation_timeout: Duration::from_millis(300),
        max_operation_retries: 1,
        ..fast_config()
    };
    let store = Outage::new(MemorySharedStore::new());
    let session = world.session(config, store.clone());
    let api = world.api(&session);
    assert_eq!(get(&api, &world.url("/api/first")).unwrap(), 200);

    store.set_hang(Duration::from_secs(2));
    store.set_down(true);
    world.admin().expire_access_tokens();
    let started = Instant::now();
    let outcome = get(&api, &world.url("/api/hung"));
    let elapsed = started.elapsed();
    assert!(
        matches!(
            session_error(&outcome),
            Some(RequestError::StoreUnavailable { .. })
        ),
        "{outcome:?}"
    );
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(world.counters().refresh_calls, 0);

    // The logout's tombstone too: `logout()` says it is not durable by the deadline.
    let started = Instant::now();
    let error = session.logout().unwrap_err();
    assert!(matches!(error, CallError::LogoutNotDurable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_restart_after_a_logout_starts_logged_out_on_a_file_store() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let first = world.session(fast_config(), file_store(dir.path()));
    assert_eq!(get(&world.api(&first), &world.url("/api/me")).unwrap(), 200);
    first.logout().unwrap();
    first.shutdown(PATIENCE).unwrap();
    drop(first);

    let restarted = world.session(fast_config(), file_store(dir.path()));
    assert_eq!(restarted.state(), SessionState::LoggedOut);
    let api = world.api(&restarted);
    let outcome = get(&api, &world.url("/api/after-restart"));
    assert_eq!(session_error(&outcome), Some(RequestError::LoggedOut));
    assert_eq!(
        world.counters().logins,
        1,
        "the restart did not sign back in"
    );

    // Only an explicit login starts again.
    restarted.login().unwrap();
    restarted
        .wait_for(PATIENCE, |state| state == SessionState::Active)
        .unwrap();
    assert_eq!(get(&api, &world.url("/api/again")).unwrap(), 200);
    assert_eq!(world.counters().logins, 2);
}

#[test]
fn a_session_started_while_the_store_is_down_follows_the_logout_it_could_not_read() {
    let world = World::new();
    let store = Outage::new(MemorySharedStore::new());
    let first = world.session(fast_config(), store.clone());
    assert_eq!(get(&world.api(&first), &world.url("/api/me")).unwrap(), 200);
    first.logout().unwrap();

    // The store is down (and hangs) at start: after trying for the operation timeout, the
    // session starts without the record...
    let config = Config {
        operation_timeout: Duration::from_millis(300),
        ..fast_config()
    };
    store.set_down(true);
    store.set_hang(Duration::from_millis(700));
    let started = Instant::now();
    let blind = world.session(config, store.clone());
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(650),
        "bounded by the deadline: {elapsed:?}"
    );
    assert_eq!(blind.state(), SessionState::Anonymous);
    // ...and nothing goes out while it cannot read the store.
    let api = world.api(&blind);
    let outcome = get(&api, &world.url("/api/blind"));
    assert!(
        matches!(
            session_error(&outcome),
            Some(RequestError::StoreUnavailable { .. })
        ),
        "{outcome:?}"
    );
    // Back: the tombstone is followed, nobody logs in over the logout.
    store.set_down(false);
    blind
        .wait_for(WATCH * 10, |state| state == SessionState::LoggedOut)
        .unwrap();
    let outcome = get(&api, &world.url("/api/after"));
    assert_eq!(session_error(&outcome), Some(RequestError::LoggedOut));
    let counters = world.counters();
    assert_eq!(counters.logins, 1);
    assert!(!counters.requests_per_path.contains_key("/api/blind"));
    assert!(!counters.requests_per_path.contains_key("/api/after"));
}

#[test]
fn a_logout_whose_tombstone_cannot_be_written_says_it_is_not_durable() {
    let world = World::new();
    let store = Outage::new(MemorySharedStore::new());
    let session = world.session(fast_config(), store.clone());
    assert_eq!(
        get(&world.api(&session), &world.url("/api/me")).unwrap(),
        200
    );
    store.set_down(true);
    let error = session.logout().unwrap_err();
    assert!(matches!(error, CallError::LogoutNotDurable(_)), "{error:?}");
    assert_eq!(session.state(), SessionState::LoggedOut);
    assert!(matches!(
        store.inner().read().unwrap().content,
        RecordContent::Tokens(_)
    ));
    // Once the store is back, logging out again makes it durable.
    store.set_down(false);
    session.logout().unwrap();
    assert_eq!(
        store.inner().read().unwrap().content,
        RecordContent::LoggedOut
    );
}

#[test]
fn shutdown_publishes_the_refresh_in_flight_and_gives_the_lease_back() {
    let world = World::new();
    let store = MemorySharedStore::new();
    let session = world.session(fast_config(), store.clone());
    let api = world.api(&session);
    assert_eq!(get(&api, &world.url("/api/first")).unwrap(), 200);
    let before = store.read().unwrap();

    world.admin().delay_refreshes(1, Duration::from_millis(500));
    world.admin().expire_access_tokens();
    let waiting = {
        let api = api.clone();
        let url = world.url("/api/waiting");
        thread::spawn(move || get(&api, &url))
    };
    wait_until(PATIENCE, || world.counters().refresh_calls == 1);
    session.shutdown(PATIENCE).unwrap();

    let outcome = waiting.join().unwrap();
    assert!(matches!(outcome, Err(Error::Stopped)), "{outcome:?}");
    // The rotated tokens reached the store (unspent: other processes refresh with them)...
    let after = store.read().unwrap();
    assert_eq!(after.version, before.version.next());
    assert!(matches!(after.content, RecordContent::Tokens(_)));
    assert_ne!(after.content, before.content);
    assert!(!after.spent);
    // ...and the lease is free at once, not after its ttl.
    let probe = store.acquire(&LeaseOwner("probe".into()), Duration::from_secs(1));
    assert!(matches!(probe, Ok(Acquired::Granted(_))), "{probe:?}");
}
