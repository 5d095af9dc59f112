//! The stateright model of a fleet: 2-3 real `auth_core::Session::shared` sessions, each with
//! its own `Monitor` (through `Checked`), sharing one modelled store, with one auth server that
//! rotates refresh tokens and revokes the family on reuse.
//!
//! Every transition feeds real inputs to a real session and does what a driver does with the
//! commands it gets back; the [`FleetMonitor`] sees every process's inputs and commands plus
//! what only the store knows (grants, tombstones, writes, expired leases, crashes). Nothing here
//! restates a rule of the session.
//!
//! Time: each process has its own clock, which moves only when one of its timers fires
//! ([`FleetAction::Fire`], as in the single-process model). Clocks of different processes are
//! unrelated, and a lease expires whenever the environment says so ([`FleetAction::ExpireLease`]),
//! so the safety properties are checked without trusting any clock.
//!
//! Messages in flight (a multiset, delivered in any order): API calls, logins and refreshes at the
//! server, lease requests and publishes at the store, records a watcher read (fed later, so
//! possibly stale), and store answers that travel back slowly ([`FleetAction::Delay`]).
//! Otherwise the store and the server act when a message is delivered and their answer is fed
//! at once. `Release` and `ClearStore` take effect when the session emits them (their delay only
//! lengthens a lease, which an expiry covers). A crash lets everything the process had sent take
//! effect at its destination, with the answers lost.

use auth_core::{
    Checked, Command, FleetMonitor, FleetProperty, Input, Instant, LeaseResult, LoginFailure,
    Observed, OpId, Process, Property, PublishResult, RefreshFailure, RequestId, RequestSpec,
    Session, SessionState, Stored, Timer, Verdict,
};
use stateright::Model;

use super::store::{Content, Owner, Record, Server, Store, Tokens};
use super::world::{FleetBudget, FleetWorld};
use crate::model::{names, number, settled, violates};

/// A message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// An API call; the API judges its access token `a{token}` when it is delivered.
    Api {
        /// The process that sent it.
        process: Process,
        /// The request.
        id: RequestId,
        /// Which send it is.
        attempt: u16,
        /// The access token number (0: none).
        token: u64,
    },
    /// A silent login at the auth server.
    Login {
        /// The process.
        process: Process,
        /// Its operation.
        op: OpId,
    },
    /// A refresh at the auth server, presenting `r{token}`.
    Refresh {
        /// The process.
        process: Process,
        /// Its operation.
        op: OpId,
        /// The refresh token number.
        token: u64,
    },
    /// A lease request at the store.
    Acquire {
        /// The process.
        process: Process,
        /// Its operation.
        op: OpId,
        /// When the lease it may get ends at the earliest, on the process's clock: asked at
        /// this time plus the ttl. Clocks of the store and the processes run at one rate.
        lease_end: Instant,
    },
    /// A compare-and-swap write at the store.
    Publish {
        /// The process.
        process: Process,
        /// Its operation.
        op: OpId,
        /// The version it expects.
        expected: u64,
        /// The tokens.
        tokens: Tokens,
    },
    /// The store's answer to a lease request or a publish, on its way back (the store acted
    /// already): a delayed answer ([`FleetAction::Delay`]).
    Answer {
        /// The process.
        process: Process,
        /// The operation that asked.
        op: OpId,
        /// What the store answered.
        answer: StoreAnswer,
        /// For a lease answer, the lease's earliest end (see [`Msg::Acquire`]).
        lease_end: Option<Instant>,
    },
    /// The record as the process's watcher read it, on its way to being fed as
    /// `Input::StoreChanged` (by then the record may have changed again).
    Changed {
        /// The process.
        process: Process,
        /// What was read.
        record: Record,
    },
}

impl Msg {
    /// The process that sent it.
    pub fn process(&self) -> Process {
        match *self {
            Msg::Api { process, .. }
            | Msg::Login { process, .. }
            | Msg::Refresh { process, .. }
            | Msg::Acquire { process, .. }
            | Msg::Publish { process, .. }
            | Msg::Answer { process, .. }
            | Msg::Changed { process, .. } => process,
        }
    }

    /// Part of a login or refresh operation (a login, refresh, lease request or publish): its
    /// deadline firing while this is unanswered is a hang. (A delayed answer spent its fault
    /// already.)
    fn is_operation(&self) -> bool {
        !matches!(
            self,
            Msg::Api { .. } | Msg::Changed { .. } | Msg::Answer { .. }
        )
    }
}

/// A store answer in flight, with the records it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreAnswer {
    /// The lease was granted on this record (as before the mark); `takeover` when a lease had
    /// expired before this grant.
    Granted {
        /// The record before the grant.
        record: Record,
        /// A lease expired (or was lost) before this grant.
        takeover: bool,
    },
    /// The lease was busy; the record.
    Busy(Record),
    /// The publish was written.
    Written,
    /// The publish lost the compare-and-swap; the record.
    Conflict(Record),
}

