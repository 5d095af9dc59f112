//! The `session` target: a typed sequence of things that happen, driven through the simulator.
//!
//! The fuzzer's bytes become a [`Scenario`] through [`arbitrary`]: the configuration (every field
//! from its whole range, edges weighted: [`Knobs`]), the fake server's token lifetime and the
//! network latency, then a list of [`FuzzOp`]s, each mapped onto
//! the simulator's own vocabulary [`auth_core::sim::Op`] (the same one the property tests draw
//! from), onto a knob of the fake server, or onto a [`Forged`] input fed straight to the session
//! (a response or result no faithful driver would send: stale, duplicated, for the wrong
//! operation, for a request never sent). After every op the shared [`auth_core::Monitor`] must
//! have recorded nothing; after the last one the faults stop, the world must go quiet within
//! [`SETTLE_STEPS`] and P8 must hold. Finally the recorded trace must survive JSON and replay to
//! the same commands, so every session the fuzzer reaches is also a trace-format test.

use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use auth_core::sim::{FakeServer, Fault, NetFault, Op, Sim, INTERESTING_DELAYS};
use auth_core::{
    AccessToken, Config, Input, LoginFailure, OpId, RefreshFailure, RefreshToken, RequestId,
    RequestSpec, TokenSet, Trace, Verdict,
};

/// At most this many ops of one input are applied; the rest is ignored, so one input stays fast.
pub const MAX_OPS: usize = 256;

/// Step budget of the final settle. A few hundred ops need a few thousand steps at most; an
/// input that needs more is a livelock, which is a P8 violation.
pub const SETTLE_STEPS: usize = 200_000;

/// One fuzz input of the `session` target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// How the session is configured.
    pub config: Knobs,
    /// Lifetime of the access tokens the fake server issues.
    pub lifetime: Delay,
    /// One-way latency of the network (plus server time).
    pub latency: Latency,
    /// What happens, in order.
    pub ops: Vec<FuzzOp>,
}

/// The configuration, every field from its whole range (DESIGN.md §5: configuration is input
/// too), with the edges weighted: each count is its minimum, 1, its maximum or one below in
/// four of six choices.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Knobs {
    /// `max_retries`.
    pub max_retries: Whole<u8>,
    /// `max_queued` (0: nothing may wait).
    pub max_queued: Whole<usize>,
    /// `eager_login`.
    pub eager_login: bool,
    /// `revoke_on_logout`.
    pub revoke_on_logout: bool,
    /// `max_operation_retries`.
    pub max_operation_retries: Whole<u32>,
    /// `max_refresh_failures` (0: the breaker is off).
    pub max_refresh_failures: Whole<u32>,
    /// `jitter_seed`.
    pub jitter_seed: Whole<u64>,
    /// The timers; `None` keeps the defaults.
    pub timers: Option<Timers>,
}

/// A value from the whole range of an integer type, its edges weighted.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whole<T> {
    /// 0.
    Zero,
    /// 1.
    One,
    /// The type's maximum.
    Max,
    /// One below the maximum.
    BelowMax,
    /// A small value: this modulo 8.
    Small(u8),
    /// Any value.
    Any(T),
}

/// The configured durations.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// `queue_timeout`.
    pub queue_timeout: Span,
    /// `operation_timeout`.
    pub operation_timeout: Span,
    /// `refresh_margin`.
    pub refresh_margin: Span,
    /// `backoff_base`.
    pub backoff_base: Span,
    /// `backoff_max`.
    pub backoff_max: Span,
    /// `breaker_cooldown`.
    pub breaker_cooldown: Span,
}

/// A configured duration, from zero to `Duration::MAX` (which saturates every deadline), its
/// edges weighted.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Zero.
    Zero,
    /// One millisecond.
    OneMilli,
    /// `Duration::MAX`.
    Max,
    /// One of the simulator's interesting delays, or a small or any number of milliseconds or
    /// seconds.
    Delay(Delay),
    /// Any number of milliseconds.
    AnyMillis(u64),
}

