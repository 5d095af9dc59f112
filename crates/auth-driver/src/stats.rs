//! What a session did, counted once for both drivers: the [`Stats`] snapshot a handle's
//! `stats()` returns, and the same events as metrics through the [`metrics`] facade.
//!
//! Every count is taken by the [`Core`](crate::Core) where it routes the session's commands and
//! hears the runtime's results, under the lock it holds anyway, so counting adds no
//! synchronisation: plain integers for [`Stats`], and metric handles registered once when the
//! core is built (a per-request `counter!` would look the metric up in the recorder every time).
//! With no recorder installed the handles do nothing. Install the recorder (an exporter) before
//! starting sessions: a session started earlier keeps the no-op handles it registered.
//!
//! Labels are bounded: an outcome or kind from a fixed list, and `session`, the name the app
//! gave the session (only when it gave one). Never a token, a URL or a request id. The names
//! and labels are listed in `docs/integration.md`, section "Metrics".

use core::time::Duration;

use auth_core::{
    Instant, LeaseResult, LoginFailure, OpId, Outcome, PublishResult, RefreshFailure, RequestError,
    SessionState,
};
use metrics::{Counter, Gauge, Histogram, Label};

/// Requests finished, by outcome (`deliver`, or the failure: `logged_out`, `timeout`, ...).
pub const REQUESTS: &str = "seamless_requests_total";
/// Sends after the first of a request (the resend after a 401).
pub const RETRIED: &str = "seamless_requests_retried_total";
/// Seconds a request waited for the session (a login, a refresh, the persist of new tokens)
/// before it was sent or failed.
pub const WAIT: &str = "seamless_request_wait_seconds";
/// Requests waiting for the session now.
pub const QUEUE_DEPTH: &str = "seamless_queue_depth";
/// Silent logins finished, by outcome (`ok`, `transient`, `fatal`).
pub const LOGINS: &str = "seamless_logins_total";
/// Refreshes finished, by outcome (`ok`, `transient`, `invalid_grant`).
pub const REFRESHES: &str = "seamless_refreshes_total";
/// Seconds from the start of a login or refresh to its result, by `kind`.
pub const OPERATION: &str = "seamless_operation_duration_seconds";
/// 1 while the circuit breaker is open, else 0.
pub const CIRCUIT_OPEN: &str = "seamless_circuit_open";
/// Shared sessions: answers to a lease request, by outcome (`granted`, `busy`, `unavailable`).
pub const LEASES: &str = "seamless_lease_total";
/// Shared sessions: answers to a publish of new tokens (`written`, `conflict`, `unavailable`).
pub const PUBLISHES: &str = "seamless_publish_total";
/// Shared sessions: token sets another process stored, adopted instead of refreshing.
pub const ADOPTIONS: &str = "seamless_adoptions_total";

/// A snapshot of what one session did since it started, and where it stands; from the
/// drivers' `SessionHandle::stats()`. Counts only grow; `state`, `queued`, `outstanding` and
/// `circuit_open` are the values at the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The session's state.
    pub state: SessionState,
    /// Requests waiting for the session now.
    pub queued: usize,
    /// Requests outstanding now (waiting or in flight).
    pub outstanding: usize,
    /// Whether the circuit breaker is open now.
    pub circuit_open: bool,
    /// The requests.
    pub requests: RequestStats,
    /// Silent logins.
    pub logins: LoginStats,
    /// Refreshes.
    pub refreshes: RefreshStats,
    /// The shared store (all zero for a session of one process).
    pub shared: SharedStats,
}

/// Requests of a session, in [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestStats {
    /// Submitted (including those refused at once).
    pub submitted: u64,
    /// Finished with their response delivered (a 401 the session could not fix included).
    pub delivered: u64,
    /// Finished without a response: a [`RequestError`] (cancelled ones included).
    pub failed: u64,
    /// Sends after the first (a request resent after a 401 counts once per resend).
    pub retried: u64,
    /// Waits for the session that ended (a request may wait more than once: for the login,
    /// then for a refresh after its 401).
    pub waits: u64,
    /// The time those waits took, added up.
    pub waited: Duration,
}

/// Silent logins of a session, by how they ended, in [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginStats {
    /// Tokens obtained.
    pub ok: u64,
    /// Failed transiently (network, 5xx, the operation deadline).
    pub transient: u64,
    /// Refused for good (the user must act).
    pub fatal: u64,
}

/// Refreshes of a session, by how they ended, in [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshStats {
    /// New tokens obtained.
    pub ok: u64,
    /// Failed transiently (network, 5xx, the operation deadline).
    pub transient: u64,
    /// The refresh token was dead (`invalid_grant`): a silent login follows.
    pub invalid_grant: u64,
}

