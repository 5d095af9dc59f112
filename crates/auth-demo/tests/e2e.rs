//! End-to-end stories of auth-tokio over real loopback HTTP against the demo server, which each
//! test starts itself on an ephemeral port. Every test is bounded in time, fails on any `ERROR`
//! log, and fails if any secret the server issued appears in its `TRACE` logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, Admin, Counters, ServerConfig, ServerHandle};
use auth_demo::story::{self, StoryOptions};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{Config, RequestError, SessionState};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{Error, FileStore, MemoryStore, RequestOptions, Scope, SessionHandle, TokenStore};
use tokio::task::JoinSet;

/// Upper bound of any one test.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// What a test gets: a fresh demo server and an HTTP client.
struct Ctx {
    server: ServerHandle,
    http: reqwest::Client,
}

/// A session config with short timeouts, so failure paths finish quickly.
fn fast_config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..Config::default()
    }
}

/// Runs `test` against a fresh server on a runtime whose logs are captured, then checks them.
/// `workers: None` is a current-thread runtime.
fn e2e<F, Fut>(workers: Option<usize>, test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(workers).unwrap();
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
    assert!(
        !secrets.is_empty(),
        "the server issued no secret: nothing was tested"
    );
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

    fn scope(&self) -> Scope {
        Scope::new(self.server.base_url())
            .unwrap()
            .public_path("/public")
    }

    fn backend(&self) -> DemoBackend {
        DemoBackend::new(self.http.clone(), self.server.base_url()).unwrap()
    }

    async fn session<S: TokenStore>(&self, config: Config, store: S) -> SessionHandle {
        SessionHandle::builder(self.backend())
            .config(config)
            .store(store)
            .start()
            .await
    }

    async fn api(&self, config: Config) -> ApiClient {
        let session = self.session(config, MemoryStore::new()).await;
        ApiClient::new(self.http.clone(), session, self.scope())
    }

    fn api_with(&self, session: SessionHandle) -> ApiClient {
        ApiClient::new(self.http.clone(), session, self.scope())
    }
}

type Outcome = Result<u16, Error<reqwest::Error>>;

async fn get(api: &ApiClient, url: &str) -> Outcome {
    api.get(url)
        .await
        .map(|response| response.status().as_u16())
}

/// `n` concurrent GETs of `/api/{prefix}/{i}`.
async fn fire(ctx: &Ctx, api: &ApiClient, prefix: &str, n: usize) -> Vec<Outcome> {
    let mut calls = JoinSet::new();
    for i in 0..n {
        let api = api.clone();
        let url = ctx.url(&format!("/api/{prefix}/{i}"));
        calls.spawn(async move { get(&api, &url).await });
    }
    let mut outcomes = Vec::with_capacity(n);
    while let Some(joined) = calls.join_next().await {
        outcomes.push(joined.unwrap());
    }
    outcomes
}

fn count_ok(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|o| matches!(o, Ok(200))).count()
}

fn session_error(outcome: &Outcome) -> Option<RequestError> {
    outcome.as_ref().err().and_then(Error::session)
}

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

/// Logs in through one API call.
async fn logged_in(ctx: &Ctx, config: Config) -> ApiClient {
    let api = ctx.api(config).await;
    assert_eq!(get(&api, &ctx.url("/api/me")).await.unwrap(), 200);
    api
}

#[test]
fn first_requests_wait_for_one_silent_login() {
    e2e(None, |ctx| async move {
        let api = ctx.api(fast_config()).await;
        let outcomes = fire(&ctx, &api, "first", 5).await;
        assert_eq!(count_ok(&outcomes), 5);
        let counters = ctx.counters();
        assert_eq!(counters.logins, 1);
        assert_eq!(
            counters.api_unauthorized, 0,
            "nothing went out without a token"
        );
        assert_eq!(counters.api_requests, 5);
        assert_eq!(api.session().state(), SessionState::Active);
    });
}

