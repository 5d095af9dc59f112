//! The one background task of a session: carries out the [`Work`] the driver core queues for the
//! runtime (login, refresh and revoke on tasks of their own; persist and clear in place, in
//! order) and runs the core's one timer. Requests never pass through it: each caller runs its
//! own transitions on the [`Core`] (see [`crate::Call`]).
//!
//! Every backend call ends by the operation's deadline whatever the HTTP client does; a late
//! answer is dropped (the core's own operation deadline has already turned the missing result
//! into a transient failure).
//!
//! A [`TokenStore`] belongs to one process. Processes that share a session use a shared store
//! ([`SharedLink`]), which has no persist: each of its store calls (lease, publish, release, the
//! logout's tombstone) runs on tokio's blocking pool as a task of its own, bounded by the
//! operation deadline, and reports its answer to the core (the store being unavailable when it
//! does not answer in time). A watcher task reads the record every `watch_interval` and feeds
//! the core when it changed.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{OpId, RefreshToken};
use auth_driver::{no_answer, Core, LogoutTicket, SharedLink, StoreCall, StoreWatch, Work};
use auth_store::shared::Record;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, trace, warn, Instrument};

use crate::backend::Backend;
use crate::clock::{wall_now, Clock};
use crate::store::{StoreError, TokenStore};

/// Timer firings handled back to back before the task sleeps at least [`MIN_SLEEP`]: a deadline
/// that does not move after `handle_timeout` (a broken core invariant) cannot spin the task.
const TIMER_BUDGET: u32 = 64;

/// The shortest sleep once the timer budget is spent.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// How much longer than `operation_timeout` a stopped session waits for its operations in
/// flight, so that the tokens of a login or refresh already under way are persisted (a rotated
/// refresh token is not lost).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// What the backend calls share: the app's backend and store, the clock, the deadline.
struct Shared<B, S> {
    core: Arc<Core>,
    backend: B,
    store: S,
    /// The shared store, for a shared session (then `store` is unused).
    link: Option<SharedLink>,
    clock: Clock,
    operation_timeout: Duration,
}

/// A shared session's store: the link, how often to read it, and the record read at start.
pub(crate) struct Watched {
    pub(crate) link: SharedLink,
    /// `Duration::ZERO`: no periodic read.
    pub(crate) interval: Duration,
    /// The record read at start (`None`: the store could not be read).
    pub(crate) start: Option<Record>,
}

/// Whether the background task has ended (after [`Core::stop`], once the operations in flight
/// finished and their tokens were persisted, or at the stop deadline).
pub(crate) type Finished = watch::Receiver<bool>;

/// Spawns the background task of `core` on the current runtime (and, for a shared session,
/// its watcher).
pub(crate) fn spawn<B: Backend, S: TokenStore>(
    core: Arc<Core>,
    backend: B,
    store: S,
    watched: Option<Watched>,
    clock: Clock,
    operation_timeout: Duration,
    span: tracing::Span,
) -> Finished {
    let (finished, finished_rx) = watch::channel(false);
    let watcher = watched
        .as_ref()
        .filter(|watched| !watched.interval.is_zero())
        .map(|watched| {
            let task = watch_store(
                Arc::clone(&core),
                watched.link.clone(),
                StoreWatch::new(watched.start.clone()),
                watched.interval,
                clock,
                operation_timeout,
            );
            tokio::spawn(task.instrument(tracing::info_span!(parent: &span, "watch")))
        });
    let shared = Arc::new(Shared {
        core,
        backend,
        store,
        link: watched.map(|watched| watched.link),
        clock,
        operation_timeout,
    });
    tokio::spawn(
        async move {
            run(shared, finished).await;
            if let Some(watcher) = watcher {
                watcher.abort();
            }
        }
        .instrument(span),
    );
    finished_rx
}

