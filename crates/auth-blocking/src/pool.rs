//! Many independent sessions by key: [`SessionPool`], for a service that calls APIs on behalf
//! of many tenants, users or scope sets, without an async runtime. The same pool as
//! auth-tokio's `pool` module, on threads.
//!
//! Each key gets its own session: its own verified auth-core `Session`, its own backend and
//! store (both made for the key by the factory given to [`SessionPool::builder`]), its own
//! single flight of logins and refreshes: a storm across many keys through an expiry makes one
//! refresh per key. The factory clones one HTTP agent into every key's backend, so the pool
//! shares one connection pool however many keys it holds. Each session has its background
//! thread (see the crate documentation): a pool of N keys runs N of them.
//!
//! ## What the pool promises
//!
//! - **Single flight per key.** Getting the session of a key that has none starts one session,
//!   however many threads ask at the same time; the others block until it has started.
//! - **Cheap lookups, no lock held while a session starts.** A lookup is one hash lookup and one
//!   ordered-map update under a short lock; starting a session (loading its store, spawning its
//!   thread) happens outside it.
//! - **Bounded memory.** [`PoolBuilder::idle_timeout`] shuts down a key nobody used for that
//!   long (checked by a thread the pool starts with its first key); [`PoolBuilder::max_keys`]
//!   caps the number of keys, evicting the least recently used one that is not in use to make
//!   room ([`PoolError::Full`] when every key is in use).
//! - **Eviction is a clean shutdown** ([`SessionHandle::shutdown`], on a thread of its own): a
//!   login or refresh in flight finishes and its tokens are persisted. A key used again gets a
//!   fresh session from its store, started only once the old session's shutdown finished, so the
//!   two never present the same refresh token.
//! - **A key in use is never evicted for being idle or for room**: while a [`PooledSession`] or
//!   [`PooledCall`] of it exists, or a thread is starting or awaiting its session. Keep the
//!   `PooledSession` while you use its session (an `ApiClient` made from
//!   [`PooledSession::handle`] does not hold it). Only [`SessionPool::evict`] and
//!   [`SessionPool::shutdown`] stop a session in use.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//!
//! use auth_blocking::auth_core::{AccessToken, RefreshToken, RequestSpec, TokenSet, Verdict};
//! use auth_blocking::pool::SessionPool;
//! use auth_blocking::{Backend, LoginError, MemoryStore, RefreshError, SessionHandle};
//!
//! struct TenantBackend {
//!     tenant: String,
//! }
//!
//! impl Backend for TenantBackend {
//!     fn login(&self) -> Result<TokenSet, LoginError> {
//!         Ok(TokenSet::new(AccessToken::new(format!("access-{}", self.tenant))))
//!     }
//!     fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
//!         Ok(TokenSet::new(AccessToken::new(format!("access-{}-2", self.tenant))))
//!     }
//! }
//!
//! let pool = SessionPool::builder(|tenant: &String| {
//!     SessionHandle::builder(TenantBackend { tenant: tenant.clone() }).store(MemoryStore::new())
//! })
//! .idle_timeout(Duration::from_secs(15 * 60))
//! .max_keys(10_000)
//! .build();
//!
//! let session = pool.session(&String::from("acme"))?;
//! let body = session.request(RequestSpec::bearer(), |attempt| {
//!     assert_eq!(attempt.token().unwrap().expose_secret(), "access-acme");
//!     ("200 OK", Verdict::Accepted)
//! })?;
//! assert_eq!(body, "200 OK");
//! drop(session);
//! pool.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod table;

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use auth_core::RequestSpec;
use tracing::{debug, warn};

use crate::backend::Backend;
use crate::handle::{Builder, Call, SessionHandle};
use crate::store::TokenStore;
use table::{Checkout, Evicted, Slot, Table};

/// How long an evicted session may take to stop by default ([`PoolBuilder::shutdown_wait`]):
/// longer than the default `Config::operation_timeout` (10 s) plus the driver's grace, so a
/// login or refresh in flight finishes and is persisted.
pub const DEFAULT_SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// The shortest [`PoolBuilder::idle_timeout`]; a shorter one is raised to it.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest the idle sweeper sleeps at a time, so it notices a dropped pool soon.
const SWEEP_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// Independent sessions by key. Cheap to clone and shared by threads: every clone is the same
/// pool. See the [module documentation](self).
pub struct SessionPool<K> {
    inner: Arc<Inner<K>>,
}

