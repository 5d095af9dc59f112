//! What a session on a shared store needs beyond the store calls of the background thread: the
//! read of the record at start, and the watcher thread that reads it every watch interval so
//! other processes' logouts and refreshes reach this one. The policy (how long to retry at
//! start, when a read is fed to the core) is auth-driver's, shared with auth-tokio; this is
//! only how a thread waits.

use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use auth_driver::{no_answer, Core, SharedLink, StartRead, StoreWatch};
use auth_store::shared::Record;
use tracing::{error, Dispatch, Span};

use crate::background::{bounded, Bounded};
use crate::clock::{wall_now, Clock};

/// A shared session's store: the link, how often to read it, and the record read at start.
pub(crate) struct Watched {
    pub(crate) link: SharedLink,
    /// `Duration::ZERO`: no periodic read.
    pub(crate) interval: Duration,
    /// The record read at start (`None`: the store could not be read).
    pub(crate) start: Option<Record>,
}

/// The shared record at start: retried within `timeout` while the store cannot be reached (each
/// read on a thread of its own, bounded by what is left); `None` if it never answered.
pub(crate) fn read_at_start(link: &SharedLink, timeout: Duration) -> Option<Record> {
    let mut start = StartRead::new(timeout);
    while let Some(left) = start.left() {
        let reader = link.clone();
        let error = match bounded("read", Instant::now().checked_add(left), move || {
            reader.read()
        }) {
            Bounded::Done(Ok(record)) => return Some(record),
            Bounded::Done(Err(error)) => error,
            Bounded::Late | Bounded::Lost => no_answer(),
        };
        thread::sleep(start.failed(&error)?);
    }
    None
}

/// Starts the thread that reads the record every `watched.interval` (each read bounded by the
/// operation timeout) and feeds the core when it changed. It ends once the core is stopped; the
/// background thread unparks it then. `None` when reads are off or the thread could not start
/// (logged: the session still meets other processes' changes whenever it takes the lease).
pub(crate) fn spawn_watcher(
    core: Arc<Core>,
    watched: Watched,
    clock: Clock,
    operation_timeout: Duration,
    dispatch: Dispatch,
    span: Span,
) -> Option<Thread> {
    if watched.interval.is_zero() {
        return None;
    }
    let watch_span = tracing::info_span!(parent: &span, "watch");
    let spawned = thread::Builder::new()
        .name("seamless-watch".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                watch_span.in_scope(|| watch(&core, watched, clock, operation_timeout));
            });
        });
    match spawned {
        Ok(handle) => Some(handle.thread().clone()),
        Err(error) => {
            error!(%error, "could not start the shared store's watcher thread");
            None
        }
    }
}

fn watch(core: &Core, watched: Watched, clock: Clock, operation_timeout: Duration) {
    let mut watch = StoreWatch::new(watched.start);
    loop {
        let wake_at = Instant::now().checked_add(watched.interval);
        loop {
            if core.is_stopped() {
                return;
            }
            let now = Instant::now();
            match wake_at {
                Some(at) if now >= at => break,
                Some(at) => thread::park_timeout(at - now),
                None => thread::park(),
            }
        }
        let reader = watched.link.clone();
        let deadline = Instant::now().checked_add(operation_timeout);
        let read = match bounded("watch", deadline, move || reader.read()) {
            Bounded::Done(read) => read,
            Bounded::Late | Bounded::Lost => Err(no_answer()),
        };
        watch.saw(read, core, clock.now(), wall_now());
    }
}
