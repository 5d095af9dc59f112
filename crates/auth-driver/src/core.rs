//! [`Core`]: the session behind a short lock, the table of waiting callers, and the routing of
//! every command the session emits.
//!
//! quinn's shape: every caller runs its own transitions under the lock (submit, respond, cancel)
//! and gets its own next step back at once when the session has one for it; only what the
//! session asks of the runtime (login, refresh, revoke, persist, clear, a shared store's lease,
//! publish and release, the one timer) is queued for a background task or thread. On the happy path (`Active`, token usable) a request never
//! waits for another task: `submit` returns its `Send`, `respond` with an accepted answer
//! returns its `Done`.
//!
//! Every auth decision stays in `auth-core`. The core only routes, with one rule of its own, for
//! durability (P7 at the system level): a `Send` carrying a token generation whose `Persist` the
//! runtime has not reported done yet is held back and released by [`Core::persisted`]. (With a
//! single owner the driver executed `Persist` before the `Send`s after it; with many callers
//! draining commands, the persist runs in the background while another caller may already get
//! the new token.) A shared session needs no such gate: it holds its requests itself until the
//! store answers its `Publish`.
//!
//! Shutdown ([`Core::stop`]) starts nothing new (`Login`, `Refresh`, `Acquire` are dropped) but
//! still finishes what was in flight: the results of a login or refresh, their persist or
//! publish, the release of a lease, and the release of a lease granted after the stop.
//!
//! Counting ([`Core::stats`], and the metrics of [`crate::stats`]) happens here too, where every
//! command and result passes anyway, so both drivers count the same events the same way.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::task::{Poll, Waker};

use auth_core::{
    Command, Generation, Instant, LeaseResult, LoginFailure, Observed, OpId, PublishResult,
    RefreshFailure, RequestId, RequestSpec, Session, SessionState, TokenSet, Verdict,
};
use auth_store::StoreError;
use tracing::debug;

use crate::stats::{Kind, Meter, Stats};
use crate::sync::{lock, Mutex};
use crate::work::{LogoutError, LogoutTicket, Step, Work};

/// Called with every state change of the session, in order, under the core's lock: keep it
/// short and never call back into the [`Core`] from it (publish to a `watch`, a condition
/// variable, a list of event channels).
pub type StateHook = Box<dyn Fn(SessionState) + Send + Sync + 'static>;

/// The runtime-agnostic driver core shared by `auth-tokio` and `auth-blocking`; see the
/// [crate documentation](crate). Share it in an `Arc`.
pub struct Core {
    inner: Mutex<Inner>,
    on_state: StateHook,
}

struct Inner {
    session: Session,
    /// Keyed with a fixed hasher: ids are counters, not input, and a fixed hasher keeps the
    /// order [`Core::stop`] wakes in the same from run to run (loom replays executions and
    /// needs every run of one schedule to do the same; std's random keys change per map).
    callers: HashMap<RequestId, Caller, BuildHasherDefault<DefaultHasher>>,
    work: VecDeque<Work>,
    /// The newest generation whose `Persist` was routed to the runtime and not yet reported.
    persisting: Option<Generation>,
    /// `Send`s held until the persist of their generation is reported.
    held: VecDeque<(RequestId, Generation, Step)>,
    /// The background task or thread, when it waits for work or for an earlier deadline.
    background: Option<Waker>,
    /// The deadline the runtime's timer is armed for (from [`Core::next_deadline`]).
    armed: Option<Instant>,
    /// The ticket of the logout whose drain is running, for its `ClearStore`.
    logout: Option<LogoutTicket>,
    next_logout: u64,
    logouts: BTreeMap<LogoutTicket, LogoutWait>,
    stopped: bool,
    /// Requests waiting for the session (not sent, not finished), since when: for the wait
    /// time in [`Stats`]. Empty on the happy path, where every step comes back to its caller
    /// at once.
    waiting: HashMap<RequestId, Instant, BuildHasherDefault<DefaultHasher>>,
    meter: Meter,
}

