//! The fleet model (`models/src/shared/`): 2 real shared sessions on one modelled store and one
//! auth server with reuse detection. Every CI world is explored exhaustively (P1-P11 hold, its
//! `sometimes` properties are reached, its state count is pinned); each broken variant is caught
//! by the property named for it, in a world where the real core passes; and the modelled store
//! and server do what `auth_core::shared` documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_core::broken::Bug;
use auth_core::{LeaseResult, OpId, PublishResult, Session, Stored};
use auth_model::check::{run_model, Outcome, Report, Settings};
use auth_model::shared::model::{FleetAction, FleetLog, FleetState};
use auth_model::shared::store::{Content, Owner, Server, Store, Tokens};
use auth_model::shared::{fleet_names, FleetBudget, FleetCheck, FleetModel, FleetWorld};
use stateright::Model;

type FleetReport = Report<FleetState, FleetAction>;

fn run(model: FleetModel, settings: &Settings) -> FleetReport {
    run_model(model, settings, None)
}

fn check(name: &str, states: usize) {
    let check = FleetCheck::named(name).unwrap();
    let report = run(FleetModel::new(check.world), &Settings::default());
    if let Err(why) = check.judge(&report) {
        panic!("{why}\n{}", report.table());
    }
    assert_eq!(report.unique_states, states, "{}", report.table());
}

macro_rules! worlds {
    ($($test:ident => $name:literal: $states:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name, $states);
            }
        )*

        #[test]
        fn every_fleet_world_has_a_test_and_every_sometimes_is_reached_somewhere() {
            let tested = [$($name),*];
            let worlds = FleetCheck::all();
            for world in &worlds {
                assert!(tested.contains(&world.name), "no test for world {}", world.name);
            }
            let model = FleetModel::new(worlds[0].world);
            for property in model.properties() {
                if property.expectation == stateright::Expectation::Sometimes {
                    assert!(
                        worlds.iter().any(|w| w.unreachable.iter().all(|(n, _)| *n != property.name)),
                        "\"{}\" is unreachable in every CI world",
                        property.name
                    );
                }
            }
        }
    };
}

worlds! {
    lease_takeover_after_expiry_and_crash_is_checked_exhaustively => "takeover": 78_550,
    logout_in_one_process_is_checked_exhaustively => "logout": 14_748,
    login_after_a_shared_logout_is_checked_exhaustively => "login-after-logout": 67_749,
    hung_holder_is_checked_exhaustively => "hung-holder": 43_235,
    unreachable_store_is_checked_exhaustively => "store-down": 64_919,
    paused_process_is_checked_exhaustively => "paused": 9_543,
    store_that_loses_its_data_is_checked_exhaustively => "store-lost": 311_311,
    delayed_store_answer_is_checked_exhaustively => "delayed-answer": 9_758,
    transient_server_failures_are_checked_exhaustively => "server-5xx": 13_207,
}

/// 2 processes, 2 requests, one server-side expiry: both processes need a refresh.
fn refresh_race() -> FleetWorld {
    FleetWorld::new(
        2,
        FleetBudget {
            requests: 2,
            expiries: 1,
            hangs: 0,
            lease_expiries: 0,
            crashes: 0,
            logouts: 0,
            logins: 0,
            store_faults: 0,
            server_faults: 0,
            pauses: 0,
            store_losses: 0,
            delays: 0,
        },
    )
}

/// The broken model violates `property`; returns the counterexample's listing, which names
/// the violation.
fn caught(world: FleetWorld, plant: fn(Session) -> Session, property: &'static str) -> String {
    let model = FleetModel::new(world).with_plant(plant);
    let settings = Settings {
        stop_at: vec![property],
        ..Settings::default()
    };
    let report = run(model.clone(), &settings);
    let result = report.property(property).unwrap();
    assert_eq!(result.outcome, Outcome::Violated, "{}", report.table());
    let listing = model.render(result.path.as_ref().unwrap());
    assert!(listing.contains("violation"), "{listing}");
    listing
}

