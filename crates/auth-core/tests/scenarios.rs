//! One story per test, driven through the simulator. Each asserts the facts of its story and
//! snapshots the command trace (tokens appear only as fingerprints) so behaviour changes show up in
//! review.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;

use auth_core::sim::{FakeServer, Fault, NetFault, Sim};
use auth_core::{
    Command, Config, Generation, Input, Outcome, RequestError, RequestId, RequestSpec,
    SessionState, Snapshot,
};

/// A session that logged in once, with `config`, then went quiet.
fn logged_in(config: Config) -> Sim {
    let mut sim = Sim::new(config);
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    sim
}

/// Asserts the monitor saw nothing wrong and that everything settled (P1–P8).
fn assert_clean(sim: &mut Sim) {
    assert!(
        sim.is_quiet(),
        "the world must be quiet before judging progress"
    );
    let violations = sim.check_settled().to_vec();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    // The fake server's secrets are `access-N` / `refresh-N`: neither the transcript nor the
    // trace may show them, only fingerprints.
    for shown in [sim.transcript(), sim.trace().to_json()] {
        assert!(
            !shown.contains("access-") && !shown.contains("refresh-"),
            "secret leaked: {shown}"
        );
    }
}

fn failed(error: RequestError) -> Option<Outcome> {
    Some(Outcome::Fail(error))
}

/// The `Send`s of request `id` so far, as (attempt, generation).
fn sends_of(sim: &Sim, id: RequestId) -> Vec<(u16, Option<Generation>)> {
    sim.commands()
        .iter()
        .filter_map(|command| match command {
            Command::Send {
                id: sent,
                attempt,
                generation,
                ..
            } if *sent == id => Some((*attempt, *generation)),
            _ => None,
        })
        .collect()
}

/// A long transcript with its middle left out: the first and the last `keep` lines.
fn elided(transcript: &str, keep: usize) -> String {
    let lines: Vec<&str> = transcript.lines().collect();
    if lines.len() <= 2 * keep {
        return transcript.to_owned();
    }
    let (head, tail) = (&lines[..keep], &lines[lines.len() - keep..]);
    format!(
        "{}\n        | ... {} lines left out ...\n{}\n",
        head.join("\n"),
        lines.len() - 2 * keep,
        tail.join("\n")
    )
}

