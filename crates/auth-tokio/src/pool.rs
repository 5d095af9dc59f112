//! Many independent sessions by key: [`SessionPool`], for a service that calls APIs on behalf
//! of many tenants, users or scope sets.
//!
//! Each key gets its own session: its own verified auth-core `Session`, its own backend and
//! store (both made for the key by the factory given to [`SessionPool::builder`]), its own
//! single flight of logins and refreshes. A storm of requests across 1,000 keys through an
//! expiry therefore makes one refresh per key, never one per request, and never one key's
//! refresh for another key. The factory clones one HTTP client into every key's backend, so the
//! pool shares one connection pool however many keys it holds.
//!
//! ## What the pool promises
//!
//! - **Single flight per key.** Getting the session of a key that has none builds one session,
//!   however many tasks ask at the same time; the others wait for it. A task that gives up
//!   while the session is being built hands the build to the next one waiting.
//! - **Cheap lookups, no lock across an await.** A lookup is one hash lookup and one ordered-map
//!   update under a short lock; building a session (which loads its store) runs outside it.
//! - **Bounded memory.** [`PoolBuilder::idle_timeout`] shuts down a key nobody used for that
//!   long; [`PoolBuilder::max_keys`] caps the number of keys, evicting the least recently used
//!   one that is not in use to make room for a new one ([`PoolError::Full`] when every key is
//!   in use). `docs/performance.md` measures what an idle key costs.
//! - **Eviction is a clean shutdown.** An evicted session is stopped with
//!   [`SessionHandle::shutdown`]: a login or refresh in flight finishes and its tokens are
//!   persisted, so a rotated refresh token is not lost. A key used again after its eviction
//!   gets a fresh session from its store, built only once the old session's shutdown has
//!   finished: the new one reads the tokens the old one persisted, so the two never present
//!   the same refresh token.
//! - **A key in use is never evicted for being idle or for room.** A key is in use while a
//!   [`PooledSession`] or [`PooledCall`] of it exists, or a task is building or awaiting its
//!   session. Keep the `PooledSession` for as long as you use its session (an `ApiClient` made
//!   from [`PooledSession::handle`] does not hold it). Only [`SessionPool::evict`] and
//!   [`SessionPool::shutdown`] stop a session in use; its waiting requests then fail with
//!   [`crate::CallError::Stopped`].
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//!
//! use auth_core::{AccessToken, RefreshToken, RequestSpec, TokenSet, Verdict};
//! use auth_tokio::pool::SessionPool;
//! use auth_tokio::{Backend, LoginError, MemoryStore, Next, RefreshError, SessionHandle};
//!
//! /// Signs in one tenant (a real one: a client-credentials grant with the tenant's secret,
//! /// over an HTTP client shared by every tenant).
//! struct TenantBackend {
//!     tenant: String,
//! }
//!
//! impl Backend for TenantBackend {
//!     async fn login(&self) -> Result<TokenSet, LoginError> {
//!         Ok(TokenSet::new(AccessToken::new(format!("access-{}", self.tenant))))
//!     }
//!     async fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
//!         Ok(TokenSet::new(AccessToken::new(format!("access-{}-2", self.tenant))))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let pool = SessionPool::builder(|tenant: &String| {
//!     SessionHandle::builder(TenantBackend { tenant: tenant.clone() })
//!         // The tenant's own store (e.g. a `FileStore` per tenant, or a row in your database).
//!         .store(MemoryStore::new())
//! })
//! .idle_timeout(Duration::from_secs(15 * 60))
//! .max_keys(10_000)
//! .build();
//!
//! let session = pool.session(&String::from("acme")).await?;
//! let mut call = session.call(RequestSpec::bearer());
//! let body = loop {
//!     match call.next_step().await? {
//!         Next::Send(attempt) => {
//!             assert_eq!(attempt.token().unwrap().expose_secret(), "access-acme");
//!             call.respond("200 OK", Verdict::Accepted);
//!         }
//!         Next::Deliver(response) => break response,
//!     }
//! };
//! assert_eq!(body, "200 OK");
//! drop((call, session));
//! pool.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod table;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use auth_core::RequestSpec;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::backend::Backend;
use crate::call::Call;
use crate::handle::{Builder, SessionHandle};
use crate::store::TokenStore;
use table::{Checkout, Evicted, Slot, Table};