/// Configures a [`SessionPool`]; from [`SessionPool::builder`].
pub struct PoolBuilder<K> {
    make: Arc<MakeSession<K>>,
    idle_timeout: Option<Duration>,
    max_keys: usize,
    shutdown_wait: Duration,
}

/// One key's session, checked out of the pool: the key is in use (never evicted for being idle
/// or for room) until every clone of it and every [`PooledCall`] made from it is dropped.
/// Derefs to the [`SessionHandle`].
#[derive(Clone)]
pub struct PooledSession {
    handle: SessionHandle,
    slot: Slot,
}

/// A [`Call`] that keeps its key in use until it is dropped; from [`PooledSession::call`].
/// Derefs to the [`Call`].
#[must_use = "a call does nothing until `next_step` is called"]
pub struct PooledCall<T> {
    call: Call<T>,
    _slot: Slot,
}

/// Why [`SessionPool::session`] gave no session.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The key is new, the pool holds [`PoolBuilder::max_keys`] keys and every one of them is
    /// in use. Retry once some request has finished, or raise the limit.
    #[error("the session pool is full: all of its {max_keys} keys are in use")]
    Full {
        /// The configured limit.
        max_keys: usize,
    },
    /// The pool was shut down ([`SessionPool::shutdown`]).
    #[error("the session pool was shut down")]
    Closed,
    /// The key was evicted with [`SessionPool::evict`] while its session was starting for this
    /// call: the session was shut down. Ask again for a fresh one.
    #[error("the key was evicted while its session was starting")]
    Evicted,
    /// The key's session could not start (its background thread could not be spawned). The
    /// next [`SessionPool::session`] for the key tries again.
    #[error("the session could not start")]
    Start(#[source] Arc<io::Error>),
}

/// Starts the session of a key (the factory, its types erased).
type MakeSession<K> = dyn Fn(&K) -> io::Result<SessionHandle> + Send + Sync;

struct Inner<K> {
    make: Arc<MakeSession<K>>,
    idle_timeout: Option<Duration>,
    max_keys: usize,
    shutdown_wait: Duration,
    state: Mutex<State<K>>,
    /// The idle sweeper's thread, unparked when a key arrives or the pool is gone.
    sweeper: Mutex<Option<Thread>>,
}

struct State<K> {
    table: Table<K>,
    /// Keys whose evicted session is still shutting down: a new session of the key starts only
    /// once this is done, so it loads what the old one persisted. At most one per key (the
    /// newest, which is done only after the older ones).
    retiring: HashMap<Arc<K>, (u64, Arc<Done>)>,
    next_retiring: u64,
    sweeper_started: bool,
    closed: bool,
}

/// A flag set once, that threads can wait for.
#[derive(Default)]
struct Done {
    done: Mutex<bool>,
    changed: Condvar,
}

