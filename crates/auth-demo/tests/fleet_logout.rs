//! Logout in one process while another refreshes, with real processes and both shared stores:
//! once `logout()` returned `Ok`, no process refreshes or logs in, whether it was refreshing
//! (its late tokens lose to the tombstone), idle, or started afterwards (it starts `LoggedOut`).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fleet_support;

use std::thread;
use std::time::Duration;

use auth_demo::fleet::{storm, ChildProcess, StoreKind};
use auth_tokio::auth_core::{Config, SessionState};

use fleet_support::{assert_no_secret_logged, child, child_with, config, fleet, wait_for, LIMIT};

/// Every request of a storm fails with `LoggedOut`.
fn storm_logged_out(child: &mut ChildProcess, requests: u32) {
    let tally = child.storm(requests, Duration::ZERO, LIMIT).unwrap();
    assert_eq!(
        tally.failed("LoggedOut"),
        u64::from(requests),
        "{}: {tally:?}",
        child.tag()
    );
}

fn logout_while_another_refreshes(kind: StoreKind) {
    let fleet = fleet(kind);
    // The refresh is held for a second, well inside the refresher's operation deadline: it is
    // not given up, it is answered after the logout.
    let patient = Config {
        operation_timeout: Duration::from_secs(3),
        ..config()
    };
    let (mut refresher, _) = child_with(&fleet, "refresher", patient);
    let (mut quitter, _) = child(&fleet, "quitter");
    let (mut bystander, _) = child(&fleet, "bystander");
    for child in [&mut refresher, &mut quitter, &mut bystander] {
        let tally = child.storm(4, Duration::ZERO, LIMIT).unwrap();
        assert_eq!(tally.ok, 4, "{tally:?}");
    }
    let admin = fleet.server().admin();
    admin.expire_access_tokens();
    admin.delay_refreshes(1, Duration::from_secs(1));

    refresher.send(&storm(8, Duration::ZERO)).unwrap();
    wait_for(&fleet, "the refresh", |c| c.refresh_calls == 1);
    assert_eq!(quitter.logout(LIMIT).unwrap(), None, "logout not durable");
    let at_logout = admin.counters();

    // The refresh answered after the logout: its tokens are not kept, its requests fail.
    let tally = refresher.stormed(LIMIT).unwrap();
    assert_eq!(tally.failed("LoggedOut"), 8, "{tally:?}");
    // Time for every process to read the store (its watch) and act, if it were to.
    thread::sleep(Duration::from_millis(1500));
    for child in [&mut refresher, &mut quitter, &mut bystander] {
        assert_eq!(child.state(LIMIT).unwrap(), SessionState::LoggedOut);
        storm_logged_out(child, 4);
    }
    let (mut restarted, state) = child(&fleet, "restarted");
    assert_eq!(state, SessionState::LoggedOut, "a restart signed back in");
    storm_logged_out(&mut restarted, 4);

    let after = admin.counters();
    assert_eq!(after.logins, at_logout.logins, "a login after the logout");
    assert_eq!(
        after.refresh_calls, at_logout.refresh_calls,
        "a refresh after the logout"
    );
    assert_eq!(after.reuse_detected, 0);
    assert_no_secret_logged(&fleet);
}

#[test]
fn after_a_logout_no_process_refreshes_or_logs_in_file() {
    logout_while_another_refreshes(StoreKind::File);
}

#[test]
fn after_a_logout_no_process_refreshes_or_logs_in_redis() {
    logout_while_another_refreshes(StoreKind::Redis);
}
