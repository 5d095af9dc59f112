//! A hung lease holder, with real processes and both shared stores: the holder's refresh never
//! answers. It gives the operation up at its own deadline (half the lease's ttl), so the lease
//! passes on well before it could expire; whoever takes over finds the token marked spent and
//! logs in. No refresh token is presented twice and every request of both processes is answered.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet_support;

use std::time::{Duration, Instant};

use auth_demo::fleet::{storm, StoreKind};
use auth_tokio::auth_core::Config;

use fleet_support::{
    assert_no_secret_logged, child_with, config, fleet, storm_ok, wait_for, LIMIT,
};

/// Longer than the other fault tests', so that "before the lease expired" has seconds of
/// margin on a loaded machine.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

fn hung_config() -> Config {
    Config {
        operation_timeout: OPERATION_TIMEOUT,
        ..config()
    }
}

fn a_hung_holder_gives_the_lease_up(kind: StoreKind) {
    let fleet = fleet(kind);
    let (mut holder, _) = child_with(&fleet, "holder", hung_config());
    let (mut other, _) = child_with(&fleet, "other", hung_config());
    storm_ok(&mut holder, 4);
    storm_ok(&mut other, 4);
    let admin = fleet.server().admin();
    let before = admin.counters();
    admin.expire_access_tokens();
    admin.hang_refreshes(1);

    holder.send(&storm(8, Duration::ZERO)).unwrap();
    wait_for(&fleet, "the holder's refresh", |c| c.refresh_calls == 1);
    let hung_at = Instant::now();
    other.send(&storm(8, Duration::ZERO)).unwrap();
    let theirs = other.stormed(LIMIT).unwrap();
    let mine = holder.stormed(LIMIT).unwrap();
    let settled_after = hung_at.elapsed();
    assert_eq!((mine.ok, theirs.ok), (8, 8), "{mine:?} {theirs:?}");

    let after = admin.counters();
    assert_eq!(after.reuse_detected, 0);
    assert_eq!(after.invalid_grant, 0);
    assert_eq!(after.refresh_calls, 1, "only the hung refresh");
    assert_eq!(after.logins, before.logins + 1, "one takeover login");
    // The holder released the lease at its operation deadline instead of sitting on it until
    // the ttl (twice that) ran out.
    let lease_ttl = OPERATION_TIMEOUT * 2;
    assert!(
        settled_after < lease_ttl,
        "new tokens only {settled_after:?} after the hang: the lease was not given up early"
    );
    assert_no_secret_logged(&fleet);
}

#[test]
fn a_hung_holder_abandons_at_its_deadline_and_the_lease_passes_on_file() {
    a_hung_holder_gives_the_lease_up(StoreKind::File);
}

#[test]
fn a_hung_holder_abandons_at_its_deadline_and_the_lease_passes_on_redis() {
    a_hung_holder_gives_the_lease_up(StoreKind::Redis);
}