/// A duration: one of the simulator's interesting delays, or any number of milliseconds or
/// seconds that fits a `u16`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// `INTERESTING_DELAYS[index % 6]`: below, around and beyond the default timers.
    Interesting(u8),
    /// Milliseconds.
    Millis(u16),
    /// Seconds.
    Seconds(u16),
}

/// The network latency.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// The simulator's default, 10 ms.
    Default,
    /// Instant delivery: answers arrive at the same millisecond as their request.
    Zero,
    /// Milliseconds.
    Millis(u16),
}

/// One thing the app, the network or the servers do.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuzzOp {
    /// The app issues a request.
    Submit(SpecKind),
    /// The app cancels an outstanding request, picked by index.
    Cancel(u16),
    /// The user logs out.
    Logout,
    /// The app asks for a login.
    Login,
    /// Deliver 1 + (n modulo 16) messages or timers: responses, login and refresh results.
    Step(u8),
    /// Let time pass, running everything due.
    Advance(Delay),
    /// A long time jump (the device slept): this many hours.
    Sleep(u8),
    /// The server expires every access token.
    ExpireAccessTokens,
    /// The server kills the live refresh token.
    RevokeRefreshToken,
    /// The next login suffers a fault.
    FailNextLogin(FaultKind),
    /// The next refresh suffers a fault.
    FailNextRefresh(FaultKind),
    /// The next API response is lost, duplicated or late.
    FaultNextResponse(NetFaultKind),
    /// The next (n modulo 4) valid API calls get 403 `insufficient_scope`.
    DenyScope(u8),
    /// The process restarts from the token store.
    Restart,
    /// The API starts (`true`) or stops answering every protected call 401, whatever the
    /// token; only the retry budget then ends a request.
    RejectEveryCall(bool),
    /// An input no faithful driver sends, fed straight to the session: a hostile or buggy
    /// driver, a proxy answering twice, a result that crossed a restart.
    Forge(Forged),
}

/// A forged input. The session must shrug it off: rule 1 ignores results whose id is not the
/// current one, and a response for an attempt not in flight is dropped.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forged {
    /// A response for an outstanding request (picked by index), with any attempt number.
    Response {
        /// Which outstanding request.
        request: u16,
        /// The attempt it claims to answer.
        attempt: u16,
        /// 401 or not.
        rejected: bool,
    },
    /// A response for any request id, known or not.
    StrayResponse {
        /// The id.
        id: u8,
        /// The attempt it claims to answer.
        attempt: u16,
        /// 401 or not.
        rejected: bool,
    },
    /// A login result for any operation id (ids are small counters, so the current one is
    /// often hit).
    LoginResult {
        /// The operation id.
        op: u8,
        /// What it says.
        outcome: Outcome,
    },
    /// A refresh result for any operation id.
    RefreshResult {
        /// The operation id.
        op: u8,
        /// What it says.
        outcome: Outcome,
    },
    /// A spurious timer.
    Timeout,
    /// A cancel for any request id, known, finished or not.
    Cancel(u8),
}

/// What a forged login or refresh result says.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Tokens the fake server never issued (so the API refuses them), with or without a
    /// refresh token and with a lifetime in seconds (0: none given).
    Tokens {
        /// Whether a refresh token comes along.
        refresh: bool,
        /// `expires_in` in seconds; 0 means absent.
        lifetime: u16,
    },
    /// `Transient`.
    Transient,
    /// `Fatal` for a login, `InvalidGrant` for a refresh.
    Definitive,
}

/// The kind of request submitted.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecKind {
    /// Authenticated, retryable, replayable.
    Bearer,
    /// A public endpoint.
    Public,
    /// Opted out of the retry.
    NoRetry,
    /// A body that cannot be sent twice.
    NotReplayable,
    /// Both.
    NoRetryNotReplayable,
}

/// A login or refresh fault.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 5xx.
    ServerError,
    /// Never answers.
    Hang,
    /// Refused for good (a transient failure for a refresh).
    Fatal,
    /// Answers this many milliseconds late.
    Delay(u16),
}