/// Where one caller is.
enum Caller {
    /// Waiting for its next step (or sending: then nothing is routed to it until it answers).
    Waiting(Option<Waker>),
    /// A step arrived while the caller was not looking; its next poll takes it.
    Ready(Step),
}

enum LogoutWait {
    Pending(Option<Waker>),
    Cleared(Result<(), LogoutError>),
}

/// What a transition leaves to do once the lock is released.
#[derive(Default)]
struct Wakes(Vec<Waker>);

impl Wakes {
    fn run(self) {
        for waker in self.0 {
            waker.wake();
        }
    }
}

impl Core {
    /// A core around `session` (new or restored). Commands the session already queued (an
    /// eager login) become work at once. `on_state` hears every state change. Its metrics
    /// carry no `session` label; see [`Core::named`].
    pub fn new(session: Session, on_state: StateHook) -> Self {
        Core::named(session, on_state, None)
    }

    /// Like [`Core::new`], with the session's `name` (chosen by the app, e.g. a tenant or a
    /// service; keep the set of names small) as the `session` label of its metrics. The
    /// metric handles are registered with the recorder installed now.
    pub fn named(session: Session, on_state: StateHook, name: Option<&str>) -> Self {
        let core = Core {
            inner: Mutex::new(Inner {
                session,
                callers: HashMap::default(),
                work: VecDeque::new(),
                persisting: None,
                held: VecDeque::new(),
                background: None,
                armed: None,
                logout: None,
                next_logout: 1,
                logouts: BTreeMap::new(),
                stopped: false,
                waiting: HashMap::default(),
                meter: Meter::new(name),
            }),
            on_state,
        };
        let mut wakes = Wakes::default();
        {
            let mut inner = lock(&core.inner);
            inner.route(None, &core.on_state, &mut wakes);
        }
        wakes.run();
        core
    }

    /// The app issues a request. Returns its id and, when the session decided at once (sent it
    /// with a usable token, or failed it), its first step; otherwise poll with
    /// [`Core::poll_step`].
    pub fn submit(&self, spec: RequestSpec, now: Instant) -> (Option<RequestId>, Option<Step>) {
        let mut wakes = Wakes::default();
        let result = {
            let mut inner = lock(&self.inner);
            if inner.stopped {
                (None, Some(Step::Stopped))
            } else {
                let id = inner.session.submit(spec, now);
                inner.meter.submitted();
                inner.callers.insert(id, Caller::Waiting(None));
                let mine = inner.route(Some(id), &self.on_state, &mut wakes);
                if mine.is_none() {
                    inner.waiting.insert(id, now);
                }
                (Some(id), mine)
            }
        };
        wakes.run();
        result
    }

    /// The caller's next step, or `Pending` with `waker` registered to be woken when it comes.
    pub fn poll_step(&self, id: RequestId, waker: &Waker) -> Poll<Step> {
        let mut inner = lock(&self.inner);
        let stopped = inner.stopped;
        match inner.callers.get_mut(&id) {
            Some(Caller::Ready(_)) => match inner.callers.remove(&id) {
                Some(Caller::Ready(step)) => {
                    if matches!(step, Step::Send { .. }) {
                        inner.callers.insert(id, Caller::Waiting(None));
                    }
                    Poll::Ready(step)
                }
                _ => Poll::Ready(Step::Stopped),
            },
            Some(Caller::Waiting(slot)) if !stopped => {
                match slot {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *slot = Some(waker.clone()),
                }
                Poll::Pending
            }
            // Stopped, or a request the core no longer knows.
            _ => Poll::Ready(Step::Stopped),
        }
    }

    /// The API answered send `attempt` of request `id`. An accepted answer returns
    /// `Step::Done(Deliver)` at once (auth-core completes an accepted answer to the current
    /// send immediately); a rejected one may return the resend, or `None`: poll for it.
    pub fn respond(
        &self,
        id: RequestId,
        attempt: u16,
        verdict: Verdict,
        now: Instant,
    ) -> Option<Step> {
        let mut wakes = Wakes::default();
        let mine = {
            let mut inner = lock(&self.inner);
            if inner.stopped {
                inner.callers.remove(&id);
                return Some(Step::Stopped);
            }
            inner.session.handle_response(id, attempt, verdict, now);
            let mine = inner.route(Some(id), &self.on_state, &mut wakes);
            // No step yet: the request waits (for a refresh) from now.
            if mine.is_none() && matches!(inner.callers.get(&id), Some(Caller::Waiting(_))) {
                inner.waiting.insert(id, now);
            }
            mine
        };
        wakes.run();
        mine
    }