#[test]
fn first_request_waits_for_silent_login() {
    let mut sim = Sim::new(Config::default());
    let id = sim.submit(RequestSpec::bearer());
    assert_eq!(sim.session().state(), SessionState::LoggingIn);
    assert_eq!(sim.session().queued(), 1);
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.logins, 1);
    assert_eq!(
        sim.server.rejections, 0,
        "the request never went out without a token"
    );
    assert!(sim.store.is_some(), "tokens persisted");
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn public_request_never_waits_and_never_carries_a_token() {
    let mut sim = Sim::new(Config::default());
    let bearer = sim.submit(RequestSpec::bearer());
    let public = sim.submit(RequestSpec::public());
    assert_eq!(sim.session().queued(), 1, "only the bearer request waits");
    sim.drive();
    assert_eq!(sim.outcome(public), Some(Outcome::Deliver));
    assert_eq!(sim.outcome(bearer), Some(Outcome::Deliver));
    assert_eq!(
        sim.completion_order(),
        &[public, bearer],
        "public did not wait for the login"
    );
    let public_after_login = sim.submit(RequestSpec::public());
    sim.drive();
    assert_eq!(sim.outcome(public_after_login), Some(Outcome::Deliver));
    assert_eq!(sim.server.bearer_on_public, 0);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn rejected_request_refreshes_and_is_retried_once() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 1);
    assert_eq!(sim.server.rejections, 1);
    assert_eq!(sim.session().generation().map(|g| g.0), Some(2));
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn storm_of_100_rejections_makes_one_refresh_and_delivers_in_fifo_order() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    let ids: Vec<RequestId> = (0..100)
        .map(|_| sim.submit(RequestSpec::bearer()))
        .collect();
    sim.drive();
    assert_eq!(sim.server.refreshes, 1);
    assert_eq!(sim.server.rejections, 100);
    assert!(ids
        .iter()
        .all(|id| sim.outcome(*id) == Some(Outcome::Deliver)));
    let order: Vec<RequestId> = sim
        .completion_order()
        .iter()
        .copied()
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(order, ids, "retried in submission order");
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn late_401_for_an_old_generation_is_resent_without_a_refresh() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    // The first request's 401 is slow: it arrives after the refresh already finished.
    let first = sim.submit(RequestSpec::bearer());
    sim.fault_next_response(NetFault::Delay(Duration::from_millis(500)));
    let slow = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(first), Some(Outcome::Deliver));
    assert_eq!(sim.outcome(slow), Some(Outcome::Deliver));
    assert_eq!(
        sim.server.refreshes, 1,
        "the late 401 started no second refresh"
    );
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// Rule 2 only resends at once when the newer token is still good: when the newer token was
/// rejected too and its refresh gave up (tokens kept, marked stale), a late 401 for the older
/// generation refreshes first instead of resending with a token known to be bad.
#[test]
fn late_401_while_the_newer_token_is_stale_refreshes_before_resending() {
    let config = Config {
        max_operation_retries: 0,
        ..Config::default()
    };
    let mut sim = logged_in(config);
    sim.server.expire_access_tokens(sim.now());
    let first = sim.submit(RequestSpec::bearer());
    sim.fault_next_response(NetFault::Delay(Duration::from_millis(500)));
    let slow = sim.submit(RequestSpec::bearer());
    // The first 401 refreshes to generation 2; the slow one is still on its way.
    sim.advance(Duration::from_millis(100));
    assert_eq!(sim.outcome(first), Some(Outcome::Deliver));
    assert_eq!(sim.session().generation(), Some(Generation(2)));
    // Generation 2 dies too, and its refresh fails and gives up: generation 2 is stale.
    sim.server.expire_access_tokens(sim.now());
    sim.server.fail_next_refresh(Fault::ServerError);
    let unlucky = sim.submit(RequestSpec::bearer());
    sim.advance(Duration::from_millis(100));
    assert_eq!(
        sim.outcome(unlucky),
        failed(RequestError::AuthUnavailable { attempts: 1 })
    );
    assert_eq!(sim.session().state(), SessionState::Active);
    // Now the late 401 for generation 1 arrives.
    sim.drive();
    assert_eq!(sim.outcome(slow), Some(Outcome::Deliver));
    assert_eq!(
        sends_of(&sim, slow),
        [(1, Some(Generation(1))), (2, Some(Generation(3)))],
        "resent with the refreshed token, not with the stale generation 2"
    );
    assert_eq!(sim.server.refreshes, 3);
    assert_eq!(
        sim.server.rejections, 3,
        "first, unlucky and the slow one's first send"
    );
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// Rule 2 resends at once only while the session is `Active`: a late 401 for an older
/// generation that arrives during a (proactive) refresh waits for it like any other request, and
/// goes out with the refreshed token, not with the one about to expire.
#[test]
fn late_401_during_a_proactive_refresh_waits_for_the_refresh() {
    let config = Config {
        refresh_margin: Duration::from_secs(60),
        ..Config::default()
    };
    let mut sim = Sim::with_server(config, FakeServer::new(Duration::from_secs(600)));
    let first = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(first), Some(Outcome::Deliver));
    // Generation 1 dies; the 401 of `late` takes 545 s to arrive, `other`'s refreshes at once.
    sim.server.expire_access_tokens(sim.now());
    sim.fault_next_response(NetFault::Delay(Duration::from_secs(545)));
    let late = sim.submit(RequestSpec::bearer());
    let other = sim.submit(RequestSpec::bearer());
    sim.advance(Duration::from_millis(100));
    assert_eq!(sim.outcome(other), Some(Outcome::Deliver));
    assert_eq!(sim.session().generation(), Some(Generation(2)));
    // Generation 2 enters its refresh margin: the next request starts a slow proactive refresh.
    sim.advance(Duration::from_secs(540));
    sim.server
        .fail_next_refresh(Fault::Delay(Duration::from_secs(8)));
    let proactive = sim.submit(RequestSpec::bearer());
    assert_eq!(sim.session().state(), SessionState::Refreshing);
    // The late 401 for generation 1 arrives during that refresh.
    sim.drive();
    assert_eq!(sim.outcome(late), Some(Outcome::Deliver));
    assert_eq!(sim.outcome(proactive), Some(Outcome::Deliver));
    assert_eq!(
        sends_of(&sim, late),
        [(1, Some(Generation(1))), (2, Some(Generation(3)))],
        "waited for the refresh instead of going out with the expiring generation 2"
    );
    assert_eq!(sim.server.refreshes, 2);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn refresh_invalid_grant_falls_back_to_silent_login_and_releases_the_queue() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    sim.server.revoke_refresh_token();
    let ids: Vec<RequestId> = (0..3).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.drive();
    assert_eq!(sim.server.invalid_grants, 1);
    assert_eq!(
        sim.server.logins, 2,
        "one silent login after the dead refresh token"
    );
    assert!(ids
        .iter()
        .all(|id| sim.outcome(*id) == Some(Outcome::Deliver)));
    assert_eq!(sim.session().state(), SessionState::Active);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn fatal_silent_login_requires_login_fails_the_queue_and_later_submits_fail_fast() {
    let mut sim = Sim::new(Config::default());
    sim.server.fail_next_login(Fault::Fatal);
    let ids: Vec<RequestId> = (0..2).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.drive();
    assert_eq!(sim.session().state(), SessionState::LoginRequired);
    for id in &ids {
        assert_eq!(sim.outcome(*id), failed(RequestError::LoginRequired));
    }
    let later = sim.submit(RequestSpec::bearer());
    assert_eq!(
        sim.outcome(later),
        failed(RequestError::LoginRequired),
        "fails at once"
    );
    sim.drive();
    assert_eq!(sim.server.logins, 0);
    // The user binds the phone number, the app asks for a login.
    sim.input(Input::Login);
    let after = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(after), Some(Outcome::Deliver));
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// Item: a dead session is not left in the store. After `invalid_grant` and a fatal silent
/// login, a restart must not come back `Active` with the dead tokens (and refresh, get
/// `invalid_grant`, log in and fail again).
#[test]
fn dead_session_is_cleared_from_the_store_when_login_is_required() {
    let mut sim = logged_in(Config::default());
    assert!(sim.store.is_some());
    sim.server.expire_access_tokens(sim.now());
    sim.server.revoke_refresh_token();
    sim.server.fail_next_login(Fault::Fatal);
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), failed(RequestError::LoginRequired));
    assert_eq!(sim.server.invalid_grants, 1);
    assert_eq!(sim.session().state(), SessionState::LoginRequired);
    assert!(sim.store.is_none(), "the dead tokens were cleared");
    assert_clean(&mut sim);

    sim.restart();
    assert_eq!(
        sim.session().state(),
        SessionState::Anonymous,
        "a restart does not bring the dead session back"
    );
    let refreshes = sim.server.refreshes;
    let after = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(after), Some(Outcome::Deliver));
    assert_eq!(
        sim.server.refreshes, refreshes,
        "no refresh with the dead token"
    );
    assert_eq!(sim.server.invalid_grants, 1);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn transient_refresh_failures_back_off_then_fail_the_queue_with_a_clear_error() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    for _ in 0..3 {
        sim.server.fail_next_refresh(Fault::ServerError);
    }
    let id = sim.submit(RequestSpec::bearer());
    let start = sim.now();
    sim.drive();
    assert_eq!(
        sim.outcome(id),
        failed(RequestError::AuthUnavailable { attempts: 3 })
    );
    assert_eq!(sim.server.refreshes, 3, "first try and two retries");
    assert!(
        sim.now().saturating_since(start) >= Duration::from_millis(200 + 400),
        "backed off"
    );
    assert_eq!(
        sim.session().state(),
        SessionState::Active,
        "tokens kept, marked stale"
    );
    // The next request tries again, and this time the server is fine.
    let next = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(next), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 4);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn circuit_breaker_opens_after_repeated_failures_and_closes_after_the_cool_down() {
    let config = Config {
        max_refresh_failures: 3,
        max_operation_retries: 5,
        ..Config::default()
    };
    let mut sim = logged_in(config);
    sim.server.expire_access_tokens(sim.now());
    for _ in 0..3 {
        sim.server.fail_next_refresh(Fault::ServerError);
    }
    let id = sim.submit(RequestSpec::bearer());
    sim.advance(Duration::from_secs(5));
    assert_eq!(sim.outcome(id), failed(RequestError::CircuitOpen));
    assert!(sim.session().is_circuit_open());
    // While open, requests that need a refresh fail fast without touching the server.
    let fast = sim.submit(RequestSpec::bearer());
    assert_eq!(sim.outcome(fast), failed(RequestError::CircuitOpen));
    assert_eq!(sim.server.refreshes, 3);
    // After the cool-down the breaker closes and the next request refreshes.
    sim.advance(config.breaker_cooldown);
    assert!(!sim.session().is_circuit_open());
    let after = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(after), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 4);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// `max_refresh_failures: 0` turns the breaker off: failures only ever spend the retry budget.