/// An evicted session on its way out.
struct Retire<K> {
    evicted: Evicted<K>,
    id: u64,
    done: Arc<Done>,
    /// The key's previous session still shutting down: `done` is set only after it.
    previous: Option<Arc<Done>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> SessionPool<K> {
    /// A pool whose sessions `make` configures, one per key: typically
    /// `|key| SessionHandle::builder(backend_for(key)).store(store_for(key)).config(...)`,
    /// with every backend cloned from one HTTP agent. `make` is called once per session
    /// started (once per key, and again after the key was evicted).
    ///
    /// No idle timeout and no key limit until [`PoolBuilder::idle_timeout`] /
    /// [`PoolBuilder::max_keys`] set them.
    pub fn builder<B, S, F>(make: F) -> PoolBuilder<K>
    where
        B: Backend,
        S: TokenStore,
        F: Fn(&K) -> Builder<B, S> + Send + Sync + 'static,
    {
        let make: Arc<MakeSession<K>> = Arc::new(move |key: &K| make(key).start());
        PoolBuilder {
            make,
            idle_timeout: None,
            max_keys: usize::MAX,
            shutdown_wait: DEFAULT_SHUTDOWN_WAIT,
        }
    }

    /// The session of `key`, started (with the factory, loading the key's store) if the pool
    /// holds none. Threads asking for a new key at the same time start one session: the others
    /// block until it has started.
    pub fn session(&self, key: &K) -> Result<PooledSession, PoolError> {
        let inner = &self.inner;
        let (slot, retiring, evicted) = {
            let mut state = inner.lock();
            if state.closed {
                return Err(PoolError::Closed);
            }
            let (slot, new, evicted) =
                match state.table.checkout(key, Instant::now(), inner.max_keys) {
                    Checkout::Slot { slot, new, evicted } => (slot, new, evicted),
                    Checkout::Full => {
                        return Err(PoolError::Full {
                            max_keys: inner.max_keys,
                        })
                    }
                };
            if new && inner.idle_timeout.is_some() && !state.sweeper_started {
                state.sweeper_started = true;
                self.spawn_sweeper();
            }
            let retiring = state.retiring.get(key).map(|(_, done)| Arc::clone(done));
            let evicted = evicted.map(|evicted| state.retire(evicted));
            (slot, retiring, evicted)
        };
        if let Some(retire) = evicted {
            self.shut_down(retire);
        }
        let started = slot.get_or_init(|| {
            if let Some(retiring) = retiring {
                retiring.wait();
            }
            debug!("session pool: starting a session");
            (inner.make)(key).map_err(Arc::new)
        });
        match started {
            Ok(handle) => {
                let handle = handle.clone();
                self.check_started(key, &slot, &handle)?;
                Ok(PooledSession { handle, slot })
            }
            Err(error) => {
                let error = Arc::clone(error);
                // Forget the failed start, so the next call tries again.
                let mut state = inner.lock();
                if state.table.holds(key, &slot) {
                    state.table.remove(key);
                }
                Err(PoolError::Start(error))
            }
        }
    }

    /// Shuts down the session of `key` now, in use or not (its waiting requests fail with
    /// [`crate::CallError::Stopped`]), and waits for the shutdown (at most
    /// [`PoolBuilder::shutdown_wait`]). `false` if the pool held no session for `key`. The next
    /// [`SessionPool::session`] for `key` starts a fresh one from its store.
    pub fn evict(&self, key: &K) -> bool {
        let retired = {
            let mut state = self.inner.lock();
            state.table.remove(key).map(|evicted| state.retire(evicted))
        };
        let Some(retire) = retired else {
            return false;
        };
        let done = Arc::clone(&retire.done);
        self.shut_down(retire);
        done.wait();
        true
    }

    /// Shuts down every session, in use or not, and waits for them (each at most
    /// [`PoolBuilder::shutdown_wait`], all at the same time): logins and refreshes in flight
    /// finish and are persisted. Later calls to [`SessionPool::session`] fail with
    /// [`PoolError::Closed`].
    pub fn shutdown(&self) {
        let evicted = {
            let mut state = self.inner.lock();
            state.closed = true;
            state.table.drain()
        };
        self.inner.wake_sweeper();
        let wait = self.inner.shutdown_wait;
        thread::scope(|scope| {
            for session in evicted.into_iter().filter_map(|evicted| evicted.session) {
                scope.spawn(move || stop(&session, wait));
            }
        });
    }

    /// How many keys the pool holds (sessions started or starting).
    pub fn len(&self) -> usize {
        self.inner.lock().table.len()
    }

    /// Whether the pool holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the pool holds a session for `key` (started or starting). Does not count as a
    /// use.
    pub fn contains(&self, key: &K) -> bool {
        self.inner.lock().table.contains(key)
    }

    /// A session just started whose key was taken out meanwhile ([`SessionPool::evict`] or
    /// [`SessionPool::shutdown`]) belongs to nobody: it is shut down like an evicted one (so the
    /// key's next session waits for it).
    fn check_started(&self, key: &K, slot: &Slot, handle: &SessionHandle) -> Result<(), PoolError> {
        let (retire, closed) = {
            let mut state = self.inner.lock();
            if state.table.holds(key, slot) {
                return Ok(());
            }
            let orphan = Evicted {
                key: Arc::new(key.clone()),
                session: Some(handle.clone()),
            };
            (state.retire(orphan), state.closed)
        };
        self.shut_down(retire);
        if closed {
            Err(PoolError::Closed)
        } else {
            Err(PoolError::Evicted)
        }
    }

    /// Stops an evicted session on a thread of its own, then lets the key's next session start.
    fn shut_down(&self, retire: Retire<K>) {
        let weak = Arc::downgrade(&self.inner);
        let wait = self.inner.shutdown_wait;
        let Retire {
            evicted,
            id,
            done,
            previous,
        } = retire;
        let run = move || {
            // Set even if this thread panics: a waiting start must not block for ever.
            let _set = SetOnDrop(Arc::clone(&done));
            if let Some(session) = &evicted.session {
                stop(session, wait);
            }
            if let Some(previous) = previous {
                previous.wait();
            }
            if let Some(inner) = weak.upgrade() {
                let mut state = inner.lock();
                if state
                    .retiring
                    .get(&evicted.key)
                    .is_some_and(|(current, _)| *current == id)
                {
                    state.retiring.remove(&evicted.key);
                }
            }
        };
        let spawned = thread::Builder::new()
            .name("seamless-pool-evict".into())
            .spawn(run);
        if let Err(error) = spawned {
            // The closure (with the session) is dropped: the session stops when its last
            // handle goes, and `done` is set by the drop.
            warn!(%error, "could not spawn the eviction thread; the session stops on drop");
        }
    }

    /// Starts the thread that evicts idle keys; it holds the pool weakly and ends with it.
    fn spawn_sweeper(&self) {
        let Some(idle) = self.inner.idle_timeout else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let spawned = thread::Builder::new()
            .name("seamless-pool-sweep".into())
            .spawn(move || sweep(&weak, idle));
        match spawned {
            Ok(handle) => *lock(&self.inner.sweeper) = Some(handle.thread().clone()),
            Err(error) => {
                warn!(%error, "could not spawn the idle sweeper; keys stay until max_keys")
            }
        }
    }
}

impl<K> Clone for SessionPool<K> {
    fn clone(&self) -> Self {
        SessionPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> fmt::Debug for SessionPool<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("SessionPool")
            .field("keys", &state.table.len())
            .field("retiring", &state.retiring.len())
            .field("idle_timeout", &self.inner.idle_timeout)
            .field("max_keys", &self.inner.max_keys)
            .field("closed", &state.closed)
            .finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> PoolBuilder<K> {
    /// Shuts down a key's session once nobody used it for `timeout`: no
    /// [`SessionPool::session`] for the key and no [`PooledSession`] or [`PooledCall`] of it
    /// for that long. A thread the pool starts with its first key checks when the least
    /// recently used key turns idle (it ends within a second of the pool). Default: never. At
    /// least [`MIN_IDLE_TIMEOUT`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout.max(MIN_IDLE_TIMEOUT));
        self
    }

    /// At most `max_keys` keys (at least 1): a new key beyond it evicts the least recently used
    /// key not in use, or fails with [`PoolError::Full`] when every key is in use. Default:
    /// unlimited.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// How long the shutdown of an evicted session may take ([`DEFAULT_SHUTDOWN_WAIT`]). Make
    /// it longer than `Config::operation_timeout` + 1 s: it bounds how long a new session of the
    /// same key waits for the old one to persist a rotated refresh token.
    pub fn shutdown_wait(mut self, wait: Duration) -> Self {
        self.shutdown_wait = wait;
        self
    }

    /// The pool. Starts nothing yet: the idle sweeper starts with the first key.
    pub fn build(self) -> SessionPool<K> {
        SessionPool {
            inner: Arc::new(Inner {
                make: self.make,
                idle_timeout: self.idle_timeout,
                max_keys: self.max_keys,
                shutdown_wait: self.shutdown_wait,
                state: Mutex::new(State {
                    table: table::new(),
                    retiring: HashMap::new(),
                    next_retiring: 0,
                    sweeper_started: false,
                    closed: false,
                }),
                sweeper: Mutex::new(None),
            }),
        }
    }
}

impl<K> fmt::Debug for PoolBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("idle_timeout", &self.idle_timeout)
            .field("max_keys", &self.max_keys)
            .field("shutdown_wait", &self.shutdown_wait)
            .finish_non_exhaustive()
    }
}

