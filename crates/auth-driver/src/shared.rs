//! Sessions shared through a store ([`SharedLink`]): the store calls a runtime makes for a
//! shared session's [`Work`], and how their answers become the session's inputs.
//!
//! auth-core decides everything about a shared session (when to take the lease, whether to
//! refresh or log in, what to adopt); a runtime only calls the store and reports what it said.
//! Everything that does not depend on how a runtime blocks is here, written once for both
//! drivers:
//!
//! - who owns a lease: [`SharedLink::owner`], a random id of this session instance plus the
//!   operation id, so a late release never drops a lease another process (or another session of
//!   this process) holds;
//! - which call a work is and what its answer feeds: [`SharedLink::call`] →
//!   [`StoreCall::run`] (blocking: on a thread, or tokio's blocking pool) → [`StoreAnswer::report`],
//!   with [`StoreCall::late`] when the call did not return by the operation deadline;
//! - the periodic read that brings other processes' logouts and refreshes here:
//!   [`StoreWatch`];
//! - the start: [`StartRead`] (how long to retry an unreachable store) and [`start_session`].
//!
//! Every store error, and every call that did not answer in time, is the store being
//! unavailable for the session: a transient failure of the operation that needed it, never a
//! reason to refresh without the lease.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{
    Config, Instant, LeaseResult, Observed, OpId, PublishResult, Session, Snapshot, StoreVersion,
    UnixTime,
};
use auth_store::shared::{Acquired, LeaseOwner, Published, Record, SharedStore, SharedStoreError};
use auth_store::StoreError;
use tracing::{debug, info, warn};

use crate::core::Core;
use crate::work::{LogoutTicket, Work};

/// The pause between two reads of an unreachable store at start ([`StartRead`]).
pub const START_READ_RETRY: Duration = Duration::from_millis(100);

/// A shared store as one session instance uses it: the store, and the random id that names this
/// instance's leases. Cheap to clone (the store is shared).
#[derive(Clone)]
pub struct SharedLink {
    store: Arc<dyn SharedStore>,
    instance: Arc<str>,
}

/// One store call for a shared session's work, made with [`StoreCall::run`] where blocking is
/// allowed and bounded by the operation deadline by the runtime.
pub struct StoreCall {
    link: SharedLink,
    call: Call,
}

enum Call {
    Acquire {
        op: OpId,
        ttl: Duration,
    },
    Publish {
        op: OpId,
        expected: StoreVersion,
        snapshot: Snapshot,
    },
    Release {
        op: OpId,
        version: StoreVersion,
        spent: bool,
    },
    Logout {
        logout: Option<LogoutTicket>,
    },
}

/// What the store answered to a [`StoreCall`] (or that it did not answer in time), to feed to
/// the [`Core`] with [`StoreAnswer::report`].
#[must_use = "an answer does nothing until it is reported to the core"]
pub struct StoreAnswer {
    answer: Answer,
}

enum Answer {
    Lease(OpId, Result<Acquired, SharedStoreError>),
    Published(OpId, Result<Published, SharedStoreError>),
    Released(Result<(), SharedStoreError>),
    LoggedOut(Option<LogoutTicket>, Result<Record, SharedStoreError>),
}

/// The periodic read of the shared record: it feeds [`Core::store_changed`] whenever the
/// record differs from the one read last, so a logout or a refresh in another process reaches
/// this one within one read interval even when this session needs nothing from the store. The
/// whole record is compared, not only its version: a store that lost its data starts again from
/// version 0 and reuses versions with other tokens. Reads that fail are logged once per outage
/// (the session meets the store's trouble on its own when it needs the lease).
#[derive(Debug, Default)]
pub struct StoreWatch {
    last: Option<Record>,
    failing: bool,
}

/// The read of the shared record when a session starts: retried for a while when the store
/// cannot be reached, because a session started without the record cannot tell a logout
/// elsewhere from an empty store (see [`start_session`]).
#[derive(Debug)]
pub struct StartRead {
    deadline: std::time::Instant,
    failures: u32,
}

impl SharedLink {
    /// `store`, used by a new session instance: its lease owner ids start with a random id
    /// (from std's randomly keyed hasher, the time and the process id; unique across the
    /// processes and the sessions sharing the store, not a secret).
    pub fn new<S: SharedStore>(store: S) -> Self {
        SharedLink::from_arc(Arc::new(store))
    }

    /// Like [`SharedLink::new`], for a store already shared in an `Arc`.
    pub fn from_arc(store: Arc<dyn SharedStore>) -> Self {
        SharedLink {
            store,
            instance: random_instance().into(),
        }
    }

    /// The owner of `op`'s lease: `<instance>:<op>`.
    pub fn owner(&self, op: OpId) -> LeaseOwner {
        LeaseOwner(format!("{}:{}", self.instance, op.0))
    }