#[test]
fn zero_max_refresh_failures_never_opens_the_circuit_breaker() {
    let config = Config {
        max_refresh_failures: 0,
        max_operation_retries: 2,
        ..Config::default()
    };
    let mut sim = logged_in(config);
    sim.server.expire_access_tokens(sim.now());
    for _ in 0..9 {
        sim.server.fail_next_refresh(Fault::ServerError);
    }
    for _ in 0..3 {
        let id = sim.submit(RequestSpec::bearer());
        sim.drive();
        assert_eq!(
            sim.outcome(id),
            failed(RequestError::AuthUnavailable { attempts: 3 })
        );
        assert!(!sim.session().is_circuit_open());
    }
    assert_eq!(sim.server.refreshes, 9, "every failure was a real try");
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn logout_during_refresh_fails_the_queue_ignores_the_late_result_and_never_refreshes_again() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    sim.server
        .fail_next_refresh(Fault::Delay(Duration::from_millis(100)));
    let ids: Vec<RequestId> = (0..3).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.advance(Duration::from_millis(50));
    assert_eq!(sim.session().state(), SessionState::Refreshing);
    sim.input(Input::Logout);
    for id in &ids {
        assert_eq!(sim.outcome(*id), failed(RequestError::LoggedOut));
    }
    assert!(sim.store.is_none(), "store cleared");
    sim.drive();
    assert!(
        sim.store.is_none(),
        "the late refresh result was not persisted"
    );
    let after = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(after), failed(RequestError::LoggedOut));
    assert_eq!(sim.server.refreshes, 1);
    assert_eq!(sim.session().state(), SessionState::LoggedOut);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// A driver whose clear failed (read-only disk) retries it by logging out again: the core
