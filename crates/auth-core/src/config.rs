//! Configuration, kept apart from the session's state: it never changes while a session runs.

use core::time::Duration;

use serde::{Deserialize, Serialize};

/// How a [`crate::Session`] behaves. Start from [`Config::default`] and change what you need.
///
/// Fields are public so `Config { queue_timeout, ..Config::default() }` reads well; new fields
/// always come with a default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// How many times a rejected request is sent again (rule 4). A request is sent at most
    /// `1 + max_retries` times. Default 1.
    pub max_retries: u8,
    /// How many requests may wait for the session at once (rule 8); one more fails at once with
    /// `QueueFull`. Default: no bound of its own (`usize::MAX`), so a storm of any size through
    /// an expiry loses nothing. A waiting request costs about 40 bytes here and a few hundred in
    /// a driver (docs/performance.md), next to the caller's own task that waits for it; the
    /// number of outstanding requests is bounded anyway (about a million, beyond which a submit
    /// fails with `TooManyOutstanding`). Set a bound to shed load early instead of queueing it.
    pub max_queued: usize,
    /// How long a request may wait for the session before it fails with `Timeout` (rule 7).
    pub queue_timeout: Duration,
    /// How long a login or refresh may take before it counts as a transient failure (rule 7).
    pub operation_timeout: Duration,
    /// A token that expires within this margin is refreshed before use (rule 9). The margin never
    /// exceeds half the token's lifetime, so short-lived tokens are still used.
    pub refresh_margin: Duration,
    /// How many times one transient login or refresh failure is retried with backoff before the
    /// waiting requests fail (rule 5). Default 2.
    pub max_operation_retries: u32,
    /// First backoff delay; doubles on every retry up to `backoff_max`.
    pub backoff_base: Duration,
    /// Upper bound of the backoff delay (before jitter).
    pub backoff_max: Duration,
    /// Seed of the backoff jitter. Jitter is derived from the seed and the operation id, so a
    /// trace replays bit for bit.
    pub jitter_seed: u64,
    /// Consecutive transient failures after which the circuit breaker opens (rule 14). Default 5;
    /// 0 disables the breaker.
    pub max_refresh_failures: u32,
    /// How long the circuit breaker stays open.
    pub breaker_cooldown: Duration,
    /// Start the silent login at once instead of on the first authenticated request.
    pub eager_login: bool,
    /// Emit `Revoke(refresh_token)` on logout (RFC 7009).
    pub revoke_on_logout: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_retries: 1,
            max_queued: usize::MAX,
            queue_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(10),
            refresh_margin: Duration::from_secs(30),
            max_operation_retries: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            jitter_seed: 0x5ea_4e55,
            max_refresh_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            eager_login: false,
            revoke_on_logout: false,
        }
    }
}
