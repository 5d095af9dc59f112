//! The one task that owns the [`Session`]: the single-owner loop of the drive contract.
//!
//! Inputs come from one `mpsc` (requests, their responses, cancels, logout, login) and from the
//! login/refresh tasks in a `JoinSet`; after every input the loop drains [`Session::poll`],
//! executing each command in order (a `Persist` is awaited before the `Send`s after it), then
//! re-arms its one timer from [`Session::poll_timeout`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Command, Instant, LoginFailure, OpId, Outcome, RefreshFailure, RefreshToken, RequestId,
    RequestSpec, Session, SessionState, TokenSet, Verdict,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, trace, warn, Instrument};

use crate::backend::Backend;
use crate::clock::{wall_now, Clock};
use crate::store::{StoreError, TokenStore};

/// Messages handled between two drains in one go before the loop checks its timer again, so a
/// flood of messages cannot starve the timer.
const MESSAGE_BUDGET: usize = 64;

/// Timer firings handled back to back before the loop sleeps at least [`MIN_SLEEP`].
const TIMER_BUDGET: u32 = 64;

/// The shortest sleep once the timer budget is spent.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// How much longer than `operation_timeout` a login/refresh task may run before it is aborted.
/// The core's own deadline decides; this only frees the task of a hung call.
const OPERATION_GRACE: Duration = Duration::from_secs(1);

/// Caller-side name of a request, known before the session assigns its [`RequestId`].
pub(crate) type Ticket = u64;

/// What the driver tells one request: go out (with this token), or finish.
#[derive(Debug)]
pub(crate) enum Step {
    Send {
        id: RequestId,
        attempt: u16,
        token: Option<auth_core::AccessToken>,
    },
    Done(Outcome),
}

/// Everything the handles and calls send to the driver.
#[derive(Debug)]
pub(crate) enum Msg {
    Submit {
        ticket: Ticket,
        spec: RequestSpec,
        reply: oneshot::Sender<Step>,
    },
    Response {
        id: RequestId,
        attempt: u16,
        verdict: Verdict,
        reply: oneshot::Sender<Step>,
    },
    Cancel {
        ticket: Ticket,
    },
    Logout {
        /// The result of the store's clear for this logout.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Login {
        done: oneshot::Sender<()>,
    },
}

/// A finished login/refresh/revoke task.
enum OpDone {
    Login(OpId, Result<TokenSet, LoginFailure>),
    Refresh(OpId, Result<TokenSet, RefreshFailure>),
    /// Timed out or revoked: nothing to feed (the core's deadline already covers a hung call).
    Nothing,
}

/// One request the driver knows about.
struct Waiter {
    ticket: Ticket,
    /// Where the next [`Step`] goes; `None` while the caller is sending it.
    reply: Option<oneshot::Sender<Step>>,
    /// The caller dropped its call: nobody will read an outcome.
    cancelled: bool,
    /// An outcome that arrived while the caller was sending; handed over when the response
    /// comes back. (The core completes an in-flight request only on its response or its cancel,
    /// so this is a safety net.)
    stashed: Option<Outcome>,
}

pub(crate) struct Driver<B, S> {
    session: Session,
    backend: Arc<B>,
    store: Arc<S>,
    clock: Clock,
    rx: mpsc::UnboundedReceiver<Msg>,
    state: watch::Sender<SessionState>,
    waiters: HashMap<RequestId, Waiter>,
    tickets: HashMap<Ticket, RequestId>,
    ops: JoinSet<OpDone>,
    operation_timeout: Duration,
    /// Requests whose caller was gone when the session released them: cancelled right after the
    /// drain, never sent.
    abandoned: Vec<RequestId>,
    /// Set while a logout drains: the first failed clear of the store is kept here for the
    /// caller of `logout()` instead of being logged as an error nobody acts on.
    logout_clear: Option<Result<(), StoreError>>,
}

impl<B: Backend, S: TokenStore> Driver<B, S> {
    pub(crate) fn new(
        session: Session,
        clock: Clock,
        backend: Arc<B>,
        store: Arc<S>,
        rx: mpsc::UnboundedReceiver<Msg>,
        state: watch::Sender<SessionState>,
    ) -> Self {
        let operation_timeout = session.config().operation_timeout;
        Driver {
            session,
            backend,
            store,
            clock,
            rx,
            state,
            waiters: HashMap::new(),
            tickets: HashMap::new(),
            ops: JoinSet::new(),
            operation_timeout,
            abandoned: Vec::new(),
            logout_clear: None,
        }
    }

