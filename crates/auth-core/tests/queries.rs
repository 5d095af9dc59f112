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