/// The loop: take every work, arm the one timer, wait. Once the core is stopped: let the
/// operations in flight finish (bounded by their deadline plus a grace), carry out the persist
/// or publish of their tokens, and end.
async fn run<B: Backend, S: TokenStore>(shared: Arc<Shared<B, S>>, finished: watch::Sender<bool>) {
    let core = Arc::clone(&shared.core);
    let clock = shared.clock;
    let mut ops = JoinSet::new();
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut due_in_a_row = 0;
    let mut stop_at = None;
    loop {
        while let Some(work) = core.take_work() {
            execute(&shared, &mut ops, work).await;
        }
        let stopped = core.is_stopped();
        let deadline = if stopped {
            let now = tokio::time::Instant::now();
            let grace = shared.operation_timeout.saturating_add(STOP_GRACE);
            let at = *stop_at.get_or_insert_with(|| now.checked_add(grace).unwrap_or(now));
            if ops.is_empty() {
                break;
            }
            if now >= at {
                warn!("stopped with an operation still running; its result is dropped");
                break;
            }
            sleep.as_mut().reset(at);
            None
        } else {
            core.next_deadline()
        };
        if let Some(at) = deadline {
            if clock.now() >= at && due_in_a_row < TIMER_BUDGET {
                due_in_a_row += 1;
                core.handle_timeout(clock.now());
                continue;
            }
            if due_in_a_row >= TIMER_BUDGET {
                error!("the session's deadline does not move after handle_timeout");
            }
            due_in_a_row = 0;
            let wake = clock
                .deadline(at)
                .max(tokio::time::Instant::now() + MIN_SLEEP);
            sleep.as_mut().reset(wake);
        }
        tokio::select! {
            // Ready at once when stopped: then only the operations and the stop deadline count.
            () = poll_fn(|cx| core.poll_background(cx.waker())), if !stopped => {}
            () = &mut sleep, if deadline.is_some() || stopped => {
                if !stopped {
                    let now = clock.now();
                    trace!(now = now.as_millis(), "timer");
                    core.handle_timeout(now);
                }
            }
            Some(joined) = ops.join_next(), if !ops.is_empty() => {
                if let Err(join) = joined {
                    if join.is_panic() {
                        // The core's operation deadline turns the missing result into a
                        // transient failure.
                        error!("a login/refresh/revoke task panicked; waiting for its deadline");
                    }
                }
            }
        }
    }
    // Tasks still running (only past the stop deadline) are aborted with the set.
    drop(ops);
    debug!("session driver stopped");
    finished.send_replace(true);
}

/// Carries out one work: starts an operation or a shared store's call, or persists / clears a
/// local store in place.
async fn execute<B: Backend, S: TokenStore>(
    shared: &Arc<Shared<B, S>>,
    ops: &mut JoinSet<()>,
    work: Work,
) {
    let starts = matches!(
        work,
        Work::Login { .. } | Work::Refresh { .. } | Work::Acquire { .. }
    );
    if starts && shared.core.is_stopped() {
        // Stopped: nothing new starts; only what was in flight is finished and persisted.
        debug!(?work, "stopped; not started");
        return;
    }
    let work = match &shared.link {
        Some(link) => match link.call(work, shared.clock.now(), wall_now()) {
            Ok(call) => return store_call(shared, ops, call),
            Err(work) => work,
        },
        None => work,
    };
    match work {
        Work::Login { op } => {
            info!(op = op.0, "silent login");
            let task = login(Arc::clone(shared), op);
            ops.spawn(task.instrument(tracing::info_span!("login", op = op.0)));
        }
        Work::Refresh { op, refresh_token } => {
            info!(op = op.0, "refresh");
            let task = refresh(Arc::clone(shared), op, refresh_token);
            ops.spawn(task.instrument(tracing::info_span!("refresh", op = op.0)));
        }
        Work::Revoke { refresh_token } => {
            debug!("revoke refresh token");
            let shared = Arc::clone(shared);
            let task = async move {
                let call = shared.backend.revoke(&refresh_token);
                if tokio::time::timeout(shared.operation_timeout, call)
                    .await
                    .is_err()
                {
                    warn!("revocation still running at the operation deadline; abandoned");
                }
            };
            ops.spawn(task.instrument(tracing::info_span!("revoke")));
        }
        Work::Persist { persist } => {
            let snapshot = persist.snapshot(shared.clock.now(), wall_now());
            debug!(generation = persist.generation.0, "persist");
            if let Err(error) = shared.store.save(snapshot).await {
                // The session goes on with the tokens in memory; only a restart would lose them.
                error!(%error, "could not persist the session; it will not survive a restart");
            }
            shared.core.persisted(persist.generation);
        }
        Work::ClearStore { logout } => {
            debug!("clear store");
            let cleared = shared.store.clear().await;
            if let Err(error) = &cleared {
                report_clear_failure(error, logout);
            }
            shared.core.cleared(logout, cleared);
        }
        // A work this release does not know: nothing to do.
        other => debug!(work = ?other, "work not known to this driver; ignored"),
    }
}

