//! Exact behaviours checked on the session directly, where the model and the simulator cannot
//! pin them: the query methods (the model always drains `poll` before it looks, so
//! `has_commands()` is false in every model state) and the exact instants of the session's
//! decisions (the model's clock only jumps to deadlines). Each test here was added for a
//! cargo-mutants survivor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::time::Duration;

use auth_core::{AccessToken, Command, Config, Instant, RequestSpec, Session, TokenSet};

#[test]
fn has_commands_says_whether_poll_has_something() {
    let mut session = Session::new(Config::default(), Instant::ZERO);
    assert!(!session.has_commands());
    session.submit(RequestSpec::bearer(), Instant::ZERO);
    assert!(session.has_commands());
    let mut drained = 0;
    while session.poll().is_some() {
        drained += 1;
    }
    assert!(drained > 0);
    assert!(!session.has_commands());
}

#[test]
fn outstanding_and_queued_count_every_waiting_request() {
    let mut session = Session::new(Config::default(), Instant::ZERO);
    for n in 1..=3 {
        session.submit(RequestSpec::bearer(), Instant::ZERO);
        assert_eq!((session.outstanding(), session.queued()), (n, n));
    }
    session.submit(RequestSpec::public(), Instant::ZERO);
    assert_eq!(
        (session.outstanding(), session.queued()),
        (4, 3),
        "public requests never wait"
    );
    session.logout(Instant::ZERO);
    assert_eq!((session.outstanding(), session.queued()), (1, 0));
}

/// Drivers hand an accepted response to the caller without waiting for `Complete`
/// (`Session::handle_response` documents the guarantee): check it in every state a request can
/// be in flight in.
#[test]
fn accepted_answer_to_the_current_send_delivers_at_once_in_every_state() {
    use auth_core::{Outcome, RefreshToken, Snapshot, UnixTime, Verdict};

    let drain = |session: &mut Session| std::iter::from_fn(|| session.poll()).collect::<Vec<_>>();
    let restored = || {
        let snapshot = Snapshot {
            access_token: AccessToken::new("a"),
            refresh_token: Some(RefreshToken::new("r")),
            expires_at: None,
        };
        Session::restore(
            Config::default(),
            snapshot,
            Instant::ZERO,
            UnixTime::from_millis(0),
        )
    };
    let delivered = |commands: &[Command], id| {
        commands.iter().any(|c| {
            *c == Command::Complete {
                id,
                outcome: Outcome::Deliver,
            }
        })
    };

    // Active.
    let mut session = restored();
    let id = session.submit(RequestSpec::bearer(), Instant::ZERO);
    drain(&mut session);
    session.handle_response(id, 1, Verdict::Accepted, Instant::ZERO);
    assert!(delivered(&drain(&mut session), id));

    // Refreshing: another request's 401 started a refresh.
    let mut session = restored();
    let rejected = session.submit(RequestSpec::bearer(), Instant::ZERO);
    let accepted = session.submit(RequestSpec::bearer(), Instant::ZERO);
    drain(&mut session);
    session.handle_response(rejected, 1, Verdict::Rejected, Instant::ZERO);
    drain(&mut session);
    session.handle_response(accepted, 1, Verdict::Accepted, Instant::ZERO);
    assert!(delivered(&drain(&mut session), accepted));

    // LoggedOut: the logout happened while the request was in flight.
    let mut session = restored();
    let id = session.submit(RequestSpec::bearer(), Instant::ZERO);
    drain(&mut session);
    session.logout(Instant::ZERO);
    drain(&mut session);
    session.handle_response(id, 1, Verdict::Accepted, Instant::ZERO);
    assert!(delivered(&drain(&mut session), id));
}

/// Rule 9 at the millisecond: a token is used up to, and refreshed from, its refresh instant
/// (`expires_in - refresh_margin` after receipt), not one millisecond later.
#[test]
fn token_is_refreshed_from_its_exact_refresh_instant() {
    let config = Config {
        refresh_margin: Duration::from_secs(60),
        ..Config::default()
    };
    let received = Instant::from_millis(1_000);
    let refresh_at = Instant::from_millis(1_000 + 540_000);
    let logged_in = || {
        let mut session = Session::new(config, Instant::ZERO);
        session.login(Instant::ZERO);
        let op = std::iter::from_fn(|| session.poll())
            .find_map(|c| match c {
                Command::Login { op } => Some(op),
                _ => None,
            })
            .unwrap();
        let tokens = TokenSet::new(AccessToken::new("a"))
            .with_refresh_token(auth_core::RefreshToken::new("r"))
            .with_expires_in(Duration::from_secs(600));
        session.handle_login_result(op, Ok(tokens), received);
        while session.poll().is_some() {}
        session
    };
    let first = |session: &mut Session, at: Instant| {
        session.submit(RequestSpec::bearer(), at);
        session.poll()
    };
    let just_before = Instant::from_millis(refresh_at.as_millis() - 1);
    assert!(
        matches!(
            first(&mut logged_in(), just_before),
            Some(Command::Send { .. })
        ),
        "one millisecond before the refresh instant the token is still used"
    );
    assert!(
        matches!(
            first(&mut logged_in(), refresh_at),
            Some(Command::Refresh { .. })
        ),
        "at the refresh instant the request waits for a refresh"
    );
}
