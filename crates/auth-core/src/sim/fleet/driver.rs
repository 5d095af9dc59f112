//! The simulated drivers of a [`Fleet`]: what each process's driver does with its session's
//! commands (calls the fake server, the simulated store, answers after a latency), its one timer,
//! its watch's polls of the store, and the store's side of leases (grants, expiries) that only the
//! world sees and the [`crate::FleetMonitor`] is told about. Kept apart from the fleet's API in
//! the parent module.

use core::time::Duration;

use crate::command::{Command, Outcome};
use crate::input::{Auth, Input, RequestId};
use crate::monitor::Checked;
use crate::session::Session;
use crate::shared::{LeaseResult, PublishResult};
use crate::sim::server::Answer;
use crate::sim::transcript;
use crate::time::Instant;

use super::store::{self, Owner};
use super::{Completion, Event, Fleet, Process};

impl Fleet {
    /// Whether `process` exists, is up and is not paused.
    pub(super) fn running(&self, process: Process) -> bool {
        self.processes
            .get(process)
            .is_some_and(|proc| proc.checked.is_some() && proc.paused_until <= self.now)
    }

    /// Builds `process`'s session from the record it reads now; waits for the store when it is
    /// unreachable.
    pub(super) fn start(&mut self, process: Process) {
        let now = self.now;
        let Some(incarnation) = self.processes.get(process).map(|proc| proc.incarnation) else {
            return;
        };
        let Some(observed) = self.store.read(now) else {
            let at = self.store.down_until;
            self.events.schedule(
                at,
                Event::Start {
                    process,
                    incarnation,
                },
            );
            return;
        };
        self.note(format!(
            "p{process} starts from the store: {}",
            transcript::observed_text(&observed)
        ));
        let seen = self.store.changes();
        let mut session = Session::shared(self.config.session, observed, now);
        if let Some(hook) = self.config.session_hook {
            session = hook(session);
        }
        let mut commands = Vec::new();
        let checked = Checked::new(session, &mut commands);
        if let Some(proc) = self.processes.get_mut(process) {
            proc.checked = Some(checked);
            proc.last_seen = Some(seen);
        }
        for command in commands {
            self.monitor.on_command(process, &command);
            self.execute(process, command);
        }
        self.rearm(process);
    }

    /// Feeds one input to a running process, executes its commands, re-arms its timer.
    pub(super) fn feed(&mut self, process: Process, input: Input) -> Option<RequestId> {
        let now = self.now;
        if self.config.transcript {
            self.note(format!("p{process} {}", transcript::input(&input)));
        }
        self.monitor.on_input(process, &input);
        let spec = match &input {
            Input::Submit(spec) => Some(*spec),
            _ => None,
        };
        let mut commands = Vec::new();
        let proc = self.processes.get_mut(process)?;
        let id = proc.checked.as_mut()?.handle(input, now, &mut commands);
        if let (Some(id), Some(spec)) = (id, spec) {
            proc.submitted.insert(id, (now, spec.auth));
        }
        for command in commands {
            self.monitor.on_command(process, &command);
            self.execute(process, command);
        }
        self.rearm(process);
        id
    }

    /// The driver's one timer follows `poll_timeout`.
    pub(super) fn rearm(&mut self, process: Process) {
        let Some(proc) = self.processes.get_mut(process) else {
            return;
        };
        let deadline = proc.checked.as_ref().and_then(|c| c.session.poll_timeout());
        if deadline == proc.armed {
            return;
        }
        if let Some(at) = proc.armed.take() {
            self.timers.remove(&(at, process));
        }
        if let Some(at) = deadline {
            proc.armed = Some(at);
            self.timers.insert((at, process));
        }
    }

