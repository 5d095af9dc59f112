//! Stories of a fleet sharing one session, through the fleet simulator (`auth_core::sim::fleet`):
//! real shared sessions, a simulated store with the lease and the spent mark, a fake server that
//! revokes a token family on reuse. Every story ends with the fleet's monitor (P9–P11) and every
//! process's monitor (P1–P8) clean, so a story that "works" but breaks a property fails.
//!
//! The scale run of DESIGN.md §7 (100 processes, 10 expiries) is here too; its figures are in
//! docs/performance.md ("Shared sessions in the simulator"), printed by
//! `cargo test --release -p auth-core --test fleet a_hundred -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;

use auth_core::sim::fleet::{Fleet, FleetConfig};
use auth_core::sim::{FakeServer, Fault};
use auth_core::{
    Input, Instant, Outcome, RefreshFailure, RefreshToken, RequestError, RequestId, RequestSpec,
    SessionState, Stored,
};

const LIFETIME: Duration = Duration::from_secs(60);

fn fleet(processes: usize) -> Fleet {
    Fleet::new(FleetConfig {
        processes,
        access_lifetime: LIFETIME,
        ..FleetConfig::default()
    })
}

/// Runs until quiet with the faults queued, then stops them and judges P8 everywhere; fails with
/// the transcript on any violation.
fn settle(fleet: &mut Fleet) {
    fleet.drive();
    assert!(
        fleet.settle(1_000_000),
        "did not settle\n{}",
        fleet.transcript()
    );
    assert_clean(fleet);
}

fn assert_clean(fleet: &Fleet) {
    assert!(
        fleet.is_clean(),
        "{}\n{}",
        fleet.violations_text(),
        fleet.transcript()
    );
}

fn all_delivered(fleet: &Fleet, ids: &[(usize, RequestId)]) -> bool {
    ids.iter()
        .all(|&(p, id)| fleet.outcome(p, id) == Some(Outcome::Deliver))
}

/// Moves the clock past the expiry of the tokens in the store.
fn past_expiry(fleet: &mut Fleet) {
    let Stored::Tokens(tokens) = fleet.store_record().content else {
        panic!("no tokens in the store\n{}", fleet.transcript());
    };
    let left = tokens.expires_in.unwrap_or_default();
    fleet.advance(left + Duration::from_millis(1));
}

/// A fleet that logged in once and is idle.
fn logged_in(processes: usize) -> Fleet {
    let mut fleet = fleet(processes);
    let ids = fleet.storm(1);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids));
    fleet
}

#[test]
fn a_storm_in_every_process_logs_the_fleet_in_once() {
    let mut fleet = fleet(4);
    let ids = fleet.storm(3);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids));
    assert_eq!(fleet.server.logins, 1);
    assert_eq!(fleet.store_ops().written, 1);
    for p in 0..4 {
        assert_eq!(fleet.session(p).unwrap().state(), SessionState::Active);
    }
}

#[test]
fn through_an_expiry_one_process_refreshes_and_the_others_adopt_its_tokens() {
    let mut fleet = logged_in(4);
    past_expiry(&mut fleet);
    let ids = fleet.storm(3);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids));
    assert_eq!((fleet.server.logins, fleet.server.refreshes), (1, 1));
    assert_eq!(fleet.server.reuse_detected, 0);
    // Everyone holds the refreshed tokens, which are what the store holds.
    let generations: Vec<_> = (0..4)
        .map(|p| fleet.session(p).unwrap().generation())
        .collect();
    assert!(generations.iter().all(|g| g.is_some()), "{generations:?}");
    assert_eq!(fleet.store_record().version.0, 2);
}

