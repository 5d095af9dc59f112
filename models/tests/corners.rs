//! The model at the edges of the configuration space (DESIGN.md §5: configuration is input
//! too). Every corner world of [`Corner::all`] is explored exhaustively: every `always`
//! property holds and every `sometimes` property the corner can reach is reached. Together the
//! corners put every `Config` field at its minimum and at its maximum.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_core::Config;
use auth_model::{run, AuthModel, Corner, Settings};

/// Far above what any corner needs (the deepest, always-401-retries-255, goes 519 steps deep
/// and generates 1.2 M states): a core that never spends a retry budget makes the space
/// infinite, and the cut-off turns that into a failing, incomplete search instead of a test
/// that never ends (measured on the u8 core: docs/verification.md).
const MAX_DEPTH: usize = 1_000;
const MAX_STATES: usize = 10_000_000;

fn check(name: &str) {
    let corner = Corner::named(name).unwrap();
    let settings = Settings {
        max_depth: Some(MAX_DEPTH),
        max_states: Some(MAX_STATES),
        ..Settings::default()
    };
    let report = run(AuthModel::new(corner.world.clone()), &settings);
    if let Err(why) = corner.judge(&report) {
        panic!("{why}\n{}", report.table());
    }
}

macro_rules! corners {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*

        #[test]
        fn every_corner_has_a_test() {
            let tested = [$($name),*];
            for corner in Corner::all() {
                assert!(tested.contains(&corner.name), "no test for corner {}", corner.name);
            }
        }
    };
}

corners! {
    minimum_config_is_checked_exhaustively => "minimum",
    maximum_config_is_checked_exhaustively => "maximum",
    no_queue_and_no_breaker_are_checked_exhaustively => "no-queue-no-breaker",
    always_401_with_max_retries_0_is_checked_exhaustively => "always-401-retries-0",
    always_401_with_max_retries_1_is_checked_exhaustively => "always-401-retries-1",
    always_401_with_max_retries_255_is_checked_exhaustively => "always-401-retries-255",
}

/// Each field's smallest and largest value appear in some corner. The destructuring names every
/// field, so a new `Config` field does not compile here until it is given its corners.
#[test]
fn the_corners_put_every_config_field_at_both_ends() {
    use core::time::Duration;

    let mut missing = Vec::new();
    let configs: Vec<Config> = Corner::all().iter().map(|c| c.world.config).collect();
    let mut both_ends =
        |field: &str, min: &dyn Fn(&Config) -> bool, max: &dyn Fn(&Config) -> bool| {
            if !configs.iter().any(min) {
                missing.push(format!("{field} at its minimum"));
            }
            if !configs.iter().any(max) {
                missing.push(format!("{field} at its maximum"));
            }
        };
    let Config {
        max_retries: _,
        max_queued: _,
        queue_timeout: _,
        operation_timeout: _,
        refresh_margin: _,
        max_operation_retries: _,
        backoff_base: _,
        backoff_max: _,
        jitter_seed: _,
        max_refresh_failures: _,
        breaker_cooldown: _,
        eager_login: _,
        revoke_on_logout: _,
    } = Config::default();
    both_ends("max_retries", &|c| c.max_retries == 0, &|c| {
        c.max_retries == u8::MAX
    });
    both_ends("max_queued", &|c| c.max_queued == 0, &|c| {
        c.max_queued == usize::MAX
    });
    type Field = (&'static str, fn(&Config) -> Duration);
    let durations: [Field; 6] = [
        ("queue_timeout", |c| c.queue_timeout),
        ("operation_timeout", |c| c.operation_timeout),
        ("refresh_margin", |c| c.refresh_margin),
        ("backoff_base", |c| c.backoff_base),
        ("backoff_max", |c| c.backoff_max),
        ("breaker_cooldown", |c| c.breaker_cooldown),
    ];
    for (field, get) in durations {
        both_ends(field, &|c| get(c) == Duration::ZERO, &|c| {
            get(c) == Duration::MAX
        });
    }
    both_ends(
        "max_operation_retries",
        &|c| c.max_operation_retries == 0,
        &|c| c.max_operation_retries == u32::MAX,
    );
    both_ends("jitter_seed", &|c| c.jitter_seed == 0, &|c| {
        c.jitter_seed == u64::MAX
    });
    both_ends(
        "max_refresh_failures (0 = breaker off)",
        &|c| c.max_refresh_failures == 0,
        &|c| c.max_refresh_failures == u32::MAX,
    );
    both_ends(
        "max_refresh_failures (1 = opens at the first failure)",
        &|c| c.max_refresh_failures == 1,
        &|c| c.max_refresh_failures == u32::MAX,
    );
    both_ends("eager_login", &|c| !c.eager_login, &|c| c.eager_login);
    both_ends("revoke_on_logout", &|c| !c.revoke_on_logout, &|c| {
        c.revoke_on_logout
    });
    assert!(missing.is_empty(), "no corner puts {missing:?}");
}
