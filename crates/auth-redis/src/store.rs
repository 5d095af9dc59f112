//! [`RedisStore`]: the [`SharedStore`] of a fleet, on one Redis server.

use std::fmt;
use std::time::Duration;

use auth_core::{Snapshot, StoreVersion};
use auth_store::shared::{Acquired, LeaseOwner, Published, Record, SharedStore, SharedStoreError};

use redis::IntoConnectionInfo;

use crate::connection::{CallError, Pool, Retry};
use crate::scripts::{self, DecodeError, Scripts};

/// The longest lease asked of Redis, in milliseconds: longer ttls are cut to it. Far beyond any
/// real lease (about 292,000 years) and far below what makes Redis refuse `PX` (the sum with its
/// clock must fit an `i64`), so no ttl is ever shortened in practice.
const MAX_TTL_MS: u64 = 1 << 53;

/// How a [`RedisStore`] talks to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The most one call of the store takes, connecting included: past it the call answers
    /// [`SharedStoreError::Unavailable`]. Keep it well below the session's operation timeout
    /// (a needed refresh waits for the store within that). Default: 1 s.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(1),
        }
    }
}

impl Options {
    /// The options with `timeout` as the bound of every call.
    pub fn timeout(mut self, timeout: Duration) -> Options {
        self.timeout = timeout;
        self
    }
}

/// Why a [`RedisStore`] could not be built. Nothing is connected yet: a store is built while
/// Redis is down too, and its calls answer `Unavailable` until Redis is back.
///
/// The text never holds the URL: it may carry a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL is not a `redis://` or `redis+unix://` URL this client reads.
    #[error("the Redis URL is invalid")]
    InvalidUrl,
    /// `rediss://` (TLS): this build of the `redis` crate has no TLS (it would bring a TLS stack
    /// into every build). Reach a TLS-only Redis through a local TLS tunnel, or a private network.
    #[error("the Redis URL asks for TLS (rediss://), which this build does not support")]
    TlsUnsupported,
    /// The key prefix is empty (keys of several sessions would collide) or holds a character
    /// that is not printable ASCII.
    #[error("the key prefix must be non-empty printable ASCII without spaces")]
    InvalidPrefix,
    /// A zero timeout would fail every call.
    #[error("the timeout must be at least one millisecond")]
    InvalidTimeout,
}

