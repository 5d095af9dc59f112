//! The simulator's vocabulary of things that can happen, shared by the property tests and the
//! fuzzer so both explore the same world.

use core::time::Duration;

use crate::input::{Input, RequestSpec};
use crate::sim::{Fault, NetFault, Sim};

/// One thing the app, the network or the auth server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The app issues a request.
    Submit(RequestSpec),
    /// The app cancels one of its outstanding requests (picked by index, modulo their number).
    Cancel(u16),
    /// The user logs out.
    Logout,
    /// The app asks for a login.
    Login,
    /// Deliver up to this many messages or timers.
    Step(u8),
    /// Let virtual time pass, running everything due.
    Advance(Duration),
    /// The server expires every access token.
    ExpireAccessTokens,
    /// The server kills the live refresh token.
    RevokeRefreshToken,
    /// The next login suffers a fault.
    FailNextLogin(Fault),
    /// The next refresh suffers a fault.
    FailNextRefresh(Fault),
    /// The next API response is lost, duplicated or delayed.
    FaultNextResponse(NetFault),
    /// The API starts (`true`) or stops (`false`) answering every protected call 401
    /// ([`crate::sim::FakeServer::reject_every_call`]); settling does not stop it.
    RejectEveryCall(bool),
    /// The process restarts from the store.
    Restart,
}

impl Sim {
    /// Applies one op.
    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Submit(spec) => {
                self.submit(spec);
            }
            Op::Cancel(index) => {
                if let Some(id) = self.outstanding_request(usize::from(index)) {
                    self.input(Input::Cancel(id));
                }
            }
            Op::Logout => self.input(Input::Logout),
            Op::Login => self.input(Input::Login),
            Op::Step(count) => {
                for _ in 0..count {
                    if !self.step() {
                        break;
                    }
                }
            }
            Op::Advance(duration) => self.advance(duration),
            Op::ExpireAccessTokens => self.server.expire_access_tokens(self.now()),
            Op::RevokeRefreshToken => self.server.revoke_refresh_token(),
            Op::FailNextLogin(fault) => self.server.fail_next_login(fault),
            Op::FailNextRefresh(fault) => self.server.fail_next_refresh(fault),
            Op::FaultNextResponse(fault) => self.fault_next_response(fault),
            Op::RejectEveryCall(reject) => self.server.reject_every_call(reject),
            Op::Restart => self.restart(),
        }
    }

    /// Faults stop: pending server and network faults are dropped, the network answers within
    /// the operation timeout (a network slower than a configured `operation_timeout` of, say,
    /// zero fails every login and refresh: a fault that must stop too), everything runs to the
    /// end, and P8 is judged. Returns `false` if the world did not go quiet within `max_steps`.
    pub fn settle(&mut self, max_steps: usize) -> bool {
        self.server.clear_faults();
        self.clear_net_faults();
        self.latency = self.latency.min(self.session().config().operation_timeout);
        let settled = self.drive_bounded(max_steps).is_ok();
        self.check_settled();
        settled
    }
}

/// Durations worth jumping by: below, around and beyond the default timers.
pub const INTERESTING_DELAYS: [Duration; 6] = [
    Duration::from_millis(5),
    Duration::from_millis(300),
    Duration::from_secs(2),
    Duration::from_secs(11),
    Duration::from_secs(31),
    Duration::from_secs(3600),
];
