//! The routing of shared sessions through `auth_driver::Core`, and the store calls of
//! `SharedLink`, one story per test: the session's lease, publish and release become work, the
//! store's answers become the session's inputs, and nothing is decided here that auth-core did
//! not decide. Deterministic, on one thread; the store is a scripted fake that records every call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Wake, Waker};
use std::time::Duration;

use auth_core::{
    AccessToken, Config, Generation, Instant, LeaseResult, Observed, OpId, Outcome, PublishResult,
    RefreshToken, RequestError, RequestId, RequestSpec, Session, SessionState, Snapshot,
    StoreVersion, Stored, TokenSet, UnixTime, Verdict,
};
use auth_driver::{
    no_answer, start_session, Core, LogoutError, SharedLink, Step, StoreWatch, Work,
};
use auth_store::shared::{
    Acquired, LeaseOwner, Published, Record, RecordContent, SharedStore, SharedStoreError,
};
use auth_store::StoreError;

// ---- routing ---------------------------------------------------------------------------------

#[test]
fn a_refresh_takes_the_lease_publishes_and_only_then_sends_then_gives_the_lease_back() {
    let core = shared(Config::default(), tokens_at(4, "4"));
    let id = rejected_once(&core);
    let Some(Work::Acquire { op, ttl }) = core.take_work() else {
        panic!("a needed refresh starts with the lease")
    };
    assert_eq!(ttl, Config::default().operation_timeout * 2);
    assert!(core.take_work().is_none(), "nothing else before the lease");

    core.lease_done(op, LeaseResult::Granted(tokens_at(4, "4")), at(2));
    let Some(Work::Refresh {
        op: refreshing,
        refresh_token,
    }) = core.take_work()
    else {
        panic!("the grant found the record unspent: refresh")
    };
    assert_eq!((refreshing, refresh_token.expose_secret()), (op, "rt-4"));

    let (caller, waker) = counting_waker();
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);
    core.refresh_done(op, Ok(tokens("5")), at(3));
    let Some(Work::Publish {
        op: publishing,
        expected,
        persist,
    }) = core.take_work()
    else {
        panic!("new tokens are offered to the store")
    };
    assert_eq!(
        (publishing, expected, persist.generation),
        (op, StoreVersion(4), Generation(2))
    );
    assert_eq!(
        caller.wakes(),
        0,
        "nobody uses the tokens before the store answered"
    );
    assert_eq!(core.poll_step(id, &waker), Poll::Pending);

    core.published(op, PublishResult::Written, at(4));
    assert_eq!(caller.wakes(), 1);
    assert_eq!(token_of(ready(&core, id)), "at-5");
    match core.take_work() {
        Some(Work::Release {
            op: released,
            version,
            spent,
        }) => {
            assert_eq!((released, version, spent), (op, StoreVersion(4), true));
        }
        other => panic!("expected the lease back, got {other:?}"),
    }
}

#[test]
fn a_busy_lease_adopts_what_the_holder_published_without_a_refresh() {
    let core = shared(Config::default(), tokens_at(4, "4"));
    let id = rejected_once(&core);
    let Some(Work::Acquire { op, .. }) = core.take_work() else {
        panic!("expected the lease")
    };
    core.lease_done(op, LeaseResult::Busy(tokens_at(5, "5")), at(2));
    assert_eq!(token_of(ready(&core, id)), "at-5");
    while let Some(work) = core.take_work() {
        assert!(
            !matches!(work, Work::Refresh { .. } | Work::Login { .. }),
            "adopting needs no operation: {work:?}"
        );
    }
    assert_eq!(core.state(), SessionState::Active);
}