impl StoreAnswer {
    /// The session's input for this answer to `op`.
    fn input(self, op: OpId) -> Input {
        match self {
            StoreAnswer::Granted { record, .. } => Input::Lease {
                op,
                result: LeaseResult::Granted(record.observed()),
            },
            StoreAnswer::Busy(record) => Input::Lease {
                op,
                result: LeaseResult::Busy(record.observed()),
            },
            StoreAnswer::Written => Input::Published {
                op,
                result: PublishResult::Written,
            },
            StoreAnswer::Conflict(record) => Input::Published {
                op,
                result: PublishResult::Conflict(record.observed()),
            },
        }
    }
}

/// One process of the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proc {
    /// The real session and its own monitor (P1-P8).
    pub checked: Checked,
    /// How many times the process restarted.
    pub incarnation: u8,
    /// The version and content of the record as this process last read it or was told of it:
    /// its watcher ([`FleetAction::Watch`]) reads again only when the record differs (whole
    /// records, as the drivers compare them: a store that lost its data reuses versions).
    pub seen: (u64, Content),
}

/// Interesting things the last step did, for the `sometimes` properties.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FleetEvents(u8);

impl FleetEvents {
    /// A process that needed tokens found the lease busy (or was told the record changed) and
    /// adopted what another process wrote, without a login or refresh of its own.
    pub const WAITED_AND_ADOPTED: FleetEvents = FleetEvents(1);
    /// A lease expired; the next holder was granted a record whose mark was left set and logged
    /// in instead of presenting that refresh token.
    pub const TAKEOVER_LOGIN: FleetEvents = FleetEvents(1 << 1);
    /// A process went `LoggedOut` because another one logged out.
    pub const LOGOUT_PROPAGATED: FleetEvents = FleetEvents(1 << 2);
    /// A publish lost the compare-and-swap to a newer record.
    pub const PUBLISH_CONFLICT: FleetEvents = FleetEvents(1 << 3);
    /// A process restarted on a tombstone and started `LoggedOut`.
    pub const RESTART_LOGGED_OUT: FleetEvents = FleetEvents(1 << 4);
    /// A grant read too late (its operation was given up, or its lease may have passed on) was
    /// given back without a login or refresh.
    pub const LATE_GRANT_RETURNED: FleetEvents = FleetEvents(1 << 5);
    /// The store replaced a token set with one the server issued before it (what
    /// compare-and-swap exists to prevent; an `always` property forbids it).
    pub const OLDER_OVER_NEWER: FleetEvents = FleetEvents(1 << 6);

    /// Whether every event of `other` happened.
    pub fn contains(self, other: FleetEvents) -> bool {
        self.0 & other.0 == other.0
    }

    fn insert(&mut self, other: FleetEvents) {
        self.0 |= other.0;
    }
}

/// One state of the fleet model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FleetState {
    /// The processes, indexed by [`Process`].
    pub procs: Vec<Proc>,
    /// P9-P11 across the fleet.
    pub fleet: FleetMonitor,
    /// The shared store.
    pub store: Store,
    /// The auth server.
    pub server: Server,
    /// Messages in flight, sorted (a multiset).
    pub net: Vec<Msg>,
    /// What the environment may still do.
    pub budget: FleetBudget,
    /// What the last step did.
    pub events: FleetEvents,
}

impl FleetState {
    /// Whether any process's monitor recorded a violation of `property`.
    pub fn violates(&self, property: Property) -> bool {
        self.procs.iter().any(|p| violates(&p.checked, property))
    }

    /// Whether the fleet monitor recorded a violation of `property`.
    pub fn violates_fleet(&self, property: FleetProperty) -> bool {
        self.fleet
            .violations()
            .iter()
            .any(|v| v.property() == property)
    }

    /// No message in flight and no timer armed in any process: nothing happens until the app
    /// acts. Every terminal state is quiet.
    pub fn is_quiet(&self) -> bool {
        self.net.is_empty()
            && self
                .procs
                .iter()
                .all(|p| p.checked.session.poll_timeout().is_none())
    }

    /// P8 for the fleet: at a quiet state every process has completed every request and
    /// settled.
    pub fn settled_if_quiet(&self) -> bool {
        !self.is_quiet() || self.procs.iter().all(|p| settled(&p.checked))
    }

    fn insert_msg(&mut self, msg: Msg) {
        let at = self.net.partition_point(|m| *m <= msg);
        self.net.insert(at, msg);
    }

    fn take_msg(&mut self, msg: Msg) -> Option<Msg> {
        let at = self.net.iter().position(|m| *m == msg)?;
        Some(self.net.remove(at))
    }

