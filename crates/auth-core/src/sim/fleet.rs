//! A deterministic simulator of a fleet: N processes, each a real [`Session::shared`] with its
//! own [`Monitor`], sharing one simulated store (the protocol of the `shared` types, exactly:
//! record version, content and spent mark, one lease with an owner and a ttl on the simulated
//! clock, atomic acquire / publish / release / logout) and one [`FakeServer`] that rotates refresh
//! tokens and revokes a family on reuse. One [`FleetMonitor`] watches everything: every
//! process's inputs and commands, and what only the store and the world know (a lease granted or
//! expired, a tombstone or tokens written, a crash).
//!
//! The simulated drivers do what the real ones do: every command's answer comes back after a
//! latency (`latency` for the API and the token endpoint, `store_latency` for the store), each
//! process re-reads the store every `watch_interval` and feeds [`Input::StoreChanged`] when the
//! record changed (compared whole, not by version: a store that lost its data reuses versions),
//! and a process that restarts builds its session from the record it reads. Faults: a process
//! crashes and restarts, a process stops running for a while (a hung holder: GC pause,
//! descheduled VM), a login or refresh is done by the server but its answer never comes, the
//! store is unreachable for a window, a lease runs out under its holder, the store loses its
//! data, plus the fake server's own faults.
//!
//! ```
//! use auth_core::sim::fleet::{Fleet, FleetConfig};
//! use auth_core::Outcome;
//!
//! let mut fleet = Fleet::new(FleetConfig { processes: 3, ..FleetConfig::default() });
//! let ids = fleet.storm(2);
//! fleet.drive();
//! assert!(ids.iter().all(|&(p, id)| fleet.outcome(p, id) == Some(Outcome::Deliver)));
//! assert_eq!(fleet.server.logins, 1); // one login for the whole fleet
//! assert!(fleet.is_clean());
//! ```
//!
//! Polling is simulated exactly but cheaply: a read that finds the record it saw last changes
//! nothing, so only the reads that find a change are run (at each process's next poll after the
//! change, or after the store comes back); [`Fleet::idle_reads`] gives the count of polls a real
//! driver makes on top.

mod driver;
mod op;
mod store;

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

pub use op::{
    check, settleable, FleetOp, MAX_OPERATION_TIMEOUT, MAX_RETRIES_WITHOUT_BACKOFF, SETTLE_STEPS,
};
pub use store::StoreOps;

use crate::command::Outcome;
use crate::config::Config;
use crate::fleet::{FleetMonitor, FleetViolation, Process};
use crate::input::{Auth, Input, OpId, RequestId, RequestSpec};
use crate::monitor::{Checked, Monitor, Violation};
use crate::session::Session;
use crate::shared::Observed;
use crate::sim::events::Events;
use crate::sim::server::FakeServer;
use crate::sim::ADVANCE_STEPS;
use crate::time::Instant;

use store::Store;

/// How the simulated fleet is set up.
#[derive(Clone, Copy, Debug)]
pub struct FleetConfig {
    /// How many processes share the session.
    pub processes: usize,
    /// Every process's session configuration.
    pub session: Config,
    /// Lifetime of the access tokens the fake server issues.
    pub access_lifetime: Duration,
    /// One-way network plus server time of every API and token endpoint call.
    pub latency: Duration,
    /// Time from a store command to its answer (the store applies it when it is sent).
    pub store_latency: Duration,
    /// How often each process's driver re-reads the store (zero: reads on every change at once).
    pub watch_interval: Duration,
    /// Keep a transcript of every input, command and store event (off for large fleets).
    pub transcript: bool,
    /// Applied to every session the fleet starts (restarts too): how tests plant a broken
    /// variant (`Session::with_bug`, with the `broken-variants` feature).
    pub session_hook: Option<fn(Session) -> Session>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            processes: 3,
            session: Config::default(),
            access_lifetime: Duration::from_secs(3600),
            latency: Duration::from_millis(10),
            store_latency: Duration::from_millis(1),
            watch_interval: Duration::from_millis(250),
            transcript: true,
            session_hook: None,
        }
    }
}

/// One request's life, for the figures: who asked, when, when it finished and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The process.
    pub process: Process,
    /// The request.
    pub id: RequestId,
    /// When it was submitted.
    pub submitted: Instant,
    /// When it completed.
    pub completed: Instant,
    /// How.
    pub outcome: Outcome,
}