/// A shared session's dealings with its store, in [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Leases granted (this session then logged in or refreshed).
    pub leases_granted: u64,
    /// Lease requests answered busy: another process was refreshing, this one waited.
    pub leases_busy: u64,
    /// Lease requests the store did not answer (an error, or no answer by the deadline).
    pub leases_unavailable: u64,
    /// New tokens written to the store.
    pub published: u64,
    /// Publishes refused because another process wrote first.
    pub publish_conflicts: u64,
    /// Publishes the store did not answer.
    pub publish_unavailable: u64,
    /// Token sets another process stored, taken instead of refreshing.
    pub adopted: u64,
}

/// The counts and metric handles of one core, kept under its lock.
pub(crate) struct Meter {
    requests: RequestStats,
    logins: LoginStats,
    refreshes: RefreshStats,
    shared: SharedStats,
    /// The login or refresh in flight, since when: for [`OPERATION`].
    started: Option<(Kind, OpId, Instant)>,
    /// The last values set on the gauges, so an unchanged value is not set again.
    queue_depth: usize,
    circuit_open: bool,
    handles: Handles,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Login,
    Refresh,
}

/// The metric handles, registered once per core.
struct Handles {
    /// Indexed by [`outcome_index`].
    requests: [Counter; OUTCOMES.len()],
    retried: Counter,
    wait: Histogram,
    queue_depth: Gauge,
    /// `ok`, `transient`, `fatal`.
    logins: [Counter; 3],
    /// `ok`, `transient`, `invalid_grant`.
    refreshes: [Counter; 3],
    /// `login`, `refresh`.
    operation: [Histogram; 2],
    circuit_open: Gauge,
    /// `granted`, `busy`, `unavailable`.
    leases: [Counter; 3],
    /// `written`, `conflict`, `unavailable`.
    publishes: [Counter; 3],
    adoptions: Counter,
}

/// The `outcome` label of [`REQUESTS`]: `deliver`, then one per [`RequestError`].
const OUTCOMES: [&str; 11] = [
    "deliver",
    "logged_out",
    "login_required",
    "cancelled",
    "queue_full",
    "timeout",
    "auth_unavailable",
    "too_many_outstanding",
    "circuit_open",
    "store_unavailable",
    // A failure of a later auth-core release.
    "other",
];

