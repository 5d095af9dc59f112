//! A deterministic simulator: the real session, a fake auth server, a network with latency and
//! faults, and virtual time. Scenario tests, property tests and the fuzzer drive sessions through
//! it, so they read as stories ("log in, expire, storm, assert") and replay exactly.
//!
//! ```
//! use auth_core::sim::Sim;
//! use auth_core::{Config, Outcome, RequestSpec, SessionState};
//!
//! let mut sim = Sim::new(Config::default());
//! let id = sim.submit(RequestSpec::bearer());
//! sim.drive();
//! assert_eq!(sim.outcome(id), Some(Outcome::Deliver));
//! assert_eq!(sim.session().state(), SessionState::Active);
//! assert_eq!(sim.server.logins, 1);
//! assert!(sim.violations().is_empty());
//! ```

mod events;
pub mod fleet;
mod op;
mod server;
mod transcript;

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use events::Events;

pub use op::{Op, INTERESTING_DELAYS};
pub use server::{Answer, ApiResponse, FakeServer, Fault};

use crate::command::{Command, Outcome, SessionState};
use crate::config::Config;
use crate::input::{Auth, Input, RequestId, RequestSpec, Verdict};
use crate::monitor::{Checked, Monitor, Violation};
use crate::session::Session;
use crate::snapshot::Snapshot;
use crate::time::{Instant, UnixTime};
use crate::trace::Trace;

/// What happens to the next API response on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFault {
    /// The response is lost. The driver's HTTP timeout (`Sim::http_timeout`) then reports a
    /// transport error, which reaches the session as a response delivered as is: the drive
    /// contract promises one response input per `Send`.
    Lose,
    /// The response arrives twice.
    Duplicate,
    /// The response arrives this much later than usual (so responses reorder).
    Delay(Duration),
}

/// The most messages and timers one [`Sim::advance`] runs.
pub const ADVANCE_STEPS: usize = 1_000;

/// The simulator. See the module documentation.
#[derive(Debug)]
pub struct Sim {
    /// The fake backend.
    pub server: FakeServer,
    /// One-way network plus server time of every call.
    pub latency: Duration,
    /// After how long a lost response surfaces as a transport error.
    pub http_timeout: Duration,
    /// Wall-clock time at virtual time zero.
    pub wall_epoch: UnixTime,
    /// What the token store holds.
    pub store: Option<Snapshot>,
    now: Instant,
    checked: Checked,
    trace: Trace,
    events: Events<Input>,
    net_faults: VecDeque<NetFault>,
    specs: BTreeMap<RequestId, RequestSpec>,
    outcomes: BTreeMap<RequestId, Outcome>,
    completion_order: Vec<RequestId>,
    transcript: Vec<String>,
    /// Every command of the current session (since the last restart), in order.
    commands: Vec<Command>,
    restarts: u32,
}

/// `drive_bounded` ran out of steps before the world went quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the simulation did not settle within {steps} steps")]
pub struct Unsettled {
    /// The step budget that ran out.
    pub steps: usize,
}

impl Sim {
    /// A fresh session (no stored tokens) against a default server, 10 ms latency.
    pub fn new(config: Config) -> Self {
        Sim::with_server(config, FakeServer::default())
    }

    /// A fresh session against `server`.
    pub fn with_server(config: Config, server: FakeServer) -> Self {
        let now = Instant::ZERO;
        let checked = Checked::new(Session::new(config, now), &mut Vec::new());
        let trace = Trace::new(config, now);
        let mut sim = Sim {
            server,
            latency: Duration::from_millis(10),
            http_timeout: Duration::from_secs(20),
            wall_epoch: UnixTime::from_millis(1_700_000_000_000),
            store: None,
            now,
            checked,
            trace,
            events: Events::default(),
            net_faults: VecDeque::new(),
            specs: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            completion_order: Vec::new(),
            transcript: Vec::new(),
            commands: Vec::new(),
            restarts: 0,
        };
        sim.start_session(config, None);
        sim
    }

    /// Feeds an app input (logout, login, cancel, ...) now.
    pub fn input(&mut self, input: Input) {
        self.feed(input);
    }

    /// The app issues a request now; returns its id.
    pub fn submit(&mut self, spec: RequestSpec) -> RequestId {
        match self.feed(Input::Submit(spec)) {
            Some(id) => id,
            // `Checked::handle` returns the id of every submit.
            None => unreachable!("a submit always gets an id"),
        }
    }

