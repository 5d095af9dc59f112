//! Sessions in the shapes the benchmarks need, built through the public API only.
// Each bench binary uses a subset of these helpers.
#![allow(dead_code)]

use auth_core::{
    AccessToken, Command, Config, Instant, OpId, RefreshToken, RequestId, RequestSpec, Session,
    Snapshot, TokenSet, UnixTime, Verdict,
};

pub(crate) const NOW: Instant = Instant::ZERO;

/// Room for the largest queue the benchmarks build.
pub(crate) fn config() -> Config {
    Config {
        max_queued: 1_000_000,
        ..Config::default()
    }
}

/// An `Active` session holding a token that never expires.
pub(crate) fn active() -> Session {
    let snapshot = Snapshot {
        access_token: AccessToken::new("bench-access"),
        refresh_token: Some(RefreshToken::new("bench-refresh")),
        expires_at: None,
    };
    Session::restore(config(), snapshot, NOW, UnixTime::from_millis(0))
}

/// Drains the commands, returning the attempt of the last `Send` and the op of the last
/// `Refresh` seen.
pub(crate) fn drain(session: &mut Session) -> (u16, Option<OpId>) {
    let mut attempt = 0;
    let mut op = None;
    while let Some(command) = session.poll() {
        match command {
            Command::Send { attempt: a, .. } => attempt = a,
            Command::Refresh { op: o, .. } => op = Some(o),
            _ => {}
        }
    }
    (attempt, op)
}

/// One request's whole life on the happy path: submit, send, 200, complete.
pub(crate) fn request_life(session: &mut Session) {
    let id = session.submit(RequestSpec::bearer(), NOW);
    let (attempt, _) = drain(session);
    session.handle_response(id, attempt, Verdict::Accepted, NOW);
    drain(session);
}

/// An active session with `k` requests in flight that never get an answer.
pub(crate) fn with_outstanding(k: usize) -> Session {
    let mut session = active();
    for _ in 0..k {
        session.submit(RequestSpec::bearer(), NOW);
        drain(&mut session);
    }
    session
}

/// A session refreshing after a 401, with `n` requests waiting; returns the refresh's op.
pub(crate) fn with_queue(n: usize) -> (Session, OpId) {
    let mut session = active();
    let first: RequestId = session.submit(RequestSpec::bearer(), NOW);
    drain(&mut session);
    session.handle_response(first, 1, Verdict::Rejected, NOW);
    let (_, op) = drain(&mut session);
    for _ in 1..n {
        session.submit(RequestSpec::bearer(), NOW);
    }
    drain(&mut session);
    match op {
        Some(op) => (session, op),
        None => unreachable!("a 401 for the current token starts a refresh"),
    }
}

/// Fresh tokens for a refresh result.
pub(crate) fn tokens() -> TokenSet {
    TokenSet::new(AccessToken::new("bench-access-2"))
}
