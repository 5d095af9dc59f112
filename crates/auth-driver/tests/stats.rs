//! The core's counts on virtual time, exactly: how long requests waited for a login, the
//! login's duration, the queue-depth gauge while they wait and after, and the same in `stats()`.
//! The drivers' `tests/metrics.rs` check the counts over real HTTP; here the clock is the
//! test's, so durations are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/metrics.rs"]
mod metrics_support;

use std::task::{Poll, Waker};
use std::time::Duration;

use auth_core::{
    AccessToken, Config, Generation, Instant, Outcome, RefreshToken, RequestSpec, Session,
    SessionState, TokenSet, Verdict,
};
use auth_driver::stats::{OPERATION, QUEUE_DEPTH, REQUESTS, WAIT};
use auth_driver::{Core, Step, Work};

use metrics_support::Session as Metrics;

#[test]
fn requests_waiting_for_the_login_count_their_wait_and_the_queue_depth() {
    let metrics = Metrics::named("core-login-wait");
    let core = Core::named(
        Session::new(Config::default(), at(0)),
        Box::new(|_| {}),
        Some(metrics.name),
    );
    let ids: Vec<_> = (0..3)
        .map(|_| {
            let (id, step) = core.submit(RequestSpec::bearer(), at(10));
            assert!(step.is_none(), "no token yet: the request waits");
            id.unwrap()
        })
        .collect();
    let stats = core.stats();
    assert_eq!((stats.queued, stats.outstanding), (3, 3));
    assert_eq!(stats.state, SessionState::LoggingIn);
    assert_eq!(metrics.gauge(QUEUE_DEPTH), Some(3.0));
    assert!(
        metrics.samples(WAIT, None).is_empty(),
        "nobody's wait ended"
    );

    let Some(Work::Login { op }) = core.take_work() else {
        panic!("expected the login")
    };
    let tokens =
        TokenSet::new(AccessToken::new("at-1")).with_refresh_token(RefreshToken::new("rt-1"));
    core.login_done(op, Ok(tokens), at(110));
    assert!(matches!(core.take_work(), Some(Work::Persist { .. })));
    core.persisted(Generation(1));

    // Each waited from its submit (10 ms) to the login's result (110 ms).
    assert_eq!(metrics.samples(WAIT, None), vec![0.1; 3]);
    assert_eq!(metrics.samples(OPERATION, Some("login")), vec![0.1]);
    assert_eq!(metrics.gauge(QUEUE_DEPTH), Some(0.0));
    for id in ids {
        let Poll::Ready(Step::Send { attempt, .. }) = core.poll_step(id, Waker::noop()) else {
            panic!("the send is ready")
        };
        let done = core.respond(id, attempt, Verdict::Accepted, at(120));
        assert_eq!(done, Some(Step::Done(Outcome::Deliver)));
    }
    let stats = core.stats();
    assert_eq!(
        (stats.requests.waits, stats.requests.waited),
        (3, Duration::from_millis(300))
    );
    assert_eq!((stats.requests.submitted, stats.requests.delivered), (3, 3));
    assert_eq!(metrics.count(REQUESTS, Some("deliver")), 3);
    metrics.assert_agrees_with(&stats);
}

#[test]
fn an_unnamed_core_counts_without_a_session_label_and_a_cancel_ends_no_wait() {
    // Installed before the core starts, so its handles count.
    let recorded = metrics_support::recorded();
    let core = Core::new(Session::new(Config::default(), at(0)), Box::new(|_| {}));
    let (id, _) = core.submit(RequestSpec::bearer(), at(1));
    core.cancel(id.unwrap(), at(2));
    let stats = core.stats();
    assert_eq!((stats.requests.submitted, stats.requests.failed), (1, 1));
    assert_eq!(
        stats.requests.waits, 0,
        "a cancelled wait is not one that ended"
    );
    // The only unnamed core of this test binary.
    assert_eq!(recorded.counter(REQUESTS, &[("outcome", "cancelled")]), 1);
    assert!(recorded.histogram(WAIT, &[]).is_empty());
}

fn at(millis: u64) -> Instant {
    Instant::from_millis(millis)
}
