//! Defaults never lose a storm: with `Config::default()`, 10 000 concurrent requests through a
//! server-side expiry are all delivered, with exactly one refresh.
//!
//! Every request is submitted to the session at once (10 000 waiting callers); the refresh is
//! held back by the demo server for a while, so every one of them gets its 401 and waits in the
//! session's queue at the same time. Only the wire is throttled: at most [`WIRE`] HTTP requests
//! are open at once, because 10 000 client sockets plus 10 000 server sockets in one process
//! would pass the descriptor limit of many machines. The queue under test sees the whole storm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, ServerConfig};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{Config, RequestError, RequestSpec, SessionState};
use auth_tokio::{verdict, Call, CallError, Next, SessionHandle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The storm.
const N: usize = 10_000;
/// HTTP requests open at once.
const WIRE: usize = 256;
/// Upper bound of the test.
const LIMIT: Duration = Duration::from_secs(120);

/// One request through the session's `Call` loop, its HTTP sends throttled by `wire`.
async fn request(
    session: SessionHandle,
    http: reqwest::Client,
    wire: Arc<Semaphore>,
    url: String,
) -> Result<u16, CallError> {
    let mut call: Call<Result<reqwest::Response, reqwest::Error>> =
        session.call(RequestSpec::bearer());
    loop {
        match call.next_step().await? {
            Next::Send(attempt) => {
                let permit = wire.acquire().await.unwrap();
                let mut request = http.get(&url).build().unwrap();
                attempt.authorize(request.headers_mut());
                let result = http.execute(request).await;
                drop(permit);
                let verdict = match &result {
                    Ok(response) => verdict(response.status(), response.headers()),
                    Err(_) => auth_tokio::auth_core::Verdict::Accepted,
                };
                call.respond(result, verdict);
            }
            Next::Deliver(result) => {
                return Ok(result.map(|r| r.status().as_u16()).unwrap_or(0));
            }
        }
    }
}

/// What one storm did: each request's outcome, and the server's refresh and login calls.
struct Storm {
    outcomes: Vec<Result<u16, CallError>>,
    refreshes: u64,
    logins: u64,
    state: SessionState,
}

/// Logs in with `config`, expires the access token on the server, holds the refresh back, and
/// fires the storm. Fails on any `ERROR` log line or any issued secret in the logs.
fn storm(config: Config) -> Storm {
    // Logs are captured: a secret or an ERROR anywhere fails the test.
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(Some(2)).unwrap();
    let (storm, secrets) = runtime.block_on(async {
        let server = server::spawn(ServerConfig::default()).await.unwrap();
        let admin = server.admin().clone();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(WIRE)
            .build()
            .unwrap();
        let backend = DemoBackend::new(http.clone(), server.base_url()).unwrap();
        let session = SessionHandle::builder(backend).config(config).start().await;
        let wire = Arc::new(Semaphore::new(WIRE));
        let url = server.url("/api/storm");
        let first = request(session.clone(), http.clone(), wire.clone(), url.clone()).await;
        assert_eq!(first.unwrap(), 200, "logged in");

        admin.expire_access_tokens();
        // Long enough for every request to be rejected or to find the refresh under way, and
        // wait for it.
        admin.delay_refreshes(1, Duration::from_secs(3));
        let before = admin.counters();
        let mut calls = JoinSet::new();
        for _ in 0..N {
            let task = request(session.clone(), http.clone(), wire.clone(), url.clone());
            calls.spawn(task);
        }
        let outcomes = tokio::time::timeout(LIMIT, async {
            let mut outcomes = Vec::with_capacity(N);
            while let Some(joined) = calls.join_next().await {
                outcomes.push(joined.unwrap());
            }
            outcomes
        })
        .await
        .expect("the storm did not finish in time");
        let done = admin.counters();
        let storm = Storm {
            outcomes,
            refreshes: done.refresh_calls - before.refresh_calls,
            logins: done.logins - before.logins,
            state: session.state(),
        };
        (storm, admin.issued_secrets())
    });
    drop(runtime);
    assert!(!secrets.is_empty());
    if let Err(problem) = logs.check(&secrets) {
        panic!("{problem}");
    }
    storm
}

#[test]
fn default_config_delivers_a_storm_of_10_000_through_an_expiry_with_one_refresh() {
    let storm = storm(Config::default());
    let failed: Vec<_> = storm
        .outcomes
        .iter()
        .filter(|o| !matches!(o, Ok(200)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {N} not delivered, e.g. {:?}",
        failed.len(),
        failed[0]
    );
    assert_eq!(storm.refreshes, 1, "one refresh");
    assert_eq!(storm.logins, 0, "no login");
    assert_eq!(storm.state, SessionState::Active);
}

/// The storm above is big enough to matter: with the bound the default had before (1 024
/// waiting requests), the same storm loses requests to `QueueFull`. An explicit bound still
/// works for users who want to shed load.
#[test]
fn an_explicit_queue_bound_sheds_the_same_storm_with_queue_full() {
    let storm = storm(Config {
        max_queued: 1024,
        ..Config::default()
    });
    let full = storm
        .outcomes
        .iter()
        .filter(|o| matches!(o, Err(CallError::Session(RequestError::QueueFull))))
        .count();
    let delivered = storm
        .outcomes
        .iter()
        .filter(|o| matches!(o, Ok(200)))
        .count();
    assert!(
        full > 0,
        "no request was refused: the storm never filled the queue"
    );
    assert_eq!(
        full + delivered,
        N,
        "every request is either refused or delivered"
    );
    assert_eq!(storm.refreshes, 1, "one refresh");
}
