//! A `metrics` recorder for the metrics tests of both drivers (`auth-tokio` and `auth-blocking`
//! include this file with `#[path]`), and the checks their stories share, so the two suites
//! assert the same things one way.
//!
//! The recorder is the process's global one (the drivers' background tasks and threads emit
//! from threads a thread-local recorder would not see), installed once per test binary. Tests
//! run in parallel in one binary, so each names its session ([`Builder::name`] of the driver):
//! every query filters on the `session` label.
#![allow(dead_code)] // each suite uses its own subset

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use auth_core::Config;
use auth_driver::stats::{ADOPTIONS, LEASES, PUBLISHES};
use auth_driver::stats::{
    CIRCUIT_OPEN, LOGINS, OPERATION, QUEUE_DEPTH, REFRESHES, REQUESTS, RETRIED, WAIT,
};
use auth_driver::Stats;
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};

/// How many requests the storm stories send through the expiry.
pub(crate) const STORM: u64 = 50;

/// How many refreshes fail in a row in the failure stories: enough to spend the operation's
/// retries and open the breaker ([`failing_config`]).
pub(crate) const REFRESH_FAILURES: usize = 3;

/// Short deadlines, so a failure story ends in well under a second.
pub(crate) fn storm_config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(8),
        operation_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..Config::default()
    }
}

/// [`storm_config`] whose breaker opens after [`REFRESH_FAILURES`] failed refreshes, which is
/// also one operation's budget (one try and two retries), and closes after a second.
pub(crate) fn failing_config() -> Config {
    Config {
        max_operation_retries: 2,
        max_refresh_failures: 3,
        breaker_cooldown: Duration::from_secs(1),
        ..storm_config()
    }
}

/// Every metric registered so far, by name and sorted labels.
#[derive(Default)]
pub(crate) struct Recorded {
    metrics: Mutex<BTreeMap<MetricKey, Metric>>,
}

/// A metric's name and its labels, sorted.
type MetricKey = (String, Vec<(String, String)>);

#[derive(Clone)]
enum Metric {
    Counter(Arc<AtomicU64>),
    /// The bits of an `f64`, as `metrics` keeps a gauge in an `AtomicU64`.
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<Samples>),
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// The recorder `metrics` calls: a view of the one [`Recorded`] of the process.
struct Global(&'static Recorded);

/// The process's recorder, installed on first use.
pub(crate) fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let recorded = RECORDED.get_or_init(Recorded::default);
    INSTALLED.get_or_init(|| {
        metrics::set_global_recorder(Global(recorded))
            .unwrap_or_else(|_| panic!("another metrics recorder is installed"));
    });
    recorded
}

impl Recorded {
    /// The counter `name` with exactly these labels (`session` included); 0 if never
    /// registered.
    pub(crate) fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(Metric::Counter(value)) => value.load(Ordering::SeqCst),
            None => 0,
            Some(_) => panic!("{name} is not a counter"),
        }
    }

    /// The gauge `name`'s value; `None` if never registered.
    pub(crate) fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels)? {
            Metric::Gauge(bits) => Some(f64::from_bits(bits.load(Ordering::SeqCst))),
            _ => panic!("{name} is not a gauge"),
        }
    }

    /// The values the histogram `name` recorded.
    pub(crate) fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(name, labels) {
            Some(Metric::Histogram(samples)) => samples.0.lock().unwrap().clone(),
            None => Vec::new(),
            Some(_) => panic!("{name} is not a histogram"),
        }
    }

    /// Every metric name registered with `session = session`, sorted, each once.
    pub(crate) fn names(&self, session: &str) -> Vec<String> {
        let metrics = self.metrics.lock().unwrap();
        let mut names: Vec<String> = metrics
            .keys()
            .filter(|(_, labels)| labels.iter().any(|(k, v)| k == "session" && v == session))
            .map(|(name, _)| name.clone())
            .collect();
        names.dedup();
        names
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<Metric> {
        let key = (name.to_owned(), sorted(labels.iter().copied()));
        self.metrics.lock().unwrap().get(&key).cloned()
    }

    fn register(&self, key: &Key, make: impl FnOnce() -> Metric) -> Metric {
        let labels = sorted(key.labels().map(|label| (label.key(), label.value())));
        let mut metrics = self.metrics.lock().unwrap();
        metrics
            .entry((key.name().to_owned(), labels))
            .or_insert_with(make)
            .clone()
    }
}

fn sorted<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let mut labels: Vec<_> = labels
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    labels.sort();
    labels
}

