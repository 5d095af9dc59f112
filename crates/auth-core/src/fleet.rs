//! The one definition of the fleet properties P9–P11 (DESIGN.md §7): what must hold across all
//! the processes sharing one session through a store.
//!
//! Each process keeps its own [`crate::Monitor`] for P1–P8. The [`FleetMonitor`] watches every
//! process's inputs and commands together with what only the store and the world know (a lease
//! granted, a tombstone written, tokens written, a lease that expired, a process that crashed),
//! and records violations as values. The model checker keeps it in its states and the fleet
//! simulator checks it after every step, so the properties are written once, here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::input::{Input, OpId};

/// Which process of the fleet: an index chosen by whoever runs the fleet.
pub type Process = usize;

/// The fleet properties of DESIGN.md §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FleetProperty {
    /// A refresh token is presented at most once across all processes.
    P9NoReuse,
    /// At most one login or refresh in flight across the processes, outside the takeover window
    /// after a lease expired.
    P10FleetSingleFlight,
    /// After a logout in any process, no process starts a login or refresh on a lease granted
    /// after it, and no token write is accepted, until an explicit `Login`.
    P11SharedLogout,
}

/// One broken fleet promise.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum FleetViolation {
    /// P9: a refresh token presented a second time (by `process`).
    #[error("P9: process {process} presented a refresh token that was presented before")]
    RefreshTokenReused {
        /// The process that presented it again.
        process: Process,
    },
    /// P10: an operation started while another process's was in flight.
    #[error("P10: process {started:?} started an operation while {running:?} had one in flight")]
    ConcurrentOperations {
        /// The process and operation already in flight.
        running: (Process, OpId),
        /// The one started beside it.
        started: (Process, OpId),
    },
    /// P11: a login or refresh started on a lease granted after a logout, or without a lease.
    #[error("P11: process {0} started a login or refresh after the shared logout")]
    ActAfterSharedLogout(Process),
    /// P11: the store accepted tokens after a logout and before the next explicit login.
    #[error("P11: tokens were written after the shared logout")]
    WriteAfterSharedLogout,
}

impl FleetViolation {
    /// Which property this violation breaks.
    pub fn property(&self) -> FleetProperty {
        match self {
            FleetViolation::RefreshTokenReused { .. } => FleetProperty::P9NoReuse,
            FleetViolation::ConcurrentOperations { .. } => FleetProperty::P10FleetSingleFlight,
            FleetViolation::ActAfterSharedLogout(_) | FleetViolation::WriteAfterSharedLogout => {
                FleetProperty::P11SharedLogout
            }
        }
    }
}

/// Watches a fleet of processes sharing one session. `Clone + Eq + Hash` so that the model
/// checker can keep it in its states.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FleetMonitor {
    /// Every refresh token ever presented (its secret: the monitor runs only in tests).
    presented: BTreeSet<String>,
    /// Logins and refreshes presented and not yet answered, abandoned or orphaned.
    in_flight: BTreeSet<(Process, OpId)>,
    /// Leases granted while no logout was in force, not yet released.
    granted: BTreeSet<(Process, OpId)>,
    /// A tombstone was written and no explicit `Login` came since.
    logged_out: bool,
    violations: Vec<FleetViolation>,
}

impl FleetMonitor {
    /// A monitor for a fleet that has not done anything yet.
    pub fn new() -> Self {
        FleetMonitor::default()
    }

    /// Records an input fed to `process`'s session.
    pub fn on_input(&mut self, process: Process, input: &Input) {
        match input {
            Input::LoginResult { op, .. } | Input::RefreshResult { op, .. } => {
                self.in_flight.remove(&(process, *op));
            }
            Input::Login => self.logged_out = false,
            _ => {}
        }
    }

    /// Records a command `process`'s session emitted.
    pub fn on_command(&mut self, process: Process, command: &Command) {
        match command {
            Command::Refresh { op, refresh_token } => {
                if !self
                    .presented
                    .insert(refresh_token.expose_secret().to_owned())
                {
                    self.violations
                        .push(FleetViolation::RefreshTokenReused { process });
                }
                self.on_operation(process, *op);
            }
            Command::Login { op } => self.on_operation(process, *op),
            Command::Release { op, .. } => {
                self.in_flight.remove(&(process, *op));
                self.granted.remove(&(process, *op));
            }
            _ => {}
        }
    }

    /// The store granted `process` the lease for `op`.
    pub fn on_granted(&mut self, process: Process, op: OpId) {
        if !self.logged_out {
            self.granted.insert((process, op));
        }
    }

    /// The store wrote a logout's tombstone.
    pub fn on_tombstone(&mut self) {
        self.logged_out = true;
    }

    /// The store accepted a write of tokens.
    pub fn on_tokens_written(&mut self) {
        if self.logged_out {
            self.violations.push(FleetViolation::WriteAfterSharedLogout);
        }
    }

    /// A lease expired before its holder released it: the holder's operation may still be under
    /// way while another process takes over (the documented takeover window of P10, which the
    /// spent mark keeps from breaking P9).
    pub fn on_lease_expired(&mut self) {
        self.in_flight.clear();
    }

    /// `process` crashed: its operations are gone with it (their requests may still reach the
    /// server, which P9 judges when a token is presented again).
    pub fn on_crash(&mut self, process: Process) {
        self.in_flight.retain(|(p, _)| *p != process);
        self.granted.retain(|(p, _)| *p != process);
    }

    /// Everything seen so far that broke a fleet property.
    pub fn violations(&self) -> &[FleetViolation] {
        &self.violations
    }

    /// Whether any fleet property was broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    fn on_operation(&mut self, process: Process, op: OpId) {
        if self.logged_out && !self.granted.contains(&(process, op)) {
            self.violations
                .push(FleetViolation::ActAfterSharedLogout(process));
        }
        if let Some(&running) = self.in_flight.iter().find(|(p, _)| *p != process) {
            self.violations.push(FleetViolation::ConcurrentOperations {
                running,
                started: (process, op),
            });
        }
        self.in_flight.insert((process, op));
    }
}
