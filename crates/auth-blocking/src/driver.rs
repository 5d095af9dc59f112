//! The one thread that owns the [`Session`]: the single-owner loop of the drive contract.
//!
//! Every input reaches it over one `mpsc` channel: requests, their responses, cancels, logout,
//! login, and the results of the login/refresh threads. After every input the loop drains
//! [`Session::poll`], executing each command in order (a `Persist` is written before the `Send`s
//! after it), then re-arms its one timer from [`Session::poll_timeout`] as the `recv_timeout` of
//! the next receive.
//!
//! A refresh runs on a thread of its own under the store's refresh lock: it re-reads the store
//! first and, when another process already rotated the refresh token, hands back the stored
//! tokens instead of calling the server. The lock travels back with the result and is dropped
//! only after the drain that persists the new tokens.
//!
//! Every backend call (login, refresh, revoke) runs on a thread of its own, and the operation
//! thread waits for it only until the operation's deadline ([`bounded`]): whatever the HTTP
//! agent does, the operation ends by its deadline and the refresh lock is released then, while
//! a hung call goes on alone and its late answer is dropped.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use auth_core::{
    AccessToken, Command, Instant, LoginFailure, OpId, Outcome, RefreshFailure, RefreshToken,
    RequestId, RequestSpec, Session, SessionState, Snapshot, TokenSet, Verdict,
};
use tracing::{debug, error, info, trace, warn, Dispatch, Span};

use crate::backend::Backend;
use crate::clock::{wall_now, Clock};
use crate::store::{StoreError, StoreLock, TokenStore};

/// Messages handled between two checks of the timer, so a flood cannot starve it.
const MESSAGE_BUDGET: usize = 64;

/// How much longer than `operation_timeout` a stopping driver waits for its login/refresh
/// threads, so a rotated refresh token is persisted before the driver goes away.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Caller-side name of a request, known before the session assigns its [`RequestId`].
pub(crate) type Ticket = u64;

/// What the driver tells one request: go out (with this token), or finish.
#[derive(Debug)]
pub(crate) enum Step {
    Send {
        id: RequestId,
        attempt: u16,
        token: Option<AccessToken>,
    },
    Done(Outcome),
}

/// Everything the driver hears.
#[derive(Debug)]
pub(crate) enum Msg {
    Submit {
        ticket: Ticket,
        spec: RequestSpec,
        reply: Sender<Step>,
    },
    Response {
        id: RequestId,
        attempt: u16,
        verdict: Verdict,
    },
    Cancel {
        ticket: Ticket,
    },
    /// `done` hears whether the store was cleared.
    Logout {
        done: Sender<Result<(), StoreError>>,
    },
    Login {
        done: Sender<()>,
    },
    Subscribe {
        events: Sender<SessionState>,
    },
    /// A login/refresh/revoke thread finished (every one sends exactly one).
    Operation(OpDone),
    /// Stop once the login/refresh threads are done; `done` hears when. Sent by
    /// `SessionHandle::shutdown`, and with `None` when the last handle and call are gone.
    Shutdown {
        done: Option<Sender<()>>,
    },
}

/// What an operation thread hands back.
#[derive(Debug)]
pub(crate) enum OpDone {
    Login(OpId, Result<TokenSet, LoginFailure>),
    Refresh {
        op: OpId,
        result: Result<TokenSet, RefreshFailure>,
        /// Held until the drain after this result has persisted the tokens.
        lock: Option<StoreLock>,
    },
    /// Revocations, and threads that ended without a result (a panicking backend, a call still
    /// running at its deadline).
    Nothing,
}

/// The session's state for handles: the latest `Notify`, and a condition to wait on.
#[derive(Debug)]
pub(crate) struct StateCell {
    state: Mutex<SessionState>,
    changed: Condvar,
}

/// One request the driver knows about.
struct Waiter {
    ticket: Ticket,
    reply: Sender<Step>,
}

/// What the operation threads share with the driver.
struct Shared<B, S> {
    backend: B,
    store: S,
}