    /// The caller gave up on `id` (dropped its call, or its wait ran out): it is never sent
    /// after this, and nobody hears its outcome.
    pub fn cancel(&self, id: RequestId, now: Instant) {
        let mut wakes = Wakes::default();
        {
            let mut inner = lock(&self.inner);
            if inner.callers.remove(&id).is_none() {
                return;
            }
            inner.waiting.remove(&id);
            inner.held.retain(|(held, _, _)| *held != id);
            inner.session.cancel(id, now);
            // The session's `Complete(Cancelled)` finds no caller: nobody listens.
            inner.route(None, &self.on_state, &mut wakes);
        }
        wakes.run();
    }

    /// The user logs out. Returns the ticket under which [`Core::poll_logout`] reports the
    /// store's clear for this logout.
    pub fn logout(&self, now: Instant) -> LogoutTicket {
        let mut wakes = Wakes::default();
        let ticket = {
            let mut inner = lock(&self.inner);
            let ticket = LogoutTicket(inner.next_logout);
            inner.next_logout += 1;
            if inner.stopped {
                let stopped = Err(LogoutError::Stopped);
                inner.logouts.insert(ticket, LogoutWait::Cleared(stopped));
                return ticket;
            }
            inner.logouts.insert(ticket, LogoutWait::Pending(None));
            inner.logout = Some(ticket);
            inner.session.logout(now);
            inner.route(None, &self.on_state, &mut wakes);
            inner.logout = None;
            ticket
        };
        wakes.run();
        ticket
    }

    /// The logout `ticket` stopped waiting (its future was dropped, or its wait ran out): its
    /// clear still runs, but nobody will read the result.
    pub fn forget_logout(&self, ticket: LogoutTicket) {
        lock(&self.inner).logouts.remove(&ticket);
    }

    /// How many logouts wait for (or have not yet read) the result of their clear.
    pub fn logouts(&self) -> usize {
        lock(&self.inner).logouts.len()
    }

    /// Whether the store was cleared for logout `ticket`: `Pending` (with `waker` registered)
    /// until the runtime reports it with [`Core::cleared`].
    pub fn poll_logout(
        &self,
        ticket: LogoutTicket,
        waker: &Waker,
    ) -> Poll<Result<(), LogoutError>> {
        let mut inner = lock(&self.inner);
        let stopped = inner.stopped;
        match inner.logouts.get_mut(&ticket) {
            Some(LogoutWait::Pending(_)) if stopped => {
                inner.logouts.remove(&ticket);
                Poll::Ready(Err(LogoutError::Stopped))
            }
            Some(LogoutWait::Pending(slot)) => {
                *slot = Some(waker.clone());
                Poll::Pending
            }
            Some(LogoutWait::Cleared(_)) => match inner.logouts.remove(&ticket) {
                Some(LogoutWait::Cleared(result)) => Poll::Ready(result),
                _ => Poll::Ready(Err(LogoutError::Stopped)),
            },
            None => Poll::Ready(Err(LogoutError::Stopped)),
        }
    }

    /// The app asks for a login.
    pub fn login(&self, now: Instant) {
        self.input(|inner| inner.session.login(now));
    }

    /// A silent login finished. Heard after [`Core::stop`] too, so the tokens of an operation
    /// that was in flight are persisted (nothing else happens once stopped).
    pub fn login_done(&self, op: OpId, result: Result<TokenSet, LoginFailure>, now: Instant) {
        self.finish(|inner| {
            inner
                .meter
                .login_done(op, result.as_ref().err().copied(), now);
            inner.session.handle_login_result(op, result, now);
        });
    }