    fn has_operation_msg(&self, process: Process) -> bool {
        self.net
            .iter()
            .any(|m| m.process() == process && m.is_operation())
    }

    /// The watcher of `process` reads the record only when it changed since the process last
    /// saw it, and one read at a time is on its way.
    fn may_watch(&self, process: Process, notifications: bool) -> bool {
        notifications
            && self.store.seen() != self.procs[process].seen
            && !self
                .net
                .iter()
                .any(|m| matches!(m, Msg::Changed { process: p, .. } if *p == process))
    }

    fn now(&self, process: Process) -> Instant {
        self.procs[process].checked.session.now()
    }

    fn owner(&self, process: Process, op: OpId) -> Owner {
        Owner {
            process,
            incarnation: self.procs[process].incarnation,
            op,
        }
    }
}

/// One action of the environment or the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FleetAction {
    /// The app of a process submits a bearer request.
    Submit(Process),
    /// A message arrives: the API, the server or the store acts and answers.
    Deliver(Msg),
    /// Fault: the store cannot be reached for a lease request or a publish; with `true` it did
    /// the operation and the answer was lost. The session hears `Unavailable`.
    StoreDown(Msg, bool),
    /// Fault: the auth server answers a login or refresh with a transient failure (a 5xx); with
    /// `true` it issued or rotated first (the failure came after), so the tokens are lost.
    ServerFault(Msg, bool),
    /// Fault: the store does a lease request or a publish now, and its answer travels back
    /// slowly ([`Msg::Answer`]): leases may expire and other processes act before it is read.
    Delay(Msg),
    /// Fault: the process was paused (a GC pause, SIGSTOP) until just past its next timer, and
    /// its driver feeds this message's answer with the time read after the pause, before the
    /// timer fires.
    Paused(Msg),
    /// The server expires every access token issued so far.
    Expire,
    /// Fault: the lease expires before its holder gives it back.
    ExpireLease,
    /// Fault: the store loses its data (Redis restarted without persistence): the record is
    /// empty again at version 0, the mark and the lease are gone. Only while it holds tokens:
    /// a lost tombstone is a lost logout, a documented limit, not a property to check.
    LoseStore,
    /// The user logs out in a process.
    Logout(Process),
    /// The app of a process asks for a login.
    Login(Process),
    /// A process crashes and restarts at once from the record it reads.
    Crash(Process),
    /// The watcher of a process reads the record, which changed since the process last saw it;
    /// what it read is fed later ([`Msg::Changed`]).
    Watch(Process),
    /// Time passes in a process until its next timer (an operation deadline with its request
    /// still unanswered is a hang).
    Fire(Process, Timer),
}

/// One entry of what a step did, for counterexample listings.
#[derive(Clone, Debug)]
pub enum Entry {
    /// An input fed to a process at its time.
    In(Process, Instant, Input),
    /// A command a process emitted.
    Out(Process, Command),
    /// A process restarted from this record.
    Restart(Process, Observed),
}

/// What one step did, recorded only when asked for (listings), so the search does not pay.
#[derive(Clone, Debug, Default)]
pub struct FleetLog {
    /// Record entries.
    pub recording: bool,
    /// The entries, in order.
    pub entries: Vec<Entry>,
}

impl FleetLog {
    /// A log that records.
    pub fn recording() -> Self {
        FleetLog {
            recording: true,
            entries: Vec::new(),
        }
    }

    fn push(&mut self, entry: impl FnOnce() -> Entry) {
        if self.recording {
            self.entries.push(entry());
        }
    }
}

/// The fleet model: a [`FleetWorld`] and the sessions under test.
#[derive(Clone)]
pub struct FleetModel {
    /// The bounded world.
    pub world: FleetWorld,
    /// Applied to every session the model creates (at start and after a crash): the identity
    /// for the real core; tests plant one of auth-core's deliberate bugs with it.
    pub plant: fn(Session) -> Session,
}

/// Names of the fleet model's properties, in the order of [`FleetModel::properties`]. P1-P8
/// keep the single-process model's names ([`crate::model::names`]).
pub mod fleet_names {
    /// P9.
    pub const P9: &str = "P9 no refresh token presented twice";
    /// P10.
    pub const P10: &str = "P10 fleet single flight";
    /// P11.
    pub const P11: &str = "P11 shared logout";
    /// DESIGN.md §7: writes are compare-and-swap, so an older token set never overwrites a
    /// newer one (in a store that keeps its data: after a loss versions repeat).
    pub const NEWER: &str = "older tokens never overwrite newer";
    /// Waiting and adopting.
    pub const WAITED: &str = "waited for the holder and adopted";
    /// Lease takeover.
    pub const TAKEOVER: &str = "lease takeover: next holder logs in";
    /// Logout propagation.
    pub const LOGOUT: &str = "logout propagated to another process";
    /// Compare-and-swap conflict.
    pub const CONFLICT: &str = "late publish lost compare-and-swap";
    /// Restart after logout.
    pub const RESTART: &str = "restart after logout stays logged out";
    /// A late grant given back.
    pub const LATE_GRANT: &str = "late grant given back unused";
}

