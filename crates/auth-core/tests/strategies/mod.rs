//! Strategies shared by the property tests (`properties.rs`, `fleet_properties.rs`): request
//! specs, server faults, and configurations drawn from the whole range of every field, edges
//! weighted (DESIGN.md §5: configuration is input too), so both tests explore the same space.
#![allow(dead_code)]

use core::time::Duration;

use auth_core::sim::{Fault, INTERESTING_DELAYS};
use auth_core::{Config, RequestSpec};
use proptest::prelude::*;

pub(crate) fn spec() -> impl Strategy<Value = RequestSpec> {
    prop_oneof![
        6 => Just(RequestSpec::bearer()),
        1 => Just(RequestSpec::public()),
        1 => Just(RequestSpec::bearer().no_retry()),
        1 => Just(RequestSpec::bearer().not_replayable()),
    ]
}

pub(crate) fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::ServerError),
        Just(Fault::Hang),
        Just(Fault::Fatal),
        (1u64..20_000).prop_map(|ms| Fault::Delay(Duration::from_millis(ms))),
    ]
}

/// A `u8` from its whole range, the edges (0, 1, 254, 255) and small values weighted so that
/// each is drawn often.
pub(crate) fn whole_u8() -> impl Strategy<Value = u8> {
    prop_oneof![
        2 => Just(0u8),
        2 => Just(1),
        1 => Just(u8::MAX - 1),
        3 => Just(u8::MAX),
        2 => 2u8..4,
        2 => any::<u8>(),
    ]
}

/// A `u32` from its whole range, edges weighted.
pub(crate) fn whole_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => Just(0u32),
        2 => Just(1),
        2 => Just(u32::MAX),
        1 => Just(u32::MAX - 1),
        3 => 2u32..6,
        2 => any::<u32>(),
    ]
}

/// A `usize` from its whole range, edges weighted.
pub(crate) fn whole_usize() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => Just(0usize),
        2 => Just(1),
        2 => Just(usize::MAX),
        3 => 2usize..24,
        1 => any::<usize>(),
    ]
}

/// A `u64` from its whole range, edges weighted.
pub(crate) fn whole_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0u64),
        1 => Just(u64::MAX),
        4 => any::<u64>(),
    ]
}

/// A duration from zero to `Duration::MAX`: zero, one millisecond, the simulator's interesting
/// delays, any number of milliseconds, and the maximum (which saturates every deadline), with
/// the edges weighted.
pub(crate) fn whole_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        2 => Just(Duration::ZERO),
        1 => Just(Duration::from_millis(1)),
        3 => proptest::sample::select(&INTERESTING_DELAYS[..]),
        1 => (0u64..100_000).prop_map(Duration::from_millis),
        1 => any::<u64>().prop_map(Duration::from_millis),
        1 => (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        2 => Just(Duration::MAX),
    ]
}

/// A configuration drawn from the whole range of every field (DESIGN.md §5: configuration is
/// input too), each field's edges weighted so that they are drawn often.
pub(crate) fn config() -> impl Strategy<Value = Config> {
    let counts = (
        whole_u8(),
        whole_usize(),
        whole_u32(),
        whole_u32(),
        whole_u64(),
    );
    let durations = (
        whole_duration(),
        whole_duration(),
        whole_duration(),
        whole_duration(),
        whole_duration(),
        whole_duration(),
    );
    (counts, durations, any::<bool>(), any::<bool>()).prop_map(
        |(
            (max_retries, max_queued, max_operation_retries, max_refresh_failures, jitter_seed),
            (
                queue_timeout,
                operation_timeout,
                refresh_margin,
                backoff_base,
                backoff_max,
                breaker_cooldown,
            ),
            eager_login,
            revoke_on_logout,
        )| Config {
            max_retries,
            max_queued,
            queue_timeout,
            operation_timeout,
            refresh_margin,
            max_operation_retries,
            backoff_base,
            backoff_max,
            jitter_seed,
            max_refresh_failures,
            breaker_cooldown,
            eager_login,
            revoke_on_logout,
        },
    )
}