    /// A refresh finished. Heard after [`Core::stop`] too, like [`Core::login_done`].
    pub fn refresh_done(&self, op: OpId, result: Result<TokenSet, RefreshFailure>, now: Instant) {
        self.finish(|inner| {
            inner
                .meter
                .refresh_done(op, result.as_ref().err().copied(), now);
            inner.session.handle_refresh_result(op, result, now);
        });
    }

    /// Shared sessions: the store answered [`Work::Acquire`] of `op`. Heard after
    /// [`Core::stop`] too, only to give back a lease granted after the stop: a stopped driver
    /// starts no operation (as for `Login`/`Refresh`), and a lease it kept would hold every other
    /// process off until its ttl ran out. The grant is released as auth-core releases a grant
    /// for an operation that no longer waits for it: with the spent mark the record had before
    /// the grant, so a mark set only by this grant is cleared.
    pub fn lease_done(&self, op: OpId, result: LeaseResult, now: Instant) {
        let mut wakes = Wakes::default();
        {
            let mut inner = lock(&self.inner);
            inner.meter.lease(&result);
            if inner.stopped {
                if let LeaseResult::Granted(observed) = result {
                    inner.work.push_back(Work::Release {
                        op,
                        version: observed.version,
                        spent: observed.spent,
                    });
                    wakes.0.extend(inner.background.take());
                }
            } else {
                inner.session.handle_lease(op, result, now);
                inner.route(None, &self.on_state, &mut wakes);
            }
        }
        wakes.run();
    }

    /// Shared sessions: the store answered [`Work::Publish`] of `op`. Heard after
    /// [`Core::stop`] too, so the lease of an operation that was in flight is given back.
    pub fn published(&self, op: OpId, result: PublishResult, now: Instant) {
        self.finish(|inner| {
            inner.meter.published(&result);
            inner.session.handle_published(op, result, now);
        });
    }

    /// Shared sessions: the driver read the store's record and it changed (a periodic read, or
    /// the answer to this session's own logout): a logout or new tokens of another process
    /// reach this one. Ignored once stopped.
    pub fn store_changed(&self, observed: Observed, now: Instant) {
        self.input(|inner| inner.session.handle_store_changed(observed, now));
    }

    /// The runtime's timer fired: runs every deadline due at `now`.
    pub fn handle_timeout(&self, now: Instant) {
        self.input(|inner| inner.session.handle_timeout(now));
    }

    /// The runtime finished the persist of `generation` (successfully or not: a failed persist
    /// is logged by the runtime, and the tokens are used anyway; only a restart would lose
    /// them). Releases the requests held for it.
    pub fn persisted(&self, generation: Generation) {
        let mut wakes = Wakes::default();
        {
            let mut inner = lock(&self.inner);
            if inner
                .persisting
                .is_some_and(|pending| pending <= generation)
            {
                inner.persisting = None;
            }
            inner.release_held(&mut wakes);
        }
        wakes.run();
    }