/// A network fault of one API response.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFaultKind {
    /// Lost: surfaces as a transport error after the HTTP timeout.
    Lose,
    /// Arrives twice.
    Duplicate,
    /// Arrives this many milliseconds late.
    Delay(u16),
}

/// The `session` target. Panics with the violations and the simulator's transcript when the
/// Monitor records a broken property, when the world does not settle, or when the recorded trace
/// does not replay identically.
pub fn session(data: &[u8]) {
    let Some(scenario) = Scenario::decode(data) else {
        return;
    };
    let mut sim = scenario.sim();
    for (index, op) in scenario.ops.iter().take(MAX_OPS).enumerate() {
        op.apply(&mut sim);
        if !sim.violations().is_empty() {
            fail(&sim, &format!("after op {index} ({op:?})"));
        }
    }
    if !sim.settle(SETTLE_STEPS) {
        fail(
            &sim,
            &format!("did not settle within {SETTLE_STEPS} steps (P8)"),
        );
    }
    if !sim.violations().is_empty() {
        fail(&sim, "once faults stopped (P8)");
    }
    check_trace(sim.trace());
}

/// What [`session`] runs for `data`, as text: the scenario, then the simulator's transcript and
/// the trace of the last session. For turning a finding into a readable report or a test.
pub fn describe(data: &[u8]) -> String {
    let Some(scenario) = Scenario::decode(data) else {
        return "the input is too short for a scenario (the target ignores it)\n".to_owned();
    };
    let mut sim = scenario.sim();
    let mut text = format!(
        "{scenario:#?}\neffective config: {:#?}\n",
        scenario.config.config()
    );
    for (index, op) in scenario.ops.iter().take(MAX_OPS).enumerate() {
        op.apply(&mut sim);
        if !sim.violations().is_empty() {
            text.push_str(&format!(
                "violations after op {index} ({op:?}): {:?}\n",
                sim.violations()
            ));
            break;
        }
    }
    if sim.violations().is_empty() {
        let settled = sim.settle(SETTLE_STEPS);
        text.push_str(&format!(
            "settled: {settled}; violations: {:?}\n",
            sim.violations()
        ));
    }
    text.push_str("\ntranscript:\n");
    text.push_str(&sim.transcript());
    text.push_str("\ntrace of the last session:\n");
    text.push_str(&sim.trace().to_json());
    text.push('\n');
    text
}

impl Scenario {
    /// Reads a scenario from fuzzer bytes; `None` when they are too short to hold one.
    pub fn decode(data: &[u8]) -> Option<Scenario> {
        Scenario::arbitrary_take_rest(Unstructured::new(data)).ok()
    }

    /// The simulator this scenario starts with.
    pub fn sim(&self) -> Sim {
        let server = FakeServer::new(self.lifetime.duration());
        let mut sim = Sim::with_server(self.config.config(), server);
        if let Some(latency) = self.latency.duration() {
            sim.latency = latency;
        }
        sim
    }
}

impl Knobs {
    /// The session configuration.
    pub fn config(&self) -> Config {
        let defaults = Config::default();
        let mut config = Config {
            max_retries: self.max_retries.value(),
            max_queued: self.max_queued.value(),
            eager_login: self.eager_login,
            revoke_on_logout: self.revoke_on_logout,
            max_operation_retries: self.max_operation_retries.value(),
            max_refresh_failures: self.max_refresh_failures.value(),
            jitter_seed: self.jitter_seed.value(),
            ..defaults
        };
        if let Some(timers) = self.timers {
            config.queue_timeout = timers.queue_timeout.duration();
            config.operation_timeout = timers.operation_timeout.duration();
            config.refresh_margin = timers.refresh_margin.duration();
            config.backoff_base = timers.backoff_base.duration();
            config.backoff_max = timers.backoff_max.duration();
            config.breaker_cooldown = timers.breaker_cooldown.duration();
        }
        config
    }
}

