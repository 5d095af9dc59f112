//! Heap allocations per request in steady state, and heap bytes held per waiting request,
//! counted by a wrapping global allocator. Prints a small table; numbers go to
//! docs/performance.md.
//!
//! `cargo bench -p auth-core --bench allocations`

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use common::{active, request_life, with_outstanding, with_queue};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_per_life(session: &mut auth_core::Session, lives: usize) -> f64 {
    for _ in 0..10_000 {
        request_life(session);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..lives {
        request_life(session);
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / lives as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("allocations per request life (steady state, 100000 lives)");
    println!("| outstanding k | allocations / request |");
    println!("|---|---|");
    let mut idle = active();
    println!("| 0 | {:.3} |", allocations_per_life(&mut idle, 100_000));
    for k in [1usize, 100, 10_000] {
        let mut session = with_outstanding(k);
        println!(
            "| {k} | {:.3} |",
            allocations_per_life(&mut session, 100_000)
        );
    }

    println!("\nheap bytes held per waiting request");
    println!("| waiting n | bytes / request |");
    println!("|---|---|");
    for n in [1_000usize, 100_000] {
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let queued = with_queue(n);
        let after = LIVE_BYTES.load(Ordering::Relaxed);
        println!("| {n} | {:.1} |", (after - before) as f64 / n as f64);
        drop(queued);
    }
}
