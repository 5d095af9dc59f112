//! The promises of `auth_driver::Core`, one story per test: deterministic, on one thread, with
//! wakers that count their wakes. The interleavings of many threads are in `tests/loom.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use auth_core::{
    AccessToken, Config, Generation, Instant, LoginFailure, OpId, Outcome, RefreshToken,
    RequestError, RequestSpec, Session, SessionState, Snapshot, TokenSet, UnixTime, Verdict,
};
use auth_driver::{Conversation, Core, Ended, LogoutError, Step, Turn, Work};
use auth_store::StoreError;

// ---- the stories ----------------------------------------------------------------------------

#[test]
fn happy_path_sends_from_submit_and_delivers_from_respond_without_the_background() {
    let core = restored(Config::default());
    let (background, waker) = counting_waker();
    assert_eq!(core.next_deadline(), None);
    assert_eq!(core.poll_background(&waker), Poll::Pending);

    let (id, step) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("a running core assigns an id");
    assert_eq!(token_of(step.expect("sent at once")), "at-1");
    assert_eq!(
        core.respond(id, 1, Verdict::Accepted, at(2)),
        Some(Step::Done(Outcome::Deliver))
    );

    assert!(core.take_work().is_none(), "nothing for the runtime");
    assert_eq!(background.wakes(), 0, "the background was never woken");
    assert_eq!(core.poll_background(&waker), Poll::Pending);
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn request_submitted_while_logging_in_waits_and_is_woken_with_its_send_after_the_persist() {
    let core = fresh(Config::default());
    let (id, step) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("id");
    assert!(step.is_none(), "no token yet: the request waits");
    let (caller, waker) = counting_waker();
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);

    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(2));
    assert_eq!(
        caller.wakes(),
        0,
        "not woken before the persist is reported"
    );
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);

    assert_eq!(take_persist(&core), Generation(1));
    core.persisted(Generation(1));
    assert_eq!(caller.wakes(), 1);
    let Poll::Ready(step) = core.poll_step(id, &waker) else {
        panic!("the woken caller has its step")
    };
    assert_eq!(token_of(step), "at-1");
    assert_eq!(
        core.respond(id, 1, Verdict::Accepted, at(3)),
        Some(Step::Done(Outcome::Deliver))
    );
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn the_waker_of_the_latest_poll_is_the_one_woken() {
    // A caller that polls again from another task (moved, or re-polled after a timeout of its
    // own) must be woken there: the waker of an earlier poll may belong to nobody any more.
    let core = fresh(Config::default());
    let (id, _) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("id");
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    assert_eq!(core.poll_step(id, &first_waker), Poll::Pending);
    assert_eq!(core.poll_step(id, &second_waker), Poll::Pending);
    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(2));
    core.persisted(take_persist(&core));
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
}

#[test]
fn sends_with_new_tokens_are_held_until_their_persist_is_reported() {
    let core = fresh(Config::default());
    let (queued, _) = core.submit(RequestSpec::bearer(), at(1));
    let queued = queued.expect("id");
    let (queued_caller, queued_waker) = counting_waker();
    assert_eq!(core.poll_step(queued, &queued_waker), Poll::Pending);
    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(2));

    // Between the login and its persist: the queued request and a fresh one both wait (P7).
    let (fresh_id, step) = core.submit(RequestSpec::bearer(), at(3));
    let fresh_id = fresh_id.expect("id");
    assert!(
        step.is_none(),
        "a fresh submit must not get the unpersisted token"
    );
    let (fresh_caller, fresh_waker) = counting_waker();
    assert_eq!(core.poll_step(queued, &queued_waker), Poll::Pending);
    assert_eq!(core.poll_step(fresh_id, &fresh_waker), Poll::Pending);
    // A public request carries no token: nothing to hold.
    let (_, public) = core.submit(RequestSpec::public(), at(3));
    assert_eq!(
        public,
        Some(Step::Send {
            attempt: 1,
            token: None
        })
    );

    // A persist of an older generation releases nothing.
    core.persisted(Generation(0));
    assert_eq!(core.poll_step(fresh_id, &fresh_waker), Poll::Pending);
    assert_eq!(take_persist(&core), Generation(1));
    core.persisted(Generation(1));
    assert_eq!((queued_caller.wakes(), fresh_caller.wakes()), (1, 1));
    for id in [queued, fresh_id] {
        let (_, waker) = counting_waker();
        let Poll::Ready(step) = core.poll_step(id, &waker) else {
            panic!("released after the persist")
        };
        assert_eq!(token_of(step), "at-1");
    }
    // Persisted: the next submit is sent at once again.
    let (_, step) = core.submit(RequestSpec::bearer(), at(4));
    assert_eq!(token_of(step.expect("sent at once")), "at-1");
}