    /// Runs until every handle and every call is gone.
    pub(crate) async fn run(mut self) {
        // `Session::new` with `eager_login` already queued a login.
        self.drain().await;
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        // Timer firings in a row without sleeping: bounded, so a deadline that never moves (a
        // broken core invariant) cannot spin the task.
        let mut due_in_a_row = 0;
        loop {
            let deadline = self.session.poll_timeout();
            if let Some(at) = deadline {
                if self.clock.now() >= at && due_in_a_row < TIMER_BUDGET {
                    due_in_a_row += 1;
                    self.fire_timers().await;
                    continue;
                }
                if due_in_a_row >= TIMER_BUDGET {
                    error!("the session's deadline does not move after handle_timeout");
                }
                due_in_a_row = 0;
                let at = self
                    .clock
                    .deadline(at)
                    .max(tokio::time::Instant::now() + MIN_SLEEP);
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                message = self.rx.recv() => {
                    let Some(message) = message else { break };
                    self.handle(message).await;
                    for _ in 1..MESSAGE_BUDGET {
                        match self.rx.try_recv() {
                            Ok(message) => self.handle(message).await,
                            Err(_) => break,
                        }
                    }
                }
                Some(done) = self.ops.join_next(), if !self.ops.is_empty() => {
                    match done {
                        Ok(done) => self.operation_done(done).await,
                        // A backend that panicked: the core's deadline turns it into a
                        // transient failure.
                        Err(join) if join.is_panic() => {
                            error!("a login/refresh task panicked; waiting for its deadline");
                        }
                        Err(_) => {}
                    }
                }
                () = &mut sleep, if deadline.is_some() => self.fire_timers().await,
            }
        }
        debug!("all handles dropped; session driver stops");
    }

    async fn fire_timers(&mut self) {
        let now = self.clock.now();
        trace!(now = now.as_millis(), "timer");
        self.session.handle_timeout(now);
        self.drain().await;
    }

    async fn handle(&mut self, message: Msg) {
        let now = self.clock.now();
        match message {
            Msg::Submit {
                ticket,
                spec,
                reply,
            } => {
                let id = self.session.submit(spec, now);
                trace!(request = %id, auth = ?spec.auth, replayable = spec.replayable, "submit");
                self.waiters.insert(
                    id,
                    Waiter {
                        ticket,
                        reply: Some(reply),
                        cancelled: false,
                        stashed: None,
                    },
                );
                self.tickets.insert(ticket, id);
            }
            Msg::Response {
                id,
                attempt,
                verdict,
                reply,
            } => {
                trace!(request = %id, attempt, ?verdict, "response");
                match self.waiters.get_mut(&id) {
                    Some(waiter) => match waiter.stashed.take() {
                        Some(outcome) => {
                            let _ = reply.send(Step::Done(outcome));
                            self.forget(id);
                        }
                        None => waiter.reply = Some(reply),
                    },
                    // The caller cancelled, so nobody waits on `reply`.
                    None => return,
                }
                self.session.handle_response(id, attempt, verdict, now);
            }
            Msg::Cancel { ticket } => {
                let Some(&id) = self.tickets.get(&ticket) else {
                    return;
                };
                if let Some(waiter) = self.waiters.get_mut(&id) {
                    waiter.cancelled = true;
                }
                debug!(request = %id, "cancelled by the caller");
                self.session.cancel(id, now);
            }
            Msg::Logout { done } => {
                info!("logout");
                // The core emits `ClearStore` for every logout, a repeated one included, so the
                // store's answer to this logout's clear is what `logout()` reports.
                self.logout_clear = Some(Ok(()));
                self.session.logout(now);
                self.drain().await;
                let cleared = self.logout_clear.take().unwrap_or(Ok(()));
                let _ = done.send(cleared);
                return;
            }
            Msg::Login { done } => {
                info!("login requested");
                self.session.login(now);
                self.drain().await;
                let _ = done.send(());
                return;
            }
        }
        self.drain().await;
    }

    async fn operation_done(&mut self, done: OpDone) {
        let now = self.clock.now();
        match done {
            OpDone::Login(op, result) => self.session.handle_login_result(op, result, now),
            OpDone::Refresh(op, result) => self.session.handle_refresh_result(op, result, now),
            OpDone::Nothing => return,
        }
        self.drain().await;
    }

    /// Step 2 of the drive contract: execute every command, in order, until `poll` is empty.
    /// Requests found abandoned on the way are cancelled afterwards (a new input), and drained
    /// in turn.
    async fn drain(&mut self) {
        loop {
            while let Some(command) = self.session.poll() {
                self.execute(command).await;
            }
            if self.abandoned.is_empty() {
                return;
            }
            let now = self.clock.now();
            for id in std::mem::take(&mut self.abandoned) {
                debug!(request = %id, "caller gone before its send; cancelled");
                self.session.cancel(id, now);
            }
        }
    }