#[test]
fn storm_of_1000_concurrent_requests_after_expiry_makes_exactly_one_refresh() {
    e2e(Some(2), |ctx| async move {
        let api = logged_in(&ctx, fast_config()).await;
        ctx.admin().expire_access_tokens();
        let before = ctx.counters();
        let outcomes = fire(&ctx, &api, "storm", 1000).await;
        let after = ctx.counters();
        let failures: Vec<_> = outcomes.iter().filter(|o| !matches!(o, Ok(200))).collect();
        assert!(
            failures.is_empty(),
            "{} failed, e.g. {:?}",
            failures.len(),
            failures[0]
        );
        assert_eq!(after.refresh_calls - before.refresh_calls, 1);
        assert_eq!(after.refreshes - before.refreshes, 1);
        assert_eq!(after.logins, 1);
        assert!(
            after.api_requests - before.api_requests <= 2000,
            "sent at most twice each"
        );
    });
}

#[test]
fn dead_refresh_token_falls_back_to_exactly_one_silent_login() {
    e2e(None, |ctx| async move {
        let api = logged_in(&ctx, fast_config()).await;
        ctx.admin().revoke_refresh_tokens();
        ctx.admin().expire_access_tokens();
        let outcomes = fire(&ctx, &api, "after-revoke", 100).await;
        assert_eq!(count_ok(&outcomes), 100);
        let counters = ctx.counters();
        assert_eq!(counters.refresh_calls, 1);
        assert_eq!(counters.invalid_grant, 1);
        assert_eq!(counters.logins, 2, "the first login and exactly one more");
    });
}

#[test]
fn logout_during_refresh_fails_waiting_requests_and_never_refreshes_or_persists_again() {
    e2e(None, |ctx| async move {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        let session = ctx.session(fast_config(), store.clone()).await;
        let api = ctx.api_with(session.clone());
        assert_eq!(get(&api, &ctx.url("/api/me")).await.unwrap(), 200);
        assert!(store.path().exists());

        ctx.admin().delay_refreshes(1, Duration::from_millis(800));
        ctx.admin().expire_access_tokens();
        let mut waiting = JoinSet::new();
        for i in 0..10 {
            let api = api.clone();
            let url = ctx.url(&format!("/api/waiting/{i}"));
            waiting.spawn(async move { get(&api, &url).await });
        }
        let admin = ctx.admin().clone();
        wait_until(Duration::from_secs(5), || {
            admin.counters().refresh_calls == 1
        })
        .await;
        session.logout().await.unwrap();
        assert!(
            !store.path().exists(),
            "logout clears the store before returning"
        );

        while let Some(joined) = waiting.join_next().await {
            let outcome = joined.unwrap();
            assert_eq!(
                session_error(&outcome),
                Some(RequestError::LoggedOut),
                "{outcome:?}"
            );
        }
        // The delayed refresh answers now; its tokens must be dropped, not stored.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let counters = ctx.counters();
        assert_eq!(counters.refreshes, 1, "the server did rotate once");
        assert_eq!(counters.refresh_calls, 1, "no refresh after the logout");
        assert_eq!(counters.logins, 1, "no silent login after the logout");
        assert!(
            !store.path().exists(),
            "the late refresh result was not persisted"
        );
        assert!(store.load().unwrap().is_none());
        assert_eq!(session.state(), SessionState::LoggedOut);

        let after = get(&api, &ctx.url("/api/after-logout")).await;
        assert_eq!(session_error(&after), Some(RequestError::LoggedOut));
        assert!(!ctx
            .counters()
            .requests_per_path
            .contains_key("/api/after-logout"));
    });
}

#[test]
fn hung_refresh_fails_waiting_requests_at_the_queue_deadline() {
    e2e(None, |ctx| async move {
        let config = Config {
            queue_timeout: Duration::from_millis(400),
            operation_timeout: Duration::from_secs(10),
            ..fast_config()
        };
        let api = logged_in(&ctx, config).await;
        ctx.admin().hang_refreshes(1);
        ctx.admin().expire_access_tokens();
        let started = Instant::now();
        let outcomes = fire(&ctx, &api, "hung", 5).await;
        let elapsed = started.elapsed();
        for outcome in &outcomes {
            assert_eq!(
                session_error(outcome),
                Some(RequestError::Timeout),
                "{outcome:?}"
            );
        }
        assert!(elapsed >= Duration::from_millis(380), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "no hang: {elapsed:?}");
    });
}

