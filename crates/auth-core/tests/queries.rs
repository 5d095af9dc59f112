//! The session's query methods, where the model cannot see them: the model always drains
//! `poll` before it looks, so `has_commands()` is false in every model state (cargo-mutants found
//! `has_commands -> false` surviving the model).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_core::{Config, Instant, RequestSpec, Session};

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
    use auth_core::{AccessToken, Command, Outcome, RefreshToken, Snapshot, UnixTime, Verdict};

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