    pub(super) fn execute(&mut self, process: Process, command: Command) {
        let now = self.now;
        if self.config.transcript {
            self.note(format!("p{process}   -> {}", transcript::command(&command)));
        }
        let Some(incarnation) = self.processes.get(process).map(|proc| proc.incarnation) else {
            return;
        };
        let owner = |op| Owner {
            process,
            incarnation,
            op,
        };
        let latency = self.config.latency;
        let store_latency = self.config.store_latency;
        match command {
            Command::Send {
                id, attempt, token, ..
            } => {
                let public = self.spec_is_public(process, id);
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
                self.deliver(process, latency, response);
            }
            Command::Login { op } => {
                self.operation_started(owner(op));
                if let Answer::After { extra, result } = self.server.login(now) {
                    let input = Input::LoginResult { op, result };
                    self.answer(process, latency.saturating_add(extra), input);
                }
            }
            Command::Refresh { op, refresh_token } => {
                self.operation_started(owner(op));
                if let Answer::After { extra, result } = self.server.refresh(&refresh_token, now) {
                    let input = Input::RefreshResult { op, result };
                    self.answer(process, latency.saturating_add(extra), input);
                }
            }
            Command::Acquire { op, ttl } => {
                self.end_lease_if_due();
                let events = &mut self.events;
                let result = self.store.acquire(owner(op), ttl, now, |until| {
                    events.schedule(until, Event::LeaseExpiry)
                });
                if let LeaseResult::Granted(observed) = &result {
                    self.monitor.on_granted(process, op);
                    let text = transcript::observed_text(observed);
                    self.note(format!("store: lease to p{process} op{} on {text}", op.0));
                }
                self.deliver(process, store_latency, Input::Lease { op, result });
            }
            Command::Publish {
                op,
                expected,
                persist,
            } => {
                let result = self.store.publish(expected, persist, now);
                if result == PublishResult::Written {
                    self.monitor.on_tokens_written();
                    let version = self.store.version();
                    self.note(format!("store: p{process} wrote v{}", version.0));
                    self.store_changed();
                }
                self.deliver(process, store_latency, Input::Published { op, result });
            }
            Command::Release { op, version, spent } => {
                self.end_lease_if_due();
                if let Some(lease) = self.store.release(owner(op), version, spent, now) {
                    self.cancel_expiry(lease);
                    // A lease released before its holder started never runs out under it.
                    self.expire_when_started = false;
                }
            }
            Command::ClearStore => match self.store.logout(now) {
                Some(observed) => {
                    self.monitor.on_tombstone();
                    self.note(format!("store: p{process} wrote the tombstone"));
                    self.store_changed();
                    self.deliver(process, store_latency, Input::StoreChanged(observed));
                }
                None => self.stats.logouts_not_durable += 1,
            },
            Command::Revoke { refresh_token } => self.server.revoke(&refresh_token),
            Command::Complete { id, outcome } => self.complete(process, id, outcome),
            // A shared session publishes instead of persisting; notifications and adoptions
            // are for logs and monitors.
            Command::Persist(_) | Command::Notify(_) | Command::Adopted(_) => {}
        }
    }

    /// Whether the app submitted `id` as a public request (so it goes to a public endpoint).
    pub(super) fn spec_is_public(&self, process: Process, id: RequestId) -> bool {
        self.processes
            .get(process)
            .and_then(|proc| proc.submitted.get(&id))
            .is_some_and(|&(_, auth)| auth == Auth::Public)
    }

    /// `process`'s timer fires: `Timeout` now, or at the end of its pause.
    pub(super) fn fire_timer(&mut self, at: Instant, process: Process) {
        self.timers.remove(&(at, process));
        self.now = self.now.max(at);
        let now = self.now;
        let Some(proc) = self.processes.get_mut(process) else {
            return;
        };
        proc.armed = None;
        if proc.paused_until > now {
            let resume = proc.paused_until;
            proc.armed = Some(resume);
            self.timers.insert((resume, process));
            return;
        }
        self.feed(process, Input::Timeout);
    }

    /// A login or refresh answer: delivered, unless the network is set to lose it.
    pub(super) fn answer(&mut self, process: Process, after: Duration, input: Input) {
        if self.lose_answers > 0 {
            self.lose_answers -= 1;
            self.stats.answers_lost += 1;
            self.note(format!("p{process} == its answer is lost =="));
            return;
        }
        self.deliver(process, after, input);
    }

    pub(super) fn deliver(&mut self, process: Process, after: Duration, input: Input) {
        let Some(incarnation) = self.processes.get(process).map(|proc| proc.incarnation) else {
            return;
        };
        let at = self.now.saturating_add(after);
        self.events.schedule(
            at,
            Event::Deliver {
                process,
                incarnation,
                input,
            },
        );
    }

