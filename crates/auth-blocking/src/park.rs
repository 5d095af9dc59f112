//! Waiting on the driver core from a plain thread: a [`Waker`] that unparks the thread, and a
//! poll loop that parks until the step comes or its deadline passes.

use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

/// Wakes a parked thread. A wake-up that comes before the thread parks is not lost: `unpark`
/// leaves a token that makes the next `park` return at once.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// One waker per thread, so repeated polls register the same waker (`will_wake`).
    static WAKER: Waker = waker_for(thread::current());
}

/// A waker that unparks `thread`.
pub(crate) fn waker_for(thread: Thread) -> Waker {
    Waker::from(Arc::new(Unpark(thread)))
}

/// Polls until `poll` is ready, parking the current thread in between; `None` when `deadline`
/// passes first. Spurious wake-ups only cost another poll.
pub(crate) fn block_until<R>(
    deadline: Instant,
    mut poll: impl FnMut(&Waker) -> Poll<R>,
) -> Option<R> {
    // During thread-local destruction (a call dropped by another thread-local's destructor)
    // the cached waker is gone: use a fresh one.
    let waker = WAKER
        .try_with(Waker::clone)
        .unwrap_or_else(|_| waker_for(thread::current()));
    loop {
        if let Poll::Ready(ready) = poll(&waker) {
            return Some(ready);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::park_timeout(deadline - now);
    }
}
