//! The driver's clocks: tokio's monotonic clock for the core's [`Instant`], the system clock for
//! the one wall-clock value the core needs (the persisted expiry).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{Instant, UnixTime};

/// Turns tokio's monotonic clock into the core's millisecond [`Instant`] and back.
///
/// The epoch is the driver's start. Using `tokio::time` (rather than `std::time`) keeps the
/// driver testable under `tokio::time::pause`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// Now, in whole milliseconds since the epoch (rounded down, so a deadline is never seen as
    /// reached early).
    pub(crate) fn now(&self) -> Instant {
        let millis = self.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a core deadline.
    pub(crate) fn deadline(&self, at: Instant) -> tokio::time::Instant {
        // A deadline centuries away (a saturated timeout) is clamped rather than overflowing.
        let far = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        self.epoch + Duration::from_millis(at.as_millis()).min(far)
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