    pub(super) fn complete(&mut self, process: Process, id: RequestId, outcome: Outcome) {
        let now = self.now;
        let Some(proc) = self.processes.get_mut(process) else {
            return;
        };
        if proc.outcomes.insert(id, outcome).is_some() {
            return;
        }
        let submitted = proc.submitted.remove(&id).map_or(now, |(at, _)| at);
        match outcome {
            Outcome::Deliver => self.stats.delivered += 1,
            Outcome::Fail(_) => self.stats.failed += 1,
        }
        self.completions.push(Completion {
            process,
            id,
            submitted,
            completed: now,
            outcome,
        });
    }

    /// The record's version moved: every running process's watch will see it at its next poll.
    pub(super) fn store_changed(&mut self) {
        for process in 0..self.processes.len() {
            self.queue_read(process, self.now);
        }
    }

    /// Queues `process`'s next poll at or after `after`.
    pub(super) fn queue_read(&mut self, process: Process, after: Instant) {
        let count = self.processes.len().max(1) as u64;
        let interval = u64::try_from(self.config.watch_interval.as_millis()).unwrap_or(u64::MAX);
        let Some(proc) = self.processes.get_mut(process) else {
            return;
        };
        if proc.read_pending || proc.checked.is_none() {
            return;
        }
        proc.read_pending = true;
        // Each process polls on its own phase, spread over the interval.
        let phase = interval / count * process as u64;
        let after = after.as_millis();
        let at = if interval == 0 || after <= phase {
            after.max(phase.min(after.saturating_add(interval)))
        } else {
            let periods = (after - phase).div_ceil(interval);
            phase.saturating_add(periods.saturating_mul(interval))
        };
        let incarnation = proc.incarnation;
        self.events.schedule(
            Instant::from_millis(at),
            Event::Read {
                process,
                incarnation,
            },
        );
    }

    /// A poll of the store by `process`'s watch: a changed record is fed as `StoreChanged`.
    pub(super) fn watch_read(&mut self, process: Process) {
        let now = self.now;
        if let Some(proc) = self.processes.get_mut(process) {
            proc.read_pending = false;
        }
        let Some(observed) = self.store.read(now) else {
            let back = self.store.down_until;
            return self.queue_read(process, back);
        };
        let Some(proc) = self.processes.get_mut(process) else {
            return;
        };
        let seen = self.store.changes();
        if proc.last_seen == Some(seen) {
            return;
        }
        proc.last_seen = Some(seen);
        let after = self.config.store_latency;
        self.deliver(process, after, Input::StoreChanged(observed));
    }

    /// `owner` started its login or refresh: if it holds the lease, the lease is now under way
    /// (and runs out now if [`Fleet::expire_lease`] asked for that).
    pub(super) fn operation_started(&mut self, owner: Owner) {
        let Some(lease) = self.store.lease.as_mut().filter(|l| l.owner == owner) else {
            return;
        };
        lease.started = true;
        if self.expire_when_started {
            self.lose_lease();
        }
    }

    /// A lease whose ttl has run out by now ends before the store answers anything else.
    pub(super) fn end_lease_if_due(&mut self) {
        let now = self.now;
        let due = |lease: &store::Lease| lease.until.is_some_and(|until| until <= now);
        if let Some(lease) = self.store.lease.filter(due) {
            self.store.lease = None;
            self.cancel_expiry(lease);
            self.lease_expired(lease.owner);
        }
    }

    pub(super) fn cancel_expiry(&mut self, lease: store::Lease) {
        if let Some(key) = lease.expiry {
            self.events.cancel(key);
        }
    }

    pub(super) fn lease_expired(&mut self, owner: Owner) {
        self.expire_when_started = false;
        self.store.ops.lease_expiries += 1;
        self.monitor.on_lease_expired();
        self.note(format!(
            "store: the lease of p{} op{} ran out",
            owner.process, owner.op.0
        ));
    }

    pub(super) fn note(&mut self, line: String) {
        if self.config.transcript {
            self.transcript
                .push(format!("{:>7} | {line}", self.now.as_millis()));
        }
    }
}