pub(crate) struct Driver<B, S> {
    session: Session,
    shared: Arc<Shared<B, S>>,
    clock: Clock,
    rx: Receiver<Msg>,
    /// For the operation threads to report back.
    tx: Sender<Msg>,
    state: Arc<StateCell>,
    subscribers: Vec<Sender<SessionState>>,
    waiters: HashMap<RequestId, Waiter>,
    tickets: HashMap<Ticket, RequestId>,
    /// Requests whose caller was gone when the session released them: cancelled right after the
    /// drain, never sent.
    abandoned: Vec<RequestId>,
    /// True while a logout drains: its caller hears the result of the `ClearStore`.
    logging_out: bool,
    /// The result of the last `ClearStore` of a logout.
    cleared: Option<Result<(), StoreError>>,
    /// Operation threads that have not reported yet.
    workers: usize,
    operation_timeout: Duration,
    /// Set once a shutdown was asked: when to stop at the latest, and who waits for it.
    stopping: Option<(Instant, Vec<Sender<()>>)>,
    dispatch: Dispatch,
    span: Span,
}

impl<B: Backend, S: TokenStore> Driver<B, S> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        session: Session,
        clock: Clock,
        backend: B,
        store: S,
        rx: Receiver<Msg>,
        tx: Sender<Msg>,
        state: Arc<StateCell>,
        span: Span,
    ) -> Self {
        let operation_timeout = session.config().operation_timeout;
        Driver {
            session,
            shared: Arc::new(Shared { backend, store }),
            clock,
            rx,
            tx,
            state,
            subscribers: Vec::new(),
            waiters: HashMap::new(),
            tickets: HashMap::new(),
            abandoned: Vec::new(),
            logging_out: false,
            cleared: None,
            workers: 0,
            operation_timeout,
            stopping: None,
            dispatch: tracing::dispatcher::get_default(Dispatch::clone),
            span,
        }
    }

    /// Runs until a shutdown is asked (explicitly, or by dropping every handle and call) and the
    /// login/refresh in flight, if any, has finished.
    pub(crate) fn run(mut self) {
        let span = self.span.clone();
        let _entered = span.enter();
        // `Session::new` with `eager_login` already queued a login.
        self.drain();
        loop {
            if self.may_stop() {
                break;
            }
            let deadline = self.next_deadline();
            let message = match deadline {
                Some(at) => {
                    if self.clock.now() >= at {
                        self.fire_timers();
                        continue;
                    }
                    match self.rx.recv_timeout(self.clock.until(at)) {
                        Ok(message) => message,
                        Err(RecvTimeoutError::Timeout) => {
                            self.fire_timers();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match self.rx.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                },
            };
            self.handle(message);
            for _ in 1..MESSAGE_BUDGET {
                match self.rx.try_recv() {
                    Ok(message) => self.handle(message),
                    Err(_) => break,
                }
            }
        }
        if let Some((_, waiting)) = self.stopping.take() {
            for done in waiting {
                let _ = done.send(());
            }
        }
        debug!("session driver stopped");
    }

    /// The session's next deadline, or the stop deadline if that comes first.
    fn next_deadline(&self) -> Option<Instant> {
        let session = self.session.poll_timeout();
        let stop = self.stopping.as_ref().map(|(at, _)| *at);
        match (session, stop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn may_stop(&self) -> bool {
        match &self.stopping {
            Some((at, _)) => self.workers == 0 || self.clock.now() >= *at,
            None => false,
        }
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now();
        trace!(now = now.as_millis(), "timer");
        self.session.handle_timeout(now);
        self.drain();
    }

    fn handle(&mut self, message: Msg) {
        let now = self.clock.now();
        match message {
            Msg::Submit {
                ticket,
                spec,
                reply,
            } => {
                if self.stopping.is_some() {
                    // Dropping `reply` tells the caller the driver stopped.
                    return;
                }
                let id = self.session.submit(spec, now);
                trace!(request = %id, auth = ?spec.auth, replayable = spec.replayable, "submit");
                self.waiters.insert(id, Waiter { ticket, reply });
                self.tickets.insert(ticket, id);
            }
            Msg::Response {
                id,
                attempt,
                verdict,
            } => {
                if !self.waiters.contains_key(&id) {
                    // The caller cancelled; the session already forgot the request.
                    return;
                }
                trace!(request = %id, attempt, ?verdict, "response");
                self.session.handle_response(id, attempt, verdict, now);
            }
            Msg::Cancel { ticket } => {
                let Some(&id) = self.tickets.get(&ticket) else {
                    return;
                };
                debug!(request = %id, "cancelled by the caller");
                self.forget(id);
                self.session.cancel(id, now);
            }
            Msg::Logout { done } => {
                info!("logout");
                self.logging_out = true;
                self.session.logout(now);
                self.drain();
                self.logging_out = false;
                // auth-core emits `ClearStore` on every logout, also when already logged out
                // (so a failed clear is retried); none would mean nothing was asked of the store.
                let _ = done.send(self.cleared.take().unwrap_or(Ok(())));
                return;
            }
            Msg::Login { done } => {
                if self.stopping.is_none() {
                    info!("login requested");
                    self.session.login(now);
                    self.drain();
                }
                let _ = done.send(());
                return;
            }
            Msg::Subscribe { events } => {
                if events.send(self.session.state()).is_ok() {
                    self.subscribers.push(events);
                }
                return;
            }
            Msg::Operation(done) => {
                self.workers = self.workers.saturating_sub(1);
                match done {
                    OpDone::Login(op, result) => self.session.handle_login_result(op, result, now),
                    OpDone::Refresh { op, result, lock } => {
                        self.session.handle_refresh_result(op, result, now);
                        // The tokens are persisted in this drain, under the lock; then it goes.
                        self.drain();
                        drop(lock);
                        return;
                    }
                    OpDone::Nothing => return,
                }
            }
            Msg::Shutdown { done } => {
                let deadline = now
                    .saturating_add(self.operation_timeout)
                    .saturating_add(STOP_GRACE);
                let stopping = self.stopping.get_or_insert_with(|| (deadline, Vec::new()));
                stopping.1.extend(done);
                // Waiting callers hear that the driver stopped (their reply channels close).
                self.waiters.clear();
                self.tickets.clear();
                return;
            }
        }
        self.drain();
    }

    /// Step 2 of the drive contract: execute every command, in order, until `poll` is empty.
    /// Requests found abandoned on the way are cancelled afterwards (a new input), and drained
    /// in turn.
    fn drain(&mut self) {
        loop {
            while let Some(command) = self.session.poll() {
                self.execute(command);
            }
            if self.abandoned.is_empty() {
                return;
            }
            let now = self.clock.now();
            for id in std::mem::take(&mut self.abandoned) {
                debug!(request = %id, "caller gone before its send; cancelled");
                self.forget(id);
                self.session.cancel(id, now);
            }
        }
    }

    fn execute(&mut self, command: Command) {
        match command {
            Command::Send {
                id,
                attempt,
                token,
                generation,
            } => {
                let sent = self.waiters.get(&id).is_some_and(|waiter| {
                    waiter.reply.send(Step::Send { id, attempt, token }).is_ok()
                });
                if sent {
                    trace!(request = %id, attempt, generation = generation.map(|g| g.0), "send");
                } else {
                    self.abandoned.push(id);
                }
            }
            Command::Login { op } => {
                info!(op = op.0, "silent login");
                let shared = Arc::clone(&self.shared);
                let deadline = self.operation_deadline();
                self.spawn("login", op, move || {
                    match bounded("login", deadline, move || shared.backend.login()) {
                        Bounded::Done(result) => OpDone::Login(
                            op,
                            result.map_err(|error| {
                                warn!(op = op.0, %error, "silent login failed");
                                error.failure()
                            }),
                        ),
                        Bounded::Late => {
                            warn!(
                                op = op.0,
                                "silent login still running at its deadline; ignored"
                            );
                            OpDone::Nothing
                        }
                        Bounded::Lost => OpDone::Nothing,
                    }
                });
            }
            Command::Refresh { op, refresh_token } => {
                info!(op = op.0, "refresh");
                let shared = Arc::clone(&self.shared);
                let deadline = self.operation_deadline();
                self.spawn("refresh", op, move || {
                    refresh(&shared, op, refresh_token, deadline)
                });
            }
            Command::Persist(persist) => {
                let snapshot = persist.snapshot(self.clock.now(), wall_now());
                debug!(generation = persist.generation.0, "persist");
                if let Err(error) = self.shared.store.save(&snapshot) {
                    // The core has no input for this: the session goes on with the tokens in
                    // memory; only a restart would lose them.
                    error!(%error, "could not persist the session; it will not survive a restart");
                }
            }
            Command::ClearStore => {
                debug!("clear store");
                let cleared = self.shared.store.clear();
                if let Err(error) = &cleared {
                    if self.logging_out {
                        // The caller of `logout` hears it and decides.
                        warn!(%error, "could not clear the stored session; the logout is not durable");
                    } else {
                        error!(%error, "could not clear the stored session; a restart may restore it");
                    }
                }
                if self.logging_out {
                    self.cleared = Some(cleared);
                }
            }
            Command::Revoke { refresh_token } => {
                debug!("revoke refresh token");
                let shared = Arc::clone(&self.shared);
                let deadline = self.operation_deadline();
                self.spawn("revoke", OpId(0), move || {
                    let call = move || shared.backend.revoke(&refresh_token);
                    if let Bounded::Late = bounded("revoke", deadline, call) {
                        warn!("revocation still running after the operation timeout; left alone");
                    }
                    OpDone::Nothing
                });
            }
            Command::Complete { id, outcome } => {
                trace!(request = %id, ?outcome, "complete");
                if let Some(waiter) = self.forget(id) {
                    let _ = waiter.reply.send(Step::Done(outcome));
                }
            }
            Command::Notify(state) => {
                info!(?state, "session state");
                self.state.set(state);
                self.subscribers
                    .retain(|subscriber| subscriber.send(state).is_ok());
            }
            other => debug!(command = ?other, "command not known to this driver; ignored"),
        }
    }

    /// Runs `work` on a thread of its own, in this driver's tracing context. The thread reports
    /// exactly once, even if `work` panics.
    fn spawn(&mut self, name: &str, op: OpId, work: impl FnOnce() -> OpDone + Send + 'static) {
        self.workers += 1;
        let report = Report {
            tx: self.tx.clone(),
            done: None,
        };
        let dispatch = self.dispatch.clone();
        let span = tracing::info_span!(parent: &self.span, "operation", kind = name, op = op.0);
        let spawned = thread::Builder::new()
            .name(format!("seamless-{name}"))
            .spawn(move || {
                let mut report = report;
                tracing::dispatcher::with_default(&dispatch, || {
                    let _entered = span.enter();
                    report.done = Some(work());
                });
            });
        if let Err(error) = spawned {
            // The thread never ran; its `Report` (dropped with the closure) sent `Nothing`, and
            // the core's operation deadline turns the missing result into a transient failure.
            error!(%error, "could not start a {name} thread");
        }
    }

    /// When the login or refresh the session just started times out: auth-core's operation
    /// deadline, `operation_timeout` after the input that started it (`None`: never).
    fn operation_deadline(&self) -> Option<std::time::Instant> {
        let at = self.session.now().saturating_add(self.operation_timeout);
        self.clock.instant(at)
    }

    /// Forgets the caller of `id` (completed, cancelled, or gone).
    fn forget(&mut self, id: RequestId) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        self.tickets.remove(&waiter.ticket);
        Some(waiter)
    }
}

/// The refresh with cross-process single flight: under the store's lock, re-read the store; if
/// another holder already rotated the refresh token, its tokens are the result, else refresh.
/// Everything ends by `deadline`, the lock released with it: waiting for the lock, and the
/// backend's call, however long that hangs.
fn refresh<B: Backend, S: TokenStore>(
    shared: &Arc<Shared<B, S>>,
    op: OpId,
    refresh_token: RefreshToken,
    deadline: Option<std::time::Instant>,
) -> OpDone {
    let wait = deadline.map_or(Duration::MAX, |deadline| {
        deadline.saturating_duration_since(std::time::Instant::now())
    });
    let lock = match shared.store.refresh_lock(wait) {
        Ok(lock) => lock,
        Err(error @ StoreError::LockTimeout { .. }) => {
            warn!(%error, "another holder kept the refresh lock; counts as a transient failure");
            return OpDone::Refresh {
                op,
                result: Err(RefreshFailure::Transient),
                lock: None,
            };
        }
        Err(error) => {
            warn!(%error, "could not take the refresh lock; refreshing without it");
            None
        }
    };
    if lock.is_some() {
        match shared.store.load() {
            Ok(Some(stored)) if auth_store::rotated_elsewhere(&stored, &refresh_token) => {
                info!("the stored refresh token is newer: another process refreshed; using it");
                return OpDone::Refresh {
                    op,
                    result: Ok(auth_store::stored_tokens(stored, wall_now())),
                    lock,
                };
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "stored session unreadable; refreshing"),
        }
    }
    let call = {
        let shared = Arc::clone(shared);
        move || shared.backend.refresh(&refresh_token)
    };
    match bounded("refresh", deadline, call) {
        Bounded::Done(result) => {
            let result = result.map_err(|error| {
                warn!(op = op.0, %error, "refresh failed");
                error.failure()
            });
            OpDone::Refresh { op, result, lock }
        }
        Bounded::Late => {
            drop(lock);
            warn!(
                op = op.0,
                "refresh still running at its deadline; lock released, its answer will be ignored"
            );
            OpDone::Nothing
        }
        Bounded::Lost => OpDone::Nothing,
    }
}

/// How a backend call bounded by its operation's deadline ended.
enum Bounded<R> {
    /// It returned in time.
    Done(R),
    /// The deadline came first (or had already passed: then the call was not made). A call
    /// under way goes on alone; its answer is dropped.
    Late,
    /// It panicked, or its thread could not start.
    Lost,
}

/// Runs a backend `call` on a thread of its own, in the current tracing context, and waits for
/// it until `deadline` (`None`: no deadline). So whatever the app's HTTP client does (ureq
/// without a timeout waits forever for a server that never answers), the operation ends by its
/// deadline; the thread of a hung call lingers until the client gives up.
fn bounded<R: Send + 'static>(
    name: &str,
    deadline: Option<std::time::Instant>,
    call: impl FnOnce() -> R + Send + 'static,
) -> Bounded<R> {
    let left =
        deadline.map(|deadline| deadline.saturating_duration_since(std::time::Instant::now()));
    if left == Some(Duration::ZERO) {
        // Its answer would be ignored; a refresh would spend a rotating token for nothing.
        return Bounded::Late;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
    let span = Span::current();
    let spawned = thread::Builder::new()
        .name(format!("seamless-{name}-call"))
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _ = tx.send(span.in_scope(call));
            });
        });
    if let Err(error) = spawned {
        error!(%error, "could not start a thread for the {name} call");
        return Bounded::Lost;
    }
    let answer = match left {
        Some(left) => rx.recv_timeout(left),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    match answer {
        Ok(result) => Bounded::Done(result),
        Err(RecvTimeoutError::Timeout) => Bounded::Late,
        // The call panicked (the panic is reported on its thread).
        Err(RecvTimeoutError::Disconnected) => Bounded::Lost,
    }
}

