//! The bounded world of the fleet model: how many processes share the session, how the shared
//! store behaves, and the budgets that keep every path finite.

use core::time::Duration;

use auth_core::Config;

use crate::world::World;

/// How many times the environment may do each bounded thing, across the whole fleet. Every
/// action that is not a consequence of an earlier one spends a budget, so every path is finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FleetBudget {
    /// App requests (bearer) to submit, in any process.
    pub requests: u8,
    /// Server-side expiries of every access token issued so far (the cause of 401s, hence of
    /// refreshes).
    pub expiries: u8,
    /// Hangs: an operation deadline fires while its login, refresh, lease request or publish is
    /// still unanswered (a hung holder, a hung store). The late answer stays deliverable.
    pub hangs: u8,
    /// Leases that expire before their holder gives them back (a holder frozen past its ttl, a
    /// crashed holder, an orphaned grant).
    pub lease_expiries: u8,
    /// Process crashes, each followed at once by a restart that reads the store.
    pub crashes: u8,
    /// User logouts, in any process.
    pub logouts: u8,
    /// Explicit logins by the app, in any process.
    pub logins: u8,
    /// The store unreachable: a lease request or a publish answered `Unavailable`, either
    /// before the store did anything or after it did (the answer was lost).
    pub store_faults: u8,
    /// A login or refresh that fails transiently at the auth server (a 5xx), before or after
    /// it issued or rotated.
    pub server_faults: u8,
    /// Pauses: a process frozen until just past its next timer, whose driver then feeds an
    /// answer with the time read after the pause, before the timer fires.
    pub pauses: u8,
    /// The store loses its data (a restart without persistence) while it holds tokens.
    pub store_losses: u8,
    /// Store answers (to a lease request or a publish) that travel back slowly: the store
    /// acted, and leases may expire and other processes act before the answer is read.
    pub delays: u8,
}

/// The world of the fleet model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetWorld {
    /// How many processes share the session (each a real `Session::shared` with its own
    /// `Monitor`).
    pub processes: usize,
    /// Every process's configuration (see [`FleetWorld::session_config`]).
    pub config: Config,
    /// The environment's budgets.
    pub budget: FleetBudget,
    /// Drivers feed `Input::StoreChanged` when the record changed (a notification or a periodic
    /// read), at any moment after the change. Without them a waiting process learns of changes
    /// only from its own lease answers.
    pub notifications: bool,
    /// The store writes by compare-and-swap on the version, as documented. `false` plants the
    /// broken store of the brief: a publish writes whatever the version (as the next version)
    /// and always answers `Written`.
    pub compare_and_swap: bool,
}

impl FleetWorld {
    /// `processes` processes sharing one store that holds nothing yet, with `budget`.
    pub fn new(processes: usize, budget: FleetBudget) -> Self {
        FleetWorld {
            processes,
            config: FleetWorld::session_config(),
            budget,
            notifications: true,
            compare_and_swap: true,
        }
    }

    /// The configuration of every process: the single-process model's
    /// ([`World::session_config`]) with the timers scaled to the lease's retry pause
    /// (`auth_core::LEASE_RETRY`, 20 ms, a constant of the core). Only the order of deadlines
    /// matters: an operation that finds the lease busy asks once more (at 20 ms) before its
    /// deadline (30 ms), one backoff (10-15 ms) lets a second attempt start, and the queue
    /// deadline (60 ms) falls inside that second attempt. Longer timeouts only repeat the same
    /// busy answer many times over.
    pub fn session_config() -> Config {
        Config {
            operation_timeout: Duration::from_millis(30),
            queue_timeout: Duration::from_millis(60),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(10),
            ..World::session_config()
        }
    }

    /// One line for the CLI and the docs.
    pub fn describe(&self) -> String {
        let b = self.budget;
        format!(
            "{} processes, {} requests, {} expiries, {} hangs, {} lease expiries, {} crashes, \
             {} logouts, {} logins, {} store faults, {} server faults, {} pauses, {} store \
             losses, {} delayed answers, notifications {}, {}",
            self.processes,
            b.requests,
            b.expiries,
            b.hangs,
            b.lease_expiries,
            b.crashes,
            b.logouts,
            b.logins,
            b.store_faults,
            b.server_faults,
            b.pauses,
            b.store_losses,
            b.delays,
            if self.notifications { "on" } else { "off" },
            if self.compare_and_swap {
                "compare-and-swap store"
            } else {
                "store WITHOUT compare-and-swap"
            }
        )
    }
}

/// A named fleet world that CI explores exhaustively, each aimed at some of the fleet's paths
/// so that every one stays small; together they reach every `sometimes` property.
#[derive(Clone, Debug)]
pub struct FleetCheck {
    /// Its name on the command line (`fleet --world NAME`).
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// The world.
    pub world: FleetWorld,
    /// The `sometimes` properties this world cannot reach, each with the reason: every other
    /// one must be reached, and these must stay unreached (or the list is stale).
    pub unreachable: &'static [(&'static str, &'static str)],
}

