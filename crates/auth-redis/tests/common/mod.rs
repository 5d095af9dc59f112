//! Helpers of the Redis tests: a real server per test, stores on it under fresh prefixes.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_core::StoreVersion;
use auth_redis::testing::RedisServer;
use auth_redis::{Options, RedisStore};
use auth_store::shared::conformance::sample_snapshot;
use auth_store::shared::{LeaseOwner, SharedStore, SharedStoreError};

/// A real `redis-server` on loopback; fails the test with the fix named (`.ci/run`) when
/// `redis-server` is missing.
pub fn server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|error| panic!("{error}"))
}

/// A store on `server` under a prefix no other store of this test process uses.
pub fn store(server: &RedisServer) -> RedisStore {
    store_with(server, Duration::from_secs(2))
}

/// [`store`] with its call timeout.
pub fn store_with(server: &RedisServer, timeout: Duration) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!("seamless-test:{{{}}}", NEXT.fetch_add(1, Ordering::Relaxed));
    RedisStore::with_options(&server.url(), &prefix, Options::default().timeout(timeout))
        .unwrap_or_else(|error| panic!("{error}"))
}

/// A plain connection to `server`, to look at or tamper with what the store wrote.
pub fn raw(server: &RedisServer) -> redis::Connection {
    let connection = redis::Client::open(server.url())
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
        .unwrap_or_else(|error| panic!("{error}"));
    connection
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap_or_else(|error| panic!("{error}"));
    connection
}

/// One call of the store: which, what it answered (`Debug` of the answer), how long it took.
pub struct Answer {
    pub operation: &'static str,
    pub result: Result<String, SharedStoreError>,
    pub took: Duration,
}

/// One call of the store, its answer shown with `Debug`.
type Call<'a> = dyn Fn() -> Result<String, SharedStoreError> + 'a;

/// Every operation of `store` once (a publish of [`sample_snapshot`] tokens among them), for
/// the tests of what all of them do when Redis is down, hung or holds something odd.
pub fn every_call(store: &RedisStore) -> Vec<Answer> {
    let owner = LeaseOwner("every-call".to_owned());
    let shown = |answer: &dyn std::fmt::Debug| format!("{answer:?}");
    let calls: [(&'static str, &Call<'_>); 5] = [
        ("read", &|| store.read().map(|r| shown(&r))),
        ("acquire", &|| {
            store
                .acquire(&owner, Duration::from_secs(60))
                .map(|r| shown(&r))
        }),
        ("publish", &|| {
            store
                .publish(StoreVersion(1), &sample_snapshot(2))
                .map(|r| shown(&r))
        }),
        ("release", &|| {
            store
                .release(&owner, StoreVersion(1), false)
                .map(|r| shown(&r))
        }),
        ("logout", &|| store.logout().map(|r| shown(&r))),
    ];
    calls
        .into_iter()
        .map(|(operation, call)| {
            let start = Instant::now();
            let result = call();
            Answer {
                operation,
                result,
                took: start.elapsed(),
            }
        })
        .collect()
}