/// The fake server's reuse detection, which the fleet must never trip: a refresh token that was
/// exchanged, presented again, is `invalid_grant` and kills its family's live refresh token.
#[test]
fn a_refresh_token_presented_twice_revokes_its_family() {
    let mut server = FakeServer::new(LIFETIME);
    let auth_core::sim::Answer::After {
        result: Ok(first), ..
    } = server.login(Instant::ZERO)
    else {
        panic!("login failed");
    };
    let first = first.refresh_token.unwrap();
    let refresh = |server: &mut FakeServer, token: &RefreshToken| match server
        .refresh(token, Instant::ZERO)
    {
        auth_core::sim::Answer::After { result, .. } => result,
        auth_core::sim::Answer::Never => panic!("no answer"),
    };
    let second = refresh(&mut server, &first).unwrap().refresh_token.unwrap();
    assert_eq!(server.reuse_detected, 0);
    // `first` again: reuse. The family's live token (`second`) dies with it.
    assert_eq!(
        refresh(&mut server, &first),
        Err(RefreshFailure::InvalidGrant)
    );
    assert_eq!(server.reuse_detected, 1);
    assert_eq!(
        refresh(&mut server, &second),
        Err(RefreshFailure::InvalidGrant)
    );
    // A token that was never exchanged is merely dead, not reused.
    assert_eq!(server.reuse_detected, 1);
}

/// The holder's refresh reaches the server (the token rotates) but the answer never comes: it
/// gives up at its deadline and keeps the spent mark, so the next holder logs in instead of
/// presenting the token again.
#[test]
fn a_holder_whose_answer_is_lost_times_out_and_the_next_holder_logs_in() {
    let mut fleet = logged_in(3);
    past_expiry(&mut fleet);
    fleet.lose_next_answers(1);
    let first = fleet.submit(0, RequestSpec::bearer()).unwrap();
    fleet.advance(Duration::from_millis(5));
    let others = fleet.storm(2);
    settle(&mut fleet);
    assert_eq!(fleet.stats().answers_lost, 1);
    // One refresh (the lost one) and then logins only: the first login after the initial one
    // may be abandoned (the waiter that takes the lease has only what the wait left of its
    // own operation deadline), the next one publishes.
    assert_eq!(fleet.server.refreshes, 1);
    assert!(fleet.server.logins >= 2, "{}", fleet.transcript());
    assert_eq!(fleet.server.reuse_detected, 0);
    assert!(all_delivered(&fleet, &others));
    assert!(matches!(
        fleet.outcome(0, first),
        Some(Outcome::Fail(_)) | Some(Outcome::Deliver)
    ));
}

/// The holder crashes mid-refresh: its lease stays until its ttl, the others wait for it, then
/// one takes over, finds the mark and logs in. The crashed process restarts from the store.
#[test]
fn a_holder_that_crashes_mid_refresh_loses_the_lease_after_its_ttl() {
    let mut fleet = logged_in(3);
    past_expiry(&mut fleet);
    fleet.submit(0, RequestSpec::bearer()).unwrap();
    fleet.advance(Duration::from_millis(5));
    assert_eq!(fleet.lease_holder().map(|(p, _)| p), Some(0));
    fleet.restart(0);
    let ids = fleet.storm(2);
    settle(&mut fleet);
    assert_eq!(fleet.store_ops().lease_expiries, 1);
    assert_eq!(fleet.server.reuse_detected, 0);
    assert_eq!((fleet.server.refreshes, fleet.server.logins), (1, 2));
    // Every request issued after the crash is delivered: the restarted process adopts or waits
    // like the others, and the others wait out the ttl within their deadlines.
    assert!(all_delivered(&fleet, &ids), "{}", fleet.transcript());
}

/// The holder freezes (a GC pause, a descheduled VM) past its lease with the grant unread; the
/// lease passes on, and the new holder's login is under way when the old one wakes. The old
/// holder's operation gave up long ago by its own deadline: it must give the grant back, not
/// present its refresh token beside the new holder's login (P10 outside the takeover window).
#[test]
fn a_holder_paused_past_its_lease_does_not_act_on_its_stale_grant() {
    let mut fleet = logged_in(2);
    past_expiry(&mut fleet);
    fleet.submit(0, RequestSpec::bearer()).unwrap();
    // The grant is on its way (store latency 1 ms); the lease lasts 20 s; p1 takes over at
    // about 20 s + 16 ms and logs in for 10 ms. p0 wakes in the middle of that login.
    fleet.pause(0, Duration::from_millis(20_020));
    fleet.advance(Duration::from_millis(100));
    let ids = [(1, fleet.submit(1, RequestSpec::bearer()).unwrap())];
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids));
    assert_eq!(fleet.server.reuse_detected, 0);
}