    /// The next API response suffers `fault`.
    pub fn fault_next_response(&mut self, fault: NetFault) {
        self.net_faults.push_back(fault);
    }

    /// Drops the pending network faults.
    pub fn clear_net_faults(&mut self) {
        self.net_faults.clear();
    }

    /// The `index`-th (modulo their number) request submitted since the last restart that has
    /// not finished.
    pub fn outstanding_request(&self, index: usize) -> Option<RequestId> {
        let open: Vec<RequestId> = self
            .specs
            .keys()
            .copied()
            .filter(|id| !self.outcomes.contains_key(id))
            .collect();
        match open.len() {
            0 => None,
            len => open.get(index % len).copied(),
        }
    }

    /// Delivers the next message or fires the next timer. `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let event = self.events.next_at();
        let timer = self.checked.session.poll_timeout();
        let take_event = match (event, timer) {
            (Some(at), Some(deadline)) => at <= deadline,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if take_event {
            if let Some((at, input)) = self.events.pop() {
                self.now = self.now.max(at);
                self.feed(input);
            }
        } else if let Some(at) = timer {
            self.now = self.now.max(at);
            self.feed(Input::Timeout);
        }
        true
    }

    /// Runs until nothing is left to happen (at most a million steps); returns the steps taken.
    pub fn drive(&mut self) -> usize {
        self.drive_bounded(1_000_000).unwrap_or(1_000_000)
    }

    /// Runs until nothing is left to happen, or fails after `max_steps`.
    pub fn drive_bounded(&mut self, max_steps: usize) -> Result<usize, Unsettled> {
        for steps in 0..max_steps {
            if !self.step() {
                return Ok(steps);
            }
        }
        if self.is_quiet() {
            Ok(max_steps)
        } else {
            Err(Unsettled { steps: max_steps })
        }
    }

