//! The real core, checked: pinned state counts, the default world exhaustively, symmetry
//! soundness, and a cut-off search reported as incomplete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_model::check::Outcome;
use auth_model::{run, AuthModel, Budget, Kind, Settings, World};

/// One bearer request, one fault, one expiry, one logout, one crash.
fn small_world() -> World {
    World {
        budget: Budget {
            requests: 1,
            faults: 1,
            expiries: 1,
            logouts: 1,
            logins: 0,
            cancels: 0,
            crashes: 1,
        },
        kinds: vec![Kind::Bearer],
        ..World::with_requests(1)
    }
}

/// Two requests (bearer, public), one expiry, one fault.
fn two_request_world() -> World {
    World {
        budget: Budget {
            requests: 2,
            faults: 1,
            expiries: 1,
            logouts: 0,
            logins: 0,
            cancels: 1,
            crashes: 0,
        },
        kinds: vec![Kind::Bearer, Kind::Public],
        ..World::with_requests(2)
    }
}

fn always_hold(report: &auth_model::Report) {
    for p in &report.properties {
        assert_ne!(p.outcome, Outcome::Violated, "{} violated", p.name);
    }
}

#[test]
fn small_world_state_count_is_pinned() {
    let report = run(AuthModel::new(small_world()), &Settings::default());
    assert!(report.complete(), "{}", report.table());
    always_hold(&report);
    assert_eq!(
        report.unique_states,
        SMALL_WORLD_STATES,
        "{}",
        report.table()
    );
}

const SMALL_WORLD_STATES: usize = 835;

#[test]
fn default_world_is_checked_exhaustively_and_passes() {
    let settings = Settings {
        threads: 2,
        ..Settings::default()
    };
    let report = run(AuthModel::new(World::default()), &settings);
    assert!(report.passed(), "{}", report.table());
    assert_eq!(
        report.unique_states,
        DEFAULT_WORLD_STATES,
        "{}",
        report.table()
    );
}

const DEFAULT_WORLD_STATES: usize = 313_794;

#[test]
fn symmetry_with_one_request_merges_nothing() {
    // With one request there is no renaming to merge by, so the symmetry key must tell apart
    // exactly the states the plain hash tells apart: a check that the key loses nothing.
    let plain = run(AuthModel::new(small_world()), &Settings::default());
    let reduced = run(
        AuthModel::new(small_world()),
        &Settings {
            symmetry: true,
            ..Settings::default()
        },
    );
    assert_eq!(plain.unique_states, reduced.unique_states);
}

#[test]
fn symmetry_keeps_every_verdict() {
    let plain = run(AuthModel::new(two_request_world()), &Settings::default());
    let reduced = run(
        AuthModel::new(two_request_world()),
        &Settings {
            symmetry: true,
            ..Settings::default()
        },
    );
    assert!(plain.complete() && reduced.complete());
    assert!(
        reduced.unique_states <= plain.unique_states,
        "{} vs {}",
        reduced.unique_states,
        plain.unique_states
    );
    let verdicts = |r: &auth_model::Report| -> Vec<_> {
        r.properties.iter().map(|p| (p.name, p.outcome)).collect()
    };
    assert_eq!(verdicts(&plain), verdicts(&reduced));
}

#[test]
fn a_search_cut_off_by_depth_or_state_count_is_incomplete_and_fails() {
    let by_depth = run(
        AuthModel::new(small_world()),
        &Settings {
            max_depth: Some(4),
            ..Settings::default()
        },
    );
    // stateright itself would pass this search: no counterexample was found.
    assert!(by_depth.violated().is_empty());
    assert!(
        !by_depth.complete() && !by_depth.passed(),
        "{}",
        by_depth.table()
    );
    let by_count = run(
        AuthModel::new(small_world()),
        &Settings {
            max_states: Some(100),
            ..Settings::default()
        },
    );
    assert!(
        !by_count.complete() && !by_count.passed(),
        "{}",
        by_count.table()
    );
}

#[test]
fn symmetry_merges_two_states_that_differ_only_by_request_ids() {
    use auth_core::RequestId;
    use auth_model::model::{Action, StepLog};
    use stateright::{Model, Representative};

    let mut world = World::with_requests(3);
    world.kinds = vec![Kind::Public];
    let model = AuthModel::new(world);
    let walk = |actions: &[Action]| {
        let mut state = model.init_states().remove(0);
        for action in actions {
            state = model
                .step(&state, *action, &mut StepLog::default())
                .unwrap();
        }
        state
    };
    let submit = Action::Submit(Kind::Public);
    let first = walk(&[submit, submit]);
    let ids: Vec<RequestId> = first.open.keys().copied().collect();
    // Two public requests in flight; one is answered, then a third request takes its slot.
    let x = walk(&[submit, submit, Action::Deliver(ids[0], 1), submit]);
    let y = walk(&[submit, submit, Action::Deliver(ids[1], 1), submit]);
    assert_ne!(x, y);
    assert_eq!(
        stateright_fingerprint(&x.representative()),
        stateright_fingerprint(&y.representative())
    );
    // ... while a state that is not a renaming keeps its own key.
    let z = walk(&[submit, submit, submit]);
    assert_ne!(
        stateright_fingerprint(&x.representative()),
        stateright_fingerprint(&z.representative())
    );
}

fn stateright_fingerprint(state: &auth_model::State) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}