/// Counts of what happened to the fleet beyond the store's and the server's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Requests submitted, all processes.
    pub submitted: u64,
    /// Requests delivered (`Outcome::Deliver`).
    pub delivered: u64,
    /// Requests failed (any `Outcome::Fail`).
    pub failed: u64,
    /// Requests that died with their process.
    pub lost_in_crash: u64,
    /// Process crashes.
    pub crashes: u64,
    /// Logouts whose tombstone could not be written (the store was unreachable): the app is
    /// told the logout is not durable.
    pub logouts_not_durable: u64,
    /// Login and refresh answers the server produced and the network lost.
    pub answers_lost: u64,
}

/// `drive_bounded` ran out of steps before the fleet went quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the fleet did not settle within {steps} steps")]
pub struct FleetUnsettled {
    /// The step budget that ran out.
    pub steps: usize,
}

/// Something due at an instant of the simulated clock.
#[derive(Clone, Debug)]
enum Event {
    /// An answer or response reaches a process's driver, which feeds it.
    Deliver {
        process: Process,
        incarnation: u32,
        input: Input,
    },
    /// A process's watch polls the store.
    Read { process: Process, incarnation: u32 },
    /// The lease's ttl ran out (cancelled when it is released first).
    LeaseExpiry,
    /// A process starts from the store (deferred while the store is unreachable).
    Start { process: Process, incarnation: u32 },
}

/// One process: its session with its monitor, and its driver's bookkeeping.
#[derive(Debug)]
struct Proc {
    /// `None` while the process is down (between a crash and its start).
    checked: Option<Checked>,
    incarnation: u32,
    /// The process does not run before this (a pause); events for it wait.
    paused_until: Instant,
    /// When its one timer fires (`poll_timeout`, or the end of a pause).
    armed: Option<Instant>,
    /// A watch read is queued.
    read_pending: bool,
    /// The record its watch saw last (as [`store::Store::changes`] counts it: drivers compare
    /// whole records, since a store that lost its data reuses versions).
    last_seen: Option<u64>,
    /// When each outstanding request was submitted, and whether it is public (the server
    /// routes it to a public endpoint).
    submitted: BTreeMap<RequestId, (Instant, Auth)>,
    outcomes: BTreeMap<RequestId, Outcome>,
}

/// The fleet simulator. See the module documentation.
#[derive(Debug)]
pub struct Fleet {
    /// The fake backend every process talks to.
    pub server: FakeServer,
    config: FleetConfig,
    store: Store,
    monitor: FleetMonitor,
    processes: Vec<Proc>,
    events: Events<Event>,
    /// Every process's armed timer, by when it fires.
    timers: BTreeSet<(Instant, Process)>,
    now: Instant,
    /// Answers of the next this-many logins or refreshes are lost after the server did the work.
    lose_answers: u32,
    /// The lease runs out as soon as its holder starts its operation.
    expire_when_started: bool,
    stats: FleetStats,
    completions: Vec<Completion>,
    /// Violations of the monitors of processes that crashed since.
    retired: Vec<(Process, Violation)>,
    transcript: Vec<String>,
}

impl Fleet {
    /// A fleet of `config.processes` processes started at time zero from an empty store.
    pub fn new(config: FleetConfig) -> Self {
        let processes = (0..config.processes)
            .map(|_| Proc {
                checked: None,
                incarnation: 0,
                paused_until: Instant::ZERO,
                armed: None,
                read_pending: false,
                last_seen: None,
                submitted: BTreeMap::new(),
                outcomes: BTreeMap::new(),
            })
            .collect();
        let mut fleet = Fleet {
            server: FakeServer::new(config.access_lifetime),
            config,
            store: Store::new(),
            monitor: FleetMonitor::new(),
            processes,
            events: Events::default(),
            timers: BTreeSet::new(),
            now: Instant::ZERO,
            lose_answers: 0,
            expire_when_started: false,
            stats: FleetStats::default(),
            completions: Vec::new(),
            retired: Vec::new(),
            transcript: Vec::new(),
        };
        for process in 0..config.processes {
            fleet.start(process);
        }
        fleet
    }

    /// `process`'s app issues a request now; its id, or `None` when the process is down or
    /// paused (its app does not run either).
    pub fn submit(&mut self, process: Process, spec: RequestSpec) -> Option<RequestId> {
        if !self.running(process) {
            return None;
        }
        let id = self.feed(process, Input::Submit(spec))?;
        self.stats.submitted += 1;
        Some(id)
    }