/// The integer types a [`Whole`] draws from.
pub trait Integer: Copy {
    /// The type's maximum.
    const MAX: Self;
    /// `n` as this type.
    fn from_u8(n: u8) -> Self;
    /// One less (never called on zero).
    fn below(self) -> Self;
}

macro_rules! integer {
    ($($t:ty),*) => {
        $(
            impl Integer for $t {
                const MAX: Self = <$t>::MAX;
                fn from_u8(n: u8) -> Self {
                    n.into()
                }
                fn below(self) -> Self {
                    self - 1
                }
            }
        )*
    };
}

integer!(u8, u32, u64, usize);

impl<T: Integer> Whole<T> {
    /// The value.
    pub fn value(self) -> T {
        match self {
            Whole::Zero => T::from_u8(0),
            Whole::One => T::from_u8(1),
            Whole::Max => T::MAX,
            Whole::BelowMax => T::MAX.below(),
            Whole::Small(n) => T::from_u8(n % 8),
            Whole::Any(value) => value,
        }
    }
}

impl Span {
    /// The duration.
    pub fn duration(self) -> Duration {
        match self {
            Span::Zero => Duration::ZERO,
            Span::OneMilli => Duration::from_millis(1),
            Span::Max => Duration::MAX,
            Span::Delay(delay) => delay.duration(),
            Span::AnyMillis(ms) => Duration::from_millis(ms),
        }
    }
}

impl Delay {
    /// The duration.
    pub fn duration(self) -> Duration {
        match self {
            Delay::Interesting(index) => {
                INTERESTING_DELAYS[usize::from(index) % INTERESTING_DELAYS.len()]
            }
            Delay::Millis(ms) => Duration::from_millis(u64::from(ms)),
            Delay::Seconds(s) => Duration::from_secs(u64::from(s)),
        }
    }
}

impl Latency {
    /// The latency, `None` for the simulator's default.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Latency::Default => None,
            Latency::Zero => Some(Duration::ZERO),
            Latency::Millis(ms) => Some(Duration::from_millis(u64::from(ms))),
        }
    }
}

impl FuzzOp {
    /// Applies the op: through [`Sim::apply`] where the simulator has the op, else through the
    /// fake server's own knob.
    pub fn apply(self, sim: &mut Sim) {
        if let Some(op) = self.op() {
            return sim.apply(op);
        }
        match self {
            FuzzOp::DenyScope(count) => sim.server.deny_scope_next(u32::from(count % 4)),
            FuzzOp::Forge(forged) => {
                if let Some(input) = forged.input(sim) {
                    sim.input(input);
                }
            }
            _ => {}
        }
    }

    /// The simulator op this maps onto (`None` for server knobs the vocabulary lacks).
    pub fn op(self) -> Option<Op> {
        Some(match self {
            FuzzOp::Submit(kind) => Op::Submit(kind.spec()),
            FuzzOp::Cancel(index) => Op::Cancel(index),
            FuzzOp::Logout => Op::Logout,
            FuzzOp::Login => Op::Login,
            FuzzOp::Step(count) => Op::Step(1 + count % 16),
            FuzzOp::Advance(delay) => Op::Advance(delay.duration()),
            FuzzOp::Sleep(hours) => Op::Advance(Duration::from_secs(3600 * u64::from(hours))),
            FuzzOp::ExpireAccessTokens => Op::ExpireAccessTokens,
            FuzzOp::RevokeRefreshToken => Op::RevokeRefreshToken,
            FuzzOp::FailNextLogin(fault) => Op::FailNextLogin(fault.fault()),
            FuzzOp::FailNextRefresh(fault) => Op::FailNextRefresh(fault.fault()),
            FuzzOp::FaultNextResponse(fault) => Op::FaultNextResponse(fault.fault()),
            FuzzOp::Restart => Op::Restart,
            FuzzOp::RejectEveryCall(reject) => Op::RejectEveryCall(reject),
            FuzzOp::DenyScope(_) | FuzzOp::Forge(_) => return None,
        })
    }
}

