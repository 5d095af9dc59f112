//! Sessions shared through one store (`Builder::shared_store`), end to end: two sessions of
//! this driver in one test process stand for two processes, over real loopback HTTP against
//! auth-demo's server (which rotates refresh tokens and revokes the whole family on reuse).
//! The same stories run in auth-blocking's `tests/shared.rs`.
//!
//! Every test is bounded in time, fails on any `ERROR` log, and fails if any secret the server
//! issued appears in its `TRACE` logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../auth-driver/tests/support/outage.rs"]
mod outage;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use auth_demo::backend::DemoBackend;
use auth_demo::multiprocess::assert_one_refresh;
use auth_demo::server::{self, Admin, Counters, ServerConfig, ServerHandle};
use auth_demo::testing::LogCapture;
use auth_store::shared::{
    Acquired, LeaseOwner, MemorySharedStore, RecordContent, SharedFileStore, SharedStore,
};
use auth_tokio::auth_core::{Config, RequestError, SessionState};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{Error, Scope, SessionHandle};
use tokio::task::JoinSet;

use outage::Outage;

/// Upper bound of any one test.
const TEST_LIMIT: Duration = Duration::from_secs(40);

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

/// A fresh demo server and an HTTP client.
struct Ctx {
    server: ServerHandle,
    http: reqwest::Client,
}

/// Runs `test` against a fresh server on a two-worker runtime whose logs are captured, then
/// checks them.
fn e2e<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(Some(2)).unwrap();
    let secrets = runtime.block_on(async {
        let server = server::spawn(ServerConfig::default()).await.unwrap();
        let admin = server.admin().clone();
        let http = reqwest::Client::builder().build().unwrap();
        tokio::time::timeout(TEST_LIMIT, test(Ctx { server, http }))
            .await
            .expect("the test did not finish in time");
        admin.issued_secrets()
    });
    drop(runtime);
    assert!(!secrets.is_empty(), "the server issued no secret");
    if let Err(problem) = logs.check(&secrets) {
        panic!("{problem}\n--- captured logs ---\n{}", logs.text());
    }
}

impl Ctx {
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
    async fn session<S: SharedStore>(&self, config: Config, store: S) -> SessionHandle {
        let backend = DemoBackend::new(self.http.clone(), self.server.base_url()).unwrap();
        SessionHandle::builder(backend)
            .config(config)
            .shared_store(store)
            .watch_interval(WATCH)
            .start()
            .await
    }

    fn api(&self, session: &SessionHandle) -> ApiClient {
        let scope = Scope::new(self.server.base_url())
            .unwrap()
            .public_path("/public");
        ApiClient::new(self.http.clone(), session.clone(), scope)
    }
}

type Outcome = Result<u16, Error<reqwest::Error>>;

async fn get(api: &ApiClient, url: &str) -> Outcome {
    api.get(url)
        .await
        .map(|response| response.status().as_u16())
}