impl PooledSession {
    /// Starts a request with the key's session (see [`SessionHandle::call`]); the key stays in
    /// use until the returned call is dropped.
    pub fn call<T>(&self, spec: RequestSpec) -> PooledCall<T> {
        PooledCall {
            call: self.handle.call(spec),
            _slot: Arc::clone(&self.slot),
        }
    }

    /// The key's [`SessionHandle`], e.g. for an `ApiClient`. A clone of it does not keep the key
    /// in use: keep this `PooledSession` while you use it.
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }
}

impl Deref for PooledSession {
    type Target = SessionHandle;

    fn deref(&self) -> &SessionHandle {
        &self.handle
    }
}

impl fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PooledSession").field(&self.handle).finish()
    }
}

impl<T> Deref for PooledCall<T> {
    type Target = Call<T>;

    fn deref(&self) -> &Call<T> {
        &self.call
    }
}

impl<T> DerefMut for PooledCall<T> {
    fn deref_mut(&mut self) -> &mut Call<T> {
        &mut self.call
    }
}

impl<T> fmt::Debug for PooledCall<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledCall").finish_non_exhaustive()
    }
}

impl<K> Inner<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        lock(&self.state)
    }

    fn wake_sweeper(&self) {
        if let Some(thread) = lock(&self.sweeper).as_ref() {
            thread.unpark();
        }
    }
}