impl Forged {
    /// The input, or `None` when it needs an outstanding request and there is none.
    pub fn input(self, sim: &Sim) -> Option<Input> {
        let verdict = |rejected| {
            if rejected {
                Verdict::Rejected
            } else {
                Verdict::Accepted
            }
        };
        Some(match self {
            Forged::Response {
                request,
                attempt,
                rejected,
            } => Input::Response {
                id: sim.outstanding_request(usize::from(request))?,
                attempt,
                verdict: verdict(rejected),
            },
            Forged::StrayResponse {
                id,
                attempt,
                rejected,
            } => Input::Response {
                id: RequestId(u64::from(id)),
                attempt,
                verdict: verdict(rejected),
            },
            Forged::LoginResult { op, outcome } => Input::LoginResult {
                op: OpId(u64::from(op)),
                result: match outcome {
                    Outcome::Tokens { refresh, lifetime } => {
                        Ok(forged_tokens(op, refresh, lifetime))
                    }
                    Outcome::Transient => Err(LoginFailure::Transient),
                    Outcome::Definitive => Err(LoginFailure::Fatal),
                },
            },
            Forged::RefreshResult { op, outcome } => Input::RefreshResult {
                op: OpId(u64::from(op)),
                result: match outcome {
                    Outcome::Tokens { refresh, lifetime } => {
                        Ok(forged_tokens(op, refresh, lifetime))
                    }
                    Outcome::Transient => Err(RefreshFailure::Transient),
                    Outcome::Definitive => Err(RefreshFailure::InvalidGrant),
                },
            },
            Forged::Timeout => Input::Timeout,
            Forged::Cancel(id) => Input::Cancel(RequestId(u64::from(id))),
        })
    }
}

fn forged_tokens(op: u8, refresh: bool, lifetime: u16) -> TokenSet {
    let mut tokens = TokenSet::new(AccessToken::new(format!("forged-access-{op}")));
    if refresh {
        tokens = tokens.with_refresh_token(RefreshToken::new(format!("forged-refresh-{op}")));
    }
    if lifetime > 0 {
        tokens = tokens.with_expires_in(Duration::from_secs(u64::from(lifetime)));
    }
    tokens
}

impl SpecKind {
    /// The request spec.
    pub fn spec(self) -> RequestSpec {
        match self {
            SpecKind::Bearer => RequestSpec::bearer(),
            SpecKind::Public => RequestSpec::public(),
            SpecKind::NoRetry => RequestSpec::bearer().no_retry(),
            SpecKind::NotReplayable => RequestSpec::bearer().not_replayable(),
            SpecKind::NoRetryNotReplayable => RequestSpec::bearer().no_retry().not_replayable(),
        }
    }
}

impl FaultKind {
    /// The server fault.
    pub fn fault(self) -> Fault {
        match self {
            FaultKind::ServerError => Fault::ServerError,
            FaultKind::Hang => Fault::Hang,
            FaultKind::Fatal => Fault::Fatal,
            FaultKind::Delay(ms) => Fault::Delay(Duration::from_millis(u64::from(ms))),
        }
    }
}

impl NetFaultKind {
    /// The network fault.
    pub fn fault(self) -> NetFault {
        match self {
            NetFaultKind::Lose => NetFault::Lose,
            NetFaultKind::Duplicate => NetFault::Duplicate,
            NetFaultKind::Delay(ms) => NetFault::Delay(Duration::from_millis(u64::from(ms))),
        }
    }
}