/// `n` concurrent GETs of `/api/{prefix}/{i}` through each of `apis`.
async fn storm(ctx: &Ctx, apis: &[&ApiClient], prefix: &str, n: usize) -> Vec<Outcome> {
    let mut calls = JoinSet::new();
    for (p, api) in apis.iter().enumerate() {
        for i in 0..n {
            let api = (*api).clone();
            let url = ctx.url(&format!("/api/{prefix}/{p}/{i}"));
            calls.spawn(async move { get(&api, &url).await });
        }
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = calls.join_next().await {
        outcomes.push(joined.unwrap());
    }
    outcomes
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

/// Waits at most `limit` for `session` to reach `state`; how long it took.
async fn reaches(session: &SessionHandle, state: SessionState, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut events = session.events();
    tokio::time::timeout(limit, events.wait_for(|seen| *seen == state))
        .await
        .unwrap_or_else(|_| panic!("not {state:?} within {limit:?}: {:?}", session.state()))
        .unwrap();
    started.elapsed()
}

/// Waits at most `limit` for `condition`.
async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A shared file store in `dir`.
fn file_store(dir: &Path) -> SharedFileStore {
    SharedFileStore::new(dir.join("session.json"))
}

/// Two sessions, each on a store that `open` opens (the same session's store, as two processes
/// would open it): a storm from both makes one login, an expiry then one refresh, and every
/// request is delivered.
async fn one_refresh_for_two_sessions<S: SharedStore>(ctx: &Ctx, open: impl Fn() -> S) {
    let a = ctx.session(fast_config(), open()).await;
    let b = ctx.session(fast_config(), open()).await;
    let (api_a, api_b) = (ctx.api(&a), ctx.api(&b));
    assert_all_delivered(&storm(ctx, &[&api_a, &api_b], "first", 20).await);
    assert_eq!(ctx.counters().logins, 1, "one login for both sessions");

    ctx.admin().expire_access_tokens();
    let before = ctx.counters();
    assert_all_delivered(&storm(ctx, &[&api_a, &api_b], "expired", 50).await);
    let after = ctx.counters();
    assert_one_refresh(&before, &after);
    assert_eq!(after.reuse_detected, 0);
    assert_eq!(after.logins, 1, "nobody logged in again");
    assert!(
        after.api_requests - before.api_requests <= 200,
        "each request sent at most twice"
    );
    a.shutdown(Duration::from_secs(5)).await.unwrap();
    b.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[test]
fn two_sessions_on_a_memory_store_make_one_refresh_through_an_expiry() {
    e2e(|ctx| async move {
        let store = MemorySharedStore::new();
        one_refresh_for_two_sessions(&ctx, || store.clone()).await;
    });
}

#[test]
fn two_sessions_on_a_file_store_make_one_refresh_through_an_expiry() {
    e2e(|ctx| async move {
        let dir = tempfile::tempdir().unwrap();
        one_refresh_for_two_sessions(&ctx, || file_store(dir.path())).await;
    });
}

#[cfg(unix)] // auth-redis's test server runs on Unix
#[test]
fn two_sessions_on_a_redis_store_make_one_refresh_through_an_expiry() {
    use auth_redis::testing::RedisServer;
    use auth_redis::RedisStore;

    let redis = RedisServer::start().expect("redis-server (.ci/run installs it)");
    e2e(|ctx| async move {
        let url = redis.url();
        let open = || RedisStore::open(&url, "seamless-tokio-test").unwrap();
        one_refresh_for_two_sessions(&ctx, open).await;
    });
}

#[test]
fn a_logout_in_one_session_fails_the_others_waiting_and_new_requests_within_the_watch_interval() {
    e2e(|ctx| async move {
        let store = MemorySharedStore::new();
        let a = ctx.session(fast_config(), store.clone()).await;
        let b = ctx.session(fast_config(), store.clone()).await;
        let (api_a, api_b) = (ctx.api(&a), ctx.api(&b));
        assert_all_delivered(&storm(&ctx, &[&api_a, &api_b], "first", 3).await);

        // B refreshes, slowly: its requests wait in its queue.
        ctx.admin().delay_refreshes(1, Duration::from_millis(1500));
        ctx.admin().expire_access_tokens();
        let waiting = {
            let api = api_b.clone();
            let url = ctx.url("/api/waiting");
            tokio::spawn(async move { get(&api, &url).await })
        };
        let admin = ctx.admin().clone();
        wait_until(Duration::from_secs(5), || {
            admin.counters().refresh_calls == 1
        })
        .await;

        a.logout().await.unwrap();
        let outcome = tokio::time::timeout(WATCH * 5, waiting)
            .await
            .expect("the waiting request ends within the watch interval")
            .unwrap();
        assert_eq!(session_error(&outcome), Some(RequestError::LoggedOut));
        assert_eq!(b.state(), SessionState::LoggedOut);
        let later = get(&api_b, &ctx.url("/api/after-logout")).await;
        assert_eq!(session_error(&later), Some(RequestError::LoggedOut));

        // The delayed refresh answers now: its tokens are dropped, never written over the
        // tombstone, and nobody refreshes or logs in again.
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let counters = ctx.counters();
        assert_eq!((counters.refresh_calls, counters.logins), (1, 1));
        assert!(!counters.requests_per_path.contains_key("/api/after-logout"));
        assert_eq!(store.read().unwrap().content, RecordContent::LoggedOut);
    });
}

#[test]
fn an_unreachable_store_fails_only_the_requests_that_need_new_tokens_with_store_unavailable() {
    e2e(|ctx| async move {
        let store = Outage::new(MemorySharedStore::new());
        let session = ctx.session(fast_config(), store.clone()).await;
        let api = ctx.api(&session);
        assert_eq!(get(&api, &ctx.url("/api/first")).await.unwrap(), 200);

        store.set_down(true);
        // A usable token never touches the store.
        assert_eq!(get(&api, &ctx.url("/api/still-fine")).await.unwrap(), 200);
        assert_eq!(get(&api, &ctx.url("/public/page")).await.unwrap(), 200);

        ctx.admin().expire_access_tokens();
        let started = Instant::now();
        let outcomes = storm(&ctx, &[&api], "needs-tokens", 5).await;
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
        let counters = ctx.counters();
        assert_eq!(
            (counters.refresh_calls, counters.logins),
            (0, 1),
            "nothing without the lease"
        );
        assert_eq!(get(&api, &ctx.url("/public/during")).await.unwrap(), 200);

        // Back: the next request takes the lease, refreshes once, and goes through.
        store.set_down(false);
        assert_eq!(get(&api, &ctx.url("/api/back")).await.unwrap(), 200);
        assert_eq!(ctx.counters().refreshes, 1);
    });
}

#[test]
fn a_store_that_hangs_is_cut_off_by_the_operation_deadline() {
    e2e(|ctx| async move {
        let config = Config {
            operation_timeout: Duration::from_millis(300),
            max_operation_retries: 1,
            ..fast_config()
        };
        let store = Outage::new(MemorySharedStore::new());
        let session = ctx.session(config, store.clone()).await;
        let api = ctx.api(&session);
        assert_eq!(get(&api, &ctx.url("/api/first")).await.unwrap(), 200);

        store.set_hang(Duration::from_secs(2));
        store.set_down(true);
        ctx.admin().expire_access_tokens();
        let started = Instant::now();
        let outcome = get(&api, &ctx.url("/api/hung")).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(
                session_error(&outcome),
                Some(RequestError::StoreUnavailable { .. })
            ),
            "{outcome:?}"
        );
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
        assert_eq!(ctx.counters().refresh_calls, 0);

        // The logout's tombstone too: `logout()` says it is not durable by the deadline.
        let started = Instant::now();
        let error = session.logout().await.unwrap_err();
        assert!(
            matches!(error, auth_tokio::CallError::LogoutNotDurable(_)),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    });
}

#[test]
fn a_restart_after_a_logout_starts_logged_out_on_a_file_store() {
    e2e(|ctx| async move {
        let dir = tempfile::tempdir().unwrap();
        let first = ctx.session(fast_config(), file_store(dir.path())).await;
        assert_eq!(
            get(&ctx.api(&first), &ctx.url("/api/me")).await.unwrap(),
            200
        );
        first.logout().await.unwrap();
        first.shutdown(Duration::from_secs(5)).await.unwrap();
        drop(first);

        let restarted = ctx.session(fast_config(), file_store(dir.path())).await;
        assert_eq!(restarted.state(), SessionState::LoggedOut);
        let outcome = get(&ctx.api(&restarted), &ctx.url("/api/after-restart")).await;
        assert_eq!(session_error(&outcome), Some(RequestError::LoggedOut));
        assert_eq!(ctx.counters().logins, 1, "the restart did not sign back in");

        // Only an explicit login starts again.
        restarted.login().await.unwrap();
        reaches(&restarted, SessionState::Active, Duration::from_secs(5)).await;
        let api = ctx.api(&restarted);
        assert_eq!(get(&api, &ctx.url("/api/again")).await.unwrap(), 200);
        assert_eq!(ctx.counters().logins, 2);
    });
}

#[test]
fn a_session_started_while_the_store_is_down_follows_the_logout_it_could_not_read() {
    e2e(|ctx| async move {
        let store = Outage::new(MemorySharedStore::new());
        let first = ctx.session(fast_config(), store.clone()).await;
        assert_eq!(
            get(&ctx.api(&first), &ctx.url("/api/me")).await.unwrap(),
            200
        );
        first.logout().await.unwrap();

        // The store is down at start: after trying for the operation timeout, the session
        // starts without the record...
        let config = Config {
            operation_timeout: Duration::from_millis(300),
            ..fast_config()
        };
        store.set_down(true);
        store.set_hang(Duration::from_millis(700));
        let started = Instant::now();
        let blind = ctx.session(config, store.clone()).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(650),
            "bounded by the deadline: {elapsed:?}"
        );
        assert_eq!(blind.state(), SessionState::Anonymous);
        // ...and nothing goes out while it cannot read the store.
        let api = ctx.api(&blind);
        let outcome = get(&api, &ctx.url("/api/blind")).await;
        assert!(
            matches!(
                session_error(&outcome),
                Some(RequestError::StoreUnavailable { .. })
            ),
            "{outcome:?}"
        );
        // Back: the tombstone is followed, nobody logs in over the logout.
        store.set_down(false);
        reaches(&blind, SessionState::LoggedOut, WATCH * 10).await;
        let outcome = get(&api, &ctx.url("/api/after")).await;
        assert_eq!(session_error(&outcome), Some(RequestError::LoggedOut));
        let counters = ctx.counters();
        assert_eq!(counters.logins, 1);
        assert!(!counters.requests_per_path.contains_key("/api/blind"));
        assert!(!counters.requests_per_path.contains_key("/api/after"));
    });
}

#[test]
fn a_logout_whose_tombstone_cannot_be_written_says_it_is_not_durable() {
    e2e(|ctx| async move {
        let store = Outage::new(MemorySharedStore::new());
        let session = ctx.session(fast_config(), store.clone()).await;
        assert_eq!(
            get(&ctx.api(&session), &ctx.url("/api/me")).await.unwrap(),
            200
        );
        store.set_down(true);
        let error = session.logout().await.unwrap_err();
        assert!(
            matches!(error, auth_tokio::CallError::LogoutNotDurable(_)),
            "{error:?}"
        );
        assert_eq!(session.state(), SessionState::LoggedOut);
        assert!(matches!(
            store.inner().read().unwrap().content,
            RecordContent::Tokens(_)
        ));
        // Once the store is back, logging out again makes it durable.
        store.set_down(false);
        session.logout().await.unwrap();
        assert_eq!(
            store.inner().read().unwrap().content,
            RecordContent::LoggedOut
        );
    });
}

#[test]
fn shutdown_publishes_the_refresh_in_flight_and_gives_the_lease_back() {
    e2e(|ctx| async move {
        let store = MemorySharedStore::new();
        let session = ctx.session(fast_config(), store.clone()).await;
        let api = ctx.api(&session);
        assert_eq!(get(&api, &ctx.url("/api/first")).await.unwrap(), 200);
        let before = store.read().unwrap();

        ctx.admin().delay_refreshes(1, Duration::from_millis(500));
        ctx.admin().expire_access_tokens();
        let waiting = {
            let api = api.clone();
            let url = ctx.url("/api/waiting");
            tokio::spawn(async move { get(&api, &url).await })
        };
        let admin = ctx.admin().clone();
        wait_until(Duration::from_secs(5), || {
            admin.counters().refresh_calls == 1
        })
        .await;
        session.shutdown(Duration::from_secs(5)).await.unwrap();

        let outcome = waiting.await.unwrap();
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
    });
}
