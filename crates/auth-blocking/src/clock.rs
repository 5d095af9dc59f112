//! The driver's clocks: `std`'s monotonic clock for the core's [`Instant`], the system clock for
//! the one wall-clock value the core needs (the persisted expiry).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{Instant, UnixTime};

/// Turns `std::time::Instant` into the core's millisecond [`Instant`] and back. The epoch is
/// the driver's start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: std::time::Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    /// Now, in whole milliseconds since the epoch (rounded down, so a deadline is never seen as
    /// reached early).
    pub(crate) fn now(&self) -> Instant {
        let millis = self.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// How long from now until the core's `at`; zero when it has passed. A deadline centuries
    /// away (a saturated timeout) is clamped rather than overflowing.
    pub(crate) fn until(&self, at: Instant) -> Duration {
        let far = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        Duration::from_millis(at.as_millis())
            .min(far)
            .saturating_sub(self.epoch.elapsed())
    }

    /// The core's `at` as a `std` instant, for threads that wait without the core; `None` for a
    /// deadline too far away to represent (a saturated timeout: never).
    pub(crate) fn instant(&self, at: Instant) -> Option<std::time::Instant> {
        self.epoch
            .checked_add(Duration::from_millis(at.as_millis()))
    }
}

/// Wall-clock now, for [`auth_core::Persist::snapshot`] and [`auth_core::Session::restore`].
/// A clock before 1970 reads as the Unix epoch: expiry then looks far away, and a dead token
/// takes the 401 → refresh path like any other.
pub(crate) fn wall_now() -> UnixTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UnixTime::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