/// Runs a shared store's `call` on the blocking pool as an operation of its own, bounded by the
/// operation deadline, and reports its answer (the store being unavailable if none came in time).
fn store_call<B: Backend, S: TokenStore>(
    shared: &Arc<Shared<B, S>>,
    ops: &mut JoinSet<()>,
    call: StoreCall,
) {
    let span = tracing::debug_span!("store", call = call.name(), op = call.op().map(|op| op.0));
    let shared = Arc::clone(shared);
    let task = async move {
        let late = call.late();
        let blocking = tokio::task::spawn_blocking(move || call.run());
        let answer = match tokio::time::timeout(shared.operation_timeout, blocking).await {
            Ok(Ok(answer)) => answer,
            // The runtime is shutting down and never ran the call: nothing went wrong.
            Ok(Err(join)) if join.is_cancelled() => {
                debug!("a shared store call was cancelled with the runtime; counts as unavailable");
                late
            }
            Ok(Err(join)) => {
                error!(%join, "a shared store call panicked; counts as the store being unavailable");
                late
            }
            Err(_) => {
                warn!("the shared store did not answer by the operation deadline");
                late
            }
        };
        answer.report(&shared.core, shared.clock.now(), wall_now());
    };
    ops.spawn(task.instrument(span));
}

/// Reads the shared record every `interval` (each read bounded by the operation timeout) and
/// feeds the core when it changed, until the core stops (the background task also aborts it
/// when it ends).
async fn watch_store(
    core: Arc<Core>,
    link: SharedLink,
    mut watch: StoreWatch,
    interval: Duration,
    clock: Clock,
    operation_timeout: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        if core.is_stopped() {
            return;
        }
        let reader = link.clone();
        let read = tokio::task::spawn_blocking(move || reader.read());
        let read = match tokio::time::timeout(operation_timeout, read).await {
            Ok(Ok(read)) => read,
            _ => Err(no_answer()),
        };
        watch.saw(read, &core, clock.now(), wall_now());
    }
}

fn report_clear_failure(error: &StoreError, logout: Option<LogoutTicket>) {
    match logout {
        // `logout()` returns it: the app decides (see docs/integration.md).
        Some(_) => warn!(%error, "could not clear the stored session; the logout is not durable"),
        None => error!(%error, "could not clear the stored session; a restart may restore it"),
    }
}

/// A silent login bounded by the operation deadline; reports to the core itself.
async fn login<B: Backend, S: TokenStore>(shared: Arc<Shared<B, S>>, op: OpId) {
    let result = match tokio::time::timeout(shared.operation_timeout, shared.backend.login()).await
    {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(error)) => {
            warn!(op = op.0, %error, "silent login failed");
            Err(error.failure())
        }
        Err(_) => {
            warn!(
                op = op.0,
                "silent login still running at its deadline; ignored"
            );
            return;
        }
    };
    shared.core.login_done(op, result, shared.clock.now());
}

/// A refresh bounded by the operation deadline; reports to the core itself.
async fn refresh<B: Backend, S: TokenStore>(
    shared: Arc<Shared<B, S>>,
    op: OpId,
    refresh_token: RefreshToken,
) {
    let call = shared.backend.refresh(&refresh_token);
    let result = match tokio::time::timeout(shared.operation_timeout, call).await {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(error)) => {
            // The error's text says which failure it is; the session decides what follows.
            warn!(op = op.0, %error, "refresh failed");
            Err(error.failure())
        }
        Err(_) => {
            warn!(
                op = op.0,
                "refresh still running at its deadline; its answer is ignored"
            );
            return;
        }
    };
    shared.core.refresh_done(op, result, shared.clock.now());
}
