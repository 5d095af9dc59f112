//! The session's metrics and `stats()`, over real loopback HTTP against auth-demo's server: a
//! storm through an expiry from many threads counts one refresh, every request and each
//! resend; failing refreshes count by outcome, open the circuit breaker and close it again. The
//! same stories run in auth-tokio's `tests/metrics.rs`; the checks they share are in
//! auth-driver's `tests/support/metrics.rs`, with the recorder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../auth-driver/tests/support/metrics.rs"]
mod metrics_support;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::Config;
use auth_blocking::ureq::{ApiClient, Scope};
use auth_blocking::SessionHandle;
use auth_demo::server::ThreadedServer;

use common::{backend, demo, server};
use metrics_support::{failing_config, storm_config, Session, REFRESH_FAILURES, STORM};

/// A fresh server, and a session named `metrics.name` on it through `ApiClient`.
fn start(metrics: &Session, config: Config) -> (ThreadedServer, SessionHandle, ApiClient) {
    let server = server();
    let session = SessionHandle::builder(backend(&server))
        .config(config)
        .name(metrics.name)
        .start()
        .unwrap();
    let scope = Scope::new(server.base_url()).unwrap();
    let api = ApiClient::new(demo::agent(Duration::from_secs(5)), session.clone(), scope);
    (server, session, api)
}

/// `GET path`: the status, or the session's reason for failing it (as its `Debug`).
fn get(api: &ApiClient, server: &ThreadedServer, path: &str) -> Result<u16, String> {
    match api.get(&server.url(path)) {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) => Err(format!("{:?}", error.session())),
    }
}

#[test]
fn a_storm_through_an_expiry_counts_one_refresh_every_request_and_each_resend() {
    let metrics = Session::named("blocking-storm");
    let (server, session, api) = start(&metrics, storm_config());
    assert_eq!(get(&api, &server, "/api/first"), Ok(200));

    server.admin().expire_access_tokens();
    let before = server.admin().counters();
    let n = usize::try_from(STORM).unwrap();
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (api, barrier) = (api.clone(), Arc::clone(&barrier));
            let url = server.url(&format!("/api/storm/{i}"));
            thread::spawn(move || {
                barrier.wait();
                api.get(&url).map(|response| response.status().as_u16())
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap(), 200);
    }
    let after = server.admin().counters();
    assert_eq!(after.refreshes - before.refreshes, 1);

    let unauthorized = after.api_unauthorized - before.api_unauthorized;
    metrics.assert_storm(&session.stats(), unauthorized);
    metrics.assert_names();
    session.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn failed_refreshes_count_by_outcome_and_the_circuit_opens_and_closes() {
    let metrics = Session::named("blocking-failures");
    let (server, session, api) = start(&metrics, failing_config());
    assert_eq!(get(&api, &server, "/api/first"), Ok(200));

    // Every refresh fails transiently: the request fails, the breaker opens.
    server.admin().fail_refreshes(REFRESH_FAILURES, 503);
    server.admin().expire_access_tokens();
    let failed = get(&api, &server, "/api/failing");
    metrics.assert_circuit_opened(&session.stats(), failed);

    // It closes after its cool-down; then a refresh token the server revoked falls back to a
    // silent login, and the request is delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.stats().circuit_open {
        assert!(Instant::now() < deadline, "the circuit never closed");
        thread::sleep(Duration::from_millis(10));
    }
    server.admin().revoke_refresh_tokens();
    assert_eq!(get(&api, &server, "/api/again"), Ok(200));
    metrics.assert_recovered(&session.stats());
    session.shutdown(Duration::from_secs(5)).unwrap();
}
