//! The blocking session pool (`auth_blocking::pool`): independent sessions by key, on threads.
//!
//! - With a counting backend, in short real durations: idle eviction, eviction at the key
//!   limit, a key in use kept, an evicted key coming back from its store, a key evicted during a
//!   refresh whose next session waits for the rotated tokens, and single flight of a new key.
//! - With feature `ureq`, over real loopback HTTP against auth-demo's server: a storm across
//!   1,000 keys makes one login per key, and through an expiry one refresh per key
//!   (`cargo test -p auth-blocking --features ureq --test pool`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{
    AccessToken, RefreshToken, RequestSpec, Snapshot, TokenSet, Verdict,
};
use auth_blocking::pool::PoolBuilder;
use auth_blocking::{
    Backend, CallError, LoginError, MemoryStore, Next, PoolError, RefreshError, SessionHandle,
    SessionPool, StoreError, TokenStore,
};

/// What every key's backend was asked.
#[derive(Default)]
struct Log {
    logins: Mutex<HashMap<u32, usize>>,
    /// Every refresh token presented, in order.
    presented: Mutex<Vec<String>>,
    /// Sessions the factory started.
    built: AtomicUsize,
}

/// One key's backend: tokens named after the key and the call.
#[derive(Clone)]
struct Keyed {
    key: u32,
    log: Arc<Log>,
    refresh_delay: Duration,
}

impl Backend for Keyed {
    fn login(&self) -> Result<TokenSet, LoginError> {
        let n = {
            let mut logins = self.log.logins.lock().unwrap();
            let n = logins.entry(self.key).or_default();
            *n += 1;
            *n
        };
        Ok(
            TokenSet::new(AccessToken::new(format!("at-{}-login{n}", self.key)))
                .with_refresh_token(RefreshToken::new(format!("rt-{}-login{n}", self.key))),
        )
    }

    fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        let presented = refresh_token.expose_secret().to_owned();
        self.log.presented.lock().unwrap().push(presented.clone());
        thread::sleep(self.refresh_delay);
        Ok(
            TokenSet::new(AccessToken::new(format!("at-after-{presented}")))
                .with_refresh_token(RefreshToken::new(format!("rt-after-{presented}"))),
        )
    }
}

/// Every key's store, kept across evictions (as files or database rows would be).
#[derive(Clone, Default)]
struct Stores(Arc<Mutex<HashMap<u32, MemoryStore>>>);

impl Stores {
    fn of(&self, key: u32) -> MemoryStore {
        self.0.lock().unwrap().entry(key).or_default().clone()
    }
}

/// A store whose load takes a while, so that every thread asks while the session starts.
#[derive(Clone, Default)]
struct SlowStore(MemoryStore);

impl TokenStore for SlowStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        thread::sleep(Duration::from_millis(100));
        self.0.load()
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.0.save(snapshot)
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.0.clear()
    }
}

fn keyed_pool(log: &Arc<Log>, stores: &Stores, refresh_delay: Duration) -> PoolBuilder<u32> {
    let (log, stores) = (Arc::clone(log), stores.clone());
    SessionPool::builder(move |key: &u32| {
        log.built.fetch_add(1, Ordering::SeqCst);
        let backend = Keyed {
            key: *key,
            log: Arc::clone(&log),
            refresh_delay,
        };
        SessionHandle::builder(backend).store(stores.of(*key))
    })
}

/// One request through `key`'s session, answered 200; the token it went out with.
fn request(pool: &SessionPool<u32>, key: u32) -> String {
    let session = pool.session(&key).unwrap();
    let mut token = None;
    let body = session
        .request(RequestSpec::bearer(), |attempt| {
            token = Some(attempt.token().unwrap().expose_secret().to_owned());
            ("200 OK", Verdict::Accepted)
        })
        .unwrap();
    assert_eq!(body, "200 OK");
    token.unwrap()
}

/// Waits at most 10 s for `condition`.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

const IDLE: Duration = Duration::from_millis(300);

#[test]
fn an_idle_key_is_shut_down_and_comes_back_from_its_store() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO)
        .idle_timeout(IDLE)
        .build();
    let used = Instant::now();
    assert_eq!(request(&pool, 1), "at-1-login1");
    // A handle that does not keep the key in use, to see the session stop.
    let old = pool.session(&1).unwrap().handle().clone();

    eventually("the idle key is evicted", || !pool.contains(&1));
    assert!(used.elapsed() >= IDLE, "evicted before its idle timeout");
    let mut stopped = old.call::<()>(RequestSpec::bearer());
    assert!(matches!(stopped.next_step(), Err(CallError::Stopped)));

    // Used again: a fresh session, restored from the key's store, no new login.
    assert_eq!(request(&pool, 1), "at-1-login1");
    assert_eq!(log.built.load(Ordering::SeqCst), 2);
    assert_eq!(log.logins.lock().unwrap()[&1], 1);
}

