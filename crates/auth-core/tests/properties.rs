//! Property tests: random sequences of app actions, network faults and server faults through the
//! simulator, with the shared [`auth_core::Monitor`] judged after every step (P1–P7), and P8 once
//! the faults stop. Configurations come from the whole range of every field, edges weighted.
//!
//! CI runs proptest's default case count. For a long run:
//! `PROPTEST_CASES=100000 cargo test --release -p auth-core --test properties`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;

mod strategies;

use auth_core::sim::{NetFault, Op, Sim, INTERESTING_DELAYS};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use strategies::{config, fault, spec};

fn net_fault() -> impl Strategy<Value = NetFault> {
    prop_oneof![
        Just(NetFault::Lose),
        Just(NetFault::Duplicate),
        (1u64..5_000).prop_map(|ms| NetFault::Delay(Duration::from_millis(ms))),
    ]
}

/// Everything but a process restart (a trace covers one session).
fn session_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => spec().prop_map(Op::Submit),
        2 => any::<u16>().prop_map(Op::Cancel),
        1 => Just(Op::Logout),
        2 => Just(Op::Login),
        8 => (1u8..8).prop_map(Op::Step),
        3 => proptest::sample::select(&INTERESTING_DELAYS[..]).prop_map(Op::Advance),
        2 => Just(Op::ExpireAccessTokens),
        1 => Just(Op::RevokeRefreshToken),
        1 => fault().prop_map(Op::FailNextLogin),
        2 => fault().prop_map(Op::FailNextRefresh),
        2 => net_fault().prop_map(Op::FaultNextResponse),
        1 => any::<bool>().prop_map(Op::RejectEveryCall),
    ]
}

/// Session ops plus the occasional process restart.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![30 => session_op(), 1 => Just(Op::Restart)]
}

/// Step budget of the final settle: 80 ops against the largest retry budget need a few tens of
/// thousands of steps; a session that needs more loops (P8). Kept well below what a loop costs
/// to run, so that shrinking a failure stays quick.
const SETTLE_STEPS: usize = 200_000;

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        // A looping session costs a full settle budget per shrinking step.
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn monitor_holds_under_random_faults_and_everything_settles(
        config in config(),
        lifetime_s in prop_oneof![Just(0u64), Just(1), Just(60), Just(3600), Just(u64::MAX)],
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let server = auth_core::sim::FakeServer::new(Duration::from_secs(lifetime_s));
        let mut sim = Sim::with_server(config, server);
        for op in &ops {
            sim.apply(*op);
            prop_assert!(sim.violations().is_empty(), "after {:?}: {:?}\n{}", op, sim.violations(), sim.transcript());
        }
        prop_assert!(sim.settle(SETTLE_STEPS), "did not settle\n{}", sim.transcript());
        prop_assert!(sim.violations().is_empty(), "{:?}\n{}", sim.violations(), sim.transcript());
    }

    #[test]
    fn a_recorded_trace_replays_to_the_same_commands(
        config in config(),
        ops in proptest::collection::vec(session_op(), 0..60),
    ) {
        let mut sim = Sim::new(config);
        for op in &ops {
            sim.apply(*op);
        }
        sim.settle(SETTLE_STEPS);
        let trace = sim.trace().clone();
        let json = trace.to_json();
        let parsed = auth_core::Trace::from_json(json.as_bytes()).unwrap();
        prop_assert_eq!(parsed.to_json(), json);
        // Replaying the trace (tokens read back as fingerprints) gives the very commands the
        // simulated run gave, in order, and so does replaying the parsed copy.
        let recorded = serde_json::to_string(sim.commands()).unwrap();
        for replay in [trace.replay(), parsed.replay()] {
            let commands: Vec<_> = replay.commands.into_iter().map(|(_, c)| c).collect();
            prop_assert_eq!(&serde_json::to_string(&commands).unwrap(), &recorded);
            prop_assert!(replay.violations.is_empty(), "{:?}", replay.violations);
        }
    }
}