impl FleetCheck {
    /// The CI worlds: two processes, two bearer requests, and a few faults each. Watchers
    /// (`notifications`) are on where they add a path (logout reaching a process that holds
    /// tokens, stale reads racing lease answers) and off elsewhere, where lease answers carry
    /// the same records: each costs 2-5x the states.
    pub fn all() -> Vec<FleetCheck> {
        use super::model::fleet_names as n;
        const NO_LOGOUT: (&str, &str) = (n::LOGOUT, "no logout");
        const NO_RESTART: (&str, &str) = (n::RESTART, "no logout");
        const NO_EXPIRY: (&str, &str) = (n::TAKEOVER, "no lease expires");
        const NO_LATE_GRANT: (&str, &str) = (
            n::LATE_GRANT,
            "no hang, delay, pause or logout: every grant is read at once by the operation \
             waiting for it",
        );
        const NO_CONFLICT: (&str, &str) = (
            n::CONFLICT,
            "two publishes on one version need a lease that passed on while its holder ran \
             (an expiry) or a hang",
        );

        let none = FleetBudget {
            requests: 2,
            expiries: 0,
            hangs: 0,
            lease_expiries: 0,
            crashes: 0,
            logouts: 0,
            logins: 0,
            store_faults: 0,
            server_faults: 0,
            pauses: 0,
            store_losses: 0,
            delays: 0,
        };
        let world = |budget: FleetBudget, notifications: bool| FleetWorld {
            notifications,
            ..FleetWorld::new(2, budget)
        };
        vec![
            FleetCheck {
                name: "takeover",
                about: "a refresh through an expiry; a lease that expires under its holder, a \
                        crash mid-operation: the next holder finds the mark and logs in",
                world: world(
                    FleetBudget {
                        expiries: 1,
                        lease_expiries: 1,
                        crashes: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[NO_LOGOUT, NO_RESTART, NO_LATE_GRANT],
            },
            FleetCheck {
                name: "logout",
                about: "a logout in one process while the other logs in, waits or holds tokens \
                        (its watcher reads the tombstone), a crash (restart on the tombstone)",
                world: world(
                    FleetBudget {
                        crashes: 1,
                        logouts: 1,
                        ..none
                    },
                    true,
                ),
                unreachable: &[NO_EXPIRY],
            },
            FleetCheck {
                name: "login-after-logout",
                about: "a logout, a crash and an explicit login in any process, in any order",
                world: world(
                    FleetBudget {
                        crashes: 1,
                        logouts: 1,
                        logins: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[NO_EXPIRY],
            },
            FleetCheck {
                name: "hung-holder",
                about: "a refresh through an expiry whose login, refresh, lease request or \
                        publish hangs past its operation deadline (the late answer still comes)",
                world: world(
                    FleetBudget {
                        expiries: 1,
                        hangs: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[NO_EXPIRY, NO_LOGOUT, NO_RESTART],
            },
            FleetCheck {
                name: "store-down",
                about: "a refresh through an expiry; the store unreachable for one lease \
                        request or publish, before or after it acted; watchers whose reads are \
                        fed late",
                world: world(
                    FleetBudget {
                        expiries: 1,
                        store_faults: 1,
                        ..none
                    },
                    true,
                ),
                unreachable: &[NO_EXPIRY, NO_LOGOUT, NO_RESTART, NO_CONFLICT],
            },
            FleetCheck {
                name: "paused",
                about: "a refresh through an expiry; a process paused past its next deadline \
                        is fed an answer before its timer fires (a grant read then is given \
                        back; a result read then is taken, its publish guarded by the version)",
                world: world(
                    FleetBudget {
                        expiries: 1,
                        pauses: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[NO_EXPIRY, NO_LOGOUT, NO_RESTART, NO_CONFLICT],
            },
            FleetCheck {
                name: "store-lost",
                about: "a refresh through an expiry that hangs (its token may have reached the \
                        server, the mark stays); the store then loses its data and versions \
                        start again at 0 with other tokens",
                world: world(
                    FleetBudget {
                        expiries: 1,
                        hangs: 1,
                        store_losses: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[
                    (
                        n::TAKEOVER,
                        "no lease expires, and a lost store forgets the mark with the lease",
                    ),
                    NO_LOGOUT,
                    NO_RESTART,
                ],
            },
            FleetCheck {
                name: "delayed-answer",
                about: "two logins; one store answer travels back slowly while the lease may \
                        expire and the other process take it: a grant read after its lease \
                        ended is given back",
                world: world(
                    FleetBudget {
                        lease_expiries: 1,
                        delays: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[
                    (
                        n::TAKEOVER,
                        "no expiry of the access token, so no refresh token is ever marked by \
                         a holder before a takeover",
                    ),
                    NO_LOGOUT,
                    NO_RESTART,
                ],
            },
            FleetCheck {
                name: "server-5xx",
                about: "a refresh through an expiry; the auth server fails one login or refresh \
                        transiently, before or after it issued or rotated",
                world: world(
                    FleetBudget {
                        expiries: 1,
                        server_faults: 1,
                        ..none
                    },
                    false,
                ),
                unreachable: &[NO_EXPIRY, NO_LOGOUT, NO_RESTART, NO_CONFLICT, NO_LATE_GRANT],
            },
        ]
    }

    /// The world called `name`.
    pub fn named(name: &str) -> Option<FleetCheck> {
        FleetCheck::all().into_iter().find(|c| c.name == name)
    }

    /// Whether `report` is what this world must give (see [`crate::check::judge`]).
    pub fn judge(
        &self,
        report: &crate::check::Report<super::FleetState, super::FleetAction>,
    ) -> Result<(), String> {
        crate::check::judge(self.name, self.unreachable, report)
    }
}