impl FleetModel {
    /// The model of the real core in `world`.
    pub fn new(world: FleetWorld) -> Self {
        FleetModel {
            world,
            plant: |session| session,
        }
    }

    /// The same model with every session passed through `plant` (to plant a bug).
    pub fn with_plant(mut self, plant: fn(Session) -> Session) -> Self {
        self.plant = plant;
        self
    }

    /// Applies `action` to `state`, recording into `log`. `None` when the action is not
    /// possible (the same rules as [`Model::actions`]).
    pub fn step(
        &self,
        state: &FleetState,
        action: FleetAction,
        log: &mut FleetLog,
    ) -> Option<FleetState> {
        let mut s = state.clone();
        s.events = FleetEvents::default();
        match action {
            FleetAction::Submit(p) => {
                s.budget.requests = s.budget.requests.checked_sub(1)?;
                let now = s.now(p);
                self.feed(&mut s, p, Input::Submit(RequestSpec::bearer()), now, log);
            }
            FleetAction::Deliver(msg) => {
                s.take_msg(msg)?;
                let now = s.now(msg.process());
                self.deliver(&mut s, state, msg, now, log);
            }
            FleetAction::Delay(msg) => {
                s.budget.delays = s.budget.delays.checked_sub(1)?;
                s.take_msg(msg)?;
                let (process, op, answer, lease_end) = match msg {
                    Msg::Acquire {
                        process,
                        op,
                        lease_end,
                    } => {
                        let answer = self.acquire(&mut s, process, op);
                        (process, op, answer, Some(lease_end))
                    }
                    Msg::Publish {
                        process,
                        op,
                        expected,
                        tokens,
                    } => {
                        let answer = self.publish(&mut s, process, expected, tokens);
                        (process, op, answer, None)
                    }
                    _ => return None,
                };
                s.insert_msg(Msg::Answer {
                    process,
                    op,
                    answer,
                    lease_end,
                });
            }
            FleetAction::Paused(msg) => {
                s.budget.pauses = s.budget.pauses.checked_sub(1)?;
                s.take_msg(msg)?;
                let p = msg.process();
                // Read just past the timer's instant (an answer read at the deadline instant
                // is in time by the core's rule; the pause is the case where it is not).
                let (_, due) = s.procs[p].checked.session.next_timer()?;
                let at = due
                    .saturating_add(core::time::Duration::from_millis(1))
                    .max(s.now(p));
                self.deliver(&mut s, state, msg, at, log);
            }
            FleetAction::StoreDown(msg, applied) => {
                s.budget.store_faults = s.budget.store_faults.checked_sub(1)?;
                s.take_msg(msg)?;
                let p = msg.process();
                let input = match msg {
                    Msg::Acquire { op, .. } => {
                        if applied {
                            self.acquire(&mut s, p, op);
                        }
                        Input::Lease {
                            op,
                            result: LeaseResult::Unavailable,
                        }
                    }
                    Msg::Publish {
                        op,
                        expected,
                        tokens,
                        ..
                    } => {
                        if applied {
                            self.publish(&mut s, p, expected, tokens);
                        }
                        Input::Published {
                            op,
                            result: PublishResult::Unavailable,
                        }
                    }
                    _ => return None,
                };
                let now = s.now(p);
                self.feed(&mut s, p, input, now, log);
            }
            FleetAction::ServerFault(msg, applied) => {
                s.budget.server_faults = s.budget.server_faults.checked_sub(1)?;
                s.take_msg(msg)?;
                let input = match msg {
                    Msg::Login { op, .. } => {
                        if applied {
                            s.server.login();
                        }
                        Input::LoginResult {
                            op,
                            result: Err(LoginFailure::Transient),
                        }
                    }
                    Msg::Refresh { op, token, .. } => {
                        if applied {
                            s.server.refresh(token);
                        }
                        Input::RefreshResult {
                            op,
                            result: Err(RefreshFailure::Transient),
                        }
                    }
                    _ => return None,
                };
                let p = msg.process();
                let now = s.now(p);
                self.feed(&mut s, p, input, now, log);
            }
            FleetAction::Expire => {
                s.budget.expiries = s.budget.expiries.checked_sub(1)?;
                if s.server.valid_from > s.server.issued() {
                    return None;
                }
                s.server.expire();
            }
            FleetAction::LoseStore => {
                s.budget.store_losses = s.budget.store_losses.checked_sub(1)?;
                if !matches!(s.store.content, Content::Tokens(_)) {
                    return None;
                }
                let live = s.store.lease.is_some();
                s.store.lose();
                if live {
                    s.fleet.on_lease_expired();
                }
            }
            FleetAction::ExpireLease => {
                s.budget.lease_expiries = s.budget.lease_expiries.checked_sub(1)?;
                s.store.lease?;
                s.store.expire_lease();
                s.fleet.on_lease_expired();
            }
            FleetAction::Logout(p) | FleetAction::Login(p) => {
                let input = if let FleetAction::Logout(_) = action {
                    s.budget.logouts = s.budget.logouts.checked_sub(1)?;
                    Input::Logout
                } else {
                    s.budget.logins = s.budget.logins.checked_sub(1)?;
                    Input::Login
                };
                let now = s.now(p);
                let out = self.feed(&mut s, p, input, now, log);
                // An input the session ignores is no step (no budget spent on a no-op).
                if out.is_empty() && s.procs[p].checked.session == state.procs[p].checked.session {
                    return None;
                }
            }
            FleetAction::Crash(p) => {
                s.budget.crashes = s.budget.crashes.checked_sub(1)?;
                self.crash(&mut s, p, log);
            }
            FleetAction::Watch(p) => {
                if !s.may_watch(p, self.world.notifications) {
                    return None;
                }
                s.procs[p].seen = s.store.seen();
                let record = s.store.record();
                s.insert_msg(Msg::Changed { process: p, record });
            }
            FleetAction::Fire(p, timer) => {
                let (next, at) = s.procs[p].checked.session.next_timer()?;
                if next != timer {
                    return None;
                }
                if timer == Timer::OperationDeadline && s.has_operation_msg(p) {
                    s.budget.hangs = s.budget.hangs.checked_sub(1)?;
                }
                let at = at.max(s.now(p));
                self.feed(&mut s, p, Input::Timeout, at, log);
            }
        }
        Some(s)
    }

