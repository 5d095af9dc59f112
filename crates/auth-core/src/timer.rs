//! The session's named timers and the backoff schedule.

use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::time::millis_of;

/// Why the session wants to be woken up; returned with the deadline by
/// [`crate::Session::next_timer`] so drivers can log it and the model can label its actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// The oldest waiting request reaches its `queue_timeout` (rule 7).
    QueueDeadline,
    /// The login or refresh in flight reaches its `operation_timeout` (rule 7).
    OperationDeadline,
    /// A failed login or refresh is due to be tried again (rule 5).
    OperationBackoff,
    /// The circuit breaker's cool-down ends (rule 14).
    BreakerCooldown,
    /// Shared sessions: another process holds the lease; ask again
    /// ([`crate::shared::LEASE_RETRY`] after the last answer).
    LeaseRetry,
}

/// Delay before retry number `attempt` (1-based): exponential from `backoff_base`, capped at
/// `backoff_max`, plus up to 50 % jitter. The jitter is a hash of the seed and `salt` (the next
/// operation id), not a random draw, so a session replays bit for bit.
pub(crate) fn backoff_delay(config: &Config, attempt: u32, salt: u64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(32);
    let base = millis_of(config.backoff_base);
    let delay = base
        .saturating_mul(1u64 << exponent)
        .min(millis_of(config.backoff_max));
    let jitter = splitmix64(config.jitter_seed ^ salt) % (delay / 2 + 1);
    Duration::from_millis(delay.saturating_add(jitter))
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash, enough to spread retries of many clients.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let config = Config::default();
        let mut previous_floor = 0;
        for attempt in 1..=10 {
            let floor = (200u64 << (attempt - 1)).min(5000);
            let delay = millis_of(backoff_delay(&config, attempt, 7));
            assert!(
                delay >= floor && delay <= floor + floor / 2,
                "attempt {attempt}: {delay}"
            );
            assert!(floor >= previous_floor);
            previous_floor = floor;
        }
    }

    #[test]
    fn jitter_is_deterministic_and_spread() {
        let config = Config::default();
        assert_eq!(backoff_delay(&config, 2, 3), backoff_delay(&config, 2, 3));
        let distinct: std::collections::BTreeSet<_> = (0..50)
            .map(|salt| backoff_delay(&config, 3, salt))
            .collect();
        assert!(distinct.len() > 10);
    }
}
