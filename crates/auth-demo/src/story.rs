//! The seed's story, played over real loopback HTTP through auth-tokio: silent login on first
//! use, a burst of concurrent calls, expiry → storm → one refresh, a dead refresh token → one
//! silent login, logout during a refresh, a call after logout, and a restart from the file store.
//!
//! Each scene checks what the server saw (its counters) and what the callers got, and the
//! [`Report`] says whether every expectation held.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use auth_tokio::auth_core::{Config, RequestError, SessionState};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{Error, FileStore, Scope, SessionHandle};
use tokio::task::JoinSet;

use crate::backend::DemoBackend;
use crate::server::{self, Admin, Counters, ServerConfig, ServerHandle};

/// How big the story is, and where the session file goes.
#[derive(Clone, Debug)]
pub struct StoryOptions {
    /// Concurrent calls in the burst.
    pub burst: usize,
    /// Concurrent calls in the storm after the access token expires.
    pub storm: usize,
    /// Requests waiting when the user logs out during a refresh.
    pub waiting_at_logout: usize,
    /// The session file; removed at the end.
    pub store_path: PathBuf,
    /// Upper bound of one scene.
    pub scene_timeout: Duration,
}

impl Default for StoryOptions {
    fn default() -> Self {
        StoryOptions {
            burst: 50,
            storm: 200,
            waiting_at_logout: 20,
            store_path: std::env::temp_dir()
                .join(format!("seamless-demo-{}", std::process::id()))
                .join("session.json"),
            scene_timeout: Duration::from_secs(15),
        }
    }
}

/// One expectation of a scene.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What is checked.
    pub what: String,
    /// The expected value.
    pub expected: String,
    /// What happened.
    pub actual: String,
}

impl Check {
    /// Whether the expectation held.
    pub fn ok(&self) -> bool {
        self.expected == self.actual
    }
}

/// One scene's result.
#[derive(Clone, Debug)]
pub struct Scene {
    /// Its title.
    pub title: String,
    /// Its expectations.
    pub checks: Vec<Check>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Scene {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(Check::ok)
    }
}

/// What the app's callers got over the whole story.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests the app issued.
    pub sent: u64,
    /// Responses delivered, by HTTP status.
    pub delivered: BTreeMap<u16, u64>,
    /// Requests failed, by reason.
    pub failed: BTreeMap<String, u64>,
}

/// The whole story's result.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every scene, in order.
    pub scenes: Vec<Scene>,
    /// What the callers got.
    pub tally: Tally,
    /// What the server saw.
    pub server: Counters,
    /// Wall time of the whole story.
    pub elapsed: Duration,
}