    fn initial(&self) -> FleetState {
        let mut s = FleetState {
            procs: Vec::new(),
            fleet: FleetMonitor::new(),
            store: Store::new(self.world.compare_and_swap),
            server: Server::new(),
            net: Vec::new(),
            budget: self.world.budget,
            events: FleetEvents::default(),
        };
        let mut log = FleetLog::default();
        for p in 0..self.world.processes {
            let mut out = Vec::new();
            let session = Session::shared(self.world.config, s.store.observed(), Instant::ZERO);
            s.procs.push(Proc {
                checked: Checked::new((self.plant)(session), &mut out),
                incarnation: 0,
                seen: s.store.seen(),
            });
            self.carry_out(&mut s, p, out, Instant::ZERO, &mut log);
        }
        s
    }

    /// The API, the server or the store acts on `msg` and its answer is fed at `now`.
    fn deliver(
        &self,
        s: &mut FleetState,
        before: &FleetState,
        msg: Msg,
        now: Instant,
        log: &mut FleetLog,
    ) {
        let p = msg.process();
        match msg {
            Msg::Api {
                id, attempt, token, ..
            } => {
                let verdict = if s.server.accepts(token) {
                    Verdict::Accepted
                } else {
                    Verdict::Rejected
                };
                let input = Input::Response {
                    id,
                    attempt,
                    verdict,
                };
                self.feed(s, p, input, now, log);
            }
            Msg::Login { op, .. } => {
                let result = Ok(s.server.login().set());
                self.feed(s, p, Input::LoginResult { op, result }, now, log);
            }
            Msg::Refresh { op, token, .. } => {
                let result = s
                    .server
                    .refresh(token)
                    .map(Tokens::set)
                    .ok_or(RefreshFailure::InvalidGrant);
                self.feed(s, p, Input::RefreshResult { op, result }, now, log);
            }
            Msg::Acquire { op, .. } => {
                let answer = self.acquire(s, p, op);
                self.answered(s, before, p, op, answer, now, log);
            }
            Msg::Answer {
                op,
                answer,
                lease_end,
                ..
            } => {
                // A grant whose lease ended before it is read is read no earlier than that end
                // (one clock rate for all): the process was paused or the answer slow.
                let at = match (answer, lease_end) {
                    (StoreAnswer::Granted { .. }, Some(end))
                        if s.store.lease != Some(s.owner(p, op)) =>
                    {
                        now.max(end)
                    }
                    _ => now,
                };
                self.answered(s, before, p, op, answer, at, log);
            }
            Msg::Changed { record, .. } => {
                let waiting = needs_tokens(&before.procs[p]);
                let out = self.feed(s, p, Input::StoreChanged(record.observed()), now, log);
                if waiting && adopted_only(&out) {
                    s.events.insert(FleetEvents::WAITED_AND_ADOPTED);
                }
                note_logout_propagated(s, &out);
            }
            Msg::Publish {
                op,
                expected,
                tokens,
                ..
            } => {
                let answer = self.publish(s, p, expected, tokens);
                self.answered(s, before, p, op, answer, now, log);
            }
        }
    }