/// A session shared through Redis by every process that opens the same server and prefix.
///
/// Each call is one Lua script, atomic in Redis, bounded by [`Options::timeout`]; see the
/// [crate documentation](crate) for the keys, what they hold and how to deploy Redis for it.
/// `Send + Sync`: one store serves every thread of a process (each call takes its own
/// connection). `Debug` shows the keys, never the URL (it may hold a password).
pub struct RedisStore {
    pool: Pool,
    scripts: Scripts,
    record_key: String,
    lease_key: String,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path`) for the session under `prefix`, with default [`Options`].
    /// Connects lazily: the first call connects.
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore, ConfigError> {
        RedisStore::with_options(url, prefix, Options::default())
    }

    /// [`RedisStore::open`] with `options`.
    pub fn with_options(
        url: &str,
        prefix: &str,
        options: Options,
    ) -> Result<RedisStore, ConfigError> {
        if url.trim_start().to_ascii_lowercase().starts_with("rediss:") {
            return Err(ConfigError::TlsUnsupported);
        }
        let prefix_ok = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_graphic());
        if !prefix_ok {
            return Err(ConfigError::InvalidPrefix);
        }
        if options.timeout < Duration::from_millis(1) {
            return Err(ConfigError::InvalidTimeout);
        }
        let info = url
            .into_connection_info()
            .map_err(|_| ConfigError::InvalidUrl)?;
        let pool = Pool::new(info, options.timeout).map_err(|_| ConfigError::InvalidUrl)?;
        Ok(RedisStore {
            pool,
            scripts: Scripts::new(),
            record_key: format!("{prefix}:record"),
            lease_key: format!("{prefix}:lease"),
        })
    }

    /// The key of the record (a hash: `version`, `content`, `spent`, `tokens`).
    pub fn record_key(&self) -> &str {
        &self.record_key
    }

    /// The key of the lease (a string holding the owner, expiring after its ttl).
    pub fn lease_key(&self) -> &str {
        &self.lease_key
    }

    fn keys(&self) -> [&str; 2] {
        [&self.record_key, &self.lease_key]
    }

    /// The record carried by a reply.
    fn record(
        &self,
        operation: &'static str,
        items: Vec<redis::Value>,
    ) -> Result<Record, SharedStoreError> {
        scripts::decode_record(items).map_err(|error| decode_failure(operation, error))
    }
}

impl SharedStore for RedisStore {
    fn read(&self) -> Result<Record, SharedStoreError> {
        let reply = self
            .pool
            .eval(&self.scripts.read, &self.keys(), &[], Retry::Idempotent)
            .map_err(|error| call_failure("read", error))?;
        match reply {
            redis::Value::Array(items) => self.record("read", items),
            _ => Err(unexpected("read")),
        }
    }

    fn acquire(&self, owner: &LeaseOwner, ttl: Duration) -> Result<Acquired, SharedStoreError> {
        // Rounded up: the lease lasts at least `ttl`, never less (its holder counts on it).
        let ttl_ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_TTL_MS)
            .to_string();
        let reply = self
            .pool
            .eval(
                &self.scripts.acquire,
                &self.keys(),
                &[owner.0.as_bytes(), ttl_ms.as_bytes()],
                Retry::CheckFirst,
            )
            .map_err(|error| call_failure("acquire", error))?;
        let (tag, items) =
            scripts::split_tag(reply).map_err(|error| decode_failure("acquire", error))?;
        let record = self.record("acquire", items)?;
        match tag.as_str() {
            "granted" => Ok(Acquired::Granted(record)),
            "busy" => Ok(Acquired::Busy(record)),
            _ => Err(unexpected("acquire")),
        }
    }

    fn publish(
        &self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> Result<Published, SharedStoreError> {
        let tokens = snapshot.encode();
        let expected_arg = scripts::version_arg(expected);
        let next_arg = scripts::version_arg(expected.next());
        let reply = self
            .pool
            .eval(
                &self.scripts.publish,
                &self.keys(),
                &[
                    expected_arg.as_bytes(),
                    next_arg.as_bytes(),
                    tokens.as_slice(),
                ],
                Retry::CheckFirst,
            )
            .map_err(|error| call_failure("publish", error))?;
        let (tag, items) =
            scripts::split_tag(reply).map_err(|error| decode_failure("publish", error))?;
        match tag.as_str() {
            "written" if items.is_empty() => Ok(Published::Written),
            "conflict" => Ok(Published::Conflict(self.record("publish", items)?)),
            _ => Err(unexpected("publish")),
        }
    }

    fn release(
        &self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
    ) -> Result<(), SharedStoreError> {
        let version_arg = scripts::version_arg(version);
        let spent_arg: &[u8] = if spent { b"1" } else { b"0" };
        let reply = self
            .pool
            .eval(
                &self.scripts.release,
                &self.keys(),
                &[owner.0.as_bytes(), version_arg.as_bytes(), spent_arg],
                Retry::Idempotent,
            )
            .map_err(|error| call_failure("release", error))?;
        match reply {
            redis::Value::Int(1) => Ok(()),
            redis::Value::Int(0) => {
                tracing::debug!("lease release: the lease was no longer ours (expired)");
                Ok(())
            }
            _ => Err(unexpected("release")),
        }
    }

    fn logout(&self) -> Result<Record, SharedStoreError> {
        let reply = self
            .pool
            .eval(&self.scripts.logout, &self.keys(), &[], Retry::Idempotent)
            .map_err(|error| call_failure("logout", error))?;
        match reply {
            redis::Value::Array(items) => self.record("logout", items),
            _ => Err(unexpected("logout")),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("record_key", &self.record_key)
            .field("lease_key", &self.lease_key)
            .finish_non_exhaustive()
    }
}

fn call_failure(operation: &'static str, error: CallError) -> SharedStoreError {
    match error {
        CallError::Unavailable(why) => {
            tracing::debug!(operation, why, "redis store unavailable");
            SharedStoreError::Unavailable(format!("redis {operation}: {why}"))
        }
        CallError::Corrupt(why) => {
            tracing::warn!(operation, why, "redis record unreadable");
            SharedStoreError::Unreadable(auth_core::SnapshotError::Corrupt(why))
        }
    }
}

fn decode_failure(operation: &'static str, error: DecodeError) -> SharedStoreError {
    match error {
        DecodeError::Shape(_) => unexpected(operation),
        DecodeError::Record(error) => {
            tracing::warn!(operation, %error, "redis record unreadable");
            SharedStoreError::Unreadable(error)
        }
    }
}

/// A reply the script cannot give: not Redis, or another program using the keys.
fn unexpected(operation: &'static str) -> SharedStoreError {
    tracing::warn!(operation, "redis answered what the script cannot answer");
    SharedStoreError::Unavailable(format!("redis {operation}: unexpected answer"))
}