impl Meter {
    /// Counts from zero, with handles registered in the current recorder, labelled
    /// `session = name` when the app named the session.
    pub(crate) fn new(name: Option<&str>) -> Self {
        let session: Vec<Label> = name
            .map(|name| Label::new("session", name.to_owned()))
            .into_iter()
            .collect();
        let with = |key: &'static str, value: &'static str| {
            let mut labels = session.clone();
            labels.push(Label::from_static_parts(key, value));
            labels
        };
        let counters = |name: &'static str, values: [&'static str; 3]| {
            values.map(|value| metrics::counter!(name, with("outcome", value)))
        };
        let handles = Handles {
            requests: OUTCOMES.map(|outcome| metrics::counter!(REQUESTS, with("outcome", outcome))),
            retried: metrics::counter!(RETRIED, session.clone()),
            wait: metrics::histogram!(WAIT, session.clone()),
            queue_depth: metrics::gauge!(QUEUE_DEPTH, session.clone()),
            logins: counters(LOGINS, ["ok", "transient", "fatal"]),
            refreshes: counters(REFRESHES, ["ok", "transient", "invalid_grant"]),
            operation: ["login", "refresh"]
                .map(|kind| metrics::histogram!(OPERATION, with("kind", kind))),
            circuit_open: metrics::gauge!(CIRCUIT_OPEN, session.clone()),
            leases: counters(LEASES, ["granted", "busy", "unavailable"]),
            publishes: counters(PUBLISHES, ["written", "conflict", "unavailable"]),
            adoptions: metrics::counter!(ADOPTIONS, session),
        };
        handles.queue_depth.set(0.0);
        handles.circuit_open.set(0.0);
        Meter {
            requests: RequestStats::default(),
            logins: LoginStats::default(),
            refreshes: RefreshStats::default(),
            shared: SharedStats::default(),
            started: None,
            queue_depth: 0,
            circuit_open: false,
            handles,
        }
    }

    pub(crate) fn submitted(&mut self) {
        self.requests.submitted += 1;
    }

    /// A `Send` of `attempt` went out.
    pub(crate) fn sent(&mut self, attempt: u16) {
        if attempt > 1 {
            self.requests.retried += 1;
            self.handles.retried.increment(1);
        }
    }

    pub(crate) fn completed(&mut self, outcome: &Outcome) {
        let index = match outcome {
            Outcome::Deliver => {
                self.requests.delivered += 1;
                0
            }
            Outcome::Fail(error) => {
                self.requests.failed += 1;
                outcome_index(error)
            }
        };
        self.handles.requests[index].increment(1);
    }

    /// A request that waited since `since` got its next step at `now`.
    pub(crate) fn waited(&mut self, since: Instant, now: Instant) {
        let waited = now.saturating_since(since);
        self.requests.waits += 1;
        self.requests.waited = self.requests.waited.saturating_add(waited);
        self.handles.wait.record(waited.as_secs_f64());
    }

    /// Login or refresh `op` started at `now`.
    pub(crate) fn started(&mut self, kind: Kind, op: OpId, now: Instant) {
        self.started = Some((kind, op, now));
    }

    pub(crate) fn login_done(&mut self, op: OpId, failure: Option<LoginFailure>, now: Instant) {
        let index = match failure {
            None => {
                self.logins.ok += 1;
                0
            }
            Some(LoginFailure::Transient) => {
                self.logins.transient += 1;
                1
            }
            Some(LoginFailure::Fatal) => {
                self.logins.fatal += 1;
                2
            }
        };
        self.handles.logins[index].increment(1);
        self.finished(Kind::Login, op, now);
    }

    pub(crate) fn refresh_done(&mut self, op: OpId, failure: Option<RefreshFailure>, now: Instant) {
        let index = match failure {
            None => {
                self.refreshes.ok += 1;
                0
            }
            Some(RefreshFailure::Transient) => {
                self.refreshes.transient += 1;
                1
            }
            Some(RefreshFailure::InvalidGrant) => {
                self.refreshes.invalid_grant += 1;
                2
            }
        };
        self.handles.refreshes[index].increment(1);
        self.finished(Kind::Refresh, op, now);
    }

    pub(crate) fn lease(&mut self, result: &LeaseResult) {
        let index = match result {
            LeaseResult::Granted(_) => {
                self.shared.leases_granted += 1;
                0
            }
            LeaseResult::Busy(_) => {
                self.shared.leases_busy += 1;
                1
            }
            LeaseResult::Unavailable => {
                self.shared.leases_unavailable += 1;
                2
            }
        };
        self.handles.leases[index].increment(1);
    }

    pub(crate) fn published(&mut self, result: &PublishResult) {
        let index = match result {
            PublishResult::Written => {
                self.shared.published += 1;
                0
            }
            PublishResult::Conflict(_) => {
                self.shared.publish_conflicts += 1;
                1
            }
            PublishResult::Unavailable => {
                self.shared.publish_unavailable += 1;
                2
            }
        };
        self.handles.publishes[index].increment(1);
    }

    pub(crate) fn adopted(&mut self) {
        self.shared.adopted += 1;
        self.handles.adoptions.increment(1);
    }

    /// The gauges after a transition: set only when a value changed, so the happy path (no
    /// queue, circuit closed) only compares.
    pub(crate) fn gauges(&mut self, queued: usize, circuit_open: bool) {
        if queued != self.queue_depth {
            self.queue_depth = queued;
            // Precise up to 2^53 waiting requests.
            #[allow(clippy::cast_precision_loss)]
            self.handles.queue_depth.set(queued as f64);
        }
        if circuit_open != self.circuit_open {
            self.circuit_open = circuit_open;
            self.handles
                .circuit_open
                .set(if circuit_open { 1.0 } else { 0.0 });
        }
    }

    /// The snapshot, with the session's values now.
    pub(crate) fn stats(
        &self,
        state: SessionState,
        queued: usize,
        outstanding: usize,
        circuit_open: bool,
    ) -> Stats {
        Stats {
            state,
            queued,
            outstanding,
            circuit_open,
            requests: self.requests.clone(),
            logins: self.logins.clone(),
            refreshes: self.refreshes.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Operation `op` of `kind` ended at `now`: its duration, if it is the one timed (the
    /// late result of an operation the session already gave up on is counted, not timed).
    fn finished(&mut self, kind: Kind, op: OpId, now: Instant) {
        if let Some((started_kind, started_op, at)) = self.started {
            if started_kind == kind && started_op == op {
                self.started = None;
                let index = match kind {
                    Kind::Login => 0,
                    Kind::Refresh => 1,
                };
                self.handles.operation[index].record(now.saturating_since(at).as_secs_f64());
            }
        }
    }
}

/// Where `error` is in [`OUTCOMES`].
fn outcome_index(error: &RequestError) -> usize {
    match error {
        RequestError::LoggedOut => 1,
        RequestError::LoginRequired => 2,
        RequestError::Cancelled => 3,
        RequestError::QueueFull => 4,
        RequestError::Timeout => 5,
        RequestError::AuthUnavailable { .. } => 6,
        RequestError::TooManyOutstanding => 7,
        RequestError::CircuitOpen => 8,
        RequestError::StoreUnavailable { .. } => 9,
        _ => 10,
    }
}