    /// Feeds the store's `answer` to `op` of process `p` at `at`, noting what it shows.
    #[allow(clippy::too_many_arguments)]
    fn answered(
        &self,
        s: &mut FleetState,
        before: &FleetState,
        p: Process,
        op: OpId,
        answer: StoreAnswer,
        at: Instant,
        log: &mut FleetLog,
    ) {
        let waiting = needs_tokens(&before.procs[p]);
        let out = self.feed(s, p, answer.input(op), at, log);
        let starts = out
            .iter()
            .any(|c| matches!(c, Command::Login { .. } | Command::Refresh { .. }));
        match answer {
            StoreAnswer::Granted { record, takeover } => {
                let spent_tokens = record.spent && matches!(record.content, Content::Tokens(_));
                let logs_in = out.iter().any(|c| matches!(c, Command::Login { .. }));
                if takeover && spent_tokens && logs_in {
                    s.events.insert(FleetEvents::TAKEOVER_LOGIN);
                }
                let returned = out
                    .iter()
                    .any(|c| matches!(c, Command::Release { op: o, .. } if *o == op));
                if returned && !starts && !out.iter().any(|c| matches!(c, Command::Adopted(_))) {
                    s.events.insert(FleetEvents::LATE_GRANT_RETURNED);
                }
            }
            StoreAnswer::Busy(_) if waiting && adopted_only(&out) => {
                s.events.insert(FleetEvents::WAITED_AND_ADOPTED);
            }
            StoreAnswer::Conflict(_) => s.events.insert(FleetEvents::PUBLISH_CONFLICT),
            _ => {}
        }
        note_logout_propagated(s, &out);
    }

    /// The store takes a lease request of `process`'s operation `op`.
    fn acquire(&self, s: &mut FleetState, process: Process, op: OpId) -> StoreAnswer {
        let owner = s.owner(process, op);
        let takeover = s.store.after_expiry;
        let record = s.store.record();
        let answer = match s.store.acquire(owner) {
            LeaseResult::Granted(_) => {
                s.fleet.on_granted(process, op);
                StoreAnswer::Granted { record, takeover }
            }
            _ => StoreAnswer::Busy(record),
        };
        s.procs[process].seen = s.store.seen();
        answer
    }

    /// The store takes a publish of `process`.
    fn publish(
        &self,
        s: &mut FleetState,
        process: Process,
        expected: u64,
        tokens: Tokens,
    ) -> StoreAnswer {
        let replaced = s.store.content;
        let answer = match s.store.publish(expected, tokens) {
            PublishResult::Written => {
                s.fleet.on_tokens_written();
                // The server numbers token sets in issue order: a lower number is older. A
                // store that lost its data reuses versions, so there the compare-and-swap
                // cannot order writes across the loss (a documented limit; P9-P11 still hold).
                let lost = s.budget.store_losses < self.world.budget.store_losses;
                if !lost && matches!(replaced, Content::Tokens(old) if old.access > tokens.access) {
                    s.events.insert(FleetEvents::OLDER_OVER_NEWER);
                }
                StoreAnswer::Written
            }
            _ => StoreAnswer::Conflict(s.store.record()),
        };
        s.procs[process].seen = s.store.seen();
        answer
    }

    /// The process dies: what it had sent takes effect at its destination (answers lost), and a
    /// new session starts from the record, with a fresh monitor.
    fn crash(&self, s: &mut FleetState, p: Process, log: &mut FleetLog) {
        let (sent, rest): (Vec<Msg>, Vec<Msg>) = s.net.iter().partition(|m| m.process() == p);
        s.net = rest;
        for msg in sent {
            match msg {
                Msg::Api { .. } | Msg::Changed { .. } | Msg::Answer { .. } => {}
                Msg::Login { .. } => {
                    s.server.login();
                }
                Msg::Refresh { token, .. } => {
                    s.server.refresh(token);
                }
                Msg::Acquire { op, .. } => {
                    self.acquire(s, p, op);
                }
                Msg::Publish {
                    expected, tokens, ..
                } => {
                    self.publish(s, p, expected, tokens);
                }
            }
        }
        s.fleet.on_crash(p);
        let now = s.now(p);
        let observed = s.store.observed();
        if observed.content == Stored::LoggedOut {
            s.events.insert(FleetEvents::RESTART_LOGGED_OUT);
        }
        log.push(|| Entry::Restart(p, observed.clone()));
        let session = (self.plant)(Session::shared(self.world.config, observed, now));
        let mut out = Vec::new();
        let proc = &mut s.procs[p];
        proc.checked = Checked::new(session, &mut out);
        proc.incarnation = proc.incarnation.saturating_add(1);
        proc.seen = s.store.seen();
        self.carry_out(s, p, out, now, log);
    }