#[test]
fn a_key_in_use_is_not_evicted_for_being_idle() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO)
        .idle_timeout(IDLE)
        .build();
    request(&pool, 1);
    request(&pool, 2);
    let held = pool.session(&1).unwrap();
    let call = pool.session(&2).unwrap().call::<()>(RequestSpec::bearer());
    thread::sleep(IDLE * 5);
    assert!(pool.contains(&1), "a held PooledSession's key was evicted");
    assert!(pool.contains(&2), "a PooledCall's key was evicted");

    drop((held, call));
    eventually("released keys are evicted", || pool.is_empty());
    assert_eq!(log.built.load(Ordering::SeqCst), 2);
}

#[test]
fn at_max_keys_the_least_recently_used_key_not_in_use_makes_room() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO)
        .max_keys(2)
        .build();
    request(&pool, 1);
    request(&pool, 2);
    request(&pool, 1);
    request(&pool, 3);
    assert!(pool.contains(&1) && pool.contains(&3));
    assert!(!pool.contains(&2), "the least recently used key is evicted");

    let held = [pool.session(&1).unwrap(), pool.session(&3).unwrap()];
    assert!(matches!(
        pool.session(&4),
        Err(PoolError::Full { max_keys: 2 })
    ));
    drop(held);
    assert_eq!(request(&pool, 4), "at-4-login1");
    assert_eq!(
        request(&pool, 2),
        "at-2-login1",
        "key 2 comes back from its store"
    );
    assert_eq!(log.logins.lock().unwrap()[&2], 1);
}

#[test]
fn a_key_evicted_during_a_refresh_comes_back_with_the_rotated_tokens() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::from_millis(500))
        .max_keys(1)
        .build();
    request(&pool, 1);

    // A 401 starts a refresh that takes 500 ms; the caller gives up meanwhile.
    let session = pool.session(&1).unwrap();
    let mut call = session.call::<&str>(RequestSpec::bearer());
    let Next::Send(_) = call.next_step().unwrap() else {
        panic!("expected a send")
    };
    call.respond("401", Verdict::Rejected);
    eventually("the refresh started", || {
        log.presented.lock().unwrap().len() == 1
    });
    drop((call, session));

    // Key 2 takes key 1's room: key 1's session stops, its refresh still in flight...
    request(&pool, 2);
    assert!(!pool.contains(&1));
    // ...and key 1's next session waits for that refresh to be persisted, then uses its tokens.
    assert_eq!(request(&pool, 1), "at-after-rt-1-login1");
    let presented = log.presented.lock().unwrap().clone();
    assert_eq!(
        presented,
        ["rt-1-login1"],
        "a refresh token presented twice"
    );
}

#[test]
fn threads_asking_for_a_new_key_together_start_one_session() {
    let log = Arc::new(Log::default());
    let factory_log = Arc::clone(&log);
    let pool = SessionPool::builder(move |key: &u32| {
        factory_log.built.fetch_add(1, Ordering::SeqCst);
        let backend = Keyed {
            key: *key,
            log: Arc::clone(&factory_log),
            refresh_delay: Duration::ZERO,
        };
        SessionHandle::builder(backend).store(SlowStore::default())
    })
    .build();
    let barrier = Barrier::new(32);
    let tokens: HashSet<String> = thread::scope(|scope| {
        let threads: Vec<_> = (0..32)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    request(&pool, 7)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(tokens, HashSet::from(["at-7-login1".to_owned()]));
    assert_eq!(
        log.built.load(Ordering::SeqCst),
        1,
        "sessions started for one key"
    );
    assert_eq!(log.logins.lock().unwrap()[&7], 1);
}

#[test]
fn evict_and_shutdown_stop_sessions_in_use() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO).build();
    request(&pool, 1);
    request(&pool, 2);
    let held = pool.session(&1).unwrap();
    assert!(pool.evict(&1));
    assert!(!pool.evict(&1), "evicted twice");
    let mut call = held.call::<()>(RequestSpec::bearer());
    assert!(matches!(call.next_step(), Err(CallError::Stopped)));

    pool.shutdown();
    assert!(pool.is_empty());
    assert!(matches!(pool.session(&2), Err(PoolError::Closed)));
}

#[cfg(feature = "ureq")]
mod common;

#[cfg(feature = "ureq")]
mod loopback {
    //! 1,000 keys over real loopback HTTP.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use auth_blocking::ureq::{ApiClient, Scope};

    use super::*;

    use super::common::{server, DemoBackend};

    const KEYS: u32 = 1_000;

    /// The demo backend, shared by every key (one agent, one connection pool), counting each
    /// key's logins and refreshes.
    #[derive(Clone)]
    struct Counted {
        key: usize,
        inner: DemoBackend,
        logins: Arc<Vec<AtomicUsize>>,
        refreshes: Arc<Vec<AtomicUsize>>,
    }

    impl Backend for Counted {
        fn login(&self) -> Result<TokenSet, LoginError> {
            self.logins[self.key].fetch_add(1, Ordering::SeqCst);
            self.inner.login()
        }

        fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
            self.refreshes[self.key].fetch_add(1, Ordering::SeqCst);
            self.inner.refresh(refresh_token)
        }
    }

    fn counters() -> Arc<Vec<AtomicUsize>> {
        Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect())
    }

    fn each(counts: &[AtomicUsize]) -> Vec<usize> {
        counts.iter().map(|n| n.load(Ordering::SeqCst)).collect()
    }

    /// Threads walking the keys: each takes a key and sends its `per_key` GETs at once (one
    /// thread each), then the next key. A thread per request for all 3,000 requests at once
    /// overloads a small machine until calls time out, and a refresh whose answer timed out is
    /// retried with the same token (the server rotated it already): that tests the machine.
    const WALKERS: u32 = 48;

    /// `per_key` GETs at once for every key, [`WALKERS`] keys at a time; each key's token
    /// serials.
    fn storm(
        pool: &SessionPool<u32>,
        agent: &ureq::Agent,
        scope: &Scope,
        base: &str,
        per_key: usize,
    ) -> HashMap<u32, HashSet<u64>> {
        let serials = Mutex::new(HashMap::<u32, HashSet<u64>>::new());
        let get = |key: u32, i: usize| {
            let session = pool.session(&key).unwrap();
            let api = ApiClient::new(agent.clone(), session.handle().clone(), scope.clone());
            let mut response = api.get(&format!("{base}/api/{key}/{i}")).unwrap();
            assert_eq!(response.status().as_u16(), 200, "key {key} not delivered");
            let body = response.body_mut().read_to_string().unwrap();
            drop(session);
            let mut serials = serials.lock().unwrap();
            serials.entry(key).or_default().insert(serial(&body));
        };
        thread::scope(|walkers| {
            for walker in 0..WALKERS {
                let get = &get;
                walkers.spawn(move || {
                    for key in (walker..KEYS).step_by(WALKERS as usize) {
                        thread::scope(|requests| {
                            for i in 0..per_key {
                                requests.spawn(move || get(key, i));
                            }
                        });
                    }
                });
            }
        });
        serials.into_inner().unwrap()
    }

    fn serial(body: &str) -> u64 {
        let (_, rest) = body.split_once("\"token_serial\":").unwrap();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    }

    fn assert_own_tokens(serials: &HashMap<u32, HashSet<u64>>) {
        assert_eq!(serials.len(), KEYS as usize);
        let mut all = HashSet::new();
        for (key, of_key) in serials {
            assert_eq!(of_key.len(), 1, "key {key} used tokens {of_key:?}");
            assert!(
                all.insert(*of_key.iter().next().unwrap()),
                "a token shared by two keys"
            );
        }
    }

    /// Deadlines far above what a loaded machine needs: a refresh whose answer came after the
    /// operation deadline is retried with the same refresh token (the server rotated it already,
    /// and sees a reuse), which would test the machine's load, not the pool.
    fn patient() -> auth_blocking::auth_core::Config {
        auth_blocking::auth_core::Config {
            operation_timeout: Duration::from_secs(60),
            queue_timeout: Duration::from_secs(90),
            ..auth_blocking::auth_core::Config::default()
        }
    }

    #[test]
    fn a_storm_across_1000_keys_logs_in_and_refreshes_once_per_key() {
        let server = server();
        let admin = server.admin().clone();
        // Each backend call bounded by 30 s (the tests' common backend: 5 s).
        let demo = DemoBackend::new(server.base_url(), Duration::from_secs(30));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let (logins, refreshes) = (counters(), counters());
        let (factory_logins, factory_refreshes) = (Arc::clone(&logins), Arc::clone(&refreshes));
        let pool = SessionPool::builder(move |key: &u32| {
            SessionHandle::builder(Counted {
                key: *key as usize,
                inner: demo.clone(),
                logins: Arc::clone(&factory_logins),
                refreshes: Arc::clone(&factory_refreshes),
            })
            .config(patient())
        })
        .max_keys(KEYS as usize)
        .build();
        let scope = Scope::new(server.base_url()).unwrap();

        let first = storm(&pool, &agent, &scope, server.base_url(), 2);
        assert_own_tokens(&first);
        assert_eq!(each(&logins), vec![1; KEYS as usize], "logins per key");
        assert_eq!(admin.counters().logins, u64::from(KEYS));

        admin.expire_access_tokens();
        let expired = storm(&pool, &agent, &scope, server.base_url(), 3);
        assert_own_tokens(&expired);
        assert_eq!(
            each(&refreshes),
            vec![1; KEYS as usize],
            "refreshes per key"
        );
        let after = admin.counters();
        assert_eq!(after.refreshes, u64::from(KEYS));
        assert_eq!(after.reuse_detected, 0);
        assert_eq!(after.logins, u64::from(KEYS), "nobody logged in again");
        pool.shutdown();
    }
}