impl metrics::Recorder for Global {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.0.register(key, || Metric::Counter(Arc::default())) {
            Metric::Counter(value) => Counter::from_arc(value),
            _ => panic!("{} registered as another kind", key.name()),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.0.register(key, || Metric::Gauge(Arc::default())) {
            Metric::Gauge(bits) => Gauge::from_arc(bits),
            _ => panic!("{} registered as another kind", key.name()),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.0.register(key, || Metric::Histogram(Arc::default())) {
            Metric::Histogram(samples) => Histogram::from_arc(samples),
            _ => panic!("{} registered as another kind", key.name()),
        }
    }
}

/// One named session's view of the recorder.
pub(crate) struct Session {
    pub(crate) name: &'static str,
    recorded: &'static Recorded,
}

impl Session {
    /// The metrics of the session named `name` (installs the recorder first: call it before
    /// starting the session, whose handles are registered at its start).
    pub(crate) fn named(name: &'static str) -> Session {
        Session {
            name,
            recorded: recorded(),
        }
    }

    /// The counter `name` with `outcome = outcome` (or no outcome label).
    pub(crate) fn count(&self, name: &str, outcome: Option<&str>) -> u64 {
        match outcome {
            Some(outcome) => self
                .recorded
                .counter(name, &[("session", self.name), ("outcome", outcome)]),
            None => self.recorded.counter(name, &[("session", self.name)]),
        }
    }

    pub(crate) fn gauge(&self, name: &str) -> Option<f64> {
        self.recorded.gauge(name, &[("session", self.name)])
    }

    pub(crate) fn samples(&self, name: &str, kind: Option<&str>) -> Vec<f64> {
        match kind {
            Some(kind) => self
                .recorded
                .histogram(name, &[("session", self.name), ("kind", kind)]),
            None => self.recorded.histogram(name, &[("session", self.name)]),
        }
    }

    /// The metrics agree with `stats` on every count both keep.
    pub(crate) fn assert_agrees_with(&self, stats: &Stats) {
        let requests = &stats.requests;
        assert_eq!(self.count(REQUESTS, Some("deliver")), requests.delivered);
        let outcomes = [
            "logged_out",
            "login_required",
            "cancelled",
            "queue_full",
            "timeout",
            "auth_unavailable",
            "too_many_outstanding",
            "circuit_open",
            "store_unavailable",
            "other",
        ];
        let failed: u64 = outcomes
            .iter()
            .map(|outcome| self.count(REQUESTS, Some(outcome)))
            .sum();
        assert_eq!(failed, requests.failed);
        assert_eq!(self.count(RETRIED, None), requests.retried);
        let waits = self.samples(WAIT, None);
        assert_eq!(waits.len() as u64, requests.waits);
        let waited: f64 = waits.iter().sum();
        assert!((waited - requests.waited.as_secs_f64()).abs() < 1e-6);
        let logins = &stats.logins;
        assert_eq!(self.count(LOGINS, Some("ok")), logins.ok);
        assert_eq!(self.count(LOGINS, Some("transient")), logins.transient);
        assert_eq!(self.count(LOGINS, Some("fatal")), logins.fatal);
        let refreshes = &stats.refreshes;
        assert_eq!(self.count(REFRESHES, Some("ok")), refreshes.ok);
        assert_eq!(
            self.count(REFRESHES, Some("transient")),
            refreshes.transient
        );
        assert_eq!(
            self.count(REFRESHES, Some("invalid_grant")),
            refreshes.invalid_grant
        );
        let shared = &stats.shared;
        let leases = ["granted", "busy", "unavailable"].map(|o| self.count(LEASES, Some(o)));
        let expected = [
            shared.leases_granted,
            shared.leases_busy,
            shared.leases_unavailable,
        ];
        assert_eq!(leases, expected);
        let publishes =
            ["written", "conflict", "unavailable"].map(|o| self.count(PUBLISHES, Some(o)));
        let expected = [
            shared.published,
            shared.publish_conflicts,
            shared.publish_unavailable,
        ];
        assert_eq!(publishes, expected);
        assert_eq!(self.count(ADOPTIONS, None), shared.adopted);
        assert_eq!(self.gauge(QUEUE_DEPTH), Some(stats.queued as f64));
        let open = if stats.circuit_open { 1.0 } else { 0.0 };
        assert_eq!(self.gauge(CIRCUIT_OPEN), Some(open));
    }

    /// After a first request (one silent login) and a storm of [`STORM`] requests through a
    /// server-side expiry, in which the server answered `unauthorized` requests with 401:
    /// one refresh, every request delivered, and each 401 resent once.
    pub(crate) fn assert_storm(&self, stats: &Stats, unauthorized: u64) {
        let n = STORM;
        assert_eq!(stats.requests.submitted, n + 1);
        assert_eq!(stats.requests.delivered, n + 1, "{stats:?}");
        assert_eq!(stats.requests.failed, 0);
        assert!(unauthorized >= 1, "the storm met the expiry");
        assert_eq!(stats.requests.retried, unauthorized, "one resend per 401");
        assert_eq!(stats.logins.ok, 1);
        assert_eq!(stats.refreshes.ok, 1, "one refresh for the storm");
        assert_eq!(stats.refreshes.transient + stats.refreshes.invalid_grant, 0);
        // The first request waited for the login, some of the storm for the refresh (a 401
        // that comes back after the refresh is resent at once, without a wait).
        assert!(stats.requests.waits >= 2, "{stats:?}");
        assert!(stats.requests.waited > Duration::ZERO);
        assert_eq!((stats.queued, stats.outstanding), (0, 0));
        assert_eq!(self.samples(OPERATION, Some("login")).len(), 1);
        assert_eq!(self.samples(OPERATION, Some("refresh")).len(), 1);
        self.assert_agrees_with(stats);
    }

