//! The `fleet` target: a typed scenario of a fleet sharing one session, driven through the fleet
//! simulator (`auth_core::sim::fleet`).
//!
//! The fuzzer's bytes become a [`FleetScenario`] through [`arbitrary`]: how many processes (2–4),
//! the session configuration (the `session` target's [`Knobs`]: every field from its whole
//! range, edges weighted, then [`settleable`] as the fleet property tests use it), the fake
//! server's token lifetime, the latencies of the network and of the store, the watch interval,
//! then a list of [`FleetFuzzOp`]s (faults included: crashes, paused holders, lost answers,
//! store outages, leases running out mid-operation, a store that loses its data), each mapped onto the simulator's own vocabulary
//! [`FleetOp`] (the one the fleet property tests draw from). The run is judged by
//! [`auth_core::sim::fleet::check`], the harness the property tests use: the fleet's monitor
//! (P9–P11) and every process's monitor (P1–P7) clean after every op, the fleet quiet once faults
//! stop, and P8 everywhere.

use arbitrary::{Arbitrary, Unstructured};
use auth_core::sim::fleet::{check, settleable, FleetConfig, FleetOp};

use crate::session::{Delay, FaultKind, Knobs, Latency, SpecKind};

/// At most this many ops of one input are applied; the rest is ignored, so one input stays fast.
pub const MAX_OPS: usize = 128;

/// One fuzz input of the `fleet` target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct FleetScenario {
    /// How many processes share the session: 2 + this modulo 3.
    pub processes: u8,
    /// Every process's configuration.
    pub config: Knobs,
    /// Lifetime of the access tokens the fake server issues.
    pub lifetime: Delay,
    /// One-way latency of the API and the token endpoint.
    pub latency: Latency,
    /// Time from a store command to its answer.
    pub store_latency: Latency,
    /// How often each process polls the store (`Default`: the simulator's 250 ms).
    pub watch_interval: Latency,
    /// What happens, in order.
    pub ops: Vec<FleetFuzzOp>,
}

/// One thing an app, the network, the store or the auth server does. Processes are picked by
/// index modulo the fleet's size.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetFuzzOp {
    /// A process's app issues a request.
    Submit(u8, SpecKind),
    /// Every process issues 1 + (n modulo 4) authenticated requests at once.
    Storm(u8),
    /// A process's app cancels an outstanding request, picked by index.
    Cancel(u8, u16),
    /// The user logs out in one process.
    Logout(u8),
    /// One process's app asks for a login.
    Login(u8),
    /// Deliver 1 + (n modulo 16) answers, timers and store events.
    Step(u8),
    /// Let time pass, running everything due.
    Advance(Delay),
    /// The server expires every access token.
    ExpireAccessTokens,
    /// The server kills the live refresh token.
    RevokeRefreshToken,
    /// The next login suffers a fault at the server.
    FailNextLogin(FaultKind),
    /// The next refresh suffers a fault at the server.
    FailNextRefresh(FaultKind),
    /// The server does the next login or refresh; its answer never comes.
    LoseNextAnswer,
    /// A process crashes and starts again from the store.
    Restart(u8),
    /// A process stops running for a while (a hung holder).
    Pause(u8, Span),
    /// The store is unreachable for a while.
    StoreOutage(Span),
    /// The lease runs out under its holder mid-operation.
    ExpireLease,
    /// The store loses its data (while nobody holds the lease and no tombstone is stored).
    LoseStoreData,
}

/// How long a pause or an outage lasts: one of the simulator's interesting delays (5 ms to an
/// hour) or up to about a minute in milliseconds.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// `INTERESTING_DELAYS[index % 6]`.
    Interesting(u8),
    /// Milliseconds.
    Millis(u16),
}

/// The `fleet` target. Panics with the violations and the transcript of the run when a property
/// breaks or the fleet does not settle.
pub fn fleet(data: &[u8]) {
    let Some(scenario) = FleetScenario::decode(data) else {
        return;
    };
    if let Err(failure) = check(scenario.fleet_config(), &scenario.fleet_ops()) {
        panic!("fleet: {failure}");
    }
}