    /// The runtime finished a `ClearStore`; `result` goes to the logout waiting for it.
    pub fn cleared(&self, logout: Option<LogoutTicket>, result: Result<(), StoreError>) {
        let Some(ticket) = logout else { return };
        let waker = {
            let mut inner = lock(&self.inner);
            match inner.logouts.get_mut(&ticket) {
                Some(wait @ LogoutWait::Pending(_)) => {
                    let result = result.map_err(LogoutError::NotDurable);
                    match core::mem::replace(wait, LogoutWait::Cleared(result)) {
                        LogoutWait::Pending(waker) => waker,
                        LogoutWait::Cleared(_) => None,
                    }
                }
                _ => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The next work for the runtime, in the order the session emitted it.
    pub fn take_work(&self) -> Option<Work> {
        lock(&self.inner).work.pop_front()
    }

    /// For the background task or thread: `Ready` when there is work, or when the session's
    /// next deadline moved since [`Core::next_deadline`] armed the timer; otherwise `Pending`
    /// with `waker` registered.
    pub fn poll_background(&self, waker: &Waker) -> Poll<()> {
        let mut inner = lock(&self.inner);
        if !inner.work.is_empty() || inner.deadline_moved() || inner.stopped {
            inner.background = None;
            Poll::Ready(())
        } else {
            inner.background = Some(waker.clone());
            Poll::Pending
        }
    }

    /// The session's earliest deadline; the runtime arms its one timer for it. Recorded, so a
    /// transition that brings it forward wakes the background.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut inner = lock(&self.inner);
        let at = inner.session.poll_timeout();
        inner.armed = at;
        at
    }

    /// Stops the core: every waiting caller and every pending logout gets `Stopped`, later
    /// calls too, and the background is woken to finish.
    pub fn stop(&self) {
        let mut wakes = Wakes::default();
        {
            let mut inner = lock(&self.inner);
            inner.stopped = true;
            inner.held.clear();
            inner.waiting.clear();
            for caller in inner.callers.values_mut() {
                if let Caller::Waiting(waker) = caller {
                    wakes.0.extend(waker.take());
                    *caller = Caller::Ready(Step::Stopped);
                }
            }
            for wait in inner.logouts.values_mut() {
                if let LogoutWait::Pending(waker) = wait {
                    wakes.0.extend(waker.take());
                }
            }
            wakes.0.extend(inner.background.take());
        }
        wakes.run();
    }

    /// Whether [`Core::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        lock(&self.inner).stopped
    }

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        lock(&self.inner).session.state()
    }

    /// Requests outstanding in the session (waiting or in flight).
    pub fn outstanding(&self) -> usize {
        lock(&self.inner).session.outstanding()
    }

    /// What the session did so far, and where it stands: see [`Stats`].
    pub fn stats(&self) -> Stats {
        let inner = lock(&self.inner);
        let session = &inner.session;
        inner.meter.stats(
            session.state(),
            session.queued(),
            session.outstanding(),
            session.is_circuit_open(),
        )
    }

    /// Callers the core keeps a slot for (waiting, in flight, or with a step not taken yet).
    /// Falls back to zero once every request finished and was taken or cancelled; a leak check.
    pub fn callers(&self) -> usize {
        lock(&self.inner).callers.len()
    }

    /// Feeds one input and routes what follows. Ignored once stopped.
    fn input(&self, feed: impl FnOnce(&mut Inner)) {
        self.feed(feed, false);
    }

    /// Like [`Core::input`], but also once stopped: the result of an operation that was in
    /// flight, whose tokens must still be persisted (a stopped core's routing starts nothing
    /// and tells no caller anything).
    fn finish(&self, feed: impl FnOnce(&mut Inner)) {
        self.feed(feed, true);
    }

    fn feed(&self, feed: impl FnOnce(&mut Inner), once_stopped: bool) {
        let mut wakes = Wakes::default();
        {
            let mut inner = lock(&self.inner);
            if inner.stopped && !once_stopped {
                return;
            }
            feed(&mut inner);
            inner.route(None, &self.on_state, &mut wakes);
        }
        wakes.run();
    }
}

