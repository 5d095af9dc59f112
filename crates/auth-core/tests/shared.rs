//! The rules of shared sessions (DESIGN.md §7), one at a time, by feeding a `Session::shared`
//! the store's answers by hand. The fleet simulator and the model check them together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth_core::{
    AccessToken, Command, Config, Generation, Instant, LeaseResult, Monitor, Observed, OpId,
    Outcome, PublishResult, RefreshFailure, RefreshToken, RequestError, RequestSpec, Session,
    SessionState, StoreVersion, Stored, TokenSet, Verdict, LEASE_RETRY,
};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn tokens(access: &str, refresh: &str, life_s: u64) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        refresh_token: Some(RefreshToken::new(refresh)),
        expires_in: Some(Duration::from_secs(life_s)),
    }
}

fn record(version: u64, content: Stored, spent: bool) -> Observed {
    Observed {
        version: StoreVersion(version),
        content,
        spent,
    }
}

fn with_tokens(version: u64, access: &str, refresh: &str, life_s: u64) -> Observed {
    record(
        version,
        Stored::Tokens(tokens(access, refresh, life_s)),
        false,
    )
}

/// A session and its monitor, fed together.
struct Process {
    session: Session,
    monitor: Monitor,
}

impl Process {
    fn start(observed: Observed) -> Self {
        let session = Session::shared(Config::default(), observed, at(0));
        let monitor = Monitor::new(&session);
        Process { session, monitor }
    }

    fn drain(&mut self) -> Vec<Command> {
        let commands: Vec<_> = std::iter::from_fn(|| self.session.poll()).collect();
        for command in &commands {
            self.monitor.on_command(command);
        }
        assert!(self.monitor.is_clean(), "{:?}", self.monitor.violations());
        commands
    }

    fn submit(&mut self, now: u64) -> (auth_core::RequestId, Vec<Command>) {
        let spec = RequestSpec::bearer();
        self.monitor
            .on_input(&auth_core::Input::Submit(spec), at(now));
        let id = self.session.submit(spec, at(now));
        self.monitor.on_submit(id, &spec);
        (id, self.drain())
    }

    fn feed(&mut self, input: auth_core::Input, now: u64) -> Vec<Command> {
        self.monitor.on_input(&input, at(now));
        self.session.handle(input, at(now));
        self.drain()
    }
}

fn acquire_op(commands: &[Command]) -> OpId {
    commands
        .iter()
        .find_map(|c| match c {
            Command::Acquire { op, .. } => Some(*op),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Acquire in {commands:?}"))
}

fn sends(commands: &[Command]) -> Vec<(auth_core::RequestId, String)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Send {
                id,
                token: Some(token),
                ..
            } => Some((*id, token.expose_secret().to_owned())),
            _ => None,
        })
        .collect()
}

fn lease(op: OpId, result: LeaseResult) -> auth_core::Input {
    auth_core::Input::Lease { op, result }
}

