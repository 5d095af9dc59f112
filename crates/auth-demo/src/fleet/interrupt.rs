//! Ctrl-C and `SIGTERM` for the fleet's parent: instead of dying on the spot (which would leave
//! the temporary directory and Redis's working directory behind, and children running if the
//! signal reached the parent alone), the parent notes the signal and its waits end with
//! [`super::FleetError::Interrupted`], so the run unwinds and drops everything it started.
//!
//! Only `auth-demo fleet` installs the handler ([`install`]); tests never do, so for them the
//! flag stays down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set once the parent got Ctrl-C or `SIGTERM`.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How often a wait looks at the flag.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// Catches Ctrl-C and `SIGTERM` on a thread of its own (a small tokio runtime waiting for
/// them). Child processes do not inherit the handler (exec resets it): a Ctrl-C in a terminal,
/// which reaches the whole process group, still stops them at once, and the parent then finds
/// them gone.
pub fn install() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let mut terminate = {
        let _runtime = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?
    };
    std::thread::Builder::new()
        .name("fleet-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            });
            INTERRUPTED.store(true, Ordering::SeqCst);
        })?;
    Ok(())
}

/// Whether the parent was told to stop.
pub(super) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps `duration`, or less if the parent is told to stop; `false` then.
pub(super) fn sleep(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if interrupted() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(POLL));
    }
}
