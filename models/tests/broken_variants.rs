//! Non-vacuity: each of auth-core's deliberately broken variants is caught by the property
//! named for it, in the default world, and its counterexample, written as an auth-core trace
//! and read back, replays to the same violation on the broken core and to none on the real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_core::broken::Bug;
use auth_core::{Property, Session, Trace};
use auth_model::check::Outcome;
use auth_model::model::{core_property, names};
use auth_model::trace::replay;
use auth_model::{run, AuthModel, Corner, Settings, World};

/// Finds the counterexample for `property` in `world` with `plant`, and checks its trace.
fn caught(world: World, plant: fn(Session) -> Session, property: &'static str) {
    let model = AuthModel::new(world).with_plant(plant);
    let settings = Settings {
        stop_at: vec![property],
        ..Settings::default()
    };
    let report = run(model.clone(), &settings);
    let result = report.property(property).unwrap();
    assert_eq!(result.outcome, Outcome::Violated, "{}", report.table());
    assert!(!report.passed());

    let path = result.path.as_ref().unwrap();
    let rendered = model.render(path);
    let json = rendered.trace.to_json();
    let trace = Trace::from_json(json.as_bytes()).unwrap();
    let expected = core_property(property).unwrap();
    let settle = expected == Property::P8Progress;
    let on_broken = replay(&trace, plant, settle);
    assert!(
        on_broken.iter().any(|v| v.property() == expected),
        "the trace does not reproduce {property}: {on_broken:?}\n{}",
        rendered.text
    );
    let on_real = replay(&trace, |s| s, false);
    assert!(
        on_real.is_empty(),
        "the real core breaks too: {on_real:?}\n{}",
        rendered.text
    );
}

#[test]
fn no_generation_check_is_caught_by_p6() {
    caught(
        World::default(),
        |s| s.with_bug(Bug::NoGenerationCheck),
        names::P6,
    );
}

#[test]
fn no_operation_id_check_after_logout_is_caught_by_p3() {
    caught(
        World::default(),
        |s| s.with_bug(Bug::NoOperationIdCheck),
        names::P3,
    );
}

#[test]
fn second_refresh_in_flight_is_caught_by_p2() {
    caught(
        World::default(),
        |s| s.with_bug(Bug::SecondRefreshInFlight),
        names::P2,
    );
}

#[test]
fn queue_released_before_persist_is_caught_by_p7() {
    caught(
        World::default(),
        |s| s.with_bug(Bug::ReleaseBeforePersist),
        names::P7,
    );
}

#[test]
fn retry_without_budget_is_caught_by_p5() {
    // A third send needs a second 401 for a fresh token: two server-side expiries.
    let mut world = World::default();
    world.budget.expiries = 2;
    caught(world, |s| s.with_bug(Bug::RetryWithoutBudget), names::P5);
}

#[test]
fn send_counter_saturating_at_255_is_caught_by_p5() {
    // Issue 10's bug: with max_retries 255 a send counter stuck at 255 never spends the budget,
    // so an API that answers every call 401 gets the request forever. The corner world with
    // exactly that config catches it at the 257th send.
    let world = Corner::named("always-401-retries-255").unwrap().world;
    caught(world, |s| s.with_bug(Bug::SaturatingSendCounter), names::P5);
}

#[test]
fn a_committed_counterexample_replays() {
    // Written by `cargo run -p auth-model --features broken-variants -- check
    // --bug no-generation-check --search bfs --stop-at-first` (see docs/verification.md).
    let json = include_str!("../traces/no-generation-check.json");
    let trace = Trace::from_json(json.as_bytes()).unwrap();
    let on_broken = replay(&trace, |s| s.with_bug(Bug::NoGenerationCheck), false);
    assert!(
        on_broken
            .iter()
            .any(|v| v.property() == Property::P6NoWastedRefresh),
        "{on_broken:?}"
    );
    assert_eq!(trace.replay().violations, []);
}
