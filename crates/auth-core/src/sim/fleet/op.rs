//! The fleet simulator's vocabulary of things that can happen, and the one harness that judges a
//! run of them ([`check`]), shared by the fleet property tests and the `fleet` fuzz target so both
//! explore the same world and judge it the same way (as [`crate::sim::Op`] is for one session).

use core::time::Duration;

use crate::config::Config;
use crate::input::{Input, RequestSpec};
use crate::sim::Fault;

use super::{Fleet, FleetConfig};

/// Step budget of the settle in [`check`]. Waiting is polling: every waiting process asks for the
/// lease every 20 ms while the holder's login or refresh takes its latency, so a world whose
/// tokens are useless at once (a zero lifetime) and whose requests may be sent 256 times, with a
/// token endpoint seconds away, needs about a million steps; a fleet that needs more loops (P8).
/// Only a failing run spends it all.
pub const SETTLE_STEPS: usize = 2_000_000;

/// The longest `operation_timeout` [`settleable`] keeps. A process whose lease holder crashed
/// asks again every `LEASE_RETRY` (20 ms) until the lease's ttl (2 × the timeout) ends, so
/// settling costs about `operation_timeout / 10 ms` steps per waiting process, and
/// `Duration::MAX` would never settle in steps. Longer timeouts only stretch the same waits.
pub const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(31);

/// The largest retry budget [`settleable`] keeps for a session that retries less than a second
/// apart (a zero `backoff_base`, or a `backoff_max` under a second). Such a session retries as
/// fast as the store answers, and a store that is down may refuse at once: through an hour-long
/// outage that is millions of retries at three steps each (the tight loop docs/architecture.md
/// warns of); and with a zero `operation_timeout` too, an `Acquire` given up at its deadline
/// holds the lease for its 1 ms ttl while retries at that one instant fail, the simulated clock
/// never moving.
pub const MAX_RETRIES_WITHOUT_BACKOFF: u32 = 5_000;

/// `config` as random fleets run it: every field as drawn, except the two whose extremes cost
/// more simulated steps than any budget (see [`MAX_OPERATION_TIMEOUT`] and
/// [`MAX_RETRIES_WITHOUT_BACKOFF`]). Neither cap changes what the rules do, only how long the
/// simulator must run to see it.
pub fn settleable(config: Config) -> Config {
    let fast_retries = config.backoff_base.is_zero() || config.backoff_max < Duration::from_secs(1);
    let max_operation_retries = if fast_retries {
        config
            .max_operation_retries
            .min(MAX_RETRIES_WITHOUT_BACKOFF)
    } else {
        config.max_operation_retries
    };
    Config {
        operation_timeout: config.operation_timeout.min(MAX_OPERATION_TIMEOUT),
        max_operation_retries,
        ..config
    }
}

/// Runs `ops` on a fleet built with `config`: after every op the fleet's monitor (P9–P11) and
/// every process's monitor (P1–P7) must be clean; then faults stop, the fleet must go quiet
/// within [`SETTLE_STEPS`] and P8 hold everywhere. On failure: what broke, and the transcript of
/// the same run made again with one (runs go without: formatting every line costs more than the
/// run, and the fleet is deterministic).
pub fn check(config: FleetConfig, ops: &[FleetOp]) -> Result<(), String> {
    let Err(failure) = run(config, ops, false) else {
        return Ok(());
    };
    let transcript = match run(config, ops, true) {
        Err(again) => again,
        Ok(()) => "(the run with a transcript passed: the fleet is not deterministic)".to_owned(),
    };
    Err(format!(
        "{failure}\n\nthe same run with its transcript:\n{transcript}"
    ))
}