    /// Every running process issues `count` authenticated requests now: the storm.
    pub fn storm(&mut self, count: usize) -> Vec<(Process, RequestId)> {
        let mut ids = Vec::with_capacity(count.saturating_mul(self.processes.len()));
        for process in 0..self.processes.len() {
            for _ in 0..count {
                if let Some(id) = self.submit(process, RequestSpec::bearer()) {
                    ids.push((process, id));
                }
            }
        }
        ids
    }

    /// Feeds an app input (logout, login, cancel) to a running process now.
    pub fn input(&mut self, process: Process, input: Input) {
        if self.running(process) {
            self.feed(process, input);
        }
    }

    /// The process crashes (everything in it is gone, its lease stays until its ttl) and starts
    /// again from the store at once, or when the store is reachable again.
    pub fn restart(&mut self, process: Process) {
        let now = self.now;
        let Some(proc) = self.processes.get_mut(process) else {
            return;
        };
        if let Some(checked) = proc.checked.take() {
            self.stats.lost_in_crash += checked.monitor.pending() as u64;
            self.retired.extend(
                checked
                    .monitor
                    .violations()
                    .iter()
                    .map(|v| (process, v.clone())),
            );
        }
        proc.incarnation += 1;
        proc.paused_until = now;
        if let Some(at) = proc.armed.take() {
            self.timers.remove(&(at, process));
        }
        proc.read_pending = false;
        proc.submitted.clear();
        proc.outcomes.clear();
        self.stats.crashes += 1;
        self.monitor.on_crash(process);
        self.note(format!("p{process} == crash and restart =="));
        self.start(process);
    }

    /// The process stops running for `duration` (its answers and timers wait for it), as a
    /// garbage-collection pause or a descheduled VM does: a hung lease holder.
    pub fn pause(&mut self, process: Process, duration: Duration) {
        let until = self.now.saturating_add(duration);
        if let Some(proc) = self.processes.get_mut(process) {
            proc.paused_until = proc.paused_until.max(until);
            self.note(format!(
                "p{process} == paused until {} ==",
                until.as_millis()
            ));
        }
    }

    /// The store is unreachable from now for `duration`: every operation answers
    /// `Unavailable`, a release or logout is lost, reads and starts wait.
    pub fn store_outage(&mut self, duration: Duration) {
        let until = self.now.saturating_add(duration);
        self.store.down_until = self.store.down_until.max(until);
        self.note(format!("store unavailable until {}", until.as_millis()));
    }

    /// The lease runs out under its holder once the holder's login or refresh is under way (at
    /// once if it is already): a holder slower than its lease, the takeover window of P10. A
    /// lease that ends before its holder even started is [`Fleet::lose_lease`].
    pub fn expire_lease(&mut self) {
        match self.store.lease {
            Some(lease) if lease.started => self.lose_lease(),
            Some(_) => self.expire_when_started = true,
            None => {}
        }
    }

    /// The store loses the lease now, whatever its holder is doing: a failover to a replica that
    /// never saw it, an eviction. Beyond what a lease promises (it lasts its ttl): a holder that
    /// has not yet read its grant starts its operation beside the next holder's, so P10 cannot
    /// hold; the spent mark still keeps P9.
    pub fn lose_lease(&mut self) {
        self.expire_when_started = false;
        if let Some(lease) = self.store.lease.take() {
            self.cancel_expiry(lease);
            self.lease_expired(lease.owner);
        }
    }

    /// The store loses its data (a Redis restarted without persistence): the record is empty
    /// again at version 0, so its versions will be reused with other tokens, and the spent mark
    /// and the lease are gone. P9 must hold whatever the timing: a session that finds its record
    /// forgotten logs in rather than present a token whose history was lost. Two promises cannot
    /// survive it: a lost lease can overlap operations (P10, as [`Fleet::lose_lease`]) and a
    /// lost tombstone is a lost logout (P11).
    pub fn lose_store_data(&mut self) {
        self.expire_when_started = false;
        if let Some(lease) = self.store.lose_data() {
            self.cancel_expiry(lease);
            self.lease_expired(lease.owner);
        }
        self.note("store: lost its data (empty at v0)".to_owned());
        self.store_changed();
    }

