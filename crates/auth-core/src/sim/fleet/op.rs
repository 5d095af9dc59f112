//! The fleet simulator's vocabulary of things that can happen, shared by the fleet property
//! tests and the `fleet` fuzz target so both explore the same world (as [`crate::sim::Op`] is for
//! one session).

use core::time::Duration;

use crate::input::{Input, RequestSpec};
use crate::sim::Fault;

use super::Fleet;

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
    /// The lease runs out under its holder now.
    ExpireLease,
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
        }
    }
}