#[test]
fn resend_after_a_refresh_is_held_until_the_persist() {
    let core = restored(Config::default());
    let (id, step) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("id");
    assert_eq!(token_of(step.expect("sent")), "at-1");
    assert_eq!(core.respond(id, 1, Verdict::Rejected, at(2)), None);
    let op = take_refresh(&core);

    core.refresh_done(op, Ok(tokens(2)), at(3));
    let (caller, waker) = counting_waker();
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);

    let Some(Work::Persist { persist }) = core.take_work() else {
        panic!("the persist follows the refresh")
    };
    assert_eq!(persist.generation, Generation(2));
    assert_eq!(
        core.poll_step(id, &waker),
        Poll::Pending,
        "held while persisting"
    );
    // The runtime writes the store, then reports.
    core.persisted(persist.generation);

    assert_eq!(caller.wakes(), 1);
    let Poll::Ready(step) = core.poll_step(id, &waker) else {
        panic!("the resend")
    };
    assert_eq!(
        step,
        Step::Send {
            attempt: 2,
            token: Some(AccessToken::new("at-2"))
        }
    );
    assert_eq!(
        core.respond(id, 2, Verdict::Accepted, at(4)),
        Some(Step::Done(Outcome::Deliver))
    );
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn cancelled_request_is_never_sent_later() {
    let core = fresh(Config::default());
    let (waiting, _) = core.submit(RequestSpec::bearer(), at(1));
    let (held, _) = core.submit(RequestSpec::bearer(), at(1));
    let (kept, _) = core.submit(RequestSpec::bearer(), at(1));
    let (waiting, held, kept) = (waiting.expect("id"), held.expect("id"), kept.expect("id"));
    let wakers: Vec<_> = [waiting, held, kept]
        .iter()
        .map(|id| {
            let (counter, waker) = counting_waker();
            assert_eq!(core.poll_step(*id, &waker), Poll::Pending);
            counter
        })
        .collect();

    // Cancelled while queued for the login.
    core.cancel(waiting, at(2));
    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(3));
    // Cancelled while its send is held for the persist.
    core.cancel(held, at(4));
    assert_eq!(take_persist(&core), Generation(1));
    core.persisted(Generation(1));

    let wakes: Vec<_> = wakers.iter().map(|counter| counter.wakes()).collect();
    assert_eq!(wakes, [0, 0, 1], "only the request still wanted is woken");
    let (_, waker) = counting_waker();
    for id in [waiting, held] {
        assert_eq!(core.poll_step(id, &waker), Poll::Ready(Step::Stopped));
    }
    assert!(matches!(
        core.poll_step(kept, &waker),
        Poll::Ready(Step::Send { .. })
    ));
    assert_eq!(core.outstanding(), 1, "only the kept request is in flight");
    assert_eq!(core.callers(), 1);
}

