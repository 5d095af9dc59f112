//! Property tests of a fleet sharing one session: random fleets of 2–4 processes through the
//! fleet simulator (`auth_core::sim::fleet`), with random app actions, server faults and fleet
//! faults (crashes and restarts, paused holders, lost answers, store outages, leases running out
//! under their holder), random configurations drawn like `properties.rs` draws them (the whole
//! range of every field, edges weighted) and random latencies and watch intervals. After every
//! op the fleet's monitor (P9–P11) and every process's monitor (P1–P7) must be clean; once the
//! faults stop the fleet must go quiet and P8 hold in every process.
//!
//! With the `broken-variants` feature, the same property run against the broken variants
//! `NoLease` and `IgnoreSpentMark` must fail: the search finds what they break.
//!
//! For a long run: `PROPTEST_CASES=20000 cargo test --release -p auth-core --test fleet_properties`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod strategies;

use core::time::Duration;

use auth_core::sim::fleet::{check, settleable, FleetConfig, FleetOp};
use auth_core::sim::INTERESTING_DELAYS;
use auth_core::Config;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use strategies::{config, fault, spec};

/// A session configuration from the whole range of every field, as
/// [`auth_core::sim::fleet::settleable`] lets a simulated fleet run it (the operation timeout
/// capped at 31 s, the retry budget of sessions that retry fast at 5,000: the settle's cost).
fn fleet_session_config() -> impl Strategy<Value = Config> {
    config().prop_map(settleable)
}

/// A latency: none, 1 ms, a typical one, or anything up to 5 s.
fn latency() -> impl Strategy<Value = Duration> {
    prop_oneof![
        2 => Just(Duration::ZERO),
        1 => Just(Duration::from_millis(1)),
        3 => Just(Duration::from_millis(10)),
        2 => (0u64..5_000).prop_map(Duration::from_millis),
    ]
}

/// A fleet: 2–4 processes, a configuration, the server's token lifetime, the latencies of the
/// network and of the store, and how often each process polls the store.
fn fleet_config() -> impl Strategy<Value = FleetConfig> {
    (
        2usize..=4,
        fleet_session_config(),
        prop_oneof![Just(0u64), Just(1), Just(60), Just(3600), Just(u64::MAX)],
        latency(),
        latency(),
        prop_oneof![
            1 => Just(Duration::ZERO),
            1 => Just(Duration::from_millis(1)),
            3 => Just(Duration::from_millis(250)),
            1 => Just(Duration::from_secs(5)),
            1 => (0u64..60_000).prop_map(Duration::from_millis),
        ],
    )
        .prop_map(
            |(processes, session, lifetime_s, latency, store_latency, watch_interval)| {
                FleetConfig {
                    processes,
                    session,
                    access_lifetime: Duration::from_secs(lifetime_s),
                    latency,
                    store_latency,
                    watch_interval,
                    ..FleetConfig::default()
                }
            },
        )
}

/// One thing that happens to the fleet, weighted so that requests and steps dominate and every
/// fault comes up in most runs.
fn fleet_op() -> impl Strategy<Value = FleetOp> {
    let process = 0usize..4;
    let delay = || proptest::sample::select(&INTERESTING_DELAYS[..]);
    prop_oneof![
        10 => (process.clone(), spec()).prop_map(|(p, spec)| FleetOp::Submit(p, spec)),
        2 => (1u8..4).prop_map(FleetOp::Storm),
        2 => (process.clone(), any::<u16>()).prop_map(|(p, i)| FleetOp::Cancel(p, i)),
        1 => process.clone().prop_map(FleetOp::Logout),
        2 => process.clone().prop_map(FleetOp::Login),
        10 => (1u8..12).prop_map(FleetOp::Step),
        3 => delay().prop_map(FleetOp::Advance),
        2 => Just(FleetOp::ExpireAccessTokens),
        1 => Just(FleetOp::RevokeRefreshToken),
        1 => fault().prop_map(FleetOp::FailNextLogin),
        2 => fault().prop_map(FleetOp::FailNextRefresh),
        2 => Just(FleetOp::LoseNextAnswer),
        2 => process.clone().prop_map(FleetOp::Restart),
        2 => (process, delay()).prop_map(|(p, d)| FleetOp::Pause(p, d)),
        2 => delay().prop_map(FleetOp::StoreOutage),
        2 => Just(FleetOp::ExpireLease),
        1 => Just(FleetOp::LoseStoreData),
    ]
}

/// The property, written once in [`auth_core::sim::fleet::check`]: every monitor clean after
/// every op, quiet and clean (P8 included) once faults stop.
fn fleet_holds(config: FleetConfig, ops: &[FleetOp]) -> Result<(), TestCaseError> {
    check(config, ops).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fleet_properties.txt",
        ))),
        // A case that does not settle costs a full settle budget per shrinking step.
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fleet_and_process_monitors_hold_under_random_faults_and_the_fleet_settles(
        config in fleet_config(),
        ops in proptest::collection::vec(fleet_op(), 0..60),
    ) {
        fleet_holds(config, &ops)?;
    }
}

/// The property is not vacuous: run on the broken variants, the same search (same strategies,
/// a fixed seed) finds the fleet property each one breaks.
#[cfg(feature = "broken-variants")]
mod broken_variants {
    use auth_core::broken::Bug;
    use auth_core::Session;
    use proptest::test_runner::{RngAlgorithm, TestError, TestRng, TestRunner};

    use super::*;

    /// The failure the search finds with `hook` planted in every session, if any.
    fn search(hook: fn(Session) -> Session) -> Option<String> {
        let config = ProptestConfig {
            cases: 256,
            failure_persistence: None,
            // The first failure is enough; its message names the property.
            max_shrink_iters: 0,
            ..ProptestConfig::default()
        };
        let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let strategy = (fleet_config(), proptest::collection::vec(fleet_op(), 0..60));
        match runner.run(&strategy, |(config, ops)| {
            let config = FleetConfig {
                session_hook: Some(hook),
                ..config
            };
            fleet_holds(config, &ops)
        }) {
            Err(TestError::Fail(reason, _)) => Some(reason.to_string()),
            _ => None,
        }
    }

    #[test]
    fn the_search_catches_no_lease() {
        let failure = search(|s| s.with_bug(Bug::NoLease)).expect("NoLease not caught");
        assert!(
            failure.contains("fleet: P9") || failure.contains("fleet: P10"),
            "{failure}"
        );
    }

    #[test]
    fn the_search_catches_ignoring_the_spent_mark() {
        let failure =
            search(|s| s.with_bug(Bug::IgnoreSpentMark)).expect("IgnoreSpentMark not caught");
        assert!(failure.contains("fleet: P9"), "{failure}");
    }
}