/// emits `ClearStore` for a repeated logout too, and nothing else.
#[test]
fn logging_out_again_clears_the_store_again() {
    let mut sim = logged_in(Config::default());
    let kept = sim.store.clone();
    sim.input(Input::Logout);
    assert!(sim.store.is_none());
    // The clear did not take: the store still holds the session.
    sim.store = kept;
    let before = sim.commands().len();
    sim.input(Input::Logout);
    assert_eq!(&sim.commands()[before..], [Command::ClearStore]);
    assert!(sim.store.is_none(), "cleared by the repeated logout");
    assert_eq!(sim.session().state(), SessionState::LoggedOut);
    sim.drive();
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// Found by drawing `max_queued` from its whole range: with `max_queued: 0` nothing may wait,
/// so a request that needs a login or refresh fails with `QueueFull`, but the login or refresh
/// still starts, so the next request goes out (the session used to stay without tokens forever).
#[test]
fn zero_max_queued_fails_waiting_requests_fast_and_still_logs_in() {
    let config = Config {
        max_queued: 0,
        ..Config::default()
    };
    let mut sim = Sim::new(config);
    let first = sim.submit(RequestSpec::bearer());
    assert_eq!(sim.outcome(first), failed(RequestError::QueueFull));
    assert_eq!(sim.session().state(), SessionState::LoggingIn);
    sim.drive();
    let second = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(second), Some(Outcome::Deliver));
    // The token dies: the 401 cannot wait for the refresh, the refresh still happens.
    sim.server.expire_access_tokens(sim.now());
    let rejected = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(rejected), failed(RequestError::QueueFull));
    let third = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(third), Some(Outcome::Deliver));
    assert_eq!((sim.server.logins, sim.server.refreshes), (1, 1));
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn rejection_after_logout_fails_with_logged_out() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    let id = sim.submit(RequestSpec::bearer());
    sim.input(Input::Logout);
    sim.drive();
    assert_eq!(sim.outcome(id), failed(RequestError::LoggedOut));
    assert_eq!(sim.server.refreshes, 0);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn opted_out_request_gets_its_401_delivered() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    let id = sim.submit(RequestSpec::bearer().no_retry());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 0);
    assert_eq!(sim.server.rejections, 1);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn non_replayable_request_gets_its_401_delivered() {
    let mut sim = logged_in(Config::default());
    sim.server.expire_access_tokens(sim.now());
    let id = sim.submit(RequestSpec::bearer().not_replayable());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.rejections, 1, "sent once, never again");
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn spent_retry_budget_delivers_the_401_without_a_loop() {
    // The server rejects even fresh tokens: tokens die the moment they are issued.
    let mut sim = Sim::with_server(Config::default(), FakeServer::new(Duration::ZERO));
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(
        sim.outcome(id),
        Some(Outcome::Deliver),
        "the second 401 is delivered as is"
    );
    assert_eq!(sim.server.rejections, 2, "sent 1 + max_retries times");
    assert_eq!(sim.server.refreshes, 1);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

/// The largest budget ends too: the 256th send's 401 is delivered (a `u8` send counter stuck at
/// 255 never spent a budget of 255 and sent the request forever).
#[test]
fn retry_budget_of_255_sends_256_times_then_delivers_the_401() {
    let config = Config {
        max_retries: 255,
        ..Config::default()
    };
    let mut sim = Sim::new(config);
    sim.server.reject_every_call(true);
    let id = sim.submit(RequestSpec::bearer());
    // About five steps per send; a request that is never given up runs out of this budget.
    sim.drive_bounded(10_000)
        .expect("the retry budget ends the request");
    assert_eq!(
        sim.outcome(id),
        Some(Outcome::Deliver),
        "the last 401 is delivered as is"
    );
    let sends = sends_of(&sim, id);
    assert_eq!(sends.len(), 256, "sent 1 + max_retries times");
    assert_eq!(sends.last(), Some(&(256, Some(Generation(256)))));
    assert_eq!(sim.server.rejections, 256);
    assert_eq!(sim.server.logins, 1);
    assert_eq!(sim.server.refreshes, 255, "one refresh per retry");
    assert_clean(&mut sim);
    insta::assert_snapshot!(elided(&sim.transcript(), 24));
}

/// Every budget from 0 to 255 is spent exactly: 1 + max_retries sends, then the 401.
#[test]
fn every_retry_budget_sends_exactly_one_plus_max_retries_times() {
    for max_retries in 0..=u8::MAX {
        let config = Config {
            max_retries,
            ..Config::default()
        };
        let mut sim = Sim::new(config);
        sim.server.reject_every_call(true);
        let id = sim.submit(RequestSpec::bearer());
        let steps = sim.drive_bounded(10_000);
        assert!(steps.is_ok(), "max_retries {max_retries}: {steps:?}");
        assert_eq!(sim.outcome(id), Some(Outcome::Deliver), "{max_retries}");
        assert_eq!(
            sends_of(&sim, id).len(),
            usize::from(max_retries) + 1,
            "max_retries {max_retries}"
        );
        assert_clean(&mut sim);
    }
}

#[test]
fn insufficient_scope_403_is_delivered_without_a_refresh() {
    let mut sim = logged_in(Config::default());
    // The server answers 403 with `insufficient_scope`; the simulator classifies it with the
    // challenge parser like a driver does.
    sim.server.deny_scope_next(1);
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 0);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn token_near_expiry_is_refreshed_before_use() {
    let config = Config {
        refresh_margin: Duration::from_secs(60),
        ..Config::default()
    };
    let mut sim = Sim::with_server(config, FakeServer::new(Duration::from_secs(600)));
    let first = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(first), Some(Outcome::Deliver));
    sim.advance(Duration::from_secs(560));
    let id = sim.submit(RequestSpec::bearer());
    assert_eq!(
        sim.session().state(),
        SessionState::Refreshing,
        "refresh before sending"
    );
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(
        sim.server.rejections, 0,
        "no request went out to a certain 401"
    );
    assert_eq!(sim.server.refreshes, 1);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn queued_request_times_out_at_its_deadline() {
    let config = Config {
        queue_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let mut sim = Sim::new(config);
    sim.server
        .fail_next_login(Fault::Delay(Duration::from_secs(5)));
    let id = sim.submit(RequestSpec::bearer());
    sim.advance(Duration::from_millis(1999));
    assert_eq!(sim.outcome(id), None);
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.outcome(id), failed(RequestError::Timeout));
    sim.drive();
    assert_eq!(
        sim.session().state(),
        SessionState::Active,
        "the login still finished"
    );
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn hung_refresh_hits_its_deadline_and_the_late_result_is_ignored() {
    let config = Config {
        operation_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let mut sim = logged_in(config);
    sim.server.expire_access_tokens(sim.now());
    sim.server
        .fail_next_refresh(Fault::Delay(Duration::from_secs(3)));
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 2, "the hung one and its retry");
    // The slow answer rotated the refresh token server-side after the retry had already rotated
    // it; the session ignored it and kept the retry's tokens, which still work.
    let generation = sim.session().generation();
    let later = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(later), Some(Outcome::Deliver));
    assert_eq!(sim.session().generation(), generation);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn full_queue_fails_the_next_request_with_queue_full() {
    let config = Config {
        max_queued: 2,
        ..Config::default()
    };
    let mut sim = Sim::new(config);
    let a = sim.submit(RequestSpec::bearer());
    let b = sim.submit(RequestSpec::bearer());
    let c = sim.submit(RequestSpec::bearer());
    assert_eq!(sim.outcome(c), failed(RequestError::QueueFull));
    sim.drive();
    assert_eq!(sim.outcome(a), Some(Outcome::Deliver));
    assert_eq!(sim.outcome(b), Some(Outcome::Deliver));
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn cancelled_waiting_request_fails_once_and_is_never_sent() {
    let mut sim = Sim::new(Config::default());
    let id = sim.submit(RequestSpec::bearer());
    let other = sim.submit(RequestSpec::bearer());
    sim.input(Input::Cancel(id));
    sim.input(Input::Cancel(id));
    assert_eq!(sim.outcome(id), failed(RequestError::Cancelled));
    sim.drive();
    assert_eq!(sim.outcome(other), Some(Outcome::Deliver));
    assert_eq!(
        sim.completion_order().iter().filter(|c| **c == id).count(),
        1
    );
    assert!(!sim
        .transcript()
        .contains(&format!("send #{} ", id.sequence())));
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn cancelled_request_in_flight_has_its_response_dropped() {
    let mut sim = logged_in(Config::default());
    let id = sim.submit(RequestSpec::bearer());
    sim.input(Input::Cancel(id));
    sim.drive();
    assert_eq!(sim.outcome(id), failed(RequestError::Cancelled));
    assert_eq!(
        sim.completion_order().iter().filter(|c| **c == id).count(),
        1
    );
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

fn stored_session() -> (Snapshot, FakeServer) {
    let mut sim = logged_in(Config::default());
    (sim.store.take().unwrap(), sim.server.clone())
}

#[test]
fn restored_session_starts_active_without_a_login() {
    let (snapshot, server) = stored_session();
    let mut sim = Sim::with_server(Config::default(), server);
    sim.store = Some(snapshot);
    sim.restart();
    assert_eq!(sim.session().state(), SessionState::Active);
    assert_eq!(sim.session().generation().map(|g| g.0), Some(1));
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.logins, 1, "only the login before the restart");
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn restored_but_dead_session_takes_the_refresh_path() {
    let (snapshot, mut server) = stored_session();
    server.expire_access_tokens(auth_core::Instant::ZERO);
    let mut sim = Sim::with_server(Config::default(), server);
    sim.store = Some(snapshot);
    sim.restart();
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.refreshes, 1);
    assert_eq!(sim.server.logins, 1, "no silent login needed");
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn restored_session_whose_refresh_token_was_rotated_elsewhere_logs_in_once() {
    // A crash after the server rotated the refresh token but before the persist: the store holds
    // a dead refresh token. One silent login recovers.
    let (snapshot, mut server) = stored_session();
    server.expire_access_tokens(auth_core::Instant::ZERO);
    server.revoke_refresh_token();
    let mut sim = Sim::with_server(Config::default(), server);
    sim.store = Some(snapshot);
    sim.restart();
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.invalid_grants, 1);
    assert_eq!(sim.server.logins, 2);
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}

#[test]
fn login_after_logout_starts_a_new_session() {
    let mut sim = logged_in(Config::default());
    sim.input(Input::Logout);
    let refused = sim.submit(RequestSpec::bearer());
    assert_eq!(sim.outcome(refused), failed(RequestError::LoggedOut));
    sim.input(Input::Login);
    let id = sim.submit(RequestSpec::bearer());
    sim.drive();
    assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
    assert_eq!(sim.server.logins, 2);
    assert_eq!(sim.session().state(), SessionState::Active);
    assert!(sim.store.is_some());
    assert_clean(&mut sim);
    insta::assert_snapshot!(sim.transcript());
}