    /// Feeds `input` to process `p` and carries out what it answers, as its driver would:
    /// every command in order, then the inputs those produced. Returns every command emitted.
    fn feed(
        &self,
        s: &mut FleetState,
        p: Process,
        input: Input,
        at: Instant,
        log: &mut FleetLog,
    ) -> Vec<Command> {
        s.fleet.on_input(p, &input);
        log.push(|| Entry::In(p, at, input.clone()));
        let mut out = Vec::new();
        s.procs[p].checked.handle(input, at, &mut out);
        self.carry_out(s, p, out, at, log)
    }

    /// Executes `out`, the commands process `p` just emitted, then feeds back the answers of
    /// those that have one at once (the tombstone a `ClearStore` wrote). Returns every command
    /// emitted, follow-ups included.
    fn carry_out(
        &self,
        s: &mut FleetState,
        p: Process,
        out: Vec<Command>,
        at: Instant,
        log: &mut FleetLog,
    ) -> Vec<Command> {
        let mut answers = Vec::new();
        for command in &out {
            s.fleet.on_command(p, command);
            log.push(|| Entry::Out(p, command.clone()));
            if let Some(answer) = self.execute(s, p, command) {
                answers.push(answer);
            }
        }
        let mut all = out;
        for answer in answers {
            let more = self.feed(s, p, answer, at, log);
            all.extend(more);
        }
        all
    }

    /// Does what a driver does with one command; returns the input its answer is, if it has
    /// one at once.
    fn execute(&self, s: &mut FleetState, p: Process, command: &Command) -> Option<Input> {
        match command {
            Command::Send {
                id, attempt, token, ..
            } => s.insert_msg(Msg::Api {
                process: p,
                id: *id,
                attempt: *attempt,
                token: token.as_ref().map_or(0, |t| number(t.expose_secret())),
            }),
            Command::Login { op } => s.insert_msg(Msg::Login {
                process: p,
                op: *op,
            }),
            Command::Refresh { op, refresh_token } => s.insert_msg(Msg::Refresh {
                process: p,
                op: *op,
                token: number(refresh_token.expose_secret()),
            }),
            Command::Acquire { op, ttl } => s.insert_msg(Msg::Acquire {
                process: p,
                op: *op,
                lease_end: s.now(p).saturating_add(*ttl),
            }),
            Command::Publish {
                op,
                expected,
                persist,
            } => s.insert_msg(Msg::Publish {
                process: p,
                op: *op,
                expected: expected.0,
                tokens: Tokens {
                    access: number(persist.access_token.expose_secret()),
                    refresh: persist
                        .refresh_token
                        .as_ref()
                        .map(|t| number(t.expose_secret())),
                },
            }),
            Command::Release { op, version, spent } => {
                let owner = s.owner(p, *op);
                s.store.release(owner, version.0, *spent);
            }
            Command::ClearStore => {
                let observed = s.store.logout();
                s.fleet.on_tombstone();
                s.procs[p].seen = s.store.seen();
                return Some(Input::StoreChanged(observed));
            }
            Command::Revoke { refresh_token } => {
                s.server.revoke(number(refresh_token.expose_secret()));
            }
            // A shared session never persists locally; the rest is for callers and monitors.
            _ => {}
        }
        None
    }
}

/// The process is waiting for a login or refresh (its own, or one it waits to adopt).
fn needs_tokens(proc: &Proc) -> bool {
    matches!(
        proc.checked.session.state(),
        SessionState::LoggingIn | SessionState::Refreshing
    )
}

/// Tokens from another process were adopted, and no login or refresh was started for them.
fn adopted_only(out: &[Command]) -> bool {
    out.iter().any(|c| matches!(c, Command::Adopted(_)))
        && !out
            .iter()
            .any(|c| matches!(c, Command::Login { .. } | Command::Refresh { .. }))
}

fn note_logout_propagated(s: &mut FleetState, out: &[Command]) {
    if out
        .iter()
        .any(|c| *c == Command::Notify(SessionState::LoggedOut))
    {
        s.events.insert(FleetEvents::LOGOUT_PROPAGATED);
    }
}

impl Model for FleetModel {
    type State = FleetState;
    type Action = FleetAction;

    fn init_states(&self) -> Vec<FleetState> {
        vec![self.initial()]
    }