#[test]
fn a_logout_elsewhere_fails_the_waiting_request_and_a_late_grant_is_given_back() {
    let states = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&states);
    let session = Session::shared(Config::default(), tokens_at(4, "4"), at(0));
    let core = Core::new(
        session,
        Box::new(move |state| heard.lock().unwrap().push(state)),
    );
    let id = rejected_once(&core);
    let Some(Work::Acquire { op, .. }) = core.take_work() else {
        panic!("expected the lease")
    };

    core.store_changed(tombstone(5), at(2));
    assert_eq!(
        ready(&core, id),
        Step::Done(Outcome::Fail(RequestError::LoggedOut))
    );
    assert_eq!(core.state(), SessionState::LoggedOut);
    assert_eq!(
        states.lock().unwrap().last(),
        Some(&SessionState::LoggedOut)
    );

    core.lease_done(op, LeaseResult::Granted(tombstone(5)), at(3));
    assert!(matches!(
        core.take_work(),
        Some(Work::Release { op: released, version: StoreVersion(5), .. }) if released == op
    ));
    let (id, step) = core.submit(RequestSpec::bearer(), at(4));
    assert!(id.is_some());
    assert_eq!(
        step,
        Some(Step::Done(Outcome::Fail(RequestError::LoggedOut)))
    );
}

#[test]
fn an_unreachable_store_fails_the_waiting_request_with_store_unavailable() {
    let config = Config {
        max_operation_retries: 0,
        ..Config::default()
    };
    let core = shared(config, tokens_at(4, "4"));
    let id = rejected_once(&core);
    let Some(Work::Acquire { op, .. }) = core.take_work() else {
        panic!("expected the lease")
    };
    core.lease_done(op, LeaseResult::Unavailable, at(2));
    assert_eq!(
        ready(&core, id),
        Step::Done(Outcome::Fail(RequestError::StoreUnavailable {
            attempts: 1
        }))
    );
    assert!(
        !std::iter::from_fn(|| core.take_work()).any(|w| matches!(w, Work::Refresh { .. })),
        "no refresh without the lease"
    );
}

#[test]
fn a_lease_granted_after_stop_is_given_back_with_the_mark_it_found_and_starts_nothing() {
    let core = shared(Config::default(), tokens_at(4, "4"));
    rejected_once(&core);
    let Some(Work::Acquire { op, .. }) = core.take_work() else {
        panic!("expected the lease")
    };
    core.stop();

    core.lease_done(op, LeaseResult::Granted(tokens_at(4, "4")), at(2));
    match core.take_work() {
        Some(Work::Release {
            op: released,
            version,
            spent,
        }) => {
            assert_eq!((released, version, spent), (op, StoreVersion(4), false));
        }
        other => panic!("expected the grant back, got {other:?}"),
    }
    assert!(core.take_work().is_none(), "no refresh once stopped");

    // A busy answer after the stop needs nothing.
    core.lease_done(op, LeaseResult::Busy(tokens_at(5, "5")), at(3));
    assert!(core.take_work().is_none());
}

#[test]
fn a_publish_answered_after_stop_still_gives_the_lease_back() {
    let core = shared(Config::default(), tokens_at(4, "4"));
    rejected_once(&core);
    let Some(Work::Acquire { op, .. }) = core.take_work() else {
        panic!("expected the lease")
    };
    core.lease_done(op, LeaseResult::Granted(tokens_at(4, "4")), at(2));
    assert!(matches!(core.take_work(), Some(Work::Refresh { .. })));
    core.stop();
    core.refresh_done(op, Ok(tokens("5")), at(3));
    assert!(
        matches!(core.take_work(), Some(Work::Publish { .. })),
        "the rotated tokens are offered to the store even when stopped"
    );
    core.published(op, PublishResult::Written, at(4));
    assert!(matches!(
        core.take_work(),
        Some(Work::Release { spent: true, .. })
    ));
}

