//! The Redis store's faults, with a real `redis-server` and real processes: Redis restarted in
//! the middle of a storm (it comes back empty: the fleet logs in once rather than presenting a
//! refresh token whose history Redis forgot), and Redis unreachable while new tokens are needed
//! (those requests fail with the typed `StoreUnavailable` within their deadlines, the others go
//! on, and once Redis is back a request succeeds). No refresh token is ever presented twice.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet_support;

use std::thread;
use std::time::Duration;

use auth_demo::fleet::{storm, StoreKind};

use fleet_support::{
    assert_no_secret_logged, child, fleet, storm_ok, two_signed_in, wait_for, LIMIT,
    OPERATION_TIMEOUT, QUEUE_TIMEOUT,
};

#[test]
fn requests_keep_completing_through_a_redis_restart_mid_storm() {
    let mut fleet = fleet(StoreKind::Redis);
    let mut children: Vec<_> = (0..3).map(|n| child(&fleet, &format!("c{n}")).0).collect();
    for child in &mut children {
        storm_ok(child, 4);
    }
    let before = fleet.server().admin().counters();
    assert_eq!(before.logins, 1);

    // 40 requests per process spread over 3 s; Redis restarts (losing everything) half a second
    // in, and the access token expires right after: the rest of the storm needs new tokens from
    // a store that forgot the session.
    for child in &mut children {
        child.send(&storm(40, Duration::from_secs(3))).unwrap();
    }
    thread::sleep(Duration::from_millis(500));
    fleet.redis().unwrap().restart().unwrap();
    fleet.server().admin().expire_access_tokens();
    for child in &mut children {
        let tally = child.stormed(LIMIT).unwrap();
        assert_eq!(tally.ok, 40, "{}: {tally:?}", child.tag());
    }

    let after = fleet.server().admin().counters();
    assert_eq!(after.reuse_detected, 0);
    assert_eq!(after.invalid_grant, 0);
    assert_eq!(
        after.refresh_calls, before.refresh_calls,
        "a refresh token whose history Redis lost was presented"
    );
    assert_eq!(after.logins, before.logins + 1, "one login for the fleet");
    assert_no_secret_logged(&fleet);
}

#[test]
fn redis_unreachable_fails_only_the_requests_that_need_new_tokens_and_is_recovered() {
    let mut fleet = fleet(StoreKind::Redis);
    let (mut first, mut second) = two_signed_in(&fleet);
    fleet.redis().unwrap().stop().unwrap();

    // Tokens still good: the store is not needed.
    storm_ok(&mut first, 8);
    storm_ok(&mut second, 8);

    // New tokens needed: nobody may refresh without the lease, so the requests fail, typed,
    // within their deadlines (a refused connection fails each try at once: the operation's
    // retries and backoffs, far below the queue timeout).
    let before = fleet.server().admin().counters();
    fleet.server().admin().expire_access_tokens();
    let tally = first.storm(8, Duration::ZERO, LIMIT).unwrap();
    assert_eq!(tally.failed("StoreUnavailable"), 8, "{tally:?}");
    assert!(
        Duration::from_millis(tally.slowest_ms) < QUEUE_TIMEOUT,
        "{tally:?}"
    );
    let during = fleet.server().admin().counters();
    assert_eq!(
        (during.refresh_calls, during.logins),
        (before.refresh_calls, before.logins),
        "a login or refresh ran without the lease"
    );

    // Redis is back (empty, as after any restart without persistence): the next request logs
    // the fleet in again; the other process adopts.
    fleet.redis().unwrap().restart().unwrap();
    storm_ok(&mut first, 8);
    storm_ok(&mut second, 8);
    let after = fleet.server().admin().counters();
    assert_eq!(after.reuse_detected, 0);
    assert_eq!(after.refresh_calls, before.refresh_calls);
    assert_eq!(after.logins, before.logins + 1);
    assert_no_secret_logged(&fleet);
}

#[test]
fn a_hung_redis_fails_the_requests_that_need_new_tokens_within_their_deadlines() {
    let mut fleet = fleet(StoreKind::Redis);
    let (mut first, mut second) = two_signed_in(&fleet);
    // SIGSTOP: connections are accepted, nothing is answered. Every store call ends at its own
    // timeout (a quarter of the operation timeout), every try of the operation at its deadline.
    fleet.redis().unwrap().pause().unwrap();
    storm_ok(&mut first, 8);

    let before = fleet.server().admin().counters();
    fleet.server().admin().expire_access_tokens();
    let tally = first.storm(8, Duration::ZERO, LIMIT).unwrap();
    assert_eq!(tally.failed("StoreUnavailable"), 8, "{tally:?}");
    let slowest = Duration::from_millis(tally.slowest_ms);
    assert!(slowest < QUEUE_TIMEOUT, "{tally:?}");
    assert!(
        slowest >= OPERATION_TIMEOUT / 4,
        "failed before the store could have timed out once: {tally:?}"
    );
    let during = fleet.server().admin().counters();
    assert_eq!(
        (during.refresh_calls, during.logins),
        (before.refresh_calls, before.logins)
    );

    // Redis resumes with its data. The lease requests it queued while frozen now run: one may
    // grant a lease to a try that gave up long ago (held until its ttl, its spent mark left
    // behind). The next request waits for that lease at most, then refreshes, or logs in if
    // the mark is there: one operation, never a reuse.
    fleet.redis().unwrap().resume().unwrap();
    storm_ok(&mut first, 8);
    storm_ok(&mut second, 8);
    let after = fleet.server().admin().counters();
    assert_eq!(after.reuse_detected, 0);
    assert_eq!(after.invalid_grant, 0);
    assert_eq!(
        (after.refresh_calls - before.refresh_calls) + (after.logins - before.logins),
        1,
        "{after:?}"
    );
    assert_no_secret_logged(&fleet);
}

/// The store's versions start again at 0 when Redis loses its data, so a process can meet a
/// record at the version it last knew that is not the record it knew (ABA). Here the refresh
/// token presented before the restart (its spent mark lost with the data) must not be
/// presented again by a process that never saw the restart.
#[test]
fn a_refresh_token_presented_before_a_redis_restart_is_never_presented_again() {
    let mut fleet = fleet(StoreKind::Redis);
    let (mut holder, mut other) = two_signed_in(&fleet);
    let (mut unaware, _) = child(&fleet, "unaware");
    storm_ok(&mut unaware, 4);
    let admin = fleet.server().admin().clone();
    admin.expire_access_tokens();
    // The holder's refresh is carried out at once (the token is spent) and answered only after
    // the holder gave up on it (its operation deadline).
    admin.delay_refresh_answers(1, OPERATION_TIMEOUT + OPERATION_TIMEOUT / 2);
    holder.send(&storm(4, Duration::ZERO)).unwrap();
    wait_for(&fleet, "the holder's refresh", |c| c.refreshes == 1);
    // Redis loses everything, the holder's lease and spent mark with it.
    fleet.redis().unwrap().restart().unwrap();
    // Another process finds the store empty and logs the fleet in: the record is back at the
    // version the unaware process last read, with other tokens.
    storm_ok(&mut other, 4);
    let tally = holder.stormed(LIMIT).unwrap();
    assert_eq!(tally.ok, 4, "{tally:?}");

    storm_ok(&mut unaware, 4);
    let after = admin.counters();
    assert_eq!(
        after.reuse_detected, 0,
        "the refresh token presented before the restart was presented again"
    );
    assert_no_secret_logged(&fleet);
}