/// What [`fleet`] runs for `data`, as text: the scenario, the fleet's setup and the verdict (with
/// the transcript when it fails). For turning a finding into a readable report or a test.
pub fn describe(data: &[u8]) -> String {
    let Some(scenario) = FleetScenario::decode(data) else {
        return "the input is too short for a scenario (the target ignores it)\n".to_owned();
    };
    let config = scenario.fleet_config();
    let verdict = match check(config, &scenario.fleet_ops()) {
        Ok(()) => "every monitor clean, settled".to_owned(),
        Err(failure) => failure,
    };
    format!("{scenario:#?}\neffective setup: {config:#?}\n{verdict}\n")
}

impl FleetScenario {
    /// Reads a scenario from fuzzer bytes; `None` when they are too short to hold one.
    pub fn decode(data: &[u8]) -> Option<FleetScenario> {
        FleetScenario::arbitrary_take_rest(Unstructured::new(data)).ok()
    }

    /// The fleet this scenario starts with.
    pub fn fleet_config(&self) -> FleetConfig {
        let defaults = FleetConfig::default();
        FleetConfig {
            processes: 2 + usize::from(self.processes % 3),
            session: settleable(self.config.config()),
            access_lifetime: self.lifetime.duration(),
            latency: self.latency.duration().unwrap_or(defaults.latency),
            store_latency: self
                .store_latency
                .duration()
                .unwrap_or(defaults.store_latency),
            watch_interval: self
                .watch_interval
                .duration()
                .unwrap_or(defaults.watch_interval),
            transcript: false,
            session_hook: None,
        }
    }

    /// The ops applied (at most [`MAX_OPS`]), in the simulator's vocabulary.
    pub fn fleet_ops(&self) -> Vec<FleetOp> {
        self.ops.iter().take(MAX_OPS).map(|op| op.op()).collect()
    }
}

impl FleetFuzzOp {
    /// The simulator op this maps onto.
    pub fn op(self) -> FleetOp {
        let process = usize::from;
        match self {
            FleetFuzzOp::Submit(p, kind) => FleetOp::Submit(process(p), kind.spec()),
            FleetFuzzOp::Storm(count) => FleetOp::Storm(1 + count % 4),
            FleetFuzzOp::Cancel(p, index) => FleetOp::Cancel(process(p), index),
            FleetFuzzOp::Logout(p) => FleetOp::Logout(process(p)),
            FleetFuzzOp::Login(p) => FleetOp::Login(process(p)),
            FleetFuzzOp::Step(count) => FleetOp::Step(1 + count % 16),
            FleetFuzzOp::Advance(delay) => FleetOp::Advance(delay.duration()),
            FleetFuzzOp::ExpireAccessTokens => FleetOp::ExpireAccessTokens,
            FleetFuzzOp::RevokeRefreshToken => FleetOp::RevokeRefreshToken,
            FleetFuzzOp::FailNextLogin(fault) => FleetOp::FailNextLogin(fault.fault()),
            FleetFuzzOp::FailNextRefresh(fault) => FleetOp::FailNextRefresh(fault.fault()),
            FleetFuzzOp::LoseNextAnswer => FleetOp::LoseNextAnswer,
            FleetFuzzOp::Restart(p) => FleetOp::Restart(process(p)),
            FleetFuzzOp::Pause(p, span) => FleetOp::Pause(process(p), span.duration()),
            FleetFuzzOp::StoreOutage(span) => FleetOp::StoreOutage(span.duration()),
            FleetFuzzOp::ExpireLease => FleetOp::ExpireLease,
            FleetFuzzOp::LoseStoreData => FleetOp::LoseStoreData,
        }
    }
}

impl Span {
    /// The duration.
    pub fn duration(self) -> core::time::Duration {
        match self {
            Span::Interesting(index) => Delay::Interesting(index).duration(),
            Span::Millis(ms) => Delay::Millis(ms).duration(),
        }
    }
}
