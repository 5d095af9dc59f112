//! Heap bytes a waiting request costs in auth-tokio, counted by a wrapping global allocator: the
//! figure behind `Config::default()`'s unbounded `max_queued` (docs/performance.md).
//!
//! A session whose silent login never answers holds every authenticated request in its queue.
//! Two measurements per size: `Call`s submitted and kept (the session's share: the core's slot and
//! queue entry, the driver's waiter, the reply channel), and the same requests each awaited by a
//! spawned task (what an app that fires a storm of tasks pays in all).
//!
//! `cargo bench -p auth-demo --bench queue_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use auth_tokio::auth_core::{RefreshToken, RequestSpec, TokenSet};
use auth_tokio::{Backend, Call, LoginError, RefreshError, SessionHandle};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
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

/// A backend whose silent login never answers: every request waits.
struct Hung;

impl Backend for Hung {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        std::future::pending().await
    }

    async fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
        std::future::pending().await
    }
}

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Lets the driver task take in everything sent to it.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn measure(n: usize) -> (f64, f64) {
    let session = SessionHandle::builder(Hung).start().await;
    // The first request starts the login; from then on every request only waits.
    let first: Call<()> = session.call(RequestSpec::bearer());
    settle().await;

    let before = live();
    let calls: Vec<Call<()>> = (0..n)
        .map(|_| session.call(RequestSpec::bearer()))
        .collect();
    settle().await;
    let kept = (live() - before) as f64 / n as f64;
    drop(calls);
    settle().await;

    let before = live();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let session = session.clone();
            tokio::spawn(async move {
                let mut call: Call<()> = session.call(RequestSpec::bearer());
                let _ = call.next_step().await;
            })
        })
        .collect();
    settle().await;
    let spawned = (live() - before) as f64 / n as f64;
    for task in &tasks {
        task.abort();
    }
    drop(first);
    (kept, spawned)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return eprintln!("no runtime: {error}"),
    };
    println!("heap bytes per waiting request (auth-tokio, Config::default())");
    println!("| waiting n | Call kept | Call awaited by a spawned task |");
    println!("|---:|---:|---:|");
    for n in [1_000usize, 10_000, 100_000] {
        let (kept, spawned) = runtime.block_on(measure(n));
        println!("| {n} | {kept:.0} | {spawned:.0} |");
    }
}
