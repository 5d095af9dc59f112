//! The driver's one background thread: it carries out the [`Work`] the driver core routes to
//! the runtime, in order, and runs the session's one timer.
//!
//! - `Login`, `Refresh` and `Revoke` run on a thread of their own each (an operation thread),
//!   which reports the result to the core itself: a slow auth server never holds up the
//!   background thread, a persist or the timer.
//! - `Persist` and `ClearStore` run in place, and are reported before the next work is taken.
//!   The requests that will carry new tokens are held by the core until their persist is
//!   reported (durability order at the system level).
//! - Between work, the thread parks until the session's next deadline ([`Core::next_deadline`])
//!   or until the core wakes it ([`Core::poll_background`]: new work, an earlier deadline).
//!
//! Every backend call (login, refresh, revoke) runs on a thread of its own, and the operation
//! thread waits for it only until the operation's deadline ([`bounded`]): whatever the HTTP
//! agent does, the operation ends by its deadline, while a hung call goes on alone and its late
//! answer is dropped.
//!
//! A [`TokenStore`] belongs to one process. Processes that share a session use a shared store
//! ([`SharedLink`]), which has no persist: each of its store calls (lease, publish, release, the
//! logout's tombstone) runs on an operation thread of its own, bounded by the operation deadline
//! like a backend call, and reports its answer to the core (the store being unavailable when
//! none came in time). A watcher thread ([`crate::shared::watch`]) reads the record every watch
//! interval.
//!
//! Once the core is stopped, the thread lets the operations in flight finish (bounded by their
//! deadline plus a grace), carries out the persist or publish of their tokens, and ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::task::Poll;
use std::thread::{self, Thread};
use std::time::Duration;

use auth_core::{Config, LoginFailure, OpId, RefreshFailure, Session, Snapshot, TokenSet};
use auth_driver::{Core, SharedLink, StoreAnswer, StoreCall, Work};
use tracing::{debug, error, info, warn, Dispatch, Span};

use crate::backend::Backend;
use crate::clock::{wall_now, Clock};
use crate::park;
use crate::published::Published;
use crate::shared::{self, Watched};
use crate::store::TokenStore;

/// How much longer than `operation_timeout` a stopping driver waits for its operation threads,
/// so a rotated refresh token is persisted before the driver goes away.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Timer firings in a row that leave a deadline due before the thread naps for a millisecond:
/// a deadline that never moves must not spin a core.
const TIMER_BUDGET: u32 = 64;

/// The background thread's state; [`Background::run`] consumes it.
pub(crate) struct Background<B, S> {
    core: Arc<Core>,
    shared: Arc<Shared<B, S>>,
    clock: Clock,
    published: Arc<Published>,
    operation_timeout: Duration,
    /// Operation threads that have not finished yet.
    in_flight: Arc<AtomicUsize>,
    /// A shared session's store, for the watcher thread.
    watched: Option<Watched>,
    dispatch: Dispatch,
    span: Span,
}

/// What the operation threads share with the background thread.
struct Shared<B, S> {
    backend: B,
    store: S,
    /// The shared store, for a shared session (then `store` is unused).
    link: Option<SharedLink>,
}

/// What an operation thread reports.
#[derive(Debug)]
enum OpDone {
    Login(OpId, Result<TokenSet, LoginFailure>),
    Refresh(OpId, Result<TokenSet, RefreshFailure>),
    /// A shared store's answer (or the store being unavailable, for a call that did not
    /// answer in time).
    Store(StoreAnswer),
    /// Revocations, and operations that ended without a result (a panicking backend, a call
    /// still running at its deadline): the core's operation deadline turns a missing result
    /// into a transient failure.
    Nothing,
}

/// Counts an operation thread as finished and wakes the background thread when dropped: after
/// the thread reported, or while a panic unwinds, or with the closure of a thread that could
/// not start.
struct Finished {
    in_flight: Arc<AtomicUsize>,
    background: Thread,
}