impl<K> Drop for Inner<K> {
    /// Lets the sweeper see that the pool is gone.
    fn drop(&mut self) {
        self.wake_sweeper();
    }
}

impl<K: Hash + Eq> State<K> {
    /// Marks `evicted`'s key as retiring: its next session waits for this shutdown.
    fn retire(&mut self, evicted: Evicted<K>) -> Retire<K> {
        self.next_retiring += 1;
        let id = self.next_retiring;
        let done = Arc::new(Done::default());
        let previous = self
            .retiring
            .insert(Arc::clone(&evicted.key), (id, Arc::clone(&done)))
            .map(|(_, previous)| previous);
        Retire {
            evicted,
            id,
            done,
            previous,
        }
    }
}

impl Done {
    fn set(&self) {
        *lock(&self.done) = true;
        self.changed.notify_all();
    }

    /// Blocks until set. Bounded: the shutdown that sets it waits at most its
    /// `shutdown_wait`, and sets it even if its thread panics.
    fn wait(&self) {
        let mut done = lock(&self.done);
        while !*done {
            done = self
                .changed
                .wait(done)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

struct SetOnDrop(Arc<Done>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Nothing panics while holding these locks (bookkeeping only); if something did, the data is
/// still consistent enough to serve and to evict.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops one session, waiting at most `wait`.
fn stop(session: &SessionHandle, wait: Duration) {
    if session.shutdown(wait).is_err() {
        warn!("an evicted session did not stop in time; its key's next session starts anyway");
    }
}

/// The idle sweeper: sleeps until the least recently used key turns idle (at most
/// [`SWEEP_AT_LEAST_EVERY`]), evicts what is idle, and ends when the pool is gone or shut down.
fn sweep<K: Hash + Eq + Clone + Send + Sync + 'static>(weak: &Weak<Inner<K>>, idle: Duration) {
    loop {
        let sleep = {
            let Some(inner) = weak.upgrade() else { return };
            let pool = SessionPool { inner };
            let now = Instant::now();
            let (evicted, next) = {
                let mut state = pool.inner.lock();
                if state.closed {
                    return;
                }
                let (evicted, next) = state.table.sweep(now, idle);
                let retired: Vec<_> = evicted.into_iter().map(|e| state.retire(e)).collect();
                (retired, next)
            };
            for retire in evicted {
                debug!("session pool: evicting an idle session");
                pool.shut_down(retire);
            }
            next.map_or(SWEEP_AT_LEAST_EVERY, |at| {
                at.saturating_duration_since(now).min(SWEEP_AT_LEAST_EVERY)
            })
        };
        thread::park_timeout(sleep);
    }
}