    fn actions(&self, s: &FleetState, actions: &mut Vec<FleetAction>) {
        let b = s.budget;
        for (p, proc) in s.procs.iter().enumerate() {
            if b.requests > 0 {
                actions.push(FleetAction::Submit(p));
            }
            if b.logouts > 0 {
                actions.push(FleetAction::Logout(p));
            }
            if b.logins > 0 {
                actions.push(FleetAction::Login(p));
            }
            if b.crashes > 0 {
                actions.push(FleetAction::Crash(p));
            }
            if s.may_watch(p, self.world.notifications) {
                actions.push(FleetAction::Watch(p));
            }
            if let Some((timer, _)) = proc.checked.session.next_timer() {
                if timer != Timer::OperationDeadline || b.hangs > 0 || !s.has_operation_msg(p) {
                    actions.push(FleetAction::Fire(p, timer));
                }
            }
        }
        let mut previous = None;
        for msg in &s.net {
            if previous == Some(msg) {
                continue; // an identical copy offers the same actions
            }
            previous = Some(msg);
            actions.push(FleetAction::Deliver(*msg));
            if b.pauses > 0 {
                actions.push(FleetAction::Paused(*msg));
            }
            match msg {
                Msg::Acquire { .. } | Msg::Publish { .. } => {
                    if b.store_faults > 0 {
                        actions.push(FleetAction::StoreDown(*msg, false));
                        actions.push(FleetAction::StoreDown(*msg, true));
                    }
                    if b.delays > 0 {
                        actions.push(FleetAction::Delay(*msg));
                    }
                }
                Msg::Login { .. } | Msg::Refresh { .. } if b.server_faults > 0 => {
                    actions.push(FleetAction::ServerFault(*msg, false));
                    actions.push(FleetAction::ServerFault(*msg, true));
                }
                _ => {}
            }
        }
        if b.expiries > 0 && s.server.valid_from <= s.server.issued() {
            actions.push(FleetAction::Expire);
        }
        if b.lease_expiries > 0 && s.store.lease.is_some() {
            actions.push(FleetAction::ExpireLease);
        }
        if b.store_losses > 0 && matches!(s.store.content, Content::Tokens(_)) {
            actions.push(FleetAction::LoseStore);
        }
    }

    fn next_state(&self, state: &FleetState, action: FleetAction) -> Option<FleetState> {
        self.step(state, action, &mut FleetLog::default())
    }

    fn format_action(&self, action: &FleetAction) -> String {
        super::render::describe(action)
    }

    fn properties(&self) -> Vec<stateright::Property<Self>> {
        use stateright::Property as P;
        vec![
            P::always(names::P1, |_, s: &FleetState| {
                !s.violates(Property::P1ExactlyOnce)
            }),
            P::always(names::P2, |_, s: &FleetState| {
                !s.violates(Property::P2SingleFlight)
            }),
            P::always(names::P3, |_, s: &FleetState| {
                !s.violates(Property::P3NoRefreshAfterLogout)
            }),
            P::always(names::P4, |_, s: &FleetState| {
                !s.violates(Property::P4CurrentToken)
            }),
            P::always(names::P5, |_, s: &FleetState| {
                !s.violates(Property::P5BoundedRetries)
            }),
            P::always(names::P6, |_, s: &FleetState| {
                !s.violates(Property::P6NoWastedRefresh)
            }),
            P::always(names::P7, |_, s: &FleetState| {
                !s.violates(Property::P7DurabilityOrder)
            }),
            P::always(names::P8, |_, s: &FleetState| {
                !s.violates(Property::P8Progress) && s.settled_if_quiet()
            }),
            // The server's reuse detection is a second witness: a token presented twice that
            // reached the server revokes the family.
            P::always(fleet_names::P9, |_, s: &FleetState| {
                !s.violates_fleet(FleetProperty::P9NoReuse) && !s.server.reuse_detected
            }),
            P::always(fleet_names::P10, |_, s: &FleetState| {
                !s.violates_fleet(FleetProperty::P10FleetSingleFlight)
            }),
            P::always(fleet_names::P11, |_, s: &FleetState| {
                !s.violates_fleet(FleetProperty::P11SharedLogout)
            }),
            P::always(fleet_names::NEWER, |_, s: &FleetState| {
                !s.events.contains(FleetEvents::OLDER_OVER_NEWER)
            }),
            P::sometimes(fleet_names::WAITED, |_, s: &FleetState| {
                s.events.contains(FleetEvents::WAITED_AND_ADOPTED)
            }),
            P::sometimes(fleet_names::TAKEOVER, |_, s: &FleetState| {
                s.events.contains(FleetEvents::TAKEOVER_LOGIN)
            }),
            P::sometimes(fleet_names::LOGOUT, |_, s: &FleetState| {
                s.events.contains(FleetEvents::LOGOUT_PROPAGATED)
            }),
            P::sometimes(fleet_names::CONFLICT, |_, s: &FleetState| {
                s.events.contains(FleetEvents::PUBLISH_CONFLICT)
            }),
            P::sometimes(fleet_names::RESTART, |_, s: &FleetState| {
                s.events.contains(FleetEvents::RESTART_LOGGED_OUT)
            }),
            P::sometimes(fleet_names::LATE_GRANT, |_, s: &FleetState| {
                s.events.contains(FleetEvents::LATE_GRANT_RETURNED)
            }),
        ]
    }
}