/// A store that loses the lease before its holder even read the grant (a failover to a replica
/// that never saw it) breaks what a lease promises: the holder and the next one both work at
/// once, which P10 reports and no client can prevent. The spent mark still keeps P9: the next
/// holder logs in, and no refresh token is presented twice.
#[test]
fn a_lease_lost_by_the_store_can_overlap_operations_but_never_reuses_a_token() {
    let mut fleet = logged_in(2);
    past_expiry(&mut fleet);
    fleet.submit(0, RequestSpec::bearer()).unwrap();
    fleet.lose_lease();
    let ids = [(1, fleet.submit(1, RequestSpec::bearer()).unwrap())];
    settle_allowing_overlap(&mut fleet);
    assert!(all_delivered(&fleet, &ids));
    assert_eq!(fleet.server.reuse_detected, 0);
    assert_eq!((fleet.server.refreshes, fleet.server.logins), (1, 2));
    let properties: Vec<_> = fleet
        .fleet_violations()
        .iter()
        .map(|v| v.property())
        .collect();
    assert_eq!(properties, [auth_core::FleetProperty::P10FleetSingleFlight]);
}

/// As [`settle`], for the one story whose fault is beyond the lease's promise: only the fleet's
/// P10 may be reported.
fn settle_allowing_overlap(fleet: &mut Fleet) {
    fleet.drive();
    assert!(
        fleet.settle(1_000_000),
        "did not settle\n{}",
        fleet.transcript()
    );
    assert!(
        fleet.process_violations().is_empty(),
        "{}\n{}",
        fleet.violations_text(),
        fleet.transcript()
    );
}

/// The store loses its data mid-session (a Redis restarted without persistence): its versions
/// start again at 0, so the next login is written as v1 again, with other tokens than the v1 the
/// processes hold. Nobody presents a refresh token whose history was lost: the next holder finds
/// the record forgotten and logs in, and everyone adopts the new v1 (their watch compares whole
/// records, not versions).
#[test]
fn a_store_that_loses_its_data_makes_the_next_holder_log_in_and_everyone_follow() {
    let mut fleet = logged_in(3);
    assert_eq!(fleet.store_record().version.0, 1);
    past_expiry(&mut fleet);
    fleet.lose_store_data();
    let ids = fleet.storm(2);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids), "{}", fleet.transcript());
    assert_eq!(fleet.store_record().version.0, 1);
    assert_eq!((fleet.server.refreshes, fleet.server.logins), (0, 2));
    assert_eq!(fleet.server.reuse_detected, 0);
    let generations: Vec<_> = (0..3)
        .map(|p| fleet.session(p).unwrap().generation())
        .collect();
    assert!(
        generations.iter().all(|g| *g == generations[0]),
        "{generations:?}"
    );
}

/// The store loses its data, then the user logs out in one process: the tombstone is written as
/// v1 again, the version of the tokens the other process still holds. That tombstone is a logout
/// all the same: the other process must follow it, not take it for its own tokens' record and
/// later log in over it (P11).
#[test]
fn a_logout_after_the_store_lost_its_data_reaches_every_process() {
    let mut fleet = logged_in(2);
    fleet.lose_store_data();
    fleet.input(0, Input::Logout);
    settle(&mut fleet);
    assert_eq!(fleet.store_record().version.0, 1);
    assert_eq!(
        fleet.session(1).unwrap().state(),
        SessionState::LoggedOut,
        "{}",
        fleet.transcript()
    );
    past_expiry_or_wait(&mut fleet);
    let refused = fleet.submit(1, RequestSpec::bearer()).unwrap();
    settle(&mut fleet);
    assert_eq!(
        fleet.outcome(1, refused),
        Some(Outcome::Fail(RequestError::LoggedOut))
    );
    assert_eq!(fleet.server.logins, 1);
}

