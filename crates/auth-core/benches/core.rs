//! Criterion benchmarks of the session core: a request's whole life, events with many requests
//! outstanding (must stay flat), and releasing a queue after a refresh (linear).
//!
//! `cargo bench -p auth-core --bench core`; results and machine in docs/performance.md.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

use common::{active, drain, request_life, tokens, with_outstanding, with_queue, NOW};

fn happy_path(c: &mut Criterion) {
    let mut session = active();
    c.bench_function("request_life", |b| {
        b.iter(|| request_life(black_box(&mut session)))
    });
}

fn outstanding(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_life_with_k_outstanding");
    for k in [1usize, 10, 100, 1_000, 10_000, 100_000] {
        let mut session = with_outstanding(k);
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, _| {
            b.iter(|| request_life(black_box(&mut session)))
        });
    }
    group.finish();
}

fn queue_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_release");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for n in [10usize, 100, 1_000, 10_000, 100_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || with_queue(n),
                |(mut session, op)| {
                    session.handle_refresh_result(op, Ok(tokens()), NOW);
                    drain(&mut session);
                    session
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, happy_path, outstanding, queue_release);
criterion_main!(benches);