#[test]
fn a_restart_on_a_tombstone_starts_logged_out_and_an_unread_store_starts_anonymous() {
    let wall = UnixTime::from_millis(1_000_000);
    let logged_out = Record {
        version: StoreVersion(7),
        content: RecordContent::LoggedOut,
        spent: false,
    };
    let session = start_session(Config::default(), Some(&logged_out), at(0), wall);
    assert_eq!(session.state(), SessionState::LoggedOut);

    let core = Core::new(
        start_session(Config::default(), None, at(0), wall),
        Box::new(|_| {}),
    );
    assert_eq!(core.state(), SessionState::Anonymous);
    let (_, step) = core.submit(RequestSpec::bearer(), at(1));
    assert!(step.is_none(), "no token: the request waits");
    assert!(
        matches!(core.take_work(), Some(Work::Acquire { .. })),
        "the login starts with the lease, which reads the real record"
    );
}

// ---- the store calls -------------------------------------------------------------------------

#[test]
fn store_calls_carry_the_work_and_name_this_instances_lease_owner() {
    let store = Fake::default();
    let link = SharedLink::new(store.clone());
    let other = SharedLink::new(store.clone());
    assert_ne!(link.instance(), other.instance());
    assert_ne!(link.owner(OpId(1)), link.owner(OpId(2)));
    assert!(link.owner(OpId(1)).0.starts_with(link.instance()));

    let core = shared(Config::default(), tokens_at(4, "4"));
    let id = rejected_once(&core);
    let work = core.take_work().unwrap();
    let Work::Acquire { op, ttl } = work else {
        panic!("expected the lease")
    };
    store.answer_acquire(Ok(Acquired::Granted(record(4, "4"))));
    run(&link, &core, Work::Acquire { op, ttl });
    assert_eq!(
        store.calls(),
        vec![format!("acquire {} {ttl:?}", link.owner(op).0)]
    );

    assert!(matches!(core.take_work(), Some(Work::Refresh { .. })));
    core.refresh_done(op, Ok(tokens("5")), at(3));
    let publish = core.take_work().unwrap();
    let description = format!("{publish:?}");
    assert!(
        !description.contains("at-5") && !description.contains("rt-5"),
        "{description}"
    );
    store.answer_publish(Ok(Published::Written));
    run(&link, &core, publish);
    assert_eq!(store.calls()[1], "publish 4 at-5 rt-5");
    assert_eq!(token_of(ready(&core, id)), "at-5");

    let release = core.take_work().unwrap();
    run(&link, &core, release);
    assert_eq!(
        store.calls()[2],
        format!("release {} 4 true", link.owner(op).0)
    );

    let login = Work::Login { op: OpId(9) };
    assert!(matches!(
        link.call(login, at(5), wall()),
        Err(Work::Login { .. })
    ));
}

