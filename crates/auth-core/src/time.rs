//! The core's own clock types.
//!
//! The core never reads a clock: every input carries `now`. A plain millisecond counter (rather than
//! `std::time::Instant`) keeps states hashable for the model checker, lets traces serialize, and lets
//! a WebAssembly host feed `Date.now()`.

use core::time::Duration;
use serde::{Deserialize, Serialize};

/// A point on the driver's monotonic clock, in milliseconds since an epoch the driver picks.
///
/// Only differences between two `Instant`s of one driver mean anything; persisted expiry uses
/// [`UnixTime`] instead, because a monotonic epoch does not survive a restart.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(0);

    /// An instant `millis` milliseconds after the driver's epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// Milliseconds since the driver's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating instead of overflowing so that a huge configured timeout
    /// means "never" rather than a panic.
    pub fn saturating_add(self, duration: Duration) -> Self {
        Instant(self.0.saturating_add(millis_of(duration)))
    }

    /// How long after `earlier` this instant is; zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Wall-clock time in milliseconds since the Unix epoch, used only where a time must survive a
/// restart (the persisted snapshot's expiry).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// A wall-clock time `millis` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_millis(millis: u64) -> Self {
        UnixTime(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// Whole milliseconds of a duration, saturating at `u64::MAX`.
pub(crate) fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