/// Why the story could not be played at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoryError {
    /// The demo server could not start.
    #[error("could not start the demo server: {0}")]
    Server(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The demo backend could not be built.
    #[error(transparent)]
    Backend(#[from] crate::backend::DemoBackendError),
    /// The API scope could not be built.
    #[error(transparent)]
    Scope(#[from] auth_tokio::ScopeError),
}

impl Report {
    /// Whether every scene passed.
    pub fn passed(&self) -> bool {
        self.scenes.iter().all(Scene::passed)
    }

    /// The summary table.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let delivered: u64 = self.tally.delivered.values().sum();
        let failed: u64 = self.tally.failed.values().sum();
        let by_status = join(
            self.tally
                .delivered
                .iter()
                .map(|(s, n)| format!("{s}: {n}")),
        );
        let by_reason = join(self.tally.failed.iter().map(|(r, n)| format!("{r}: {n}")));
        let c = &self.server;
        let rows: Vec<(&str, String)> = vec![
            ("requests sent by the app", self.tally.sent.to_string()),
            ("delivered", format!("{delivered}  ({by_status})")),
            ("failed", format!("{failed}  ({by_reason})")),
            ("silent logins (server)", c.logins.to_string()),
            (
                "refreshes (server)",
                format!(
                    "{}  ({} calls, {} invalid_grant, {} reuse detected)",
                    c.refreshes, c.refresh_calls, c.invalid_grant, c.reuse_detected
                ),
            ),
            (
                "API requests (server)",
                format!("{}  ({} answered 401)", c.api_requests, c.api_unauthorized),
            ),
            (
                "bearer tokens on public paths",
                c.bearer_on_public.to_string(),
            ),
            ("time", format!("{:.2} s", self.elapsed.as_secs_f64())),
        ];
        let _ = writeln!(out, "{:-<64}", "");
        let _ = writeln!(out, " Summary");
        for (name, value) in rows {
            let _ = writeln!(out, "   {name:<32} {value}");
        }
        let passed = self.scenes.iter().filter(|s| s.passed()).count();
        let _ = writeln!(out, "{:-<64}", "");
        let verdict = if self.passed() {
            "all expectations held"
        } else {
            "EXPECTATIONS FAILED"
        };
        let _ = write!(
            out,
            " {passed}/{} scenes passed: {verdict}",
            self.scenes.len()
        );
        out
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed() { "ok" } else { "FAILED" };
        write!(
            f,
            "{:<52} {mark:>6}  {:>6.0} ms",
            self.title,
            self.elapsed.as_secs_f64() * 1000.0
        )?;
        for check in &self.checks {
            let sign = if check.ok() { "✓" } else { "✗" };
            write!(f, "\n      {sign} {}: {}", check.what, check.actual)?;
            if !check.ok() {
                write!(f, " (expected {})", check.expected)?;
            }
        }
        Ok(())
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    let parts: Vec<String> = parts.collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Everything a scene needs.
struct Stage {
    admin: Admin,
    base_url: String,
    http: reqwest::Client,
    backend: DemoBackend,
    scope: Scope,
    store: FileStore,
    config: Config,
    api: ApiClient,
    tally: Tally,
}

/// The result of one API call, as the story counts it.
type CallResult = Result<u16, String>;

/// Plays the story on a fresh demo server; `progress` sees each scene as it ends.
pub async fn run(
    options: &StoryOptions,
    progress: &mut dyn FnMut(&Scene),
) -> Result<Report, StoryError> {
    let server = server::spawn(ServerConfig::default()).await?;
    play_on(&server, options, progress).await
}

/// Plays the story on `server`, which must be fresh (the checks count from zero).
pub async fn play_on(
    server: &ServerHandle,
    options: &StoryOptions,
    progress: &mut dyn FnMut(&Scene),
) -> Result<Report, StoryError> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let backend = DemoBackend::new(http.clone(), server.base_url())?;
    let scope = Scope::new(server.base_url())?.public_path("/public");
    let store = FileStore::new(&options.store_path);
    let _ = store.clear();
    let config = Config {
        queue_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let session = SessionHandle::builder(backend.clone())
        .config(config)
        .store(store.clone())
        .start()
        .await;
    let api = ApiClient::new(http.clone(), session, scope.clone());
    let mut stage = Stage {
        admin: server.admin().clone(),
        base_url: server.base_url().to_owned(),
        http,
        backend,
        scope,
        store,
        config,
        api,
        tally: Tally::default(),
    };
    let limit = options.scene_timeout;
    let mut scenes = Vec::new();
    let mut record = |scene: Scene| {
        progress(&scene);
        scenes.push(scene);
    };
    record(play("1. silent login on first use", limit, first_use(&mut stage)).await);
    record(
        play(
            "2. a burst of concurrent calls, and a public one",
            limit,
            burst(&mut stage, options),
        )
        .await,
    );
    record(
        play(
            "3. access token expires: storm, one refresh",
            limit,
            storm(&mut stage, options),
        )
        .await,
    );
    record(
        play(
            "4. refresh token dead: one silent login",
            limit,
            dead_refresh_token(&mut stage, options),
        )
        .await,
    );
    record(
        play(
            "5. logout during a refresh",
            limit,
            logout_during_refresh(&mut stage, options),
        )
        .await,
    );
    record(
        play(
            "6. a call after logout",
            limit,
            call_after_logout(&mut stage),
        )
        .await,
    );
    record(
        play(
            "7. log in again, restart from the file store",
            limit,
            restart(&mut stage),
        )
        .await,
    );
    let _ = stage.store.clear();
    if let Some(dir) = options.store_path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(Report {
        scenes,
        tally: stage.tally.clone(),
        server: stage.admin.counters(),
        elapsed: started.elapsed(),
    })
}

/// Runs one scene within `limit`.
async fn play(
    title: &str,
    limit: Duration,
    scene: impl std::future::Future<Output = Vec<Check>>,
) -> Scene {
    let started = Instant::now();
    let checks = match tokio::time::timeout(limit, scene).await {
        Ok(checks) => checks,
        Err(_) => vec![check("scene finished in time", true, false)],
    };
    Scene {
        title: title.to_owned(),
        checks,
        elapsed: started.elapsed(),
    }
}

fn shown(result: &CallResult) -> String {
    match result {
        Ok(status) => status.to_string(),
        Err(reason) => reason.clone(),
    }
}

fn check<T: fmt::Display + PartialEq>(what: &str, expected: T, actual: T) -> Check {
    Check {
        what: what.to_owned(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

impl Stage {
    /// Fires `n` concurrent GETs at `/api/{prefix}/{i}` and counts what came back.
    async fn fire(&mut self, prefix: &str, n: usize) -> Vec<CallResult> {
        let mut calls = JoinSet::new();
        for i in 0..n {
            let api = self.api.clone();
            let url = self.url(&format!("/api/{prefix}/{i}"));
            calls.spawn(async move { outcome(api.get(&url).await) });
        }
        let mut results = Vec::with_capacity(n);
        while let Some(joined) = calls.join_next().await {
            results.push(joined.unwrap_or_else(|_| Err("panicked".to_owned())));
        }
        self.count(&results);
        results
    }

    async fn one(&mut self, path: &str) -> CallResult {
        let result = outcome(self.api.get(&self.url(path)).await);
        self.count(std::slice::from_ref(&result));
        result
    }

    fn count(&mut self, results: &[CallResult]) {
        for result in results {
            self.tally.sent += 1;
            match result {
                Ok(status) => *self.tally.delivered.entry(*status).or_default() += 1,
                Err(reason) => *self.tally.failed.entry(reason.clone()).or_default() += 1,
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn counters(&self) -> Counters {
        self.admin.counters()
    }

    fn state(&self) -> SessionState {
        self.api.session().state()
    }
}

fn outcome(result: Result<reqwest::Response, Error<reqwest::Error>>) -> CallResult {
    match result {
        Ok(response) => Ok(response.status().as_u16()),
        Err(Error::Session(reason)) => Err(format!("{reason:?}")),
        Err(Error::Transport(_)) => Err("transport".to_owned()),
        Err(_) => Err("stopped".to_owned()),
    }
}

fn all_ok(results: &[CallResult]) -> usize {
    results.iter().filter(|r| **r == Ok(200)).count()
}

async fn first_use(stage: &mut Stage) -> Vec<Check> {
    let before = stage.counters();
    let result = stage.one("/api/profile").await;
    let after = stage.counters();
    vec![
        check("first call delivered", "200".to_owned(), shown(&result)),
        check("silent logins", 1, after.logins - before.logins),
        check("401s before the login", 0, after.api_unauthorized),
        check("session file written", true, stage.store.path().exists()),
        check(
            "state",
            format!("{:?}", SessionState::Active),
            format!("{:?}", stage.state()),
        ),
    ]
}

async fn burst(stage: &mut Stage, options: &StoryOptions) -> Vec<Check> {
    let before = stage.counters();
    let results = stage.fire("feed", options.burst).await;
    let public = stage.one("/public/status").await;
    let after = stage.counters();
    vec![
        check("calls delivered 200", options.burst, all_ok(&results)),
        check("public call delivered", "200".to_owned(), shown(&public)),
        check(
            "bearer tokens seen on the public path",
            0,
            after.bearer_on_public,
        ),
        check("silent logins", 0, after.logins - before.logins),
        check("refreshes", 0, after.refresh_calls - before.refresh_calls),
        check("401s", 0, after.api_unauthorized - before.api_unauthorized),
    ]
}

async fn storm(stage: &mut Stage, options: &StoryOptions) -> Vec<Check> {
    stage.admin.expire_access_tokens();
    let before = stage.counters();
    let results = stage.fire("storm", options.storm).await;
    let after = stage.counters();
    vec![
        check("calls delivered 200", options.storm, all_ok(&results)),
        check(
            "refreshes seen by the server",
            1,
            after.refresh_calls - before.refresh_calls,
        ),
        check("silent logins", 0, after.logins - before.logins),
        check(
            "every call sent at most twice",
            true,
            after.api_requests - before.api_requests <= 2 * options.storm as u64,
        ),
    ]
}

async fn dead_refresh_token(stage: &mut Stage, options: &StoryOptions) -> Vec<Check> {
    let admin = stage.admin.clone();
    admin.revoke_refresh_tokens();
    admin.expire_access_tokens();
    let before = stage.counters();
    let n = options.burst;
    let results = stage.fire("after-revoke", n).await;
    let after = stage.counters();
    vec![
        check("calls delivered 200", n, all_ok(&results)),
        check(
            "invalid_grant answers",
            1,
            after.invalid_grant - before.invalid_grant,
        ),
        check("silent logins", 1, after.logins - before.logins),
        check(
            "refresh attempts",
            1,
            after.refresh_calls - before.refresh_calls,
        ),
    ]
}

async fn logout_during_refresh(stage: &mut Stage, options: &StoryOptions) -> Vec<Check> {
    let admin = stage.admin.clone();
    admin.delay_refreshes(1, Duration::from_millis(600));
    admin.expire_access_tokens();
    let before = stage.counters();
    let n = options.waiting_at_logout;
    let mut calls = JoinSet::new();
    for i in 0..n {
        let api = stage.api.clone();
        let url = stage.url(&format!("/api/inbox/{i}"));
        calls.spawn(async move { outcome(api.get(&url).await) });
    }
    // Wait until the refresh is in flight at the server.
    let refresh_started = wait_until(Duration::from_secs(5), || {
        admin.counters().refresh_calls > before.refresh_calls
    })
    .await;
    let _ = stage.api.session().logout().await;
    let at_logout = stage.counters();
    let mut results = Vec::new();
    while let Some(joined) = calls.join_next().await {
        results.push(joined.unwrap_or_else(|_| Err("panicked".to_owned())));
    }
    stage.count(&results);
    // Let the delayed refresh answer, and give the session every chance to misbehave.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = stage.counters();
    let logged_out = results
        .iter()
        .filter(|r| **r == Err(format!("{:?}", RequestError::LoggedOut)))
        .count();
    vec![
        check("refresh in flight at logout", true, refresh_started),
        check("waiting calls failed LoggedOut", n, logged_out),
        check(
            "refresh calls after logout",
            0,
            after.refresh_calls - at_logout.refresh_calls,
        ),
        check(
            "silent logins after logout",
            0,
            after.logins - at_logout.logins,
        ),
        check(
            "session file still on disk",
            false,
            stage.store.path().exists(),
        ),
        check(
            "state",
            format!("{:?}", SessionState::LoggedOut),
            format!("{:?}", stage.state()),
        ),
    ]
}

async fn call_after_logout(stage: &mut Stage) -> Vec<Check> {
    let before = stage.counters();
    let started = Instant::now();
    let result = stage.one("/api/profile").await;
    let fast = started.elapsed() < Duration::from_secs(1);
    let after = stage.counters();
    vec![
        check(
            "call failed",
            format!("{:?}", RequestError::LoggedOut),
            shown(&result),
        ),
        check("failed at once", true, fast),
        check(
            "requests that reached the server",
            0,
            after.api_requests - before.api_requests,
        ),
        check("silent logins", 0, after.logins - before.logins),
    ]
}

async fn restart(stage: &mut Stage) -> Vec<Check> {
    let before = stage.counters();
    let _ = stage.api.session().login().await;
    let mut state = stage.api.session().events();
    let active = tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| *s == SessionState::Active),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let first = stage.one("/api/profile").await;
    let stored = stage.store.path().exists();
    // The app restarts: a new session from the same file, the old one dropped.
    let session = SessionHandle::builder(stage.backend.clone())
        .config(stage.config)
        .store(stage.store.clone())
        .start()
        .await;
    stage.api = ApiClient::new(stage.http.clone(), session, stage.scope.clone());
    let restored = stage.state();
    let second = stage.one("/api/profile").await;
    let after = stage.counters();
    vec![
        check("logged in again", true, active),
        check(
            "call after login delivered",
            "200".to_owned(),
            shown(&first),
        ),
        check("session file written", true, stored),
        check(
            "restored state",
            format!("{:?}", SessionState::Active),
            format!("{restored:?}"),
        ),
        check(
            "call after restart delivered",
            "200".to_owned(),
            shown(&second),
        ),
        check(
            "silent logins (the explicit one only)",
            1,
            after.logins - before.logins,
        ),
    ]
}

async fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}