    /// Every metric of a session of one process was registered, and only the documented ones
    /// (the shared store's too: registered at the start, never incremented here).
    pub(crate) fn assert_names(&self) {
        let mut expected = vec![
            ADOPTIONS,
            CIRCUIT_OPEN,
            LEASES,
            LOGINS,
            OPERATION,
            PUBLISHES,
            QUEUE_DEPTH,
            REFRESHES,
            WAIT,
            RETRIED,
            REQUESTS,
        ];
        expected.sort_unstable();
        assert_eq!(self.recorded.names(self.name), expected);
        assert_eq!(self.count(LEASES, Some("granted")), 0);
        assert_eq!(self.count(ADOPTIONS, None), 0);
    }

    /// After a first request and one through an expiry whose [`REFRESH_FAILURES`] refreshes
    /// all failed transiently (`failed` is how that request ended): each failure counted, the
    /// breaker open, and the request failed by it.
    pub(crate) fn assert_circuit_opened(&self, stats: &Stats, failed: Result<u16, String>) {
        let failed = failed.expect_err("the request fails");
        assert_eq!(failed, "Some(CircuitOpen)");
        assert_eq!(stats.refreshes.transient, REFRESH_FAILURES as u64);
        assert_eq!(stats.refreshes.ok + stats.refreshes.invalid_grant, 0);
        assert_eq!((stats.requests.delivered, stats.requests.failed), (1, 1));
        assert_eq!(self.count(REQUESTS, Some("circuit_open")), 1);
        assert!(stats.circuit_open, "{stats:?}");
        assert_eq!(self.gauge(CIRCUIT_OPEN), Some(1.0));
        assert_eq!(
            self.samples(OPERATION, Some("refresh")).len(),
            REFRESH_FAILURES
        );
        self.assert_agrees_with(stats);
    }

    /// Then, once the breaker closed, a request whose refresh met a revoked refresh token: one
    /// `invalid_grant`, a second silent login, the request delivered, the breaker closed.
    pub(crate) fn assert_recovered(&self, stats: &Stats) {
        assert_eq!(stats.refreshes.invalid_grant, 1, "{stats:?}");
        assert_eq!(stats.refreshes.transient, REFRESH_FAILURES as u64);
        assert_eq!(stats.refreshes.ok, 0);
        assert_eq!(stats.logins.ok, 2);
        assert_eq!((stats.requests.delivered, stats.requests.failed), (2, 1));
        assert!(!stats.circuit_open);
        assert_eq!(self.gauge(CIRCUIT_OPEN), Some(0.0));
        assert_eq!(self.samples(OPERATION, Some("login")).len(), 2);
        self.assert_agrees_with(stats);
    }
}

/// Two sessions `a` and `b` on one shared store: `a` logged in, `b` started from `a`'s record,
/// then `a` refreshed through an expiry while `b`, rejected too, waited for its tokens. Each lease, publish
/// and adoption is counted by the session it happened in.
pub(crate) fn assert_shared_refresh(a: &Session, stats_a: &Stats, b: &Session, stats_b: &Stats) {
    let (shared_a, shared_b) = (&stats_a.shared, &stats_b.shared);
    assert_eq!(
        (stats_a.logins.ok, stats_a.refreshes.ok),
        (1, 1),
        "{stats_a:?}"
    );
    assert_eq!(
        (shared_a.leases_granted, shared_a.published),
        (2, 2),
        "{stats_a:?}"
    );
    assert_eq!(
        (stats_b.logins.ok, stats_b.refreshes.ok),
        (0, 0),
        "{stats_b:?}"
    );
    // B asked for the lease while A held it, then took A's tokens: from a periodic read, or
    // from the record a later lease request was granted on (given back without a refresh).
    assert!(shared_b.leases_busy >= 1, "{stats_b:?}");
    assert!(shared_b.leases_granted <= 1, "{stats_b:?}");
    assert_eq!(shared_b.published, 0, "{stats_b:?}");
    assert!(shared_b.adopted >= 1, "B took A's tokens: {stats_b:?}");
    assert_eq!(shared_a.leases_unavailable + shared_b.leases_unavailable, 0);
    a.assert_agrees_with(stats_a);
    b.assert_agrees_with(stats_b);
}
