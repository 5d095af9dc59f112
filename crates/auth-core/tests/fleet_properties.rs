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

/// Step budget of the final settle: 4 processes polling a crashed holder's lease for 62 s need
/// about 25,000 steps; a fleet that needs far more loops (P8).
const SETTLE_STEPS: usize = 200_000;

/// The most operation retries drawn without backoff (a zero `backoff_base` or `backoff_max`:
/// every delay is zero, jitter included). Such a session retries as fast
/// as the store answers: through an outage (and the store may refuse in no time at all), or
/// against its own abandoned lease when `operation_timeout` is zero too (an `Acquire` given up at
/// its zero deadline still holds the lease for its 1 ms ttl, and the simulated clock does not
/// move while retries at one instant fail), it runs through its whole retry budget at three
/// steps a retry: the tight loop docs/architecture.md warns of. Every other retry budget is
/// drawn from the whole range.
const MAX_RETRIES_WITHOUT_BACKOFF: u32 = 5_000;

/// A session configuration from the whole range of every field, the operation timeout capped
/// (and the retry budget without backoff).
fn fleet_session_config() -> impl Strategy<Value = Config> {
    config().prop_map(|config| {
        let no_backoff = config.backoff_base.is_zero() || config.backoff_max.is_zero();
        let max_operation_retries = if no_backoff {
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