/// The trace the simulator recorded must write and read back to the same JSON, and the parsed
/// copy must replay to the same commands as the original, without violations.
fn check_trace(trace: &Trace) {
    let json = trace.to_json();
    let parsed = match Trace::from_json(json.as_bytes()) {
        Ok(parsed) => parsed,
        Err(error) => panic!("a recorded trace does not parse: {error}\n{json}"),
    };
    assert_eq!(
        parsed.to_json(),
        json,
        "a recorded trace does not round-trip"
    );
    let original = trace.replay();
    let replayed = parsed.replay();
    assert!(
        original.violations.is_empty(),
        "the recorded trace replays with violations {:?}\n{json}",
        original.violations
    );
    // Compared as JSON: the parsed trace holds fingerprints where the original held secrets.
    assert_eq!(
        serde_json::to_string(&original).ok(),
        serde_json::to_string(&replayed).ok(),
        "the parsed trace replays to other commands\n{json}"
    );
}

fn fail(sim: &Sim, when: &str) -> ! {
    panic!(
        "session: {when}: {:?}\n{}\ntrace of the last session:\n{}",
        sim.violations(),
        sim.transcript(),
        sim.trace().to_json()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed corpus keeps an input at each end of every `Config` field (and one with
    /// `max_retries: 255` against an API that rejects every call), so the replay in CI checks
    /// the edges of the configuration space, not only what coverage-guided minimisation kept.
    #[test]
    fn the_committed_corpus_sits_on_every_edge_of_the_config_space() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/session");
        let scenarios: Vec<Scenario> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
            .filter_map(|bytes| Scenario::decode(&bytes))
            .collect();
        let configs: Vec<Config> = scenarios.iter().map(|s| s.config.config()).collect();
        let any = |test: &dyn Fn(&Config) -> bool| configs.iter().any(test);
        let mut missing = Vec::new();
        let mut edge = |name: &str, reached: bool| {
            if !reached {
                missing.push(name.to_owned());
            }
        };
        edge("max_retries 0", any(&|c| c.max_retries == 0));
        edge("max_retries 255", any(&|c| c.max_retries == u8::MAX));
        edge("max_queued 0", any(&|c| c.max_queued == 0));
        edge(
            "max_queued usize::MAX",
            any(&|c| c.max_queued == usize::MAX),
        );
        edge(
            "max_operation_retries 0",
            any(&|c| c.max_operation_retries == 0),
        );
        edge(
            "max_operation_retries u32::MAX",
            any(&|c| c.max_operation_retries == u32::MAX),
        );
        edge("breaker off", any(&|c| c.max_refresh_failures == 0));
        edge("breaker after 1", any(&|c| c.max_refresh_failures == 1));
        edge(
            "breaker after u32::MAX",
            any(&|c| c.max_refresh_failures == u32::MAX),
        );
        edge("jitter seed 0", any(&|c| c.jitter_seed == 0));
        edge("jitter seed u64::MAX", any(&|c| c.jitter_seed == u64::MAX));
        edge("eager login", any(&|c| c.eager_login));
        edge("revoke on logout", any(&|c| c.revoke_on_logout));
        type Field = (&'static str, fn(&Config) -> Duration);
        let durations: [Field; 6] = [
            ("queue_timeout", |c| c.queue_timeout),
            ("operation_timeout", |c| c.operation_timeout),
            ("refresh_margin", |c| c.refresh_margin),
            ("backoff_base", |c| c.backoff_base),
            ("backoff_max", |c| c.backoff_max),
            ("breaker_cooldown", |c| c.breaker_cooldown),
        ];
        for (name, get) in durations {
            edge(&format!("{name} 0"), any(&|c| get(c) == Duration::ZERO));
            edge(
                &format!("{name} Duration::MAX"),
                any(&|c| get(c) == Duration::MAX),
            );
        }
        edge(
            "max_retries 255 against an API rejecting every call",
            scenarios.iter().any(|s| {
                s.config.config().max_retries == u8::MAX
                    && s.ops.contains(&FuzzOp::RejectEveryCall(true))
            }),
        );
        assert!(
            missing.is_empty(),
            "no corpus input sits on {missing:?}; restore the corner seeds with \
             `cargo run -p auth-fuzz --example seeds -- /tmp/seeds && \
             cp -n /tmp/seeds/session/seed-* fuzz/corpus/session/`"
        );
    }
}
