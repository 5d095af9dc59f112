//! Helpers of the Redis tests: a real server per test, stores on it under fresh prefixes.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_redis::testing::RedisServer;
use auth_redis::{Options, RedisStore};

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