/// The main path: a request that finds the token expiring asks for the lease first; the grant
/// shows the record it already holds, so it refreshes; the tokens are published by
/// compare-and-swap on the granted version, and only then does the request go out.
#[test]
fn a_refresh_takes_the_lease_then_publishes_before_any_request_uses_the_tokens() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (id, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Refresh { .. })),
        "no refresh before the lease: {commands:?}"
    );
    let commands = p.feed(
        lease(op, LeaseResult::Granted(with_tokens(4, "at-4", "rt-4", 1))),
        59_010,
    );
    assert!(
        matches!(
            commands.as_slice(),
            [Command::Refresh { refresh_token, .. }] if refresh_token.expose_secret() == "rt-4"
        ),
        "{commands:?}"
    );
    let commands = p.feed(
        auth_core::Input::RefreshResult {
            op,
            result: Ok(tokens("at-5", "rt-5", 60)),
        },
        59_050,
    );
    assert!(
        matches!(commands.as_slice(), [Command::Publish { expected: StoreVersion(4), persist, .. }]
            if persist.access_token.expose_secret() == "at-5"),
        "only the publish, no send yet: {commands:?}"
    );
    let commands = p.feed(
        auth_core::Input::Published {
            op,
            result: PublishResult::Written,
        },
        59_060,
    );
    assert!(
        matches!(
            commands.first(),
            Some(Command::Release {
                version: StoreVersion(4),
                ..
            })
        ),
        "{commands:?}"
    );
    assert_eq!(sends(&commands), vec![(id, "at-5".to_owned())]);
    assert_eq!(p.session.state(), SessionState::Active);
    // The next lease is asked with version 5 as the basis: the record it published.
    p.session
        .handle_response(id, 1, Verdict::Rejected, at(59_100));
    let commands = p.drain();
    let op = acquire_op(&commands);
    let commands = p.feed(
        lease(op, LeaseResult::Granted(with_tokens(5, "at-5", "rt-5", 60))),
        59_110,
    );
    assert!(
        matches!(commands.as_slice(), [Command::Refresh { refresh_token, .. }] if refresh_token.expose_secret() == "rt-5"),
        "same version: refresh with its token: {commands:?}"
    );
}

/// A process that finds the lease busy never refreshes: it waits and adopts what the holder
/// published, asking again every `LEASE_RETRY`.
#[test]
fn a_busy_lease_means_wait_and_adopt_never_refresh() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (id, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let commands = p.feed(
        lease(op, LeaseResult::Busy(with_tokens(4, "at-4", "rt-4", 1))),
        59_001,
    );
    assert!(commands.is_empty(), "{commands:?}");
    assert_eq!(
        p.session.poll_timeout(),
        Some(at(59_001).saturating_add(LEASE_RETRY))
    );
    // Still busy at the next try.
    let commands = p.feed(auth_core::Input::Timeout, 59_021);
    let again = acquire_op(&commands);
    assert_eq!(again, op, "the same operation asks again");
    p.feed(
        lease(op, LeaseResult::Busy(with_tokens(4, "at-4", "rt-4", 1))),
        59_022,
    );
    // The holder published version 5: seen by the store watch, the waiter adopts it.
    let commands = p.feed(
        auth_core::Input::StoreChanged(with_tokens(5, "at-5", "rt-5", 60)),
        59_030,
    );
    assert!(
        commands.contains(&Command::Adopted(Generation(2))),
        "{commands:?}"
    );
    assert_eq!(sends(&commands), vec![(id, "at-5".to_owned())]);
    assert!(!commands
        .iter()
        .any(|c| matches!(c, Command::Refresh { .. } | Command::Login { .. })));
    assert_eq!(p.session.state(), SessionState::Active);
    // The retry timer is gone with the wait.
    assert_ne!(
        p.session.next_timer().map(|(timer, _)| timer),
        Some(auth_core::Timer::LeaseRetry)
    );
}

/// The spent mark: a holder that crashed or hung after presenting the refresh token leaves the
/// mark; the next holder logs in instead of presenting the same token again (P9).
#[test]
fn a_spent_mark_makes_the_next_holder_log_in_instead_of_presenting_the_token_again() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (id, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let mut spent = with_tokens(4, "at-4", "rt-4", 1);
    spent.spent = true;
    let commands = p.feed(lease(op, LeaseResult::Granted(spent)), 59_010);
    assert_eq!(
        commands,
        vec![
            Command::Login { op },
            Command::Notify(SessionState::LoggingIn)
        ]
    );
    let commands = p.feed(
        auth_core::Input::LoginResult {
            op,
            result: Ok(tokens("at-L", "rt-L", 60)),
        },
        59_100,
    );
    assert!(matches!(
        commands.as_slice(),
        [Command::Publish {
            expected: StoreVersion(4),
            ..
        }]
    ));
    let commands = p.feed(
        auth_core::Input::Published {
            op,
            result: PublishResult::Written,
        },
        59_110,
    );
    // The mark stays on version 4 (it is superseded anyway).
    assert!(commands.contains(&Command::Release {
        op,
        version: StoreVersion(4),
        spent: true
    }));
    assert_eq!(sends(&commands), vec![(id, "at-L".to_owned())]);
}