/// Sends an operation thread's result when dropped: after `work` returns, or while a panic
/// unwinds (then with [`OpDone::Nothing`]).
struct Report {
    tx: Sender<Msg>,
    done: Option<OpDone>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let done = self.done.take().unwrap_or(OpDone::Nothing);
        // A stopped driver no longer listens; a refresh lock in `done` is released here.
        let _ = self.tx.send(Msg::Operation(done));
    }
}

impl StateCell {
    pub(crate) fn new(state: SessionState) -> Self {
        StateCell {
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn get(&self) -> SessionState {
        *self.lock()
    }

    /// Waits until `done(state)` holds, at most `timeout`; the state seen last either way.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(SessionState) -> bool,
    ) -> Result<SessionState, SessionState> {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |state| !done(*state))
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = *guard;
        if done(state) {
            Ok(state)
        } else {
            Err(state)
        }
    }

    fn set(&self, state: SessionState) {
        *self.lock() = state;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, SessionState> {
        // Only `set` writes, with a plain assignment: a poisoned lock still holds a whole value.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The channel pair of a new driver.
pub(crate) fn channel() -> (Sender<Msg>, Receiver<Msg>) {
    mpsc::channel()
}

/// The session a driver starts with: restored from the store, or new.
pub(crate) fn restore_or_new(
    config: auth_core::Config,
    stored: Option<Snapshot>,
    now: Instant,
) -> Session {
    match stored {
        Some(snapshot) => Session::restore(config, snapshot, now, wall_now()),
        None => Session::new(config, now),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use auth_core::{AccessToken, UnixTime};

    use super::*;
    use crate::backend::{LoginError, RefreshError};
    use crate::store::FileStore;

    /// Counts refreshes; answers with fixed tokens.
    #[derive(Default)]
    struct Counting {
        refreshes: AtomicUsize,
    }

    impl Backend for Counting {
        fn login(&self) -> Result<TokenSet, LoginError> {
            Ok(TokenSet::new(AccessToken::new("at-login")))
        }

        fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            Ok(TokenSet::new(AccessToken::new("at-refreshed"))
                .with_refresh_token(RefreshToken::new("rt-refreshed")))
        }
    }

    fn stored(refresh: &str) -> Snapshot {
        Snapshot {
            access_token: AccessToken::new("at-stored"),
            refresh_token: Some(RefreshToken::new(refresh)),
            expires_at: Some(UnixTime::from_millis(wall_now().as_millis() + 60_000)),
        }
    }

    fn shared(dir: &std::path::Path) -> Arc<Shared<Counting, FileStore>> {
        Arc::new(Shared {
            backend: Counting::default(),
            store: FileStore::new(dir.join("session.json")),
        })
    }

    /// A deadline `after` from now.
    fn within(after: Duration) -> Option<std::time::Instant> {
        Some(std::time::Instant::now() + after)
    }

    #[test]
    fn a_refresh_token_rotated_by_another_holder_is_adopted_without_a_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        shared.store.save(&stored("rt-newer")).unwrap();
        let done = refresh(
            &shared,
            OpId(7),
            RefreshToken::new("rt-spent"),
            within(Duration::from_secs(1)),
        );
        let OpDone::Refresh {
            op,
            result: Ok(tokens),
            lock: Some(_),
        } = done
        else {
            panic!("expected the stored tokens under the lock, got {done:?}")
        };
        assert_eq!(op, OpId(7));
        assert_eq!(tokens.access_token.expose_secret(), "at-stored");
        assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "rt-newer");
        let left = tokens.expires_in.unwrap();
        assert!(left > Duration::from_secs(50) && left <= Duration::from_secs(60));
        assert_eq!(shared.backend.refreshes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_same_refresh_token_in_the_store_is_refreshed_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        shared.store.save(&stored("rt-current")).unwrap();
        let done = refresh(
            &shared,
            OpId(1),
            RefreshToken::new("rt-current"),
            within(Duration::from_secs(1)),
        );
        let OpDone::Refresh {
            result: Ok(tokens),
            lock: Some(_),
            ..
        } = done
        else {
            panic!("expected a refresh under the lock, got {done:?}")
        };
        assert_eq!(tokens.access_token.expose_secret(), "at-refreshed");
        assert_eq!(shared.backend.refreshes.load(Ordering::SeqCst), 1);
        // While the result travels to the driver, nobody else gets the lock.
        assert!(shared.store.try_lock().unwrap().is_none());
    }

    #[test]
    fn an_empty_or_unreadable_store_does_not_stop_a_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        let token = RefreshToken::new("rt-current");
        let done = refresh(
            &shared,
            OpId(1),
            token.clone(),
            within(Duration::from_secs(1)),
        );
        assert!(matches!(done, OpDone::Refresh { result: Ok(_), .. }));
        drop(done); // releases the lock
        std::fs::write(shared.store.path(), b"{\"version\":1,").unwrap();
        let done = refresh(&shared, OpId(2), token, within(Duration::from_secs(1)));
        assert!(matches!(done, OpDone::Refresh { result: Ok(_), .. }));
        assert_eq!(shared.backend.refreshes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_lock_held_past_the_wait_is_a_transient_failure() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared(dir.path());
        let _held = shared.store.lock(Duration::from_secs(1)).unwrap();
        let done = refresh(
            &shared,
            OpId(1),
            RefreshToken::new("rt"),
            within(Duration::from_millis(20)),
        );
        assert!(matches!(
            done,
            OpDone::Refresh {
                result: Err(RefreshFailure::Transient),
                lock: None,
                ..
            }
        ));
        assert_eq!(shared.backend.refreshes.load(Ordering::SeqCst), 0);
    }
}