    async fn execute(&mut self, command: Command) {
        match command {
            Command::Send {
                id,
                attempt,
                token,
                generation,
            } => {
                let Some(waiter) = self.waiters.get_mut(&id) else {
                    return;
                };
                match waiter.reply.take() {
                    Some(reply) if !reply.is_closed() => {
                        trace!(request = %id, attempt, generation = generation.map(|g| g.0), "send");
                        if reply.send(Step::Send { id, attempt, token }).is_err() {
                            // Dropped between the check and the send: still never sent.
                            self.abandoned.push(id);
                        }
                    }
                    _ => self.abandoned.push(id),
                }
            }
            Command::Login { op } => {
                info!(op = op.0, "silent login");
                let backend = Arc::clone(&self.backend);
                let limit = self.operation_timeout.saturating_add(OPERATION_GRACE);
                let task = async move {
                    match tokio::time::timeout(limit, backend.login()).await {
                        Ok(Ok(tokens)) => OpDone::Login(op, Ok(tokens)),
                        Ok(Err(error)) => {
                            warn!(op = op.0, %error, "silent login failed");
                            OpDone::Login(op, Err(error.failure()))
                        }
                        Err(_) => OpDone::Nothing,
                    }
                };
                self.ops
                    .spawn(task.instrument(tracing::info_span!("login", op = op.0)));
            }
            Command::Refresh { op, refresh_token } => {
                info!(op = op.0, "refresh");
                let backend = Arc::clone(&self.backend);
                let limit = self.operation_timeout.saturating_add(OPERATION_GRACE);
                let task = async move {
                    match tokio::time::timeout(limit, backend.refresh(refresh_token)).await {
                        Ok(Ok(tokens)) => OpDone::Refresh(op, Ok(tokens)),
                        Ok(Err(error)) => {
                            let failure = error.failure();
                            if failure == RefreshFailure::InvalidGrant {
                                // The normal end of a refresh token: silent login follows.
                                info!(op = op.0, %error, "refresh token dead");
                            } else {
                                warn!(op = op.0, %error, "refresh failed");
                            }
                            OpDone::Refresh(op, Err(failure))
                        }
                        Err(_) => OpDone::Nothing,
                    }
                };
                self.ops
                    .spawn(task.instrument(tracing::info_span!("refresh", op = op.0)));
            }
            Command::Persist(persist) => {
                let snapshot = persist.snapshot(self.clock.now(), wall_now());
                debug!(generation = persist.generation.0, "persist");
                if let Err(error) = self.store.save(snapshot).await {
                    // The core has no input for this: the session goes on with the tokens in
                    // memory; only a restart would lose them.
                    error!(%error, "could not persist the session; it will not survive a restart");
                }
            }
            Command::ClearStore => {
                debug!("clear store");
                if let Err(error) = self.store.clear().await {
                    match &mut self.logout_clear {
                        // `logout()` returns it: the app decides (see docs/integration.md).
                        Some(cleared @ Ok(())) => {
                            warn!(%error, "could not clear the stored session; logout is not durable");
                            *cleared = Err(error);
                        }
                        _ => error!(%error, "could not clear the stored session"),
                    }
                }
            }
            Command::Revoke { refresh_token } => {
                debug!("revoke refresh token");
                self.spawn_revoke(refresh_token);
            }
            Command::Complete { id, outcome } => {
                trace!(request = %id, ?outcome, "complete");
                self.complete(id, outcome);
            }
            Command::Notify(state) => {
                info!(?state, "session state");
                self.state.send_replace(state);
            }
            other => debug!(command = ?other, "command not known to this driver; ignored"),
        }
    }

    fn spawn_revoke(&mut self, refresh_token: RefreshToken) {
        let backend = Arc::clone(&self.backend);
        let limit = self.operation_timeout.saturating_add(OPERATION_GRACE);
        self.ops.spawn(
            async move {
                let _ = tokio::time::timeout(limit, backend.revoke(refresh_token)).await;
                OpDone::Nothing
            }
            .instrument(tracing::info_span!("revoke")),
        );
    }

    fn complete(&mut self, id: RequestId, outcome: Outcome) {
        let Some(waiter) = self.waiters.get_mut(&id) else {
            return;
        };
        match waiter.reply.take() {
            Some(reply) => {
                let _ = reply.send(Step::Done(outcome));
                self.forget(id);
            }
            None if waiter.cancelled => self.forget(id),
            None => waiter.stashed = Some(outcome),
        }
    }

    fn forget(&mut self, id: RequestId) {
        if let Some(waiter) = self.waiters.remove(&id) {
            self.tickets.remove(&waiter.ticket);
        }
    }
}

/// The instant type is re-exported for the handle's start-up.
pub(crate) fn restore_or_new(
    config: auth_core::Config,
    stored: Option<auth_core::Snapshot>,
    now: Instant,
) -> Session {
    match stored {
        Some(snapshot) => Session::restore(config, snapshot, now, wall_now()),
        None => Session::new(config, now),
    }
}
