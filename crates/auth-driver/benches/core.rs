//! Criterion benchmark of the driver core's happy path: one request's whole life on an `Active`
//! session (`submit` → its `Send`, `respond(Accepted)` → its `Deliver`), the two short critical
//! sections a request costs in either driver. Run three ways, to price the counting of
//! `Core::stats` and the `metrics` handles: with no recorder installed (the handles do
//! nothing), then with a recorder of atomic counters (what an exporter's handles cost), then
//! with a named session on that recorder (the `session` label).
//!
//! `cargo bench -p auth-driver --bench core`; results in docs/performance.md.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]
// Benchmark set-up: a broken expectation panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/metrics.rs"]
mod metrics_support;

use std::hint::black_box;
use std::time::Duration;

use auth_core::{
    AccessToken, Config, Instant, Outcome, RefreshToken, RequestSpec, Session, Snapshot, UnixTime,
    Verdict,
};
use auth_driver::{Core, Step};
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: Instant = Instant::from_millis(0);

/// A core around a session restored with a token that never expires: every request is sent at
/// once.
fn active(name: Option<&str>) -> Core {
    let snapshot = Snapshot {
        access_token: AccessToken::new("at-1"),
        refresh_token: Some(RefreshToken::new("rt-1")),
        expires_at: None,
    };
    let session = Session::restore(Config::default(), snapshot, NOW, UnixTime::from_millis(0));
    Core::named(session, Box::new(|_| {}), name)
}

/// One request's life; panics off the happy path.
fn request_life(core: &Core) {
    let (id, step) = core.submit(RequestSpec::bearer(), NOW);
    let (Some(id), Some(Step::Send { attempt, .. })) = (id, step) else {
        panic!("not sent at once")
    };
    let done = core.respond(id, attempt, Verdict::Accepted, NOW);
    assert!(matches!(done, Some(Step::Done(Outcome::Deliver))));
}

fn happy_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("driver_request_life");
    let core = active(None);
    group.bench_function("no_recorder", |b| b.iter(|| request_life(black_box(&core))));
    // From here on the process has a recorder: the handles of cores built now count.
    metrics_support::recorded();
    let core = active(None);
    group.bench_function("atomic_recorder", |b| {
        b.iter(|| request_life(black_box(&core)))
    });
    let core = active(Some("bench"));
    group.bench_function("atomic_recorder_named", |b| {
        b.iter(|| request_life(black_box(&core)))
    });
    group.finish();
    assert!(core.stats().requests.delivered > 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = happy_path
}
criterion_main!(benches);