impl Inner {
    /// Drains the session's commands: a step for `me` is returned, steps for other callers are
    /// stored and their wakers collected, work is queued for the runtime.
    fn route(
        &mut self,
        me: Option<RequestId>,
        on_state: &StateHook,
        wakes: &mut Wakes,
    ) -> Option<Step> {
        let mut mine = None;
        let mut new_work = false;
        while let Some(command) = self.session.poll() {
            match command {
                // Stopped: every caller already heard `Stopped`, and no operation starts; only
                // the persist or clear of an operation that was in flight remains to do.
                Command::Send { .. }
                | Command::Complete { .. }
                | Command::Login { .. }
                | Command::Refresh { .. }
                | Command::Acquire { .. }
                    if self.stopped => {}
                Command::Send {
                    id,
                    attempt,
                    token,
                    generation,
                } => {
                    self.meter.sent(attempt);
                    let step = Step::Send { attempt, token };
                    match generation {
                        Some(generation)
                            if self.persisting.is_some_and(|pending| generation >= pending) =>
                        {
                            self.held.push_back((id, generation, step));
                        }
                        _ => self.deliver(id, step, me, &mut mine, wakes),
                    }
                }
                Command::Complete { id, outcome } => {
                    self.meter.completed(&outcome);
                    self.held.retain(|(held, _, _)| *held != id);
                    self.deliver(id, Step::Done(outcome), me, &mut mine, wakes);
                }
                Command::Login { op } => {
                    self.meter.started(Kind::Login, op, self.session.now());
                    self.work.push_back(Work::Login { op });
                    new_work = true;
                }
                Command::Refresh { op, refresh_token } => {
                    self.meter.started(Kind::Refresh, op, self.session.now());
                    self.work.push_back(Work::Refresh { op, refresh_token });
                    new_work = true;
                }
                Command::Revoke { refresh_token } => {
                    self.work.push_back(Work::Revoke { refresh_token });
                    new_work = true;
                }
                Command::Persist(persist) => {
                    self.persisting = Some(persist.generation);
                    self.work.push_back(Work::Persist { persist });
                    new_work = true;
                }
                Command::ClearStore => {
                    let logout = self.logout;
                    self.work.push_back(Work::ClearStore { logout });
                    new_work = true;
                }
                Command::Acquire { op, ttl } => {
                    self.work.push_back(Work::Acquire { op, ttl });
                    new_work = true;
                }
                // No persist gate: a shared session releases the requests that will carry these
                // tokens only once the store has answered (`published`).
                Command::Publish {
                    op,
                    expected,
                    persist,
                } => {
                    self.work.push_back(Work::Publish {
                        op,
                        expected,
                        persist,
                    });
                    new_work = true;
                }
                Command::Release { op, version, spent } => {
                    self.work.push_back(Work::Release { op, version, spent });
                    new_work = true;
                }
                // Tokens another process stored, already durable there: nothing to do but say so.
                Command::Adopted(generation) => {
                    self.meter.adopted();
                    debug!(
                        generation = generation.0,
                        "adopted the tokens another process stored"
                    );
                }
                Command::Notify(state) => on_state(state),
                // A command this release does not know: nothing to route.
                _ => {}
            }
        }
        if new_work || self.deadline_moved() {
            wakes.0.extend(self.background.take());
        }
        self.meter
            .gauges(self.session.queued(), self.session.is_circuit_open());
        mine
    }

    /// Hands `step` to request `id`: returned when it is the caller's own, stored (and its
    /// waker collected) otherwise. A finished request leaves the table.
    fn deliver(
        &mut self,
        id: RequestId,
        step: Step,
        me: Option<RequestId>,
        mine: &mut Option<Step>,
        wakes: &mut Wakes,
    ) {
        let done = !matches!(step, Step::Send { .. });
        // The request waited for this step (not on the happy path: the map is empty there).
        if !self.waiting.is_empty() {
            if let Some(since) = self.waiting.remove(&id) {
                self.meter.waited(since, self.session.now());
            }
        }
        if me == Some(id) {
            if done {
                self.callers.remove(&id);
            }
            *mine = Some(step);
            return;
        }
        if let Some(caller) = self.callers.get_mut(&id) {
            if let Caller::Waiting(waker) = caller {
                wakes.0.extend(waker.take());
            }
            *caller = Caller::Ready(step);
        }
    }

    /// Releases the held `Send`s whose generation is persisted.
    fn release_held(&mut self, wakes: &mut Wakes) {
        let mut mine = None;
        while let Some((_, generation, _)) = self.held.front() {
            if self
                .persisting
                .is_some_and(|pending| *generation >= pending)
            {
                break;
            }
            if let Some((id, _, step)) = self.held.pop_front() {
                self.deliver(id, step, None, &mut mine, wakes);
            }
        }
    }

    /// Whether the session's earliest deadline is earlier than the one the timer is armed for.
    fn deadline_moved(&self) -> bool {
        match (self.session.poll_timeout(), self.armed) {
            (Some(at), Some(armed)) => at < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}