    /// This session instance's random id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The store call that carries out `work`: `Acquire`, `Publish`, `Release` and
    /// `ClearStore` (the tombstone of a logout); any other work is handed back. `now` and
    /// `wall_now`, read together, turn a publish's monotonic expiry into the wall-clock one the
    /// store keeps.
    pub fn call(&self, work: Work, now: Instant, wall_now: UnixTime) -> Result<StoreCall, Work> {
        let call = match work {
            Work::Acquire { op, ttl } => Call::Acquire { op, ttl },
            Work::Publish {
                op,
                expected,
                persist,
            } => Call::Publish {
                op,
                expected,
                snapshot: persist.snapshot(now, wall_now),
            },
            Work::Release { op, version, spent } => Call::Release { op, version, spent },
            Work::ClearStore { logout } => Call::Logout { logout },
            other => return Err(other),
        };
        Ok(StoreCall {
            link: self.clone(),
            call,
        })
    }

    /// Reads the record (blocking), for [`StoreWatch`] and [`StartRead`].
    pub fn read(&self) -> Result<Record, SharedStoreError> {
        self.store.read()
    }
}

impl fmt::Debug for SharedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLink")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl StoreCall {
    /// Makes the call. Blocking: run it on a thread of its own or a blocking pool, and stop
    /// waiting for it at the operation deadline ([`StoreCall::late`] is the answer then).
    pub fn run(self) -> StoreAnswer {
        let store = &*self.link.store;
        let answer = match self.call {
            Call::Acquire { op, ttl } => {
                Answer::Lease(op, store.acquire(&self.link.owner(op), ttl))
            }
            Call::Publish {
                op,
                expected,
                snapshot,
            } => Answer::Published(op, store.publish(expected, &snapshot)),
            Call::Release { op, version, spent } => {
                Answer::Released(store.release(&self.link.owner(op), version, spent))
            }
            Call::Logout { logout } => Answer::LoggedOut(logout, store.logout()),
        };
        StoreAnswer { answer }
    }

    /// The answer when the call did not return by its deadline (or its thread was lost): the
    /// store is unavailable. Take it before handing the call to [`StoreCall::run`].
    pub fn late(&self) -> StoreAnswer {
        let answer = match &self.call {
            Call::Acquire { op, .. } => Answer::Lease(*op, Err(no_answer())),
            Call::Publish { op, .. } => Answer::Published(*op, Err(no_answer())),
            Call::Release { .. } => Answer::Released(Err(no_answer())),
            Call::Logout { logout } => Answer::LoggedOut(*logout, Err(no_answer())),
        };
        StoreAnswer { answer }
    }

    /// What the call does, for logs and thread names: `acquire`, `publish`, `release`, `logout`.
    pub fn name(&self) -> &'static str {
        match self.call {
            Call::Acquire { .. } => "acquire",
            Call::Publish { .. } => "publish",
            Call::Release { .. } => "release",
            Call::Logout { .. } => "logout",
        }
    }

    /// The operation it belongs to (`None` for a logout).
    pub fn op(&self) -> Option<OpId> {
        match self.call {
            Call::Acquire { op, .. } | Call::Publish { op, .. } | Call::Release { op, .. } => {
                Some(op)
            }
            Call::Logout { .. } => None,
        }
    }
}

impl fmt::Debug for StoreCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the snapshot: it holds the tokens.
        f.debug_struct("StoreCall")
            .field("call", &self.name())
            .field("op", &self.op())
            .finish()
    }
}

impl StoreAnswer {
    /// Feeds the answer to `core` (`now` and `wall_now` read together: record lifetimes are
    /// wall-clock, the session's are monotonic), logging what went wrong. A logout's answer
    /// is fed as the record that changed, then reported to the `logout()` waiting for it; a
    /// tombstone that could not be written makes that logout not durable
    /// ([`crate::LogoutError::NotDurable`], with the store's error as the source of a
    /// [`StoreError::Io`]).
    pub fn report(self, core: &Core, now: Instant, wall_now: UnixTime) {
        match self.answer {
            Answer::Lease(op, result) => {
                let result = match result {
                    Ok(acquired) => {
                        debug!(
                            op = op.0,
                            granted = matches!(acquired, Acquired::Granted(_)),
                            "lease answer"
                        );
                        acquired.observe(wall_now)
                    }
                    Err(error) => {
                        warn!(op = op.0, %error, "the shared store did not grant the lease; counts as a transient failure");
                        LeaseResult::Unavailable
                    }
                };
                core.lease_done(op, result, now);
            }
            Answer::Published(op, result) => {
                let result = match result {
                    Ok(published) => {
                        if let Published::Conflict(record) = &published {
                            info!(
                                op = op.0,
                                version = record.version.0,
                                "another process wrote the shared record first"
                            );
                        }
                        published.observe(wall_now)
                    }
                    Err(error) => {
                        warn!(op = op.0, %error, "could not publish the new tokens; they live in this process only");
                        PublishResult::Unavailable
                    }
                };
                core.published(op, result, now);
            }
            Answer::Released(result) => {
                if let Err(error) = result {
                    warn!(%error, "could not give the lease back; it ends by its ttl");
                }
            }
            Answer::LoggedOut(logout, result) => {
                let cleared = match result {
                    Ok(record) => {
                        debug!(
                            version = record.version.0,
                            "logout written to the shared store"
                        );
                        core.store_changed(record.observe(wall_now), now);
                        Ok(())
                    }
                    Err(error) => {
                        warn!(%error, "could not write the logout to the shared store; the logout is not durable");
                        Err(StoreError::Shared(error))
                    }
                };
                core.cleared(logout, cleared);
            }
        }
    }
}