#[test]
fn logout_fails_waiting_callers_and_reports_a_durable_clear() {
    let core = fresh(Config::default());
    let (id, _) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("id");
    let (caller, waker) = counting_waker();
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);
    let op = take_login(&core);

    let ticket = core.logout(at(2));
    assert_eq!(
        caller.wakes(),
        1,
        "the waiting caller is woken with its failure"
    );
    assert_eq!(
        core.poll_step(id, &waker),
        Poll::Ready(Step::Done(Outcome::Fail(RequestError::LoggedOut)))
    );
    let (logout, logout_waker) = counting_waker();
    assert!(core.poll_logout(ticket, &logout_waker).is_pending());

    // The login started before the logout comes back: dropped, never persisted.
    core.login_done(op, Ok(tokens(1)), at(3));
    let Some(Work::ClearStore {
        logout: Some(for_ticket),
    }) = core.take_work()
    else {
        panic!("the clear, for this logout")
    };
    assert_eq!(for_ticket, ticket);
    assert!(core.take_work().is_none(), "no persist after the logout");
    assert!(core.poll_logout(ticket, &logout_waker).is_pending());
    core.cleared(Some(ticket), Ok(()));
    assert_eq!(logout.wakes(), 1);
    assert!(matches!(
        core.poll_logout(ticket, &logout_waker),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(core.state(), SessionState::LoggedOut);
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn logout_whose_clear_failed_reports_it_is_not_durable() {
    let core = restored(Config::default());
    let ticket = core.logout(at(1));
    let Some(Work::ClearStore { logout }) = core.take_work() else {
        panic!("the clear")
    };
    assert_eq!(logout, Some(ticket));
    core.cleared(logout, Err(StoreError::NotRegularFile));
    let (_, waker) = counting_waker();
    assert!(matches!(
        core.poll_logout(ticket, &waker),
        Poll::Ready(Err(LogoutError::NotDurable(StoreError::NotRegularFile)))
    ));
}

#[test]
fn stop_gives_every_waiter_stopped_and_wakes_it() {
    let core = fresh(Config::default());
    let (queued, _) = core.submit(RequestSpec::bearer(), at(1));
    let queued = queued.expect("id");
    let (queued_caller, queued_waker) = counting_waker();
    assert_eq!(core.poll_step(queued, &queued_waker), Poll::Pending);
    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(2));
    // Held for the persist when the core stops.
    let (held, _) = core.submit(RequestSpec::bearer(), at(3));
    let held = held.expect("id");
    let (held_caller, held_waker) = counting_waker();
    assert_eq!(core.poll_step(held, &held_waker), Poll::Pending);
    // A second session's logout waiting for its clear (a logout ends the first's requests, so
    // it has its own core).
    let other = restored(Config::default());
    let ticket = other.logout(at(1));
    let (logout, logout_waker) = counting_waker();
    assert!(other.poll_logout(ticket, &logout_waker).is_pending());
    let (background, background_waker) = counting_waker();
    assert_eq!(take_persist(&core), Generation(1));
    core.next_deadline();
    assert_eq!(core.poll_background(&background_waker), Poll::Pending);

    core.stop();
    other.stop();
    assert!(core.is_stopped());
    assert_eq!((queued_caller.wakes(), held_caller.wakes()), (1, 1));
    assert_eq!((logout.wakes(), background.wakes()), (1, 1));
    assert_eq!(
        core.poll_step(queued, &queued_waker),
        Poll::Ready(Step::Stopped)
    );
    assert_eq!(
        core.poll_step(held, &held_waker),
        Poll::Ready(Step::Stopped)
    );
    assert!(matches!(
        other.poll_logout(ticket, &logout_waker),
        Poll::Ready(Err(LogoutError::Stopped))
    ));
    assert_eq!(core.poll_background(&background_waker), Poll::Ready(()));
    // A late persist report releases nothing, and later calls are refused.
    core.persisted(Generation(1));
    assert_eq!(
        core.submit(RequestSpec::bearer(), at(4)),
        (None, Some(Step::Stopped))
    );
    let ticket = core.logout(at(4));
    assert!(matches!(
        core.poll_logout(ticket, &logout_waker),
        Poll::Ready(Err(LogoutError::Stopped))
    ));
    assert_eq!(core.callers(), 0);
}

#[test]
fn poll_background_is_ready_for_work_or_an_earlier_deadline_only() {
    let core = fresh(Config::default());
    let (background, waker) = counting_waker();
    assert_eq!(core.poll_background(&waker), Poll::Pending);

    // Work: ready, and the waiting background was woken.
    core.submit(RequestSpec::bearer(), at(0));
    assert_eq!(background.wakes(), 1);
    assert_eq!(core.poll_background(&waker), Poll::Ready(()));
    let op = take_login(&core);
    // Ready while nothing armed the timer for the session's deadline.
    assert_eq!(core.poll_background(&waker), Poll::Ready(()));
    let armed = core.next_deadline().expect("the login's deadline");
    assert_eq!(core.poll_background(&waker), Poll::Pending);

    // A later deadline (a second queued request) does not wake the background.
    core.submit(RequestSpec::bearer(), at(100));
    assert_eq!(background.wakes(), 1);
    assert_eq!(core.poll_background(&waker), Poll::Pending);

    // A transient failure brings the deadline forward (the backoff), without work: woken.
    core.login_done(op, Err(LoginFailure::Transient), at(200));
    assert_eq!(background.wakes(), 2);
    assert!(core.take_work().is_none());
    assert_eq!(core.poll_background(&waker), Poll::Ready(()));
    let backoff = core.next_deadline().expect("the backoff");
    assert!(backoff < armed, "{backoff:?} < {armed:?}");
    assert_eq!(core.poll_background(&waker), Poll::Pending);

    // The timer fires: the login starts again, which is work.
    core.handle_timeout(backoff);
    assert_eq!(background.wakes(), 3);
    assert_eq!(core.poll_background(&waker), Poll::Ready(()));
    take_login(&core);
}

#[test]
fn dropped_and_never_polled_callers_leave_no_entries() {
    let core = fresh(Config::default());
    // Never polled; cancelled when its call is dropped.
    let (never_polled, _) = core.submit(RequestSpec::bearer(), at(1));
    // Polled once, then its waker (its task) went away; cancelled too.
    let (dropped, _) = core.submit(RequestSpec::bearer(), at(1));
    let dropped = dropped.expect("id");
    {
        let (_, waker) = counting_waker();
        assert_eq!(core.poll_step(dropped, &waker), Poll::Pending);
    }
    // Finished while nobody polled: its outcome waits in the table until taken or cancelled.
    let (finished, _) = core.submit(RequestSpec::bearer(), at(1));
    assert_eq!((core.outstanding(), core.callers()), (3, 3));

    core.cancel(never_polled.expect("id"), at(2));
    core.cancel(dropped, at(2));
    assert_eq!((core.outstanding(), core.callers()), (1, 1));
    let op = take_login(&core);
    core.login_done(op, Err(LoginFailure::Fatal), at(3));
    assert_eq!(core.outstanding(), 0, "the session finished the last one");
    assert_eq!(core.callers(), 1, "its outcome is kept for its caller");
    core.cancel(finished.expect("id"), at(4));
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
    // Cancelling again, or an unknown id, changes nothing.
    core.cancel(dropped, at(5));
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn a_caller_finished_by_submit_or_respond_leaves_the_table() {
    // Nothing may wait: a request that needs the login fails at once; the login starts anyway.
    let core = fresh(Config {
        max_queued: 0,
        ..Config::default()
    });
    let (id, step) = core.submit(RequestSpec::bearer(), at(1));
    assert!(id.is_some());
    assert_eq!(
        step,
        Some(Step::Done(Outcome::Fail(RequestError::QueueFull)))
    );
    assert_eq!((core.outstanding(), core.callers()), (0, 0));

    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(2));
    core.persisted(take_persist(&core));
    // A 401 for the current token needs a refresh, and nothing may wait for it: failed by
    // `respond` itself.
    let (id, step) = core.submit(RequestSpec::bearer(), at(3));
    let id = id.expect("id");
    assert_eq!(token_of(step.expect("sent")), "at-1");
    assert_eq!(
        core.respond(id, 1, Verdict::Rejected, at(4)),
        Some(Step::Done(Outcome::Fail(RequestError::QueueFull)))
    );
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn wakers_are_woken_after_the_lock_is_released() {
    // A waker that calls back into the core would deadlock if it ran under the lock.
    let core = Arc::new(fresh(Config::default()));
    let (id, _) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("id");
    let reentrant = Arc::new(Reentrant {
        core: Arc::clone(&core),
        saw: AtomicUsize::new(0),
    });
    let waker = Waker::from(Arc::clone(&reentrant));
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);
    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(2));
    core.persisted(take_persist(&core));
    assert_eq!(reentrant.saw.load(Ordering::SeqCst), 1);
    // Break the cycle core → waker → core.
    core.cancel(id, at(3));
}

