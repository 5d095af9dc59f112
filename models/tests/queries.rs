//! The session's query methods, where the model cannot see them: the model always drains
//! `poll` before it looks, so `has_commands()` is false in every model state. (Found by
//! cargo-mutants: `has_commands -> false` survived the model. This test belongs in auth-core.)
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