/// How long an evicted session may take to stop by default ([`PoolBuilder::shutdown_wait`]):
/// longer than the default `Config::operation_timeout` (10 s) plus the driver's grace, so a
/// login or refresh in flight finishes and is persisted.
pub const DEFAULT_SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// The shortest [`PoolBuilder::idle_timeout`]; a shorter one is raised to it.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(100);

/// Independent sessions by key (a tenant, a user, a scope set...). Cheap to clone: every clone
/// is the same pool. See the [module documentation](self).
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
#[must_use = "a call does nothing until `next_step` is awaited"]
pub struct PooledCall<T> {
    call: Call<T>,
    _slot: Slot,
}

/// Why [`SessionPool::session`] gave no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
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
    /// The key was evicted with [`SessionPool::evict`] while its session was being built for
    /// this call: the session was shut down. Ask again for a fresh one.
    #[error("the key was evicted while its session was being built")]
    Evicted,
}

/// Builds and starts the session of a key (the factory, its type erased).
type MakeSession<K> =
    dyn Fn(&K) -> Pin<Box<dyn Future<Output = SessionHandle> + Send>> + Send + Sync;

struct Inner<K> {
    make: Arc<MakeSession<K>>,
    idle_timeout: Option<Duration>,
    max_keys: usize,
    shutdown_wait: Duration,
    state: Mutex<State<K>>,
    /// Wakes the idle sweeper: a key arrived in an empty pool, or the pool is gone.
    sweeper: Arc<Notify>,
}

struct State<K> {
    table: Table<K>,
    /// Keys whose evicted session is still shutting down: a new session of the key is built
    /// only once this says `true` (or its sender is gone), so it loads what the old one
    /// persisted. Removed by the shutdown's task; at most one per key (the newest).
    retiring: HashMap<Arc<K>, Retiring>,
    next_retiring: u64,
    sweeper_started: bool,
    closed: bool,
}

struct Retiring {
    id: u64,
    done: watch::Receiver<bool>,
}

