//! The driver's own life, without HTTP: a backend that panics or hangs, a driver that stops when
//! its last handle goes, a call used wrongly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{
    AccessToken, Config, RefreshToken, RequestError, RequestSpec, SessionState, TokenSet, Verdict,
};
use auth_blocking::{Backend, CallError, LoginError, Next, RefreshError, SessionHandle};

const PATIENCE: Duration = Duration::from_secs(20);

fn config() -> Config {
    Config {
        operation_timeout: Duration::from_millis(200),
        max_operation_retries: 0,
        max_refresh_failures: 0,
        ..Config::default()
    }
}

struct Panicking;

impl Backend for Panicking {
    fn login(&self) -> Result<TokenSet, LoginError> {
        panic!("a backend bug (expected by the test)");
    }

    fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
        panic!("a backend bug (expected by the test)");
    }
}

/// Logs in when told to, through a channel the test holds.
struct Gated {
    open: Mutex<mpsc::Receiver<()>>,
}

impl Backend for Gated {
    fn login(&self) -> Result<TokenSet, LoginError> {
        let gate = self.open.lock().unwrap();
        let _ = gate.recv_timeout(PATIENCE);
        Ok(TokenSet::new(AccessToken::new("at")))
    }

    fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
        Ok(TokenSet::new(AccessToken::new("at-2")))
    }
}

struct Instant200;

impl Backend for Instant200 {
    fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt")))
    }

    fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
        Ok(TokenSet::new(AccessToken::new("at-2")))
    }
}

#[test]
fn a_panicking_backend_counts_as_a_transient_failure_by_the_deadline() {
    let session = SessionHandle::builder(Panicking)
        .config(config())
        .start()
        .unwrap();
    let started = Instant::now();
    let error = session
        .request(RequestSpec::bearer(), |_| ((), Verdict::Accepted))
        .unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Session(RequestError::AuthUnavailable { attempts: 1 })
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_driver_stops_when_the_last_handle_and_call_are_dropped() {
    let session = SessionHandle::builder(Instant200).start().unwrap();
    let events = session.events();
    assert_eq!(
        events.recv_timeout(PATIENCE).unwrap(),
        SessionState::Anonymous
    );
    let call = session.call::<()>(RequestSpec::bearer());
    drop(session);
    // The call still holds the session: the login it asked for goes on.
    assert_eq!(
        events.recv_timeout(PATIENCE).unwrap(),
        SessionState::LoggingIn
    );
    drop(call);
    loop {
        match events.recv_timeout(PATIENCE) {
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("the driver did not stop"),
        }
    }
}

#[test]
fn a_call_that_times_out_is_cancelled_and_the_session_goes_on() {
    let (open, gate) = mpsc::channel();
    let session = SessionHandle::builder(Gated {
        open: Mutex::new(gate),
    })
    .start()
    .unwrap();
    let mut impatient = session
        .call::<()>(RequestSpec::bearer())
        .timeout(Duration::from_millis(50));
    assert!(matches!(
        impatient.next_step().unwrap_err(),
        CallError::TimedOut
    ));
    assert!(
        matches!(impatient.next_step().unwrap_err(), CallError::Stopped),
        "a finished call stays finished"
    );
    let mut patient = session.call::<&str>(RequestSpec::bearer());
    open.send(()).unwrap();
    let Next::Send(attempt) = patient.next_step().unwrap() else {
        panic!("expected a send")
    };
    assert_eq!(attempt.number(), 1);
    assert_eq!(attempt.bearer().unwrap().as_str(), "Bearer at");
    assert!(
        matches!(patient.next_step().unwrap_err(), CallError::ResponseMissing),
        "next_step before respond is a bug of the integration"
    );
    patient.respond("200", Verdict::Accepted);
    assert!(matches!(patient.next_step().unwrap(), Next::Deliver("200")));
}

#[test]
fn after_shutdown_every_use_fails_with_stopped() {
    let session = SessionHandle::builder(Instant200).start().unwrap();
    let other = session.clone();
    session.shutdown(PATIENCE).unwrap();
    let error = other
        .request(RequestSpec::bearer(), |_| ((), Verdict::Accepted))
        .unwrap_err();
    assert!(matches!(error, CallError::Stopped), "{error:?}");
    assert!(matches!(other.logout().unwrap_err(), CallError::Stopped));
}

#[test]
fn public_requests_never_wait_and_never_carry_a_token() {
    let (_open, gate) = mpsc::channel::<()>();
    let session = SessionHandle::builder(Gated {
        open: Mutex::new(gate),
    })
    .start()
    .unwrap();
    // A bearer request starts a login that never finishes during this test...
    let _waiting = session.call::<()>(RequestSpec::bearer());
    // ...and a public one goes out at once, without a token.
    let sent = session
        .request(RequestSpec::public(), |attempt| {
            (attempt.token().is_none(), Verdict::Accepted)
        })
        .unwrap();
    assert!(sent);
}