    /// The server will do the next `count` logins or refreshes, but their answers never reach
    /// the process that asked (a hung holder: its operation times out).
    pub fn lose_next_answers(&mut self, count: u32) {
        self.lose_answers = self.lose_answers.saturating_add(count);
    }

    /// Delivers the next answer, fires the next timer or runs the next store event (an answer
    /// due at the same instant as a timer comes first, as in [`crate::sim::Sim::step`]). `false`
    /// when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let message = self.events.next_at();
        match (message, self.timers.first().copied()) {
            (None, None) => false,
            (Some(at), Some((timer, _))) if at <= timer => self.run_event(),
            (Some(_), None) => self.run_event(),
            (_, Some((at, process))) => {
                self.fire_timer(at, process);
                true
            }
        }
    }

    /// The next queued event: an answer, a poll, a start, the lease's end.
    fn run_event(&mut self) -> bool {
        let Some((at, event)) = self.events.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        let now = self.now;
        let target = match &event {
            Event::Deliver {
                process,
                incarnation,
                ..
            }
            | Event::Read {
                process,
                incarnation,
            }
            | Event::Start {
                process,
                incarnation,
            } => Some((*process, *incarnation)),
            Event::LeaseExpiry => None,
        };
        if let Some((process, incarnation)) = target {
            let Some(proc) = self.processes.get(process) else {
                return true;
            };
            if proc.incarnation != incarnation {
                // Addressed to a process that crashed since.
                return true;
            }
            if proc.paused_until > now {
                let resume = proc.paused_until;
                self.events.schedule(resume, event);
                return true;
            }
        }
        match event {
            Event::Deliver { process, input, .. } => {
                self.feed(process, input);
            }
            Event::Read { process, .. } => self.watch_read(process),
            Event::LeaseExpiry => {
                if let Some(lease) = self.store.lease.take() {
                    self.lease_expired(lease.owner);
                }
            }
            Event::Start { process, .. } => self.start(process),
        }
        true
    }

    /// Runs until nothing is left to happen (at most a million steps); returns the steps taken.
    pub fn drive(&mut self) -> usize {
        self.drive_bounded(1_000_000).unwrap_or(1_000_000)
    }

    /// Runs until nothing is left to happen, or fails after `max_steps`.
    pub fn drive_bounded(&mut self, max_steps: usize) -> Result<usize, FleetUnsettled> {
        for steps in 0..max_steps {
            if !self.step() {
                return Ok(steps);
            }
        }
        if self.is_quiet() {
            Ok(max_steps)
        } else {
            Err(FleetUnsettled { steps: max_steps })
        }
    }

    /// Runs everything due within `duration`, then moves the clock to its end. At most
    /// [`ADVANCE_STEPS`] events per process are run (as [`crate::sim::Sim::advance`] bounds
    /// a configuration that re-arms a timer at the instant it fires); the rest runs late.
    pub fn advance(&mut self, duration: Duration) {
        let until = self.now.saturating_add(duration);
        let budget = ADVANCE_STEPS.saturating_mul(self.processes.len().max(1));
        for _ in 0..budget {
            let timer = self.timers.first().map(|&(at, _)| at);
            match [self.events.next_at(), timer].into_iter().flatten().min() {
                Some(at) if at <= until => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Faults stop: the server's queued faults and the lost answers are dropped (an outage or a
    /// pause under way runs to its end), the network and the store answer within the operation
    /// timeout (as [`crate::sim::Sim::settle`]: a network slower than a configured timeout of,
    /// say, zero fails every operation, a fault that must stop too), everything runs until the
    /// fleet is quiet, and P8 is judged in every running process. Returns `false` if it did not
    /// go quiet within `max_steps`.
    pub fn settle(&mut self, max_steps: usize) -> bool {
        self.server.clear_faults();
        self.lose_answers = 0;
        self.expire_when_started = false;
        let timeout = self.config.session.operation_timeout;
        self.config.latency = self.config.latency.min(timeout);
        self.config.store_latency = self.config.store_latency.min(timeout);
        let settled = self.drive_bounded(max_steps).is_ok();
        for proc in &mut self.processes {
            if let Some(checked) = proc.checked.as_mut() {
                let state = checked.session.state();
                checked.monitor.check_settled(state);
            }
        }
        settled
    }

    /// Whether nothing is left to happen: no answer in flight, no timer armed, no read or start
    /// queued, no lease left to run out.
    pub fn is_quiet(&self) -> bool {
        self.events.is_empty() && self.timers.is_empty()
    }

    /// How many processes the fleet has.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Whether the fleet has no process at all.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// The session of a running process.
    pub fn session(&self, process: Process) -> Option<&Session> {
        self.processes
            .get(process)?
            .checked
            .as_ref()
            .map(|c| &c.session)
    }

    /// The monitor of a running process (P1–P8 of its current life).
    pub fn monitor(&self, process: Process) -> Option<&Monitor> {
        self.processes
            .get(process)?
            .checked
            .as_ref()
            .map(|c| &c.monitor)
    }

    /// The fleet's monitor (P9–P11).
    pub fn fleet_monitor(&self) -> &FleetMonitor {
        &self.monitor
    }

    /// Every fleet property broken so far.
    pub fn fleet_violations(&self) -> &[FleetViolation] {
        self.monitor.violations()
    }

    /// Every per-process property broken so far, in any life of any process.
    pub fn process_violations(&self) -> Vec<(Process, Violation)> {
        let mut found = self.retired.clone();
        for (process, proc) in self.processes.iter().enumerate() {
            if let Some(checked) = &proc.checked {
                found.extend(
                    checked
                        .monitor
                        .violations()
                        .iter()
                        .map(|v| (process, v.clone())),
                );
            }
        }
        found
    }

    /// Whether the fleet monitor and every process's monitor are clean.
    pub fn is_clean(&self) -> bool {
        self.monitor.is_clean()
            && self.retired.is_empty()
            && self
                .processes
                .iter()
                .filter_map(|proc| proc.checked.as_ref())
                .all(|checked| checked.monitor.is_clean())
    }

    /// Every violation found, one per line, for assertion messages.
    pub fn violations_text(&self) -> String {
        let fleet = self
            .monitor
            .violations()
            .iter()
            .map(|v| format!("fleet: {v}"));
        let processes = self
            .process_violations()
            .into_iter()
            .map(|(p, v)| format!("p{p}: {v}"));
        fleet.chain(processes).collect::<Vec<_>>().join("\n")
    }

    /// The outcome of a request of `process`'s current life.
    pub fn outcome(&self, process: Process, id: RequestId) -> Option<Outcome> {
        self.processes.get(process)?.outcomes.get(&id).copied()
    }

    /// The `index`-th (modulo their number) outstanding request of `process`'s current life.
    pub fn outstanding_request(&self, process: Process, index: usize) -> Option<RequestId> {
        let open = &self.processes.get(process)?.submitted;
        let index = index.checked_rem(open.len())?;
        open.keys().nth(index).copied()
    }

    /// Every request completed so far, in order.
    pub fn completions(&self) -> &[Completion] {
        &self.completions
    }

    /// The fleet's own counters.
    pub fn stats(&self) -> &FleetStats {
        &self.stats
    }

    /// The store's operation counters.
    pub fn store_ops(&self) -> &StoreOps {
        &self.store.ops
    }

    /// The polls of the store a real driver makes that [`Fleet`] skips because they find
    /// nothing new: one per process per `watch_interval` of simulated time so far, minus the
    /// reads run. An estimate (restarts and pauses are not subtracted).
    pub fn idle_reads(&self) -> u64 {
        let interval = self.config.watch_interval.as_millis().max(1);
        let polls = u128::from(self.now.as_millis()) / interval
            * u128::try_from(self.processes.len()).unwrap_or(u128::MAX);
        u64::try_from(polls)
            .unwrap_or(u64::MAX)
            .saturating_sub(self.store.ops.reads)
    }

    /// The shared record as a process reading it now would see it.
    pub fn store_record(&self) -> Observed {
        self.store.observe(self.now)
    }

    /// Who holds the lease now, if anyone: the process and its operation.
    pub fn lease_holder(&self) -> Option<(Process, OpId)> {
        self.store
            .lease
            .map(|lease| (lease.owner.process, lease.owner.op))
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The setup the fleet was built with.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Every input, command and store event so far, one per line, secrets fingerprinted (empty
    /// when [`FleetConfig::transcript`] is off).
    pub fn transcript(&self) -> String {
        let mut text = self.transcript.join("\n");
        text.push('\n');
        text
    }
}
