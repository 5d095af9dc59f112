//! kill -9 of the lease holder mid-refresh, with real processes and both shared stores: the
//! holder presented the refresh token, the server rotated it, and the holder died before the
//! answer came. Another process takes
//! the lease over once its ttl ran out, finds the token marked spent and logs in instead of
//! presenting it again: the server never sees a reuse, and every request of the survivor is
//! answered.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet_support;

use std::time::{Duration, Instant};

use auth_demo::fleet::{storm, StoreKind};
use auth_tokio::auth_core::SessionState;

use fleet_support::{
    assert_no_secret_logged, child, fleet, storm_ok, two_signed_in, wait_for, LIMIT,
    OPERATION_TIMEOUT,
};

fn kill_the_lease_holder_mid_refresh(kind: StoreKind) {
    let fleet = fleet(kind);
    let (mut holder, mut survivor) = two_signed_in(&fleet);
    let admin = fleet.server().admin();
    admin.expire_access_tokens();
    // The holder's refresh reaches the server, which rotates the token (it is spent now) and
    // holds the answer back: the holder is mid-refresh when killed.
    admin.delay_refresh_answers(1, Duration::from_secs(60));
    holder.send(&storm(8, Duration::ZERO)).unwrap();
    let presented = wait_for(&fleet, "the holder's refresh", |c| c.refreshes == 1);
    holder.kill().unwrap();
    let killed_at = Instant::now();

    let tally = survivor.storm(8, Duration::ZERO, LIMIT).unwrap();
    assert_eq!(tally.ok, 8, "{tally:?}");
    let after = admin.counters();
    assert_eq!(
        after.reuse_detected, 0,
        "the spent refresh token was presented again"
    );
    assert_eq!(
        after.refresh_calls, presented.refresh_calls,
        "nobody refreshed again"
    );
    assert_eq!(after.invalid_grant, 0);
    assert_eq!(
        after.logins,
        presented.logins + 1,
        "the survivor logged in once"
    );
    // The survivor could only take over once the dead holder's lease (twice the operation
    // timeout) ran out: it waited instead of refreshing beside it.
    let lease_ttl = OPERATION_TIMEOUT * 2;
    assert!(
        killed_at.elapsed() >= lease_ttl / 2,
        "the survivor got new tokens {:?} after the kill, before the lease could have passed on",
        killed_at.elapsed()
    );

    // A process started now finds the survivor's tokens: signed in, nothing to do.
    let (mut restarted, state) = child(&fleet, "restarted");
    assert_eq!(state, SessionState::Active);
    storm_ok(&mut restarted, 4);
    let settled = admin.counters();
    assert_eq!(
        (
            settled.logins,
            settled.refresh_calls,
            settled.reuse_detected
        ),
        (after.logins, after.refresh_calls, 0)
    );
    assert_no_secret_logged(&fleet);
}

#[test]
fn killing_the_lease_holder_mid_refresh_costs_a_login_never_a_reuse_file() {
    kill_the_lease_holder_mid_refresh(StoreKind::File);
}

#[test]
fn killing_the_lease_holder_mid_refresh_costs_a_login_never_a_reuse_redis() {
    kill_the_lease_holder_mid_refresh(StoreKind::Redis);
}
