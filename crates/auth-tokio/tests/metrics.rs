//! The session's metrics and `stats()`, over real loopback HTTP against auth-demo's server: a
//! storm through an expiry counts one refresh, every request and each resend; failing refreshes
//! count by outcome, open the circuit breaker and close it again. The same stories run in
//! auth-blocking's `tests/metrics.rs`; the checks they share are in auth-driver's
//! `tests/support/metrics.rs`, with the recorder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../auth-driver/tests/support/metrics.rs"]
mod metrics_support;

use std::time::{Duration, Instant};

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, ServerConfig, ServerHandle};
use auth_store::shared::MemorySharedStore;
use auth_tokio::auth_core::Config;
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{Scope, SessionHandle};
use tokio::task::JoinSet;

use metrics_support::{failing_config, storm_config, Session, REFRESH_FAILURES, STORM};

/// A fresh server, and a session named `metrics.name` on it through `ApiClient`.
async fn start(metrics: &Session, config: Config) -> (ServerHandle, SessionHandle, ApiClient) {
    let server = server::spawn(ServerConfig::default()).await.unwrap();
    let (session, api) = open(&server, metrics, config, None).await;
    (server, session, api)
}

/// A session named `metrics.name` on `server` (on `shared`, when given), and its `ApiClient`.
async fn open(
    server: &ServerHandle,
    metrics: &Session,
    config: Config,
    shared: Option<&MemorySharedStore>,
) -> (SessionHandle, ApiClient) {
    let http = reqwest::Client::new();
    let backend = DemoBackend::new(http.clone(), server.base_url()).unwrap();
    let mut builder = SessionHandle::builder(backend)
        .config(config)
        .name(metrics.name);
    if let Some(store) = shared {
        builder = builder
            .shared_store(store.clone())
            .watch_interval(Duration::from_millis(50));
    }
    let session = builder.start().await;
    let scope = Scope::new(server.base_url()).unwrap();
    let api = ApiClient::new(http, session.clone(), scope);
    (session, api)
}

/// `GET path`: the status, or the session's reason for failing it (as its `Debug`).
async fn get(api: &ApiClient, server: &ServerHandle, path: &str) -> Result<u16, String> {
    match api.get(&server.url(path)).await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) => Err(format!("{:?}", error.session())),
    }
}

#[tokio::test]
async fn a_storm_through_an_expiry_counts_one_refresh_every_request_and_each_resend() {
    let metrics = Session::named("tokio-storm");
    let (server, session, api) = start(&metrics, storm_config()).await;
    assert_eq!(get(&api, &server, "/api/first").await, Ok(200));

    server.admin().expire_access_tokens();
    let before = server.admin().counters();
    let mut calls = JoinSet::new();
    for i in 0..STORM {
        let (api, url) = (api.clone(), server.url(&format!("/api/storm/{i}")));
        calls.spawn(async move { api.get(&url).await.map(|r| r.status().as_u16()) });
    }
    while let Some(joined) = calls.join_next().await {
        assert_eq!(joined.unwrap().unwrap(), 200);
    }
    let after = server.admin().counters();
    assert_eq!(after.refreshes - before.refreshes, 1);

    let unauthorized = after.api_unauthorized - before.api_unauthorized;
    metrics.assert_storm(&session.stats(), unauthorized);
    metrics.assert_names();
    session.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn failed_refreshes_count_by_outcome_and_the_circuit_opens_and_closes() {
    let metrics = Session::named("tokio-failures");
    let (server, session, api) = start(&metrics, failing_config()).await;
    assert_eq!(get(&api, &server, "/api/first").await, Ok(200));

    // Every refresh fails transiently: the request fails, the breaker opens.
    server.admin().fail_refreshes(REFRESH_FAILURES, 503);
    server.admin().expire_access_tokens();
    let failed = get(&api, &server, "/api/failing").await;
    metrics.assert_circuit_opened(&session.stats(), failed);

    // It closes after its cool-down; then a refresh token the server revoked falls back to a
    // silent login, and the request is delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.stats().circuit_open {
        assert!(Instant::now() < deadline, "the circuit never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.admin().revoke_refresh_tokens();
    assert_eq!(get(&api, &server, "/api/again").await, Ok(200));
    metrics.assert_recovered(&session.stats());
    session.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn two_sessions_sharing_a_store_count_leases_publishes_and_the_adoption() {
    let server = server::spawn(ServerConfig::default()).await.unwrap();
    let store = MemorySharedStore::new();
    let (a, b) = (
        Session::named("tokio-shared-a"),
        Session::named("tokio-shared-b"),
    );
    let (session_a, api_a) = open(&server, &a, storm_config(), Some(&store)).await;
    assert_eq!(get(&api_a, &server, "/api/first").await, Ok(200));
    // B starts from the record A published: signed in, no lease needed.
    let (session_b, api_b) = open(&server, &b, storm_config(), Some(&store)).await;

    // A refreshes through the expiry; B's request, rejected too, waits for A's tokens.
    server.admin().expire_access_tokens();
    server
        .admin()
        .delay_refreshes(1, Duration::from_millis(200));
    let (at_a, at_b) = tokio::join!(get(&api_a, &server, "/api/a"), async {
        // Once A holds the lease for its refresh (the first lease was its login's).
        let deadline = Instant::now() + Duration::from_secs(10);
        while session_a.stats().shared.leases_granted < 2 {
            assert!(Instant::now() < deadline, "A never took the lease");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        get(&api_b, &server, "/api/b").await
    });
    assert_eq!((at_a, at_b), (Ok(200), Ok(200)));
    assert_eq!(server.admin().counters().refreshes, 1);

    let (stats_a, stats_b) = (session_a.stats(), session_b.stats());
    metrics_support::assert_shared_refresh(&a, &stats_a, &b, &stats_b);
    session_a.shutdown(Duration::from_secs(5)).await.unwrap();
    session_b.shutdown(Duration::from_secs(5)).await.unwrap();
}
