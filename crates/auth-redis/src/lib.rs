//! # auth-redis: the Redis backend of Seamless shared sessions
//!
//! A fleet of processes (service instances on several hosts) shares one session, one rotating
//! refresh token, through one Redis server. [`RedisStore`] implements
//! [`auth_store::shared::SharedStore`]: the session machine of auth-core decides everything
//! (who refreshes, who waits and adopts, when a token must not be presented again), and this
//! store carries out its four atomic operations plus a read, each as one Lua script. The
//! semantics are those of [`auth_store::shared`], checked by its conformance suite against a
//! real `redis-server` in this crate's tests.
//!
//! ## What is stored
//!
//! Two keys under the caller's prefix (say `seamless:{billing-api}`; choose a name for the
//! session, **never a token or anything secret**: key names show up in `MONITOR`, `SCAN`,
//! slow logs and metrics):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:record` | hash | `version` (decimal `u64`, bumped by every write), `content` (`empty`, `tokens` or `logged_out`), `spent` (`0`/`1`: the lease holder may have presented this version's refresh token), `tokens` (only with `tokens`) |
//! | `<prefix>:lease` | string, `PX` ttl | the owner of the lease (a process id and operation id, no secret); Redis deletes it at its ttl |
//!
//! `tokens` is exactly [`auth_core::Snapshot::encode`]: the versioned JSON document the file
//! store writes, **with the access token and the refresh token in clear**. Anyone who can read
//! the record can use the session: protect the server like the secrets it holds. Neither key
//! has a ttl of its own; deleting both resets the session (every process logs in again).
//!
//! ## The operations
//!
//! | call | script (atomic) |
//! |---|---|
//! | [`read`](auth_store::shared::SharedStore::read) | `HMGET` the record |
//! | [`acquire`](auth_store::shared::SharedStore::acquire) | `SET lease owner NX PX ttl`; if set, `spent = 1`; answers granted or busy with the record from before |
//! | [`publish`](auth_store::shared::SharedStore::publish) | if `version == expected`: write the tokens as `expected + 1`, `spent = 0`; else the record |
//! | [`release`](auth_store::shared::SharedStore::release) | if the lease still holds our owner: `DEL` it, and if not spent and the version is unchanged, `spent = 0` |
//! | [`logout`](auth_store::shared::SharedStore::logout) | `content = logged_out` as `version + 1` (over a tombstone too), tokens deleted |
//!
//! The lease's expiry is Redis's own clock: a holder that crashes, hangs or loses the network
//! loses the lease `ttl` after the grant, and the session's rules make the takeover safe (the
//! spent mark makes the next holder log in rather than present a token twice).
//!
//! ## Failures and timeouts
//!
//! Every call returns within [`Options::timeout`] (default 1 s), connecting included: the
//! connection timeout, the handshake (`AUTH`, `SELECT`) and each command's read and write
//! timeouts are what is left of the call's deadline. (Only the resolution of a host name by the system resolver is not bounded: give an
//! IP address, or a name in `/etc/hosts`, where that matters.) A server that is down, hung or
//! unreachable is [`SharedStoreError::Unavailable`](auth_store::shared::SharedStoreError): the
//! session treats it as a transient failure and never refreshes without the lease. Connections
//! are made lazily, kept idle for later calls, dropped after any failure below Redis's error
//! replies and made again by the next call, so the store works again as soon as Redis does. A
//! restarted Redis is noticed without a failed call: a read, release or logout found on a dead
//! connection is sent again on a new one, and an acquire or publish checks a reused connection
//! with `PING` first (they are not sent twice: a lost answer must not be mistaken for someone
//! else's write).
//!
//! Error texts and `Debug` never hold a value: not a token, not a script argument, not the URL
//! (it may hold a password), not Redis's own error text (which can quote keys and arguments).
//! Only the operation and the kind of failure (`redis acquire: timed out`) remain. A record
//! that is not one this release can read (tokens of a newer format, a key of another type, a
//! version that is not a number) is
//! [`SharedStoreError::Unreadable`](auth_store::shared::SharedStoreError::Unreadable). The
//! scripts cannot decode tokens, so an acquire that answers it has still taken the lease (until
//! its ttl) and set the mark: the safe side. A logout writes its tombstone over such a record
//! (it is how a session clears it), except over a version that is not a number, which it
//! refuses rather than guess; delete the keys then.
//!
//! ## Noticing changes
//!
//! Drivers poll [`read`](auth_store::shared::SharedStore::read) to feed the session
//! `StoreChanged` (a logout elsewhere, tokens refreshed by another process); the session also
//! re-reads the record with every lease answer, so a process that needs new tokens adopts them
//! within `auth_core::LEASE_RETRY` of their publication without any notification. There is no
//! pub/sub channel: one `HMGET` per poll per process is cheap, and polling needs no extra
//! connection per process.
//!
//! ## Deploying Redis for it
//!
//! - **ACLs.** Give the fleet a user that can touch only the session's keys and run the
//!   scripts: `ACL SETUSER seamless on >password ~seamless:* +eval +evalsha +ping +get +set
//!   +del +exists +hget +hmget +hset +hdel` (Redis checks the commands a script calls too; add
//!   `+select` for a database other than 0), and put the user and password in the URL:
//!   `redis://seamless:password@redis.internal:6379/`. The tests run the store as exactly this
//!   user. The store speaks RESP2 whatever the URL asks (its answers are the same in RESP3) and
//!   sends no `CLIENT SETINFO`.
//! - **TLS.** The store sends tokens; across a network that is not private, encrypt it. This
//!   build has no TLS client (`rediss://` is [`ConfigError::TlsUnsupported`]): use a TLS tunnel
//!   on each host (stunnel, a service mesh sidecar) towards a TLS port of Redis.
//! - **Persistence: none, or `appendfsync always`.** A Redis restarted *empty* costs one
//!   login: the record reads as version 0 with no lease and no mark, the sessions see it changed
//!   and the first to take the lease logs in; nothing is presented twice. A Redis restarted from
//!   an *old* state (an RDB snapshot, or an AOF fsynced only every second) goes back in time: it
//!   brings back an older record whose refresh token was already presented and rotated away,
//!   without the spent mark that said so. No store protocol can keep a token from being
//!   presented twice across that (the proof of it was in the lost writes), so the fleet's next
//!   refresh presents it again. The session still ends up safe, only signed in again: the
//!   server refuses the rotated token (`invalid_grant`; with reuse detection it also revokes the
//!   token family, signing out the newer tokens too) and the session logs in. Without
//!   persistence the same restart costs one login and no revocation; with `appendfsync always`
//!   every acknowledged write survives and nothing goes back.
//! - **One server (or a primary).** The scripts run on one node: a replica's answers can be late
//!   (reads) or refused (writes). Sentinel or a cluster are not supported by this client; a
//!   prefix with a hash tag (`seamless:{name}`) keeps both keys in one slot for proxies that
//!   route by key.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use auth_redis::{Options, RedisStore};
//! use auth_store::shared::{LeaseOwner, SharedStore};
//!
//! let store = RedisStore::with_options(
//!     "redis://seamless:password@10.0.0.5:6379/",
//!     "seamless:{billing-api}",
//!     Options::default().timeout(Duration::from_millis(500)),
//! )?;
//! // Drivers make these calls; shown here to say what each answers.
//! let record = store.read()?;
//! println!("the fleet's session is at version {}", record.version.0);
//! let owner = LeaseOwner("host-a/4242/op-7".to_owned());
//! let answer = store.acquire(&owner, Duration::from_secs(20))?;
//! # let _ = answer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Tests
//!
//! The cargo feature `testing` adds [`testing::RedisServer`], a real `redis-server` on loopback
//! (ephemeral port, no persistence) with restart, stop, kill and pause, for this crate's tests
//! and the fleet demo. `.ci/run` installs `redis-server` when it is missing.
#![warn(missing_docs, unreachable_pub)]

mod connection;
mod scripts;
mod store;
#[cfg(all(feature = "testing", unix))]
pub mod testing;

pub use store::{ConfigError, Options, RedisStore};