#[test]
fn a_shared_logout_writes_the_tombstone_and_reports_it_durable() {
    let store = Fake::default();
    let link = SharedLink::new(store.clone());
    let core = shared(Config::default(), tokens_at(4, "4"));
    let ticket = core.logout(at(1));
    let clear = core.take_work().unwrap();
    assert!(matches!(clear, Work::ClearStore { logout: Some(_) }));
    store.answer_logout(Ok(Record {
        version: StoreVersion(5),
        content: RecordContent::LoggedOut,
        spent: false,
    }));
    run(&link, &core, clear);
    assert_eq!(store.calls(), vec!["logout".to_owned()]);
    assert!(matches!(
        core.poll_logout(ticket, Waker::noop()),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(core.state(), SessionState::LoggedOut);
}

#[test]
fn a_tombstone_that_could_not_be_written_makes_the_logout_not_durable() {
    let store = Fake::default();
    let link = SharedLink::new(store.clone());
    let core = shared(Config::default(), tokens_at(4, "4"));
    let ticket = core.logout(at(1));
    store.answer_logout(Err(SharedStoreError::Unavailable(
        "connection refused".into(),
    )));
    run(&link, &core, core.take_work().unwrap());
    let Poll::Ready(Err(LogoutError::NotDurable(StoreError::Shared(error)))) =
        core.poll_logout(ticket, Waker::noop())
    else {
        panic!("expected a logout that is not durable, with the shared store's error")
    };
    assert!(matches!(error, SharedStoreError::Unavailable(_)));
    assert!(error.to_string().contains("connection refused"), "{error}");
    // In memory, the logout holds all the same.
    assert_eq!(core.state(), SessionState::LoggedOut);
}

#[test]
fn a_store_call_that_did_not_answer_in_time_is_the_store_being_unavailable() {
    let store = Fake::default();
    let link = SharedLink::new(store.clone());
    let config = Config {
        max_operation_retries: 0,
        ..Config::default()
    };
    let core = shared(config, tokens_at(4, "4"));
    let id = rejected_once(&core);
    let call = link
        .call(core.take_work().unwrap(), at(2), wall())
        .expect("a store call");
    assert_eq!(call.name(), "acquire");
    call.late().report(&core, at(3), wall());
    assert!(store.calls().is_empty(), "the late answer made no call");
    assert_eq!(
        ready(&core, id),
        Step::Done(Outcome::Fail(RequestError::StoreUnavailable {
            attempts: 1
        }))
    );
}

#[test]
fn the_watch_feeds_a_changed_record_and_follows_a_logout_elsewhere() {
    let states = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&states);
    let session = Session::shared(Config::default(), tokens_at(4, "4"), at(0));
    let core = Core::new(
        session,
        Box::new(move |state| heard.lock().unwrap().push(state)),
    );
    let mut watch = StoreWatch::new(Some(record(4, "4")));
    watch.saw(Ok(record(4, "4")), &core, at(1), wall());
    assert_eq!(first_token(&core, 2), "at-4");

    watch.saw(Ok(record(5, "5")), &core, at(3), wall());
    assert_eq!(first_token(&core, 4), "at-5");

    // The store lost its data and another process wrote version 5 again, with other tokens:
    // the version alone would hide the change.
    watch.saw(Ok(record(5, "x")), &core, at(5), wall());
    assert_eq!(first_token(&core, 6), "at-x");

    watch.saw(Err(no_answer()), &core, at(7), wall());
    watch.saw(Err(no_answer()), &core, at(8), wall());
    assert_eq!(
        core.state(),
        SessionState::Active,
        "a failed read changes nothing"
    );

    watch.saw(
        Ok(Record {
            version: StoreVersion(6),
            content: RecordContent::LoggedOut,
            spent: false,
        }),
        &core,
        at(9),
        wall(),
    );
    assert_eq!(core.state(), SessionState::LoggedOut);
    assert_eq!(states.lock().unwrap().as_slice(), [SessionState::LoggedOut]);
}

// ---- helpers ---------------------------------------------------------------------------------

fn at(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn wall() -> UnixTime {
    UnixTime::from_millis(1_000_000)
}

fn tokens(name: &str) -> TokenSet {
    TokenSet::new(AccessToken::new(format!("at-{name}")))
        .with_refresh_token(RefreshToken::new(format!("rt-{name}")))
}

/// What the store holds at `version`: the tokens named `name`, ten minutes to live, unspent.
fn tokens_at(version: u64, name: &str) -> Observed {
    let mut set = tokens(name);
    set.expires_in = Some(Duration::from_secs(600));
    Observed {
        version: StoreVersion(version),
        content: Stored::Tokens(set),
        spent: false,
    }
}

fn tombstone(version: u64) -> Observed {
    Observed {
        version: StoreVersion(version),
        content: Stored::LoggedOut,
        spent: false,
    }
}

/// The stored form of [`tokens_at`].
fn record(version: u64, name: &str) -> Record {
    Record {
        version: StoreVersion(version),
        content: RecordContent::Tokens(Snapshot {
            access_token: AccessToken::new(format!("at-{name}")),
            refresh_token: Some(RefreshToken::new(format!("rt-{name}"))),
            expires_at: Some(UnixTime::from_millis(wall().as_millis() + 600_000)),
        }),
        spent: false,
    }
}

fn shared(config: Config, observed: Observed) -> Core {
    Core::new(Session::shared(config, observed, at(0)), Box::new(|_| {}))
}

/// Submits a request, sends it with the token held, and answers 401: the session needs new
/// tokens. Returns the request.
fn rejected_once(core: &Core) -> RequestId {
    let (id, step) = core.submit(RequestSpec::bearer(), at(1));
    let id = id.unwrap();
    assert!(matches!(step, Some(Step::Send { .. })), "{step:?}");
    assert_eq!(core.respond(id, 1, Verdict::Rejected, at(1)), None);
    id
}

/// The token a fresh request is sent with at once.
fn first_token(core: &Core, now: u64) -> String {
    let (id, step) = core.submit(RequestSpec::bearer(), at(now));
    core.cancel(id.unwrap(), at(now));
    token_of(step.expect("sent at once"))
}

/// The caller's step, which must be there.
fn ready(core: &Core, id: RequestId) -> Step {
    match core.poll_step(id, Waker::noop()) {
        Poll::Ready(step) => step,
        Poll::Pending => panic!("request {id} has no step"),
    }
}

fn token_of(step: Step) -> String {
    match step {
        Step::Send {
            token: Some(token), ..
        } => token.expose_secret().to_owned(),
        other => panic!("expected a send with a token, got {other:?}"),
    }
}

/// Runs `work` as a store call on this thread and reports its answer.
fn run(link: &SharedLink, core: &Core, work: Work) {
    let call = link.call(work, at(10), wall()).expect("a store call");
    call.run().report(core, at(10), wall());
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

/// A scripted store: answers what the test set (once), records every call as a line.
#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Script>>);

#[derive(Default)]
struct Script {
    calls: Vec<String>,
    acquire: Option<Result<Acquired, SharedStoreError>>,
    publish: Option<Result<Published, SharedStoreError>>,
    logout: Option<Result<Record, SharedStoreError>>,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    fn answer_acquire(&self, answer: Result<Acquired, SharedStoreError>) {
        self.0.lock().unwrap().acquire = Some(answer);
    }

    fn answer_publish(&self, answer: Result<Published, SharedStoreError>) {
        self.0.lock().unwrap().publish = Some(answer);
    }

    fn answer_logout(&self, answer: Result<Record, SharedStoreError>) {
        self.0.lock().unwrap().logout = Some(answer);
    }
}

fn unscripted() -> SharedStoreError {
    SharedStoreError::Unavailable("no answer scripted".into())
}

impl SharedStore for Fake {
    fn read(&self) -> Result<Record, SharedStoreError> {
        self.0.lock().unwrap().calls.push("read".into());
        Err(unscripted())
    }

    fn acquire(&self, owner: &LeaseOwner, ttl: Duration) -> Result<Acquired, SharedStoreError> {
        let mut script = self.0.lock().unwrap();
        script.calls.push(format!("acquire {} {ttl:?}", owner.0));
        script.acquire.take().unwrap_or_else(|| Err(unscripted()))
    }

    fn publish(
        &self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> Result<Published, SharedStoreError> {
        let mut script = self.0.lock().unwrap();
        let refresh = snapshot
            .refresh_token
            .as_ref()
            .map_or("-", |token| token.expose_secret());
        script.calls.push(format!(
            "publish {} {} {refresh}",
            expected.0,
            snapshot.access_token.expose_secret()
        ));
        script.publish.take().unwrap_or_else(|| Err(unscripted()))
    }

    fn release(
        &self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
    ) -> Result<(), SharedStoreError> {
        let mut script = self.0.lock().unwrap();
        script
            .calls
            .push(format!("release {} {} {spent}", owner.0, version.0));
        Ok(())
    }

    fn logout(&self) -> Result<Record, SharedStoreError> {
        let mut script = self.0.lock().unwrap();
        script.calls.push("logout".into());
        script.logout.take().unwrap_or_else(|| Err(unscripted()))
    }
}
