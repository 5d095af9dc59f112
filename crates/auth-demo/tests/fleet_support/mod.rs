//! What the fleet fault tests share: the fleet they run against (the demo server with family
//! revocation on reuse, so a reuse would cost the fleet its session as in production; the
//! children's logs captured down to `TRACE`), the children's session config (short deadlines,
//! so every wait in these tests is seconds), a poll for the server's counters, and the check
//! that no secret reached a child's logs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use auth_demo::fleet::{ChildProcess, Fleet, StoreKind};
use auth_demo::server::{Counters, ServerConfig};
use auth_tokio::auth_core::{Config, SessionState};

/// Upper bound of any one wait for a child.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// The children's operation timeout: the lease's ttl is twice it.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a request may wait for the session: far above the lease ttl, so a waiter outlasts
/// a dead holder's lease.
pub(crate) const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// A fleet on `kind` with the demo server revoking token families on reuse.
pub(crate) fn fleet(kind: StoreKind) -> Fleet {
    let server = ServerConfig::default().with_family_revocation(true);
    let mut fleet = Fleet::start(kind, server, Path::new(env!("CARGO_BIN_EXE_auth-demo"))).unwrap();
    fleet.capture_child_logs().unwrap();
    fleet
}

/// Fails if any code or token the server issued appears in any child's logs, or if a child
/// logged nothing (then the check would prove nothing).
pub(crate) fn assert_no_secret_logged(fleet: &Fleet) {
    let secrets = fleet.server().admin().issued_secrets();
    assert!(!secrets.is_empty(), "the server issued nothing");
    let logs = fleet.child_logs();
    assert!(!logs.is_empty(), "no child logs captured");
    for (tag, text) in &logs {
        assert!(text.lines().count() > 0, "{tag} logged nothing");
        for line in text.lines() {
            if let Some(secret) = secrets.iter().find(|s| line.contains(s.as_str())) {
                panic!(
                    "{tag} logged a secret: {}",
                    line.replace(secret.as_str(), "<SECRET>")
                );
            }
        }
    }
}

/// Short deadlines and backoffs; the breaker's cool-down short enough not to outlast a test.
pub(crate) fn config() -> Config {
    Config {
        queue_timeout: QUEUE_TIMEOUT,
        operation_timeout: OPERATION_TIMEOUT,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        breaker_cooldown: Duration::from_millis(200),
        ..Config::default()
    }
}

/// A child with [`config`], ready; the state its session started in.
pub(crate) fn child(fleet: &Fleet, tag: &str) -> (ChildProcess, SessionState) {
    child_with(fleet, tag, config())
}

/// A child with `config`, ready; the state its session started in.
pub(crate) fn child_with(fleet: &Fleet, tag: &str, config: Config) -> (ChildProcess, SessionState) {
    let mut child = fleet.spawn(tag, config).unwrap();
    let state = child.ready(LIMIT).unwrap();
    (child, state)
}

/// Sends `requests` at once and asserts that every one was answered 200.
pub(crate) fn storm_ok(child: &mut ChildProcess, requests: u32) {
    let tally = child.storm(requests, Duration::ZERO, LIMIT).unwrap();
    assert_eq!(tally.ok, u64::from(requests), "{}: {tally:?}", child.tag());
}

/// Polls the server's counters until `done` holds (at most [`LIMIT`]).
pub(crate) fn wait_for(fleet: &Fleet, what: &str, done: impl Fn(&Counters) -> bool) -> Counters {
    let deadline = Instant::now() + LIMIT;
    loop {
        let counters = fleet.server().admin().counters();
        if done(&counters) {
            return counters;
        }
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two children sharing the session, which the first logged in and the second adopted (no
/// second login): the start of most fault stories.
pub(crate) fn two_signed_in(fleet: &Fleet) -> (ChildProcess, ChildProcess) {
    let (mut first, state) = child(fleet, "first");
    assert_eq!(state, SessionState::Anonymous);
    let (mut second, _) = child(fleet, "second");
    storm_ok(&mut first, 4);
    storm_ok(&mut second, 4);
    let counters = fleet.server().admin().counters();
    assert_eq!((counters.logins, counters.refresh_calls), (1, 0));
    (first, second)
}