#[test]
fn hung_refresh_hits_its_operation_deadline_then_a_later_request_recovers() {
    e2e(None, |ctx| async move {
        let config = Config {
            operation_timeout: Duration::from_millis(300),
            max_operation_retries: 1,
            ..fast_config()
        };
        let api = logged_in(&ctx, config).await;
        ctx.admin().hang_refreshes(2);
        ctx.admin().expire_access_tokens();
        let started = Instant::now();
        let outcomes = fire(&ctx, &api, "hung", 3).await;
        let elapsed = started.elapsed();
        for outcome in &outcomes {
            assert_eq!(
                session_error(outcome),
                Some(RequestError::AuthUnavailable { attempts: 2 }),
                "{outcome:?}"
            );
        }
        assert!(elapsed < Duration::from_secs(10), "no hang: {elapsed:?}");
        assert_eq!(ctx.counters().refresh_calls, 2);
        // The auth server is back: the next request refreshes and goes through.
        assert_eq!(get(&api, &ctx.url("/api/later")).await.unwrap(), 200);
        assert_eq!(ctx.counters().refreshes, 1);
    });
}

#[test]
fn refresh_5xx_backs_off_then_fails_with_a_clear_error() {
    e2e(None, |ctx| async move {
        let config = Config {
            max_operation_retries: 2,
            backoff_base: Duration::from_millis(50),
            ..fast_config()
        };
        let api = logged_in(&ctx, config).await;
        ctx.admin().fail_refreshes(3, 503);
        ctx.admin().expire_access_tokens();
        let started = Instant::now();
        let outcome = get(&api, &ctx.url("/api/unlucky")).await;
        let elapsed = started.elapsed();
        let error = outcome.unwrap_err();
        assert_eq!(
            error.session(),
            Some(RequestError::AuthUnavailable { attempts: 3 })
        );
        assert_eq!(
            error.to_string(),
            "the auth server is unavailable after 3 attempts"
        );
        assert_eq!(ctx.counters().refresh_calls, 3, "first try and two retries");
        assert_eq!(ctx.counters().refresh_failures, 3);
        assert!(
            elapsed >= Duration::from_millis(150),
            "it backed off: {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        // Tokens were kept (marked stale): the next request refreshes again and succeeds.
        assert_eq!(get(&api, &ctx.url("/api/lucky")).await.unwrap(), 200);
        assert_eq!(ctx.counters().logins, 1);
    });
}

#[test]
fn dropped_request_future_is_never_sent() {
    e2e(None, |ctx| async move {
        // Dropped while waiting for the silent login.
        ctx.admin().delay_logins(1, Duration::from_millis(600));
        let api = ctx.api(fast_config()).await;
        let dropped = tokio::time::timeout(
            Duration::from_millis(50),
            get(&api, &ctx.url("/api/dropped-before-login")),
        )
        .await;
        assert!(dropped.is_err(), "the request was still waiting");
        assert_eq!(get(&api, &ctx.url("/api/me")).await.unwrap(), 200);

        // Dropped while waiting for a refresh.
        ctx.admin().delay_refreshes(1, Duration::from_millis(600));
        ctx.admin().expire_access_tokens();
        let trigger = {
            let api = api.clone();
            let url = ctx.url("/api/trigger");
            tokio::spawn(async move { get(&api, &url).await })
        };
        let admin = ctx.admin().clone();
        wait_until(Duration::from_secs(5), || {
            admin.counters().refresh_calls == 1
        })
        .await;
        let dropped = tokio::time::timeout(
            Duration::from_millis(50),
            get(&api, &ctx.url("/api/dropped-during-refresh")),
        )
        .await;
        assert!(dropped.is_err(), "the request was still waiting");
        assert_eq!(trigger.await.unwrap().unwrap(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;

        let paths = ctx.counters().requests_per_path;
        assert!(
            !paths.contains_key("/api/dropped-before-login"),
            "{paths:?}"
        );
        assert!(
            !paths.contains_key("/api/dropped-during-refresh"),
            "{paths:?}"
        );
        assert_eq!(paths.get("/api/trigger"), Some(&2), "401, then the retry");
    });
}

#[test]
fn restart_with_the_file_store_needs_no_login() {
    e2e(None, |ctx| async move {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("app/session.json"));
        {
            let session = ctx.session(fast_config(), store.clone()).await;
            let api = ctx.api_with(session);
            assert_eq!(get(&api, &ctx.url("/api/me")).await.unwrap(), 200);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The app restarts.
        let session = ctx.session(fast_config(), store.clone()).await;
        assert_eq!(session.state(), SessionState::Active);
        let api = ctx.api_with(session);
        assert_eq!(get(&api, &ctx.url("/api/me-again")).await.unwrap(), 200);
        let counters = ctx.counters();
        assert_eq!(counters.logins, 1, "no login after the restart");
        assert_eq!(counters.refresh_calls, 0);
        assert_eq!(counters.api_unauthorized, 0);
    });
}

#[test]
fn restart_with_a_dead_stored_session_takes_the_refresh_path() {
    e2e(None, |ctx| async move {
        let store = MemoryStore::new();
        {
            let session = ctx.session(fast_config(), store.clone()).await;
            assert_eq!(
                get(&ctx.api_with(session), &ctx.url("/api/me"))
                    .await
                    .unwrap(),
                200
            );
        }
        ctx.admin().expire_access_tokens();
        let session = ctx.session(fast_config(), store.clone()).await;
        let api = ctx.api_with(session);
        assert_eq!(get(&api, &ctx.url("/api/me-again")).await.unwrap(), 200);
        let counters = ctx.counters();
        assert_eq!((counters.logins, counters.refreshes), (1, 1));
        assert_eq!(store.saves(), 2, "the login's tokens, then the refresh's");
    });
}

#[test]
fn bearer_never_reaches_a_public_path_or_another_origin() {
    e2e(None, |ctx| async move {
        let foreign = server::spawn(ServerConfig::default()).await.unwrap();
        let api = logged_in(&ctx, fast_config()).await;
        assert_eq!(get(&api, &ctx.url("/public/status")).await.unwrap(), 200);
        assert_eq!(
            get(&api, &foreign.url("/public/status")).await.unwrap(),
            200
        );
        assert_eq!(
            get(&api, &foreign.url("/api/me")).await.unwrap(),
            401,
            "delivered as is"
        );
        // A redirect from the API to another origin: the token stays behind.
        let to = foreign.url("/public/redirected");
        let redirected = get(&api, &ctx.url(&format!("/api/redirect?to={to}"))).await;
        assert_eq!(redirected.unwrap(), 200);

        let home = ctx.counters();
        assert_eq!(home.public_requests, 1);
        assert_eq!(home.bearer_on_public, 0);
        let away = foreign.admin().counters();
        assert_eq!(away.public_requests, 2);
        assert_eq!(away.api_requests, 1);
        assert_eq!(
            away.requests_with_bearer, 0,
            "no token crossed to another origin"
        );
        assert_eq!(away.api_unauthorized, 1);
        assert_eq!(
            home.refresh_calls, 0,
            "a foreign 401 is not the session's business"
        );
    });
}

#[test]
fn non_replayable_body_gets_its_401_delivered_without_a_retry() {
    e2e(None, |ctx| async move {
        let api = logged_in(&ctx, fast_config()).await;
        ctx.admin().expire_access_tokens();
        let stream = reqwest::Body::wrap(http_body_util::Full::new(bytes::Bytes::from_static(
            b"a body that can be read once",
        )));
        let request = api.http().post(ctx.url("/api/upload")).body(stream);
        let response = api.send(request).await.unwrap();
        assert_eq!(response.status(), 401);
        let counters = ctx.counters();
        assert_eq!(counters.requests_per_path.get("/api/upload"), Some(&1));
        assert_eq!(counters.refresh_calls, 0);

        // The same upload with a replayable body is retried after one refresh.
        let request = api
            .http()
            .post(ctx.url("/api/upload"))
            .body("bytes can be sent twice");
        assert_eq!(api.send(request).await.unwrap().status(), 200);
        let counters = ctx.counters();
        assert_eq!(counters.requests_per_path.get("/api/upload"), Some(&3));
        assert_eq!(counters.refreshes, 1);
    });
}

#[test]
fn opted_out_request_and_insufficient_scope_are_delivered_without_a_refresh() {
    e2e(None, |ctx| async move {
        let api = logged_in(&ctx, fast_config()).await;
        let forbidden = get(&api, &ctx.url("/api/forbidden")).await.unwrap();
        assert_eq!(forbidden, 403, "refreshing cannot fix a missing scope");
        ctx.admin().expire_access_tokens();
        let request = api.http().get(ctx.url("/api/no-retry")).build().unwrap();
        let response = api
            .execute_with(request, RequestOptions::no_retry())
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(ctx.counters().refresh_calls, 0);
    });
}

#[test]
fn refused_silent_login_requires_the_user_then_an_explicit_login_recovers() {
    e2e(None, |ctx| async move {
        ctx.admin().refuse_logins(1);
        let api = ctx.api(fast_config()).await;
        let first = get(&api, &ctx.url("/api/me")).await;
        assert_eq!(session_error(&first), Some(RequestError::LoginRequired));
        assert_eq!(api.session().state(), SessionState::LoginRequired);
        let codes = ctx.counters().codes_issued;
        let again = get(&api, &ctx.url("/api/me")).await;
        assert_eq!(session_error(&again), Some(RequestError::LoginRequired));
        assert_eq!(
            ctx.counters().codes_issued,
            codes,
            "fails fast, no new login"
        );

        // The user acted (bound a phone number): the app asks for a login.
        api.session().login().await.unwrap();
        let mut state = api.session().events();
        state
            .wait_for(|s| *s == SessionState::Active)
            .await
            .unwrap();
        assert_eq!(get(&api, &ctx.url("/api/me")).await.unwrap(), 200);
        assert_eq!(ctx.counters().logins, 1);
    });
}

#[test]
fn tower_layer_authenticates_retries_and_leaves_public_paths_alone() {
    use auth_tokio::tower::AuthLayer;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tower_layer::Layer;
    use tower_service::Service;

    async fn call<S, B>(service: &mut S, uri: String) -> u16
    where
        S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
        S::Error: std::fmt::Debug,
    {
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .unwrap();
        let request = http::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = service.call(request).await.unwrap();
        response.status().as_u16()
    }

    e2e(None, |ctx| async move {
        let session = ctx.session(fast_config(), MemoryStore::new()).await;
        let hyper: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut service = AuthLayer::new(session, ctx.scope()).layer(hyper);
        assert_eq!(call(&mut service, ctx.url("/api/tower")).await, 200);
        ctx.admin().expire_access_tokens();
        assert_eq!(
            call(&mut service, ctx.url("/api/tower-after-expiry")).await,
            200
        );
        assert_eq!(call(&mut service, ctx.url("/public/tower")).await, 200);
        let counters = ctx.counters();
        assert_eq!((counters.logins, counters.refreshes), (1, 1));
        assert_eq!(
            counters.requests_per_path.get("/api/tower-after-expiry"),
            Some(&2)
        );
        assert_eq!(counters.bearer_on_public, 0);
    });
}

#[test]
fn story_plays_to_a_green_report() {
    e2e(Some(2), |ctx| async move {
        let dir = tempfile::tempdir().unwrap();
        let options = StoryOptions {
            store_path: dir.path().join("story/session.json"),
            ..StoryOptions::default()
        };
        let mut titles = Vec::new();
        let report = story::play_on(&ctx.server, &options, &mut |scene| {
            titles.push(scene.title.clone())
        })
        .await
        .unwrap();
        assert!(
            report.passed(),
            "{}\n{}",
            report.summary(),
            report
                .scenes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(titles.len(), 7);
        assert_eq!(report.server.bearer_on_public, 0);
    });
}

#[test]
fn log_capture_catches_errors_and_secrets() {
    let logs = LogCapture::new();
    let runtime = logs.runtime(Some(1)).unwrap();
    runtime.block_on(async {
        tokio::spawn(async { tracing::debug!(token = "at_0123", "oops") })
            .await
            .unwrap();
    });
    let leak = logs.check(&["at_0123".to_owned()]).unwrap_err();
    assert!(
        !leak.to_string().contains("at_0123"),
        "the report masks the secret"
    );
    assert!(logs.check(&["unrelated".to_owned()]).is_ok());
    {
        let _guard = logs.install();
        tracing::error!("something broke");
    }
    assert!(logs.check(&[]).is_err());
}

#[test]
fn threaded_server_serves_callers_without_a_runtime() {
    use std::io::{Read, Write};
    let server = server::spawn_in_thread(ServerConfig::default()).unwrap();
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"POST /platform/code HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"code\""));
    assert_eq!(server.admin().counters().codes_issued, 1);
}