impl<B: Backend, S: TokenStore> Background<B, S> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        core: Arc<Core>,
        backend: B,
        store: S,
        watched: Option<Watched>,
        clock: Clock,
        published: Arc<Published>,
        operation_timeout: Duration,
        dispatch: Dispatch,
        span: Span,
    ) -> Self {
        let link = watched.as_ref().map(|watched| watched.link.clone());
        Background {
            core,
            shared: Arc::new(Shared {
                backend,
                store,
                link,
            }),
            clock,
            published,
            operation_timeout,
            in_flight: Arc::new(AtomicUsize::new(0)),
            watched,
            dispatch,
            span,
        }
    }

    /// Runs until the core is stopped and the operations in flight have finished, then closes
    /// the published events (and wakes the watcher thread, which then ends).
    pub(crate) fn run(mut self) {
        let dispatch = self.dispatch.clone();
        let watcher = self.watched.take().and_then(|watched| {
            shared::spawn_watcher(
                Arc::clone(&self.core),
                watched,
                self.clock,
                self.operation_timeout,
                dispatch.clone(),
                self.span.clone(),
            )
        });
        tracing::dispatcher::with_default(&dispatch, || {
            let _entered = self.span.clone().entered();
            self.drive();
            debug!("session driver stopped");
        });
        self.published.finish();
        if let Some(watcher) = watcher {
            watcher.unpark();
        }
    }

    fn drive(&self) {
        let waker = park::waker_for(thread::current());
        let mut stop_at = None;
        let mut due_in_a_row = 0;
        loop {
            // Read before the work is drained: an operation reports to the core before it
            // counts itself finished, so when this reads zero its work is already queued.
            let mut idle = self.in_flight.load(Ordering::Acquire) == 0;
            while let Some(work) = self.core.take_work() {
                // An operation started now (emitted before any stop: a stopped core starts
                // none) runs to its end, so its tokens are persisted.
                idle &= !self.execute(work);
            }
            if self.core.is_stopped() {
                let now = std::time::Instant::now();
                let at = *stop_at.get_or_insert_with(|| {
                    now.checked_add(self.operation_timeout.saturating_add(STOP_GRACE))
                });
                match at {
                    _ if idle => return,
                    Some(at) if now >= at => {
                        warn!("stopped with an operation still running");
                        return;
                    }
                    Some(at) => thread::park_timeout(at - now),
                    None => thread::park(),
                }
                continue;
            }
            let deadline = self.core.next_deadline();
            if let Some(at) = deadline {
                let now = self.clock.now();
                if now >= at {
                    due_in_a_row += 1;
                    if due_in_a_row > TIMER_BUDGET {
                        debug!(at = at.as_millis(), "a deadline stays due; napping");
                        due_in_a_row = 0;
                        thread::park_timeout(Duration::from_millis(1));
                    }
                    self.core.handle_timeout(now);
                    continue;
                }
            }
            due_in_a_row = 0;
            if let Poll::Ready(()) = self.core.poll_background(&waker) {
                continue;
            }
            match deadline {
                Some(at) => thread::park_timeout(self.clock.until(at)),
                None => thread::park(),
            }
        }
    }

    /// Carries out one piece of work, in the order the session emitted it. Whether it started
    /// an operation thread.
    fn execute(&self, work: Work) -> bool {
        let work = match &self.shared.link {
            Some(link) => match link.call(work, self.clock.now(), wall_now()) {
                Ok(call) => {
                    self.store_call(call);
                    return true;
                }
                Err(work) => work,
            },
            None => work,
        };
        match work {
            Work::Login { op } => {
                info!(op = op.0, "silent login");
                let deadline = self.operation_deadline();
                self.spawn("login", op, move |shared| {
                    let call = {
                        let shared = Arc::clone(shared);
                        move || shared.backend.login()
                    };
                    match bounded("login", deadline, call) {
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
                true
            }
            Work::Refresh { op, refresh_token } => {
                info!(op = op.0, "refresh");
                let deadline = self.operation_deadline();
                self.spawn("refresh", op, move |shared| {
                    let call = {
                        let shared = Arc::clone(shared);
                        move || shared.backend.refresh(&refresh_token)
                    };
                    match bounded("refresh", deadline, call) {
                        Bounded::Done(result) => OpDone::Refresh(
                            op,
                            result.map_err(|error| {
                                warn!(op = op.0, %error, "refresh failed");
                                error.failure()
                            }),
                        ),
                        Bounded::Late => {
                            warn!(
                                op = op.0,
                                "refresh still running at its deadline; its answer will be ignored"
                            );
                            OpDone::Nothing
                        }
                        Bounded::Lost => OpDone::Nothing,
                    }
                });
                true
            }
            Work::Revoke { refresh_token } => {
                debug!("revoke refresh token");
                let deadline = self.operation_deadline();
                self.spawn("revoke", OpId(0), move |shared| {
                    let call = {
                        let shared = Arc::clone(shared);
                        move || shared.backend.revoke(&refresh_token)
                    };
                    if let Bounded::Late = bounded("revoke", deadline, call) {
                        warn!("revocation still running after the operation timeout; left alone");
                    }
                    OpDone::Nothing
                });
                true
            }
            Work::Persist { persist } => {
                debug!(generation = persist.generation.0, "persist");
                let snapshot = persist.snapshot(self.clock.now(), wall_now());
                if let Err(error) = self.shared.store.save(&snapshot) {
                    // The session goes on with the tokens in memory; only a restart would
                    // lose them.
                    error!(%error, "could not persist the session; it will not survive a restart");
                }
                self.core.persisted(persist.generation);
                false
            }
            Work::ClearStore { logout } => {
                debug!("clear store");
                let cleared = self.shared.store.clear();
                if let Err(error) = &cleared {
                    if logout.is_some() {
                        // The caller of `logout` hears it and decides.
                        warn!(%error, "could not clear the stored session; the logout is not durable");
                    } else {
                        error!(%error, "could not clear the stored session; a restart may restore it");
                    }
                }
                self.core.cleared(logout, cleared);
                false
            }
            other => {
                debug!(work = ?other, "work not known to this driver; ignored");
                false
            }
        }
    }

    /// Runs a shared store's `call` on an operation thread, bounded by the operation deadline;
    /// the answer is reported from there (the store being unavailable if none came in time).
    fn store_call(&self, call: StoreCall) {
        let deadline = self.operation_deadline();
        let name = call.name();
        self.spawn(name, call.op().unwrap_or(OpId(0)), move |_| {
            let late = call.late();
            match bounded(name, deadline, move || call.run()) {
                Bounded::Done(answer) => OpDone::Store(answer),
                Bounded::Late => {
                    warn!("the shared store did not answer by the operation deadline");
                    OpDone::Store(late)
                }
                Bounded::Lost => OpDone::Store(late),
            }
        });
    }

    /// Runs `operation` on a thread of its own, in this driver's tracing context; what it
    /// returns is reported to the core from that thread.
    fn spawn(
        &self,
        name: &'static str,
        op: OpId,
        operation: impl FnOnce(&Arc<Shared<B, S>>) -> OpDone + Send + 'static,
    ) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let finished = Finished {
            in_flight: Arc::clone(&self.in_flight),
            background: thread::current(),
        };
        let core = Arc::clone(&self.core);
        let shared = Arc::clone(&self.shared);
        let clock = self.clock;
        let dispatch = self.dispatch.clone();
        let span = tracing::info_span!(parent: &self.span, "operation", kind = name, op = op.0);
        let spawned = thread::Builder::new()
            .name(format!("seamless-{name}"))
            .spawn(move || {
                let _finished = finished;
                tracing::dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| operation(&shared).report(&core, &clock));
                });
            });
        if let Err(error) = spawned {
            // The thread never ran (its `Finished` was dropped with the closure); the core's
            // operation deadline turns the missing result into a transient failure.
            error!(%error, "could not start a {name} thread");
        }
    }

    /// When the operation starting now times out (`None`: never). The core's own deadline for
    /// it was set when the input that started it was fed, a moment earlier.
    fn operation_deadline(&self) -> Option<std::time::Instant> {
        let at = self.clock.now().saturating_add(self.operation_timeout);
        self.clock.instant(at)
    }
}

impl OpDone {
    /// Feeds the result to the core.
    fn report(self, core: &Core, clock: &Clock) {
        match self {
            OpDone::Login(op, result) => core.login_done(op, result, clock.now()),
            OpDone::Refresh(op, result) => core.refresh_done(op, result, clock.now()),
            OpDone::Store(answer) => answer.report(core, clock.now(), wall_now()),
            OpDone::Nothing => {}
        }
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.background.unpark();
    }
}

/// How a backend call bounded by its operation's deadline ended.
pub(crate) enum Bounded<R> {
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
pub(crate) fn bounded<R: Send + 'static>(
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

/// The session a driver starts with: restored from the store, or new.
pub(crate) fn restore_or_new(
    config: Config,
    stored: Option<Snapshot>,
    now: auth_core::Instant,
) -> Session {
    match stored {
        Some(snapshot) => Session::restore(config, snapshot, now, wall_now()),
        None => Session::new(config, now),
    }
}