/// A holder whose refresh never answers gives the lease back at its operation deadline, keeping
/// the mark (its request may have reached the server), so the next holder logs in.
#[test]
fn a_hung_holder_releases_at_its_deadline_and_keeps_the_mark() {
    let config = Config::default();
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (_, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let ttl = commands
        .iter()
        .find_map(|c| match c {
            Command::Acquire { ttl, .. } => Some(*ttl),
            _ => None,
        })
        .unwrap();
    assert!(
        ttl > config.operation_timeout,
        "the lease outlives the operation"
    );
    p.feed(
        lease(op, LeaseResult::Granted(with_tokens(4, "at-4", "rt-4", 1))),
        59_010,
    );
    // The operation's time counts from the grant (waiting for the lease does not eat into it).
    let deadline = 59_010 + config.operation_timeout.as_millis() as u64;
    assert_eq!(p.session.poll_timeout(), Some(at(deadline)));
    let commands = p.feed(auth_core::Input::Timeout, deadline);
    assert!(
        commands.contains(&Command::Release {
            op,
            version: StoreVersion(4),
            spent: true
        }),
        "{commands:?}"
    );
    // Its late answer is ignored: nothing is published.
    let commands = p.feed(
        auth_core::Input::RefreshResult {
            op,
            result: Ok(tokens("at-late", "rt-late", 60)),
        },
        deadline + 5,
    );
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Publish { .. })),
        "{commands:?}"
    );
}