/// Logout in one process ends the session everywhere (the tombstone), fails what waits, and a
/// process restarted afterwards starts logged out; only an explicit login brings it back.
#[test]
fn a_logout_in_one_process_logs_out_the_fleet_and_a_restart_stays_out() {
    let mut fleet = logged_in(3);
    fleet.input(1, Input::Logout);
    settle(&mut fleet);
    for p in 0..3 {
        assert_eq!(
            fleet.session(p).unwrap().state(),
            SessionState::LoggedOut,
            "p{p}\n{}",
            fleet.transcript()
        );
    }
    fleet.restart(2);
    assert_eq!(fleet.session(2).unwrap().state(), SessionState::LoggedOut);
    past_expiry_or_wait(&mut fleet);
    let refused = fleet.submit(0, RequestSpec::bearer()).unwrap();
    settle(&mut fleet);
    assert_eq!(
        fleet.outcome(0, refused),
        Some(Outcome::Fail(RequestError::LoggedOut))
    );
    assert_eq!((fleet.server.logins, fleet.server.refreshes), (1, 0));
    // The user logs in again in p2: everyone follows.
    fleet.input(2, Input::Login);
    settle(&mut fleet);
    let ids = fleet.storm(1);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids), "{}", fleet.transcript());
    assert_eq!(fleet.server.logins, 2);
}

/// The user logs in again in one process and, while that login is under way, logs out in
/// another (which already shows the earlier logout). The logout is the later action and its
/// answer says it reached the store: the login under way must not sign the fleet back in.
#[test]
fn a_logout_during_a_login_elsewhere_wins_even_over_the_tombstone_it_finds() {
    let mut fleet = logged_in(2);
    fleet.input(0, Input::Logout);
    settle(&mut fleet);
    fleet.input(1, Input::Login);
    // p1 has its grant on the tombstone and its login under way; p0 logs out again.
    fleet.advance(Duration::from_millis(2));
    fleet.input(0, Input::Logout);
    settle(&mut fleet);
    for p in 0..2 {
        assert_eq!(
            fleet.session(p).unwrap().state(),
            SessionState::LoggedOut,
            "p{p}\n{}",
            fleet.transcript()
        );
    }
}

fn past_expiry_or_wait(fleet: &mut Fleet) {
    fleet.advance(LIFETIME);
}

/// The store is unreachable when a refresh is needed: nothing is presented without the lease,
/// the waiting requests fail with the store's typed error, and once the store is back the next
/// request refreshes once.
#[test]
fn an_unreachable_store_fails_a_needed_refresh_with_store_unavailable_and_never_reuses() {
    let mut fleet = logged_in(3);
    past_expiry(&mut fleet);
    fleet.store_outage(Duration::from_secs(120));
    let ids = fleet.storm(1);
    fleet.advance(Duration::from_secs(60));
    for &(p, id) in &ids {
        assert!(
            matches!(
                fleet.outcome(p, id),
                Some(Outcome::Fail(RequestError::StoreUnavailable { .. }))
            ),
            "p{p}: {:?}\n{}",
            fleet.outcome(p, id),
            fleet.transcript()
        );
    }
    assert_eq!(fleet.server.refreshes, 0);
    fleet.advance(Duration::from_secs(61));
    let ids = fleet.storm(1);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids), "{}", fleet.transcript());
    assert_eq!((fleet.server.refreshes, fleet.server.logins), (1, 1));
    assert_eq!(fleet.server.reuse_detected, 0);
}

