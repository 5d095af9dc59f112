//! Backends that answer HTTP 200 with `{"code":401}` for a refused token (auth-demo's
//! `/coded/…` routes), over real loopback HTTP with the ureq integration: with [`BodyCode`] a
//! storm of threads through an expiry makes exactly one refresh and every request is delivered
//! with its body intact; with the default classifier the same 200s are delivered as they are
//! and nothing refreshes. The same stories run in auth-tokio's `tests/body_code.rs`.
//!
//! Every test fails on an `ERROR` log line or on any secret the server issued appearing in the
//! logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use auth_blocking::ureq::{ApiClient, BodyCode, RequestOptions, Scope};
use auth_blocking::SessionHandle;
use auth_demo::server::{Counters, ThreadedServer};
use auth_demo::testing::LogCapture;
use serde_json::Value;

use common::{backend, demo, fast_config, server};

/// Requests in each storm.
const STORM: usize = 32;

/// One test's world: the server, the log capture (current on the test thread, inherited by the
/// driver's threads) and a session.
struct World {
    server: ThreadedServer,
    session: SessionHandle,
    logs: LogCapture,
    _guard: tracing::dispatcher::DefaultGuard,
}

impl World {
    fn new() -> World {
        let logs = LogCapture::new();
        let guard = logs.install();
        let server = server();
        let session = SessionHandle::builder(backend(&server))
            .config(fast_config())
            .start()
            .unwrap();
        World {
            server,
            session,
            logs,
            _guard: guard,
        }
    }

    fn api(&self) -> ApiClient {
        let scope = Scope::new(self.server.base_url())
            .unwrap()
            .public_path("/public");
        ApiClient::new(
            demo::agent(Duration::from_secs(5)),
            self.session.clone(),
            scope,
        )
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn counters(&self) -> Counters {
        self.server.admin().counters()
    }

    /// No `ERROR` line and no issued secret in the logs.
    fn check_logs(&self) {
        let secrets = self.server.admin().issued_secrets();
        assert!(!secrets.is_empty());
        if let Err(problem) = self.logs.check(&secrets) {
            panic!("{problem}\n--- captured logs ---\n{}", self.logs.text());
        }
    }
}

/// `GET url` through `api`: the status and the JSON body the caller reads.
fn get(api: &ApiClient, url: &str) -> (u16, Value) {
    let mut response = api.get(url).unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

/// `GET <prefix>/<i>` from `n` threads at once.
fn storm(api: &ApiClient, prefix: &str, n: usize) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (api, barrier) = (api.clone(), Arc::clone(&barrier));
            let url = format!("{prefix}/{i}");
            thread::spawn(move || {
                barrier.wait();
                get(&api, &url)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// An answer of the demo's `/coded/…` routes with the code `0`: the token was good.
fn delivered_with_token(answer: &(u16, Value), serial: u64) -> bool {
    let (status, body) = answer;
    *status == 200 && body["code"] == 0 && body["data"]["token_serial"] == serial
}

#[test]
fn storm_of_threads_through_an_expiry_on_a_body_code_backend_makes_one_refresh() {
    let world = World::new();
    let api = world.api().with_classifier(BodyCode::new());
    assert!(delivered_with_token(
        &get(&api, &world.url("/coded/warmup")),
        1
    ));
    world.server.admin().expire_access_tokens();
    let answers = storm(&api, &world.url("/coded/storm"), STORM);
    for answer in &answers {
        assert!(delivered_with_token(answer, 2), "{answer:?}");
    }
    let counters = world.counters();
    assert_eq!(
        (counters.logins, counters.refresh_calls, counters.refreshes),
        (1, 1, 1),
        "one login, then exactly one refresh"
    );
    assert!(counters.coded_refusals >= 1);
    assert_eq!(
        counters.requests_per_token.get(&2),
        Some(&(STORM as u64)),
        "every request of the storm went out once with the refreshed token"
    );
    world.check_logs();
}

#[test]
fn default_classifier_delivers_the_body_code_as_is() {
    let world = World::new();
    let api = world.api();
    assert!(delivered_with_token(
        &get(&api, &world.url("/coded/warmup")),
        1
    ));
    world.server.admin().expire_access_tokens();
    for (status, body) in storm(&api, &world.url("/coded/storm"), 4) {
        assert_eq!((status, &body["code"]), (200, &Value::from(401)));
    }
    let counters = world.counters();
    assert_eq!(counters.refresh_calls, 0, "RFC 6750 sees only 200s");
    assert_eq!(counters.coded_refusals, 4);
    // The same session, asked through a body-code client, refreshes once and goes on.
    let api = api.with_classifier(BodyCode::new());
    assert!(delivered_with_token(
        &get(&api, &world.url("/coded/after")),
        2
    ));
    assert_eq!(world.counters().refresh_calls, 1);
    world.check_logs();
}

#[test]
fn a_body_longer_than_the_limit_is_delivered_unread() {
    let world = World::new();
    let api = world.api().with_classifier(BodyCode::new().max_body(8));
    get(&api, &world.url("/coded/warmup"));
    world.server.admin().expire_access_tokens();
    let (status, body) = get(&api, &world.url("/coded/long"));
    assert_eq!((status, &body["code"]), (200, &Value::from(401)));
    assert_eq!(world.counters().refresh_calls, 0);
    world.check_logs();
}

#[test]
fn a_rejection_that_is_not_retried_is_delivered_with_its_body() {
    let world = World::new();
    let api = world.api().with_classifier(BodyCode::new());
    get(&api, &world.url("/coded/warmup"));
    world.server.admin().expire_access_tokens();
    let request = ureq::http::Request::get(world.url("/coded/once"))
        .body(Vec::new())
        .unwrap();
    let mut response = api.send_with(request, RequestOptions::no_retry()).unwrap();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        body["code"], 401,
        "the refused answer, read once, reaches the caller whole"
    );
    assert_eq!(body["msg"], "login expired");
    assert_eq!(
        world.counters().requests_per_path.get("/coded/once"),
        Some(&1)
    );
    world.check_logs();
}
