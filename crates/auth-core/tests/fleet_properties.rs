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

use auth_core::sim::fleet::{Fleet, FleetConfig, FleetOp};
use auth_core::sim::INTERESTING_DELAYS;
use auth_core::Config;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use strategies::{config, fault, spec};

/// The longest `operation_timeout` drawn. Waiting for a lease is polling: a process whose holder
/// crashed asks again every `LEASE_RETRY` (20 ms) until the lease's ttl (2 × the timeout) ends,
/// so settling costs about `operation_timeout / 10 ms` steps per waiting process, and
/// `Duration::MAX` would never settle in steps. Longer timeouts only stretch the same waits;
/// every shorter edge (0, 1 ms, the interesting delays up to 31 s) is drawn.
const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(31);

/// Step budget of the final settle. Waiting is polling: every waiting process asks for the lease
/// every 20 ms while the holder's login or refresh takes its latency (up to 5 s here), so a world
/// whose tokens are useless at once (a zero lifetime) and whose requests may be sent 256 times
/// needs about a million steps (one such case in 10,000); a fleet that needs more loops (P8).
/// Only a failing case runs it in full.
const SETTLE_STEPS: usize = 2_000_000;

/// The most operation retries drawn when retries come less than a second apart (a zero
/// `backoff_base`, or a `backoff_max` under a second). Such a session retries as fast as the
/// store answers, and a store that is down may refuse at once: through an hour-long outage that
/// is millions of retries at three steps each (the tight loop docs/architecture.md warns of),
/// and with a zero `operation_timeout` too, an `Acquire` given up at its zero deadline holds the
/// lease for its 1 ms ttl while retries at that one instant fail, without the simulated clock
/// ever moving. Retry budgets of sessions that back off at least a second are drawn from the
/// whole range.
const MAX_RETRIES_WITHOUT_BACKOFF: u32 = 5_000;

/// A session configuration from the whole range of every field, the operation timeout capped
/// (and the retry budget of sessions that retry fast).
fn fleet_session_config() -> impl Strategy<Value = Config> {
    config().prop_map(|config| {
        let fast_retries =
            config.backoff_base.is_zero() || config.backoff_max < Duration::from_secs(1);
        let max_operation_retries = if fast_retries {
            config
                .max_operation_retries
                .min(MAX_RETRIES_WITHOUT_BACKOFF)
        } else {
            config.max_operation_retries
        };
        Config {
            operation_timeout: config.operation_timeout.min(MAX_OPERATION_TIMEOUT),
            max_operation_retries,
            ..config
        }
    })
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
    ]
}

/// The property: clean after every op, quiet and clean (P8 included) once faults stop. Runs
/// without a transcript (formatting every line costs more than the run); the fleet is
/// deterministic, so a failing case is run again with one for the message.
fn fleet_holds(config: FleetConfig, ops: &[FleetOp]) -> Result<(), TestCaseError> {
    let Some(failure) = run(config, ops, false) else {
        return Ok(());
    };
    let report = run(config, ops, true).unwrap_or_default();
    Err(TestCaseError::fail(format!("{failure}\n{report}")))
}

/// Runs `ops` and the settle; what went wrong, with the transcript if `transcript` is on.
fn run(config: FleetConfig, ops: &[FleetOp], transcript: bool) -> Option<String> {
    let mut fleet = Fleet::new(FleetConfig {
        transcript,
        ..config
    });
    let failed = |fleet: &Fleet, when: String| {
        Some(format!(
            "{when}:\n{}\n{}",
            fleet.violations_text(),
            fleet.transcript()
        ))
    };
    for op in ops {
        fleet.apply(*op);
        if !fleet.is_clean() {
            return failed(&fleet, format!("after {op:?}"));
        }
    }
    if !fleet.settle(SETTLE_STEPS) {
        return failed(&fleet, "did not settle".to_owned());
    }
    if !fleet.is_clean() {
        return failed(&fleet, "once faults stopped".to_owned());
    }
    None
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