/// An evicted session on its way out, with the sender that says its shutdown is over.
struct Retire<K> {
    evicted: Evicted<K>,
    id: u64,
    done: watch::Sender<bool>,
    /// The key's previous session still shutting down, if any: `done` waits for it too, so a
    /// new session waiting for the newest shutdown waits for all of them.
    previous: Option<watch::Receiver<bool>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> SessionPool<K> {
    /// A pool whose sessions `make` configures, one per key: typically
    /// `|key| SessionHandle::builder(backend_for(key)).store(store_for(key)).config(...)`,
    /// with every backend cloned from one HTTP client. `make` is called once per session
    /// built (once per key, and again after the key was evicted); it must not block.
    ///
    /// No idle timeout and no key limit until [`PoolBuilder::idle_timeout`] /
    /// [`PoolBuilder::max_keys`] set them.
    pub fn builder<B, S, F>(make: F) -> PoolBuilder<K>
    where
        B: Backend,
        S: TokenStore,
        F: Fn(&K) -> Builder<B, S> + Send + Sync + 'static,
    {
        let make: Arc<MakeSession<K>> = Arc::new(move |key: &K| {
            let builder = make(key);
            Box::pin(builder.start())
        });
        PoolBuilder {
            make,
            idle_timeout: None,
            max_keys: usize::MAX,
            shutdown_wait: DEFAULT_SHUTDOWN_WAIT,
        }
    }

    /// The session of `key`, built (with the factory, loading the key's store) if the pool
    /// holds none. Concurrent calls for a new key build one session.
    ///
    /// Call it from the tokio runtime the sessions run on: a new session's background task and
    /// the evictions' shutdowns are spawned on it.
    pub async fn session(&self, key: &K) -> Result<PooledSession, PoolError> {
        let inner = &self.inner;
        let now = tokio::time::Instant::now();
        let (slot, retiring, evicted) = {
            let mut state = inner.lock();
            if state.closed {
                return Err(PoolError::Closed);
            }
            let (slot, new, evicted) =
                match state.table.checkout(key, now.into_std(), inner.max_keys) {
                    Checkout::Slot { slot, new, evicted } => (slot, new, evicted),
                    Checkout::Full => {
                        return Err(PoolError::Full {
                            max_keys: inner.max_keys,
                        })
                    }
                };
            if new && inner.idle_timeout.is_some() {
                if !state.sweeper_started {
                    state.sweeper_started = true;
                    self.spawn_sweeper();
                }
                inner.sweeper.notify_one();
            }
            let retiring = state.retiring.get(key).map(|r| r.done.clone());
            let evicted = evicted.map(|evicted| state.retire(evicted));
            (slot, retiring, evicted)
        };
        if let Some(retire) = evicted {
            self.shut_down(retire);
        }
        if let Some(handle) = slot.get() {
            return Ok(PooledSession {
                handle: handle.clone(),
                slot,
            });
        }
        let handle = slot
            .get_or_init(|| async {
                if let Some(mut done) = retiring {
                    // `Err`: the shutdown's task is gone (its runtime stopped); nothing to wait for.
                    let _ = done.wait_for(|done| *done).await;
                }
                debug!("session pool: starting a session");
                (inner.make)(key).await
            })
            .await
            .clone();
        self.check_built(key, &slot, &handle)?;
        Ok(PooledSession { handle, slot })
    }

    /// A session just built whose key was taken out meanwhile ([`SessionPool::evict`] or
    /// [`SessionPool::shutdown`] during the build) belongs to nobody: it is shut down like an
    /// evicted one (so the key's next session waits for it) and the caller is told the pool
    /// is closed, or gets the key's next session.
    fn check_built(&self, key: &K, slot: &Slot, handle: &SessionHandle) -> Result<(), PoolError> {
        let retire = {
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
        let (retire, closed) = retire;
        self.shut_down(retire);
        if closed {
            Err(PoolError::Closed)
        } else {
            Err(PoolError::Evicted)
        }
    }

    /// Shuts down the session of `key` now, in use or not (its waiting requests fail with
    /// [`crate::CallError::Stopped`]), and waits for the shutdown (at most
    /// [`PoolBuilder::shutdown_wait`]). `false` if the pool held no session for `key`. The next
    /// [`SessionPool::session`] for `key` builds a fresh one from its store.
    pub async fn evict(&self, key: &K) -> bool {
        let retired = {
            let mut state = self.inner.lock();
            state.table.remove(key).map(|evicted| state.retire(evicted))
        };
        let Some(retire) = retired else {
            return false;
        };
        let mut done = retire.done.subscribe();
        self.shut_down(retire);
        // `Err`: the shutdown's task is gone with its runtime; nothing more to wait for.
        let _ = done.wait_for(|done| *done).await;
        true
    }

    /// Shuts down every session, in use or not, and waits for them (each at most
    /// [`PoolBuilder::shutdown_wait`]): logins and refreshes in flight finish and are persisted.
    /// Later calls to [`SessionPool::session`] fail with [`PoolError::Closed`].
    pub async fn shutdown(&self) {
        let evicted = {
            let mut state = self.inner.lock();
            state.closed = true;
            state.table.drain()
        };
        self.inner.sweeper.notify_one();
        let wait = self.inner.shutdown_wait;
        let mut stops = JoinSet::new();
        for session in evicted.into_iter().filter_map(|evicted| evicted.session) {
            stops.spawn(async move { stop(session, wait).await });
        }
        while stops.join_next().await.is_some() {}
    }

    /// How many keys the pool holds (sessions built or being built).
    pub fn len(&self) -> usize {
        self.inner.lock().table.len()
    }

    /// Whether the pool holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the pool holds a session for `key` (built or being built). Does not count as a
    /// use.
    pub fn contains(&self, key: &K) -> bool {
        self.inner.lock().table.contains(key)
    }

    /// Stops an evicted session on a task of its own, then lets the key's next session start.
    fn shut_down(&self, retire: Retire<K>) {
        let weak = Arc::downgrade(&self.inner);
        let wait = self.inner.shutdown_wait;
        let Retire {
            evicted,
            id,
            done,
            previous,
        } = retire;
        tokio::spawn(async move {
            if let Some(session) = evicted.session {
                stop(session, wait).await;
            }
            if let Some(mut previous) = previous {
                // `Err`: that shutdown's task is gone with its runtime.
                let _ = previous.wait_for(|done| *done).await;
            }
            done.send_replace(true);
            if let Some(inner) = weak.upgrade() {
                let mut state = inner.lock();
                if state.retiring.get(&evicted.key).is_some_and(|r| r.id == id) {
                    state.retiring.remove(&evicted.key);
                }
            }
        });
    }

    /// Starts the task that evicts idle keys; it holds the pool weakly and ends with it.
    fn spawn_sweeper(&self) {
        let Some(idle) = self.inner.idle_timeout else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let notify = Arc::clone(&self.inner.sweeper);
        tokio::spawn(sweep(weak, notify, idle));
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
    /// for that long. The check runs when the least recently used key turns idle, on a task the
    /// pool starts with its first key (it ends with the pool). Default: never. At least
    /// [`MIN_IDLE_TIMEOUT`]: a key in use is checked again one idle timeout later, so a shorter
    /// one would only spin the check.
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

    /// How long the shutdown of an evicted session may take ([`DEFAULT_SHUTDOWN_WAIT`]). The
    /// driver ends a stopped session by its operation deadline plus one second whatever this
    /// says; this bounds how long a new session of the same key waits for the old one, so make
    /// it longer than `Config::operation_timeout` + 1 s, or the new session may start before
    /// the old one persisted a rotated refresh token.
    pub fn shutdown_wait(mut self, wait: Duration) -> Self {
        self.shutdown_wait = wait;
        self
    }

    /// The pool. Starts nothing yet: the idle sweeper starts with the first key, on the
    /// runtime of that [`SessionPool::session`] call.
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
                sweeper: Arc::new(Notify::new()),
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
        f.debug_tuple("PooledCall").field(&self.call).finish()
    }
}

impl<K> Inner<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // Nothing panics while holding this lock (table updates only); if something did, the
        // table is still consistent enough to serve and to evict.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<K> Drop for Inner<K> {
    /// Lets the sweeper see that the pool is gone.
    fn drop(&mut self) {
        self.sweeper.notify_one();
    }
}

impl<K: Hash + Eq> State<K> {
    /// Marks `evicted`'s key as retiring: its next session waits for this shutdown.
    fn retire(&mut self, evicted: Evicted<K>) -> Retire<K> {
        self.next_retiring += 1;
        let id = self.next_retiring;
        let (done, receiver) = watch::channel(false);
        let retiring = Retiring { id, done: receiver };
        let previous = self
            .retiring
            .insert(Arc::clone(&evicted.key), retiring)
            .map(|previous| previous.done);
        Retire {
            evicted,
            id,
            done,
            previous,
        }
    }
}

/// Stops one session, waiting at most `wait`.
async fn stop(session: SessionHandle, wait: Duration) {
    if session.shutdown(wait).await.is_err() {
        warn!("an evicted session did not stop in time; its key's next session starts anyway");
    }
}

/// The idle sweeper: sleeps until the least recently used key turns idle (or a key arrives in
/// an empty pool), evicts what is idle, and ends when the pool is gone or shut down.
async fn sweep<K: Hash + Eq + Clone + Send + Sync + 'static>(
    weak: Weak<Inner<K>>,
    notify: Arc<Notify>,
    idle: Duration,
) {
    loop {
        let next = {
            let Some(inner) = weak.upgrade() else { return };
            let pool = SessionPool { inner };
            let now = tokio::time::Instant::now();
            let (evicted, next) = {
                let mut state = pool.inner.lock();
                if state.closed {
                    return;
                }
                let (evicted, next) = state.table.sweep(now.into_std(), idle);
                let next = next.map(tokio::time::Instant::from_std);
                let retired: Vec<_> = evicted.into_iter().map(|e| state.retire(e)).collect();
                (retired, next)
            };
            for retire in evicted {
                debug!("session pool: evicting an idle session");
                pool.shut_down(retire);
            }
            next
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}