/// A grant that arrives after the operation gave up is given back at once, clearing the mark it
/// set (nobody presented the token).
#[test]
fn a_late_grant_is_given_back_at_once() {
    let config = Config::default();
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (_, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let deadline = 59_000 + config.operation_timeout.as_millis() as u64;
    p.feed(auth_core::Input::Timeout, deadline);
    let commands = p.feed(
        lease(op, LeaseResult::Granted(with_tokens(4, "at-4", "rt-4", 1))),
        deadline + 1,
    );
    assert_eq!(
        commands,
        vec![Command::Release {
            op,
            version: StoreVersion(4),
            spent: false
        }]
    );
}

/// Logout elsewhere: seen by the watch, the session fails its queue with `LoggedOut`, forgets
/// its tokens and never refreshes again until an explicit login; its own grant after the
/// tombstone ends in `LoggedOut` too.
#[test]
fn a_logout_elsewhere_ends_the_session_here() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (waiting, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    p.feed(
        lease(op, LeaseResult::Busy(with_tokens(4, "at-4", "rt-4", 1))),
        59_001,
    );
    let commands = p.feed(
        auth_core::Input::StoreChanged(record(5, Stored::LoggedOut, false)),
        59_010,
    );
    assert!(commands.contains(&Command::Complete {
        id: waiting,
        outcome: Outcome::Fail(RequestError::LoggedOut)
    }));
    assert_eq!(p.session.state(), SessionState::LoggedOut);
    assert!(!commands.iter().any(|c| matches!(c, Command::ClearStore)));
    let (id, commands) = p.submit(59_020);
    assert_eq!(
        commands,
        vec![Command::Complete {
            id,
            outcome: Outcome::Fail(RequestError::LoggedOut)
        }]
    );
    // An explicit login over the tombstone it knows goes ahead.
    let commands = p.feed(auth_core::Input::Login, 60_000);
    let op = acquire_op(&commands);
    let commands = p.feed(
        lease(
            op,
            LeaseResult::Granted(record(5, Stored::LoggedOut, false)),
        ),
        60_010,
    );
    assert!(commands.contains(&Command::Login { op }), "{commands:?}");
}

/// A grant that shows a tombstone this session has not seen: the logout wins.
#[test]
fn a_grant_on_an_unseen_tombstone_logs_out_instead_of_refreshing() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (waiting, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let commands = p.feed(
        lease(
            op,
            LeaseResult::Granted(record(5, Stored::LoggedOut, false)),
        ),
        59_010,
    );
    assert!(!commands
        .iter()
        .any(|c| matches!(c, Command::Refresh { .. } | Command::Login { .. })));
    assert!(commands.contains(&Command::Release {
        op,
        version: StoreVersion(5),
        spent: false
    }));
    assert!(commands.contains(&Command::Complete {
        id: waiting,
        outcome: Outcome::Fail(RequestError::LoggedOut)
    }));
}

/// A logout that lands while this holder refreshes: the publish conflicts with the tombstone,
/// the new tokens are dropped and nothing is sent with them.
#[test]
fn a_publish_that_meets_a_tombstone_drops_the_tokens() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (waiting, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    p.feed(
        lease(op, LeaseResult::Granted(with_tokens(4, "at-4", "rt-4", 1))),
        59_010,
    );
    p.feed(
        auth_core::Input::RefreshResult {
            op,
            result: Ok(tokens("at-5", "rt-5", 60)),
        },
        59_050,
    );
    let commands = p.feed(
        auth_core::Input::Published {
            op,
            result: PublishResult::Conflict(record(5, Stored::LoggedOut, false)),
        },
        59_060,
    );
    assert!(sends(&commands).is_empty(), "{commands:?}");
    assert!(commands.contains(&Command::Complete {
        id: waiting,
        outcome: Outcome::Fail(RequestError::LoggedOut)
    }));
    assert_eq!(p.session.state(), SessionState::LoggedOut);
}

/// A restart after a logout anywhere starts logged out: the tombstone survives.
#[test]
fn a_restart_after_a_shared_logout_starts_logged_out() {
    let mut p = Process::start(record(9, Stored::LoggedOut, false));
    assert_eq!(p.session.state(), SessionState::LoggedOut);
    let (id, commands) = p.submit(0);
    assert_eq!(
        commands,
        vec![Command::Complete {
            id,
            outcome: Outcome::Fail(RequestError::LoggedOut)
        }]
    );
}

/// An unreachable store never leads to a refresh without the lease: the operation fails
/// transiently, backs off, and the queue finally fails with the typed `StoreUnavailable`.
/// A request that needs no new tokens keeps going out meanwhile.
#[test]
fn an_unreachable_store_fails_waiting_requests_with_a_typed_error_and_never_refreshes() {
    let config = Config {
        max_operation_retries: 1,
        ..Config::default()
    };
    let session = Session::shared(config, with_tokens(4, "at-4", "rt-4", 60), at(0));
    let mut p = Process {
        monitor: Monitor::new(&session),
        session,
    };
    let (fresh, commands) = p.submit(1_000);
    assert_eq!(sends(&commands), vec![(fresh, "at-4".to_owned())]);
    let (waiting, commands) = p.submit(59_000);
    let mut op = acquire_op(&commands);
    let mut now = 59_000;
    let mut failed = None;
    for _ in 0..10 {
        let commands = p.feed(lease(op, LeaseResult::Unavailable), now);
        assert!(!commands
            .iter()
            .any(|c| matches!(c, Command::Refresh { .. } | Command::Login { .. })));
        if let Some(Command::Complete { outcome, .. }) = commands
            .iter()
            .find(|c| matches!(c, Command::Complete { id, .. } if *id == waiting))
        {
            failed = Some(*outcome);
            break;
        }
        now = p.session.poll_timeout().unwrap().as_millis();
        op = acquire_op(&p.feed(auth_core::Input::Timeout, now));
    }
    assert_eq!(
        failed,
        Some(Outcome::Fail(RequestError::StoreUnavailable {
            attempts: 2
        }))
    );
}

/// A refresh that failed without a clear answer (transient) may have reached the server: the
/// mark is kept and the retry logs in rather than presenting the token again.
#[test]
fn a_transient_refresh_failure_keeps_the_mark_and_the_retry_logs_in() {
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (_, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    p.feed(
        lease(op, LeaseResult::Granted(with_tokens(4, "at-4", "rt-4", 1))),
        59_010,
    );
    let commands = p.feed(
        auth_core::Input::RefreshResult {
            op,
            result: Err(RefreshFailure::Transient),
        },
        59_050,
    );
    assert!(commands.contains(&Command::Release {
        op,
        version: StoreVersion(4),
        spent: true
    }));
    let retry_at = p.session.poll_timeout().unwrap().as_millis();
    let op = acquire_op(&p.feed(auth_core::Input::Timeout, retry_at));
    let mut spent = with_tokens(4, "at-4", "rt-4", 1);
    spent.spent = true;
    let commands = p.feed(lease(op, LeaseResult::Granted(spent)), retry_at + 1);
    assert!(commands.contains(&Command::Login { op }), "{commands:?}");
}

/// A local session ignores the shared inputs entirely.
#[test]
fn a_local_session_ignores_shared_inputs() {
    let mut session = Session::new(Config::default(), at(0));
    let before = session.clone();
    session.handle(
        auth_core::Input::StoreChanged(record(3, Stored::LoggedOut, false)),
        at(0),
    );
    session.handle(
        lease(OpId(1), LeaseResult::Granted(with_tokens(1, "a", "r", 1))),
        at(0),
    );
    session.handle(
        auth_core::Input::Published {
            op: OpId(1),
            result: PublishResult::Written,
        },
        at(0),
    );
    assert_eq!(session, before);
    assert!(!session.is_shared());
}

/// The same late grant fed before the timer (a process paused past its deadline finds the answer
/// and the timer ready together): still given back, never acted on.
#[test]
fn a_grant_read_after_the_deadline_is_given_back_even_before_the_timer_fires() {
    let config = Config::default();
    let mut p = Process::start(with_tokens(4, "at-4", "rt-4", 60));
    let (waiting, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let deadline = 59_000 + config.operation_timeout.as_millis() as u64;
    let commands = p.feed(
        lease(op, LeaseResult::Granted(with_tokens(4, "at-4", "rt-4", 1))),
        deadline + 10_000,
    );
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Refresh { .. } | Command::Login { .. })),
        "{commands:?}"
    );
    assert!(commands.contains(&Command::Release {
        op,
        version: StoreVersion(4),
        spent: false
    }));
    // The request still waits (for the backoff's retry) or failed; it never went out.
    assert!(!sends(&commands).iter().any(|(id, _)| *id == waiting));
}

/// A store that lost its data reuses versions: the record at this session's version may hold
/// another process's tokens. The session presents only the record's refresh token, never its
/// own old one (which a holder may have presented before the loss took its spent mark).
#[test]
fn a_reused_version_with_other_tokens_is_adopted_and_only_its_refresh_token_presented() {
    let mut p = Process::start(with_tokens(1, "at-A", "rt-A", 60));
    let (_, commands) = p.submit(59_000);
    let op = acquire_op(&commands);
    let commands = p.feed(
        // Expiring too (lifetime 0): the session needs new tokens from it.
        lease(op, LeaseResult::Granted(with_tokens(1, "at-C", "rt-C", 0))),
        59_010,
    );
    assert!(
        commands.contains(&Command::Adopted(Generation(2))),
        "{commands:?}"
    );
    let presented: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            Command::Refresh { refresh_token, .. } => Some(refresh_token.expose_secret()),
            _ => None,
        })
        .collect();
    assert_eq!(presented, vec!["rt-C"], "{commands:?}");
}