/// Requests whose token is still good never touch the store: an outage does not affect them.
#[test]
fn an_unreachable_store_does_not_affect_requests_with_a_usable_token() {
    let mut fleet = logged_in(3);
    fleet.store_outage(Duration::from_secs(10));
    let ops_before = fleet.store_ops().total();
    let ids = fleet.storm(5);
    fleet.advance(Duration::from_secs(1));
    assert!(all_delivered(&fleet, &ids));
    assert_eq!(fleet.store_ops().total(), ops_before);
    settle(&mut fleet);
}

/// A server fault on the refresh (a 5xx) keeps the mark: the retry is a login, never a second
/// presentation of a token that may have reached the server.
#[test]
fn a_failed_refresh_is_retried_as_a_login_by_whoever_takes_the_lease() {
    let mut fleet = logged_in(3);
    past_expiry(&mut fleet);
    fleet.server.fail_next_refresh(Fault::ServerError);
    let ids = fleet.storm(2);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids), "{}", fleet.transcript());
    assert_eq!((fleet.server.refreshes, fleet.server.logins), (1, 2));
    assert_eq!(fleet.server.reuse_detected, 0);
}

/// `operation_timeout: 0` means a login or refresh fails unless its answers arrive at the
/// instant it started (docs/architecture.md): with a store and a network that answer at once, a
/// shared session logs in like a local one, instead of giving every grant back as late.
#[test]
fn a_zero_operation_timeout_succeeds_when_every_answer_is_instant() {
    let mut fleet = Fleet::new(FleetConfig {
        processes: 2,
        session: auth_core::Config {
            operation_timeout: Duration::ZERO,
            ..auth_core::Config::default()
        },
        latency: Duration::ZERO,
        store_latency: Duration::ZERO,
        ..FleetConfig::default()
    });
    let ids = fleet.storm(1);
    settle(&mut fleet);
    assert!(all_delivered(&fleet, &ids), "{}", fleet.transcript());
    assert_eq!(fleet.server.logins, 1);
}

/// DESIGN.md §7 deliverable 6, on paper: 100 processes share one session through 10 expiries,
/// each process firing a storm of requests at every expiry. One refresh per expiry, no reuse,
/// every request delivered, every monitor clean. Prints the figures of docs/performance.md.
#[test]
fn a_hundred_processes_through_ten_expiries_refresh_once_per_expiry() {
    const PROCESSES: usize = 100;
    const EXPIRIES: u32 = 10;
    const STORM: usize = 10;
    let config = FleetConfig {
        processes: PROCESSES,
        access_lifetime: LIFETIME,
        transcript: false,
        ..FleetConfig::default()
    };
    let latency = config.latency;
    let mut fleet = Fleet::new(config);
    let first = fleet.storm(STORM);
    assert!(fleet.settle(1_000_000));
    assert!(all_delivered(&fleet, &first));
    assert_eq!(fleet.server.logins, 1);
    let mut store_ops = Vec::new();
    let mut added_ms = Vec::new();
    for expiry in 1..=EXPIRIES {
        past_expiry(&mut fleet);
        let before = *fleet.store_ops();
        let completed_before = fleet.completions().len();
        let ids = fleet.storm(STORM);
        assert!(fleet.settle(1_000_000));
        assert!(all_delivered(&fleet, &ids), "expiry {expiry}");
        assert_eq!(fleet.server.refreshes, expiry, "expiry {expiry}");
        store_ops.push(fleet.store_ops().since(&before));
        added_ms.extend(fleet.completions()[completed_before..].iter().map(|c| {
            let waited = c.completed.as_millis() - c.submitted.as_millis();
            waited - latency.as_millis() as u64
        }));
    }
    assert_eq!(fleet.server.refreshes, EXPIRIES);
    assert_eq!(fleet.server.logins, 1);
    assert_eq!(fleet.server.reuse_detected, 0);
    assert_eq!(fleet.server.invalid_grants, 0);
    let requests = (PROCESSES * STORM) as u64 * u64::from(EXPIRIES + 1);
    assert_eq!(fleet.stats().submitted, requests);
    assert_eq!(fleet.stats().delivered, requests);
    assert!(fleet.is_clean(), "{}", fleet.violations_text());
    added_ms.sort_unstable();
    let mean = added_ms.iter().sum::<u64>() as f64 / added_ms.len() as f64;
    let ops = fleet.store_ops();
    println!(
        "processes {PROCESSES}, expiries {EXPIRIES}, storm {STORM} per process: \
         refresh calls {}, logins {}, reuse detected {}, requests {} delivered {}",
        fleet.server.refreshes,
        fleet.server.logins,
        fleet.server.reuse_detected,
        fleet.stats().submitted,
        fleet.stats().delivered
    );
    let totals: Vec<u64> = store_ops.iter().map(|ops| ops.total()).collect();
    println!(
        "store operations per expiry: {totals:?}; the last one: {:?}",
        store_ops[store_ops.len() - 1]
    );
    println!(
        "store operations in all: {ops:?}; idle polls not simulated: {}",
        fleet.idle_reads()
    );
    println!(
        "latency added by waiting (ms, beyond the {} ms API round trip): mean {mean:.1}, \
         median {}, p99 {}, max {}; simulated time {} s",
        latency.as_millis(),
        added_ms[added_ms.len() / 2],
        added_ms[added_ms.len() * 99 / 100],
        added_ms[added_ms.len() - 1],
        fleet.now().as_millis() / 1000
    );
}