impl fmt::Debug for StoreAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, ok) = match &self.answer {
            Answer::Lease(_, result) => ("lease", result.is_ok()),
            Answer::Published(_, result) => ("published", result.is_ok()),
            Answer::Released(result) => ("released", result.is_ok()),
            Answer::LoggedOut(_, result) => ("logged out", result.is_ok()),
        };
        f.debug_struct("StoreAnswer")
            .field("answer", &name)
            .field("ok", &ok)
            .finish()
    }
}

impl StoreWatch {
    /// A watch that has read `record` last (the record read at start; `None` when that read
    /// failed, so the first successful read is fed).
    pub fn new(record: Option<Record>) -> Self {
        StoreWatch {
            last: record,
            failing: false,
        }
    }

    /// A read of the record (`Err(`[`no_answer`]`())` when it did not answer in time): fed to
    /// `core` when it differs from the last one read.
    pub fn saw(
        &mut self,
        read: Result<Record, SharedStoreError>,
        core: &Core,
        now: Instant,
        wall_now: UnixTime,
    ) {
        match read {
            Ok(record) => {
                if std::mem::take(&mut self.failing) {
                    info!("the shared store answers again");
                }
                if self.last.as_ref() != Some(&record) {
                    debug!(version = record.version.0, "the shared record changed");
                    core.store_changed(record.observe(wall_now), now);
                    self.last = Some(record);
                }
            }
            Err(error) if !self.failing => {
                self.failing = true;
                warn!(%error, "could not read the shared store; other processes' changes reach this one once it answers");
            }
            Err(error) => debug!(%error, "the shared store still does not answer"),
        }
    }
}

impl StartRead {
    /// A start that may spend `timeout` (the session's operation timeout) on reading the store.
    pub fn new(timeout: Duration) -> Self {
        let now = std::time::Instant::now();
        StartRead {
            deadline: now
                .checked_add(timeout)
                .unwrap_or(now + Duration::from_secs(3600)),
            failures: 0,
        }
    }

    /// How long the next read may take; `None` once the start's time is up.
    pub fn left(&self) -> Option<Duration> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// A read failed (`error`, or [`no_answer`]): how long to pause before the next one, or
    /// `None` to give up and start without the record.
    pub fn failed(&mut self, error: &SharedStoreError) -> Option<Duration> {
        self.failures += 1;
        let pause = self.left().map(|left| left.min(START_READ_RETRY));
        match pause {
            Some(_) if self.failures == 1 => {
                warn!(%error, "could not read the shared store at start; retrying");
            }
            Some(_) => debug!(%error, "could not read the shared store at start; retrying"),
            None => warn!(
                %error,
                reads = self.failures,
                "could not read the shared store at start; starting without its record"
            ),
        }
        pause
    }
}

/// The session a driver starts on a shared store, from the `record` read at start: `Active`
/// with its tokens, `LoggedOut` on a tombstone (a restart never brings a logged-out session
/// back), `Anonymous` on an empty store.
///
/// `None` (the store could not be read in time) starts from the view of an empty store at
/// version 0, `Anonymous`. That is safe for every promise: the session holds no token, so every
/// authenticated request needs a login, and every login starts with the lease, whose answer
/// carries the real record. A tombstone there is a logout (the version differs from 0), tokens
/// there are adopted, and an unreachable store fails the waiting requests with
/// `StoreUnavailable`: nothing is sent with a token and nobody logs in over a logout. The
/// periodic read ([`StoreWatch`]) brings the record too as soon as the store answers.
pub fn start_session(
    config: Config,
    record: Option<&Record>,
    now: Instant,
    wall_now: UnixTime,
) -> Session {
    let observed = record.map_or_else(Observed::empty, |record| record.observe(wall_now));
    Session::shared(config, observed, now)
}

/// The error of a store call that did not answer by the operation deadline.
pub fn no_answer() -> SharedStoreError {
    SharedStoreError::Unavailable("no answer by the operation deadline".into())
}

/// 128 random bits in hex: two hashes of std's randomly keyed `RandomState` (seeded from the
/// OS once per thread, then advanced per instance), over the wall clock, the process id and a
/// counter. Unique enough to tell leases apart; never used as a secret.
fn random_instance() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut words = [0u64; 2];
    for (i, word) in (0u8..).zip(words.iter_mut()) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(i);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_u64(count);
        *word = hasher.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_differ_and_owners_name_the_operation() {
        let a = random_instance();
        let b = random_instance();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