/// The real core with a compare-and-swap store passes `world`: no `always` property breaks.
/// (The CI worlds are checked by their own tests.)
fn passes(world: FleetWorld) {
    let real = FleetWorld {
        compare_and_swap: true,
        ..world
    };
    let report = run(FleetModel::new(real), &Settings::default());
    assert!(report.complete(), "{}", report.table());
    assert!(report.violated().is_empty(), "{}", report.table());
}

#[test]
fn no_lease_is_caught_by_p9_and_p10() {
    let plant: fn(Session) -> Session = |s| s.with_bug(Bug::NoLease);
    let listing = caught(refresh_race(), plant, fleet_names::P9);
    assert!(listing.contains("presented a refresh token"), "{listing}");
    caught(refresh_race(), plant, fleet_names::P10);
    passes(refresh_race());
}

#[test]
fn ignoring_the_spent_mark_is_caught_by_p9() {
    // A holder whose refresh hangs past its deadline gives the lease back with the mark set; the
    // broken next holder presents the same refresh token again. (The real core passes this
    // world: `hung_holder_is_checked_exhaustively`.)
    let world = FleetCheck::named("hung-holder").unwrap().world;
    let listing = caught(world, |s| s.with_bug(Bug::IgnoreSpentMark), fleet_names::P9);
    assert!(listing.contains("spent"), "{listing}");
}

#[test]
fn a_store_without_compare_and_swap_is_caught_by_p11_and_the_write_order() {
    // One login under way in one process while the other logs out: the login's publish lands
    // on the tombstone.
    let logout = FleetWorld {
        compare_and_swap: false,
        ..FleetWorld::new(
            2,
            FleetBudget {
                requests: 1,
                logouts: 1,
                ..refresh_race().budget
            },
        )
    };
    let listing = caught(logout, |s| s, fleet_names::P11);
    passes(logout);
    assert!(
        listing.contains("tokens were written after the shared logout"),
        "{listing}"
    );
    // A refresh whose publish hangs past its deadline: the next holder logs in (the mark) and
    // writes newer tokens, then the late publish lands on them. (The real core passes this
    // world with its compare-and-swap store: `hung_holder_is_checked_exhaustively`.)
    let hung = FleetWorld {
        compare_and_swap: false,
        ..FleetCheck::named("hung-holder").unwrap().world
    };
    let listing = caught(hung, |s| s, fleet_names::NEWER);
    assert!(
        listing.contains("replaced a token set with an older one"),
        "{listing}"
    );
}

#[test]
fn the_store_does_the_four_operations_as_documented() {
    let owner = |process, op| Owner {
        process,
        incarnation: 0,
        op: OpId(op),
    };
    let tokens = |n| Tokens {
        access: n,
        refresh: Some(n),
    };
    let mut store = Store::new(true);
    // Acquire: granted on the record from before, and the mark is set in the same step.
    let LeaseResult::Granted(before) = store.acquire(owner(0, 1)) else {
        panic!("a free lease is granted")
    };
    assert!(!before.spent && store.spent);
    assert!(matches!(store.acquire(owner(1, 1)), LeaseResult::Busy(o) if o.spent));
    // Not re-entrant.
    assert!(matches!(store.acquire(owner(0, 1)), LeaseResult::Busy(_)));
    // Publish: compare-and-swap on the version, clearing the mark.
    assert_eq!(store.publish(0, tokens(1)), PublishResult::Written);
    assert_eq!((store.version, store.spent), (1, false));
    assert!(matches!(
        store.publish(0, tokens(2)),
        PublishResult::Conflict(o) if o.version.0 == 1
    ));
    assert_eq!(store.content, Content::Tokens(tokens(1)));
    // Release: only the owner; the mark is cleared only with `spent: false` on the same version.
    store.release(owner(1, 1), 1, false);
    assert!(store.lease.is_some());
    store.release(owner(0, 1), 1, true);
    assert!(store.lease.is_none());
    store.acquire(owner(1, 2));
    store.release(owner(1, 2), 0, false);
    assert!(store.spent, "a release for another version keeps the mark");
    store.acquire(owner(1, 3));
    store.release(owner(1, 3), 1, false);
    assert!(!store.spent);
    // Logout: a new tombstone every time, mark clear, lease untouched.
    store.acquire(owner(0, 4));
    let first = store.logout();
    let second = store.logout();
    assert_eq!(first.content, Stored::LoggedOut);
    assert_eq!((first.version.0, second.version.0), (2, 3));
    assert!(store.lease.is_some() && !store.spent);
    // Expiry ends the lease and makes the next grant a takeover.
    store.expire_lease();
    assert!(store.lease.is_none() && store.after_expiry);
    store.acquire(owner(1, 5));
    assert!(!store.after_expiry);
    // Without compare-and-swap a stale publish writes over the tombstone.
    let mut broken = Store::new(false);
    broken.logout();
    assert_eq!(broken.publish(0, tokens(1)), PublishResult::Written);
    assert_eq!(broken.version, 2);
}