/// The checks are not vacuous: each broken variant of the shared rules is caught by the fleet
/// monitor in the story it breaks, and the fake server sees the reuse it would cause.
#[cfg(feature = "broken-variants")]
mod broken_variants {
    use auth_core::broken::Bug;
    use auth_core::FleetProperty;

    use super::*;

    fn planted(processes: usize, hook: fn(auth_core::Session) -> auth_core::Session) -> Fleet {
        Fleet::new(FleetConfig {
            processes,
            access_lifetime: LIFETIME,
            session_hook: Some(hook),
            ..FleetConfig::default()
        })
    }

    fn caught(fleet: &Fleet) -> Vec<FleetProperty> {
        let mut properties: Vec<_> = fleet
            .fleet_violations()
            .iter()
            .map(|v| v.property())
            .collect();
        properties.dedup();
        properties
    }

    /// Without the lease, every process refreshes through the expiry with the one refresh
    /// token: P9 and P10, and the server revokes the family.
    #[test]
    fn no_lease_is_caught_by_p9_and_p10_through_an_expiry() {
        let mut fleet = planted(3, |s| s.with_bug(Bug::NoLease));
        // One process logs in and the others adopt its tokens from the store, so the race
        // below is over the one live refresh token.
        fleet.submit(0, RequestSpec::bearer());
        fleet.drive();
        past_expiry(&mut fleet);
        fleet.storm(1);
        fleet.drive();
        let caught = caught(&fleet);
        assert!(
            caught.contains(&FleetProperty::P9NoReuse)
                && caught.contains(&FleetProperty::P10FleetSingleFlight),
            "{caught:?}\n{}",
            fleet.transcript()
        );
        assert!(fleet.server.reuse_detected > 0);
    }

    /// Ignoring the spent mark, the process that takes over from a holder whose answer was lost
    /// presents the same refresh token again: P9, and the server revokes the family.
    #[test]
    fn ignoring_the_spent_mark_is_caught_by_p9_after_a_lost_answer() {
        let mut fleet = planted(2, |s| s.with_bug(Bug::IgnoreSpentMark));
        fleet.storm(1);
        fleet.drive();
        past_expiry(&mut fleet);
        fleet.lose_next_answers(1);
        fleet.submit(0, RequestSpec::bearer());
        fleet.advance(Duration::from_millis(5));
        fleet.submit(1, RequestSpec::bearer());
        // Bounded: the broken variant may present the spent token again and again.
        fleet.advance(Duration::from_secs(30));
        assert_eq!(
            caught(&fleet),
            [FleetProperty::P9NoReuse],
            "{}",
            fleet.transcript()
        );
        assert!(fleet.server.reuse_detected > 0);
    }
}