// ---- one request's conversation ---------------------------------------------------------------

#[test]
fn conversation_holds_the_response_and_delivers_it_after_an_accepted_answer() {
    let core = restored(Config::default());
    let (_, waker) = counting_waker();
    let mut call = Conversation::begin(&core, RequestSpec::bearer(), at(1));
    let Poll::Ready(Ok(Turn::Send { attempt: 1, token })) = call.poll_next(&core, &waker) else {
        panic!("a restored session sends at once")
    };
    assert_eq!(token.expect("bearer").expose_secret(), "at-1");
    assert!(
        matches!(
            call.poll_next(&core, &waker),
            Poll::Ready(Err(Ended::ResponseMissing))
        ),
        "polled again before the answer: a bug of the integration, reported"
    );

    call.respond(&core, "the response", Verdict::Accepted, at(2));
    assert!(matches!(
        call.poll_next(&core, &waker),
        Poll::Ready(Ok(Turn::Deliver("the response")))
    ));
    assert!(matches!(
        call.poll_next(&core, &waker),
        Poll::Ready(Err(Ended::Stopped))
    ));
    call.cancel(&core, || panic!("an ended conversation reads no clock"));
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn conversation_waits_for_the_refresh_then_resends_with_the_new_token() {
    let core = restored(Config::default());
    let (caller, waker) = counting_waker();
    let mut call = Conversation::begin(&core, RequestSpec::bearer(), at(1));
    assert!(matches!(
        call.poll_next(&core, &waker),
        Poll::Ready(Ok(Turn::Send { attempt: 1, .. }))
    ));
    call.respond(&core, "401", Verdict::Rejected, at(2));
    assert!(call.poll_next(&core, &waker).is_pending());

    let op = take_refresh(&core);
    core.refresh_done(op, Ok(tokens(2)), at(3));
    assert_eq!(take_persist(&core), Generation(2));
    core.persisted(Generation(2));
    assert_eq!(caller.wakes(), 1);
    let Poll::Ready(Ok(Turn::Send { attempt: 2, token })) = call.poll_next(&core, &waker) else {
        panic!("the resend")
    };
    assert_eq!(token.expect("bearer").expose_secret(), "at-2");

    call.respond(&core, "200", Verdict::Accepted, at(4));
    assert!(matches!(
        call.poll_next(&core, &waker),
        Poll::Ready(Ok(Turn::Deliver("200")))
    ));
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn conversation_cancelled_while_waiting_is_never_sent_and_ends_stopped() {
    let core = fresh(Config::default());
    let (caller, waker) = counting_waker();
    let mut call = Conversation::<()>::begin(&core, RequestSpec::bearer(), at(1));
    assert!(call.poll_next(&core, &waker).is_pending());

    call.cancel(&core, || at(2));
    let op = take_login(&core);
    core.login_done(op, Ok(tokens(1)), at(3));
    assert_eq!(take_persist(&core), Generation(1));
    core.persisted(Generation(1));
    assert_eq!(caller.wakes(), 0, "nobody to wake");
    assert!(matches!(
        call.poll_next(&core, &waker),
        Poll::Ready(Err(Ended::Stopped))
    ));
    assert_eq!((core.outstanding(), core.callers()), (0, 0));
}

#[test]
fn conversation_failed_by_the_session_ends_with_its_error() {
    let core = fresh(Config::default());
    let (_, waker) = counting_waker();
    let mut call = Conversation::<()>::begin(&core, RequestSpec::bearer(), at(1));
    assert!(call.poll_next(&core, &waker).is_pending());
    core.logout(at(2));
    assert!(matches!(
        call.poll_next(&core, &waker),
        Poll::Ready(Err(Ended::Session(RequestError::LoggedOut)))
    ));
    assert_eq!(core.callers(), 0);
}

// ---- helpers --------------------------------------------------------------------------------

#[test]
fn a_request_in_flight_when_the_core_stops_leaves_no_slot_behind() {
    let core = restored(Config::default());
    let (id, step) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.expect("id");
    assert_eq!(token_of(step.expect("sent at once")), "at-1");
    core.stop();
    assert_eq!(
        core.respond(id, 1, Verdict::Accepted, at(2)),
        Some(Step::Stopped)
    );
    assert_eq!(core.callers(), 0);
}

#[test]
fn a_logout_that_stops_waiting_leaves_no_ticket_behind() {
    let core = restored(Config::default());
    let ticket = core.logout(at(1));
    assert_eq!(core.logouts(), 1);
    // The caller gave up (its future dropped, its wait ran out) before the clear was reported.
    core.forget_logout(ticket);
    assert_eq!(core.logouts(), 0);
    match core.take_work() {
        Some(Work::ClearStore { logout }) => core.cleared(logout, Ok(())),
        other => panic!("expected the clear, got {other:?}"),
    }
    assert_eq!(
        core.logouts(),
        0,
        "a late clear result is not kept for nobody"
    );
}

fn at(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

/// A new session: no tokens, a login on the first authenticated request.
fn fresh(config: Config) -> Core {
    Core::new(Session::new(config, at(0)), Box::new(|_| {}))
}

/// A session restored from the store: `Active` with `at-1`/`rt-1`, generation 1.
fn restored(config: Config) -> Core {
    let snapshot = Snapshot {
        access_token: AccessToken::new("at-1"),
        refresh_token: Some(RefreshToken::new("rt-1")),
        expires_at: None,
    };
    let session = Session::restore(config, snapshot, at(0), UnixTime::from_millis(0));
    Core::new(session, Box::new(|_| {}))
}

fn tokens(generation: u64) -> TokenSet {
    TokenSet::new(AccessToken::new(format!("at-{generation}")))
        .with_refresh_token(RefreshToken::new(format!("rt-{generation}")))
}

fn token_of(step: Step) -> String {
    match step {
        Step::Send {
            token: Some(token), ..
        } => token.expose_secret().to_owned(),
        other => panic!("expected a send with a token, got {other:?}"),
    }
}

fn take_login(core: &Core) -> OpId {
    match core.take_work() {
        Some(Work::Login { op }) => op,
        other => panic!("expected a login, got {other:?}"),
    }
}

fn take_refresh(core: &Core) -> OpId {
    match core.take_work() {
        Some(Work::Refresh { op, .. }) => op,
        other => panic!("expected a refresh, got {other:?}"),
    }
}

/// Takes the next work, a persist, and "carries it out": returns its generation.
fn take_persist(core: &Core) -> Generation {
    match core.take_work() {
        Some(Work::Persist { persist, .. }) => persist.generation,
        other => panic!("expected a persist, got {other:?}"),
    }
}

struct Counter(AtomicUsize);

impl Counter {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Counter>, Waker) {
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    (Arc::clone(&counter), Waker::from(counter))
}

/// A waker that reads the core when woken, as an executor polling inline would.
struct Reentrant {
    core: Arc<Core>,
    saw: AtomicUsize,
}

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.core.outstanding();
        self.saw.fetch_add(1, Ordering::SeqCst);
    }
}