fn run(config: FleetConfig, ops: &[FleetOp], transcript: bool) -> Result<(), String> {
    let mut fleet = Fleet::new(FleetConfig {
        transcript,
        ..config
    });
    let failed = |fleet: &Fleet, when: String| {
        Err(format!(
            "{when}:\n{}\n{}",
            fleet.violations_text(),
            fleet.transcript()
        ))
    };
    for op in ops {
        fleet.apply(*op);
        if !fleet.is_clean() {
            return failed(&fleet, format!("after {op:?}"));
        }
    }
    if !fleet.settle(SETTLE_STEPS) {
        return failed(
            &fleet,
            format!("did not settle within {SETTLE_STEPS} steps"),
        );
    }
    if !fleet.is_clean() {
        return failed(&fleet, "once faults stopped".to_owned());
    }
    Ok(())
}

/// One thing an app, the network, the store or the auth server does. Processes are picked by
/// index modulo the fleet's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetOp {
    /// A process's app issues a request.
    Submit(usize, RequestSpec),
    /// Every process issues this many authenticated requests at once.
    Storm(u8),
    /// A process's app cancels one of its outstanding requests (picked by index).
    Cancel(usize, u16),
    /// The user logs out in one process.
    Logout(usize),
    /// The app of one process asks for a login.
    Login(usize),
    /// Deliver up to this many answers, timers and store events.
    Step(u8),
    /// Let virtual time pass, running everything due.
    Advance(Duration),
    /// The server expires every access token.
    ExpireAccessTokens,
    /// The server kills the live refresh token.
    RevokeRefreshToken,
    /// The next login suffers a fault at the server.
    FailNextLogin(Fault),
    /// The next refresh suffers a fault at the server.
    FailNextRefresh(Fault),
    /// The server does the next login or refresh, but the answer never comes back.
    LoseNextAnswer,
    /// A process crashes and starts again from the store.
    Restart(usize),
    /// A process stops running for a while (a hung holder).
    Pause(usize, Duration),
    /// The store is unreachable for a while.
    StoreOutage(Duration),
    /// The lease runs out under its holder mid-operation ([`Fleet::expire_lease`]).
    ExpireLease,
    /// The store loses its data ([`Fleet::lose_store_data`]) while nobody holds the lease and
    /// no tombstone is stored (nothing otherwise): within what the fleet can keep, P9–P11.
    LoseStoreData,
}

impl Fleet {
    /// Applies one op.
    pub fn apply(&mut self, op: FleetOp) {
        let pick = |fleet: &Fleet, index: usize| index % fleet.len().max(1);
        match op {
            FleetOp::Submit(process, spec) => {
                self.submit(pick(self, process), spec);
            }
            FleetOp::Storm(count) => {
                self.storm(usize::from(count));
            }
            FleetOp::Cancel(process, index) => {
                let process = pick(self, process);
                if let Some(id) = self.outstanding_request(process, usize::from(index)) {
                    self.input(process, Input::Cancel(id));
                }
            }
            FleetOp::Logout(process) => self.input(pick(self, process), Input::Logout),
            FleetOp::Login(process) => self.input(pick(self, process), Input::Login),
            FleetOp::Step(count) => {
                for _ in 0..count {
                    if !self.step() {
                        break;
                    }
                }
            }
            FleetOp::Advance(duration) => self.advance(duration),
            FleetOp::ExpireAccessTokens => {
                let now = self.now();
                self.server.expire_access_tokens(now);
            }
            FleetOp::RevokeRefreshToken => self.server.revoke_refresh_token(),
            FleetOp::FailNextLogin(fault) => self.server.fail_next_login(fault),
            FleetOp::FailNextRefresh(fault) => self.server.fail_next_refresh(fault),
            FleetOp::LoseNextAnswer => self.lose_next_answers(1),
            FleetOp::Restart(process) => self.restart(pick(self, process)),
            FleetOp::Pause(process, duration) => self.pause(pick(self, process), duration),
            FleetOp::StoreOutage(duration) => self.store_outage(duration),
            FleetOp::ExpireLease => self.expire_lease(),
            FleetOp::LoseStoreData => {
                if self.lease_holder().is_none() && !self.store.holds_tombstone() {
                    self.lose_store_data();
                }
            }
        }
    }
}