#[test]
fn the_server_rotates_and_revokes_the_family_on_reuse() {
    let mut server = Server::new();
    let first = server.login();
    let rotated = server.refresh(first.refresh.unwrap()).unwrap();
    assert!(!server.reuse_detected);
    let other_family = server.login();
    // r1 again: reuse. Its family (r1, r2) is revoked; the other family is not.
    assert_eq!(server.refresh(first.refresh.unwrap()), None);
    assert!(server.reuse_detected);
    assert_eq!(server.refresh(rotated.refresh.unwrap()), None);
    assert!(server.refresh(other_family.refresh.unwrap()).is_some());
    // Unknown tokens get invalid_grant without counting as reuse.
    let mut fresh = Server::new();
    assert_eq!(fresh.refresh(7), None);
    assert!(!fresh.reuse_detected);
    // Server-side expiry: tokens issued so far stop being accepted.
    assert!(server.accepts(rotated.access));
    server.expire();
    assert!(!server.accepts(rotated.access));
}

#[test]
fn a_waiting_process_adopts_the_holders_tokens_without_a_login_of_its_own() {
    // p0 logs in holding the lease; p1 finds the lease busy, and adopts p0's tokens when its
    // watcher reads the changed record.
    let model = FleetModel::new(refresh_race());
    let mut state = model.init_states().remove(0);
    let mut logins = 0;
    let mut walk = |state: &mut FleetState, pick: &dyn Fn(&FleetAction) -> bool| {
        let mut actions = Vec::new();
        model.actions(state, &mut actions);
        let action = *actions.iter().find(|a| pick(a)).expect("action available");
        let mut log = FleetLog::recording();
        *state = model.step(state, action, &mut log).unwrap();
        logins += log
            .entries
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    auth_model::shared::model::Entry::Out(_, auth_core::Command::Login { .. })
                )
            })
            .count();
    };
    use auth_model::shared::model::Msg;
    walk(&mut state, &|a| *a == FleetAction::Submit(0));
    walk(&mut state, &|a| *a == FleetAction::Submit(1));
    walk(&mut state, &|a| {
        matches!(a, FleetAction::Deliver(Msg::Acquire { process: 0, .. }))
    });
    walk(&mut state, &|a| {
        matches!(a, FleetAction::Deliver(Msg::Acquire { process: 1, .. }))
    });
    walk(&mut state, &|a| {
        matches!(a, FleetAction::Deliver(Msg::Login { process: 0, .. }))
    });
    walk(&mut state, &|a| {
        matches!(a, FleetAction::Deliver(Msg::Publish { process: 0, .. }))
    });
    walk(&mut state, &|a| *a == FleetAction::Watch(1));
    walk(&mut state, &|a| {
        matches!(a, FleetAction::Deliver(Msg::Changed { process: 1, .. }))
    });
    assert_eq!(logins, 1);
    assert!(state
        .events
        .contains(auth_model::shared::model::FleetEvents::WAITED_AND_ADOPTED));
    assert_eq!(
        state.procs[1].checked.session.state(),
        auth_core::SessionState::Active
    );
    assert!(state.fleet.is_clean());
}