    /// Runs everything due within `duration`, then moves the clock to the end of it. At most
    /// [`ADVANCE_STEPS`] messages and timers are run: a configuration can make the session
    /// re-arm a timer at the very instant it fires for a long time (a zero operation timeout and
    /// zero backoff, breaker off, `max_operation_retries` in the billions), and such a stretch
    /// must not hang the simulator; what is left runs late, as on a descheduled driver.
    pub fn advance(&mut self, duration: Duration) {
        let until = self.now.saturating_add(duration);
        for _ in 0..ADVANCE_STEPS {
            let next = [self.events.next_at(), self.checked.session.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= until => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    /// The process dies and starts again from the store: outstanding requests and messages in
    /// flight are gone, the session is restored (or new when the store is empty).
    pub fn restart(&mut self) {
        self.events.clear();
        self.specs.clear();
        self.restarts += 1;
        let config = *self.checked.session.config();
        let snapshot = self.store.clone();
        self.transcript.push(format!(
            "{:>7} | == restart (store {}) ==",
            self.now.as_millis(),
            if snapshot.is_some() { "full" } else { "empty" }
        ));
        self.start_session(config, snapshot);
    }

    /// Whether nothing is left to happen: no message in flight, no timer armed.
    pub fn is_quiet(&self) -> bool {
        self.events.is_empty() && self.checked.session.poll_timeout().is_none()
    }

    /// The outcome of a finished request.
    pub fn outcome(&self, id: RequestId) -> Option<Outcome> {
        self.outcomes.get(&id).copied()
    }

    /// Finished requests in the order they finished.
    pub fn completion_order(&self) -> &[RequestId] {
        &self.completion_order
    }

    /// The session under test.
    pub fn session(&self) -> &Session {
        &self.checked.session
    }

    /// Its monitor.
    pub fn monitor(&self) -> &Monitor {
        &self.checked.monitor
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        self.checked.monitor.violations()
    }

    /// Judges P8 now (call once the world is quiet) and returns every violation found.
    pub fn check_settled(&mut self) -> &[Violation] {
        let state = self.checked.session.state();
        self.checked.monitor.check_settled(state);
        self.checked.monitor.violations()
    }

    /// The trace of the current session (since the last restart).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Every command the current session (since the last restart) emitted, in order: what a
    /// replay of [`Sim::trace`] must reproduce.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Every input and command so far, one per line, secrets fingerprinted: the text of the
    /// scenario snapshots.
    pub fn transcript(&self) -> String {
        let mut text = self.transcript.join("\n");
        text.push('\n');
        text
    }

    fn wall(&self) -> UnixTime {
        UnixTime::from_millis(
            self.wall_epoch
                .as_millis()
                .saturating_add(self.now.as_millis()),
        )
    }

    fn start_session(&mut self, config: Config, snapshot: Option<Snapshot>) {
        let session = match &snapshot {
            Some(snapshot) => Session::restore(config, snapshot.clone(), self.now, self.wall()),
            None => Session::new(config, self.now),
        };
        self.trace = match snapshot {
            Some(snapshot) => Trace::restored(config, snapshot, self.now, self.wall()),
            None => Trace::new(config, self.now),
        };
        let mut commands = Vec::new();
        self.commands.clear();
        self.checked = Checked::new(session, &mut commands);
        for command in commands {
            self.execute(command);
        }
    }

    fn feed(&mut self, input: Input) -> Option<RequestId> {
        let now = self.now;
        self.transcript.push(format!(
            "{:>7} | {}",
            now.as_millis(),
            transcript::input(&input)
        ));
        self.trace.push(now, input.clone());
        let spec = match &input {
            Input::Submit(spec) => Some(*spec),
            _ => None,
        };
        let mut commands = Vec::new();
        let id = self.checked.handle(input, now, &mut commands);
        if let (Some(id), Some(spec)) = (id, spec) {
            self.specs.insert(id, spec);
        }
        for command in commands {
            self.execute(command);
        }
        id
    }

    fn execute(&mut self, command: Command) {
        let now = self.now;
        self.transcript.push(format!(
            "{:>7} |   -> {}",
            now.as_millis(),
            transcript::command(&command)
        ));
        self.commands.push(command.clone());
        match command {
            Command::Send {
                id, attempt, token, ..
            } => {
                let public = self.specs.get(&id).is_some_and(|s| s.auth == Auth::Public);
                let verdict = if public {
                    self.server.public(token.as_ref())
                } else {
                    self.server.api(token.as_ref(), now)
                }
                .verdict();
                let response = Input::Response {
                    id,
                    attempt,
                    verdict,
                };
                match self.net_faults.pop_front() {
                    Some(NetFault::Lose) => {
                        let error = Input::Response {
                            id,
                            attempt,
                            verdict: Verdict::Accepted,
                        };
                        self.schedule(self.http_timeout, error);
                    }
                    Some(NetFault::Duplicate) => {
                        self.schedule(self.latency, response.clone());
                        self.schedule(self.latency, response);
                    }
                    Some(NetFault::Delay(extra)) => self.schedule(self.latency + extra, response),
                    None => self.schedule(self.latency, response),
                }
            }
            Command::Login { op } => {
                if let Answer::After { extra, result } = self.server.login(now) {
                    self.schedule(self.latency + extra, Input::LoginResult { op, result });
                }
            }
            Command::Refresh { op, refresh_token } => {
                if let Answer::After { extra, result } = self.server.refresh(&refresh_token, now) {
                    self.schedule(self.latency + extra, Input::RefreshResult { op, result });
                }
            }
            Command::Persist(persist) => self.store = Some(persist.snapshot(now, self.wall())),
            Command::ClearStore => self.store = None,
            Command::Revoke { refresh_token } => self.server.revoke(&refresh_token),
            Command::Complete { id, outcome } => {
                self.outcomes.entry(id).or_insert(outcome);
                self.completion_order.push(id);
            }
            Command::Notify(_) => {}
            // This simulator runs one local session, which never asks a shared store for
            // anything; a local session never emits these.
            Command::Acquire { .. }
            | Command::Publish { .. }
            | Command::Release { .. }
            | Command::Adopted(_) => {}
        }
    }

    fn schedule(&mut self, after: Duration, input: Input) {
        let at = self.now.saturating_add(after);
        self.events.schedule(at, input);
    }
}

/// The state names used in transcripts.
pub(crate) fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Anonymous => "Anonymous",
        SessionState::LoggingIn => "LoggingIn",
        SessionState::Active => "Active",
        SessionState::Refreshing => "Refreshing",
        SessionState::LoggedOut => "LoggedOut",
        SessionState::LoginRequired => "LoginRequired",
    }
}
