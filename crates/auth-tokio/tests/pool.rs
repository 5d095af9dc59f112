//! The session pool (`auth_tokio::pool`): independent sessions by key.
//!
//! - Over real loopback HTTP against auth-demo's server: a storm across 1,000 keys makes one
//!   login per key, and through an expiry one refresh per key, every request delivered with its
//!   own key's token.
//! - Under tokio's paused clock, with a counting backend: idle eviction, eviction at the key
//!   limit, a key in use kept, an evicted key coming back from its store, and a key evicted
//!   during a refresh whose next session waits for the rotated tokens.
//! - Single flight of a new key, on a multi-thread runtime.
//! - Heap bytes per idle key, counted by a thread-local counting allocator (printed; see
//!   docs/performance.md): `cargo test -p auth-tokio --test pool --release -- memory --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, ServerConfig};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{AccessToken, RefreshToken, RequestSpec, Snapshot, TokenSet, Verdict};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{
    Backend, CallError, LoginError, MemoryStore, Next, PoolError, PooledSession, RefreshError,
    Scope, SessionHandle, SessionPool, StoreError, TokenStore,
};
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------------
// A counting allocator, per thread: a current-thread runtime runs a pool's every task on the
// test's thread, so the count is that pool's, whatever other tests do meanwhile.

struct Counting;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down has no counter left; nothing to count then.
    let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + delta));
}

fn live() -> isize {
    LIVE_BYTES.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// A backend per key that records what it was asked, and a store per key.

/// What every key's backend was asked.
#[derive(Default)]
struct Log {
    logins: Mutex<HashMap<u32, usize>>,
    /// Every refresh token presented, in order.
    presented: Mutex<Vec<String>>,
    /// Sessions the factory built.
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
    async fn login(&self) -> Result<TokenSet, LoginError> {
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

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        let presented = refresh_token.expose_secret().to_owned();
        self.log.presented.lock().unwrap().push(presented.clone());
        tokio::time::sleep(self.refresh_delay).await;
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

/// A pool of [`Keyed`] backends on [`Stores`], configured by `configure`.
fn keyed_pool(
    log: &Arc<Log>,
    stores: &Stores,
    refresh_delay: Duration,
) -> auth_tokio::pool::PoolBuilder<u32> {
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
async fn request(pool: &SessionPool<u32>, key: u32) -> String {
    let session = pool.session(&key).await.unwrap();
    let mut call = session.call::<&str>(RequestSpec::bearer());
    let mut token = None;
    loop {
        match call.next_step().await.unwrap() {
            Next::Send(attempt) => {
                token = Some(attempt.token().unwrap().expose_secret().to_owned());
                call.respond("200 OK", Verdict::Accepted);
            }
            Next::Deliver(body) => {
                assert_eq!(body, "200 OK");
                return token.unwrap();
            }
        }
    }
}

const IDLE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Idle eviction and the key limit, under tokio's paused clock.

#[tokio::test(start_paused = true)]
async fn an_idle_key_is_shut_down_and_comes_back_from_its_store() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO)
        .idle_timeout(IDLE)
        .build();
    assert_eq!(request(&pool, 1).await, "at-1-login1");
    // A handle that does not keep the key in use, to see the session stop.
    let old = pool.session(&1).await.unwrap().handle().clone();

    tokio::time::sleep(IDLE - Duration::from_secs(1)).await;
    assert!(pool.contains(&1), "evicted before its idle timeout");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!pool.contains(&1), "still there after its idle timeout");
    let mut stopped = old.call::<()>(RequestSpec::bearer());
    assert!(matches!(stopped.next_step().await, Err(CallError::Stopped)));

    // Used again: a fresh session, restored from the key's store, no new login.
    assert_eq!(request(&pool, 1).await, "at-1-login1");
    assert_eq!(log.built.load(Ordering::SeqCst), 2);
    assert_eq!(log.logins.lock().unwrap()[&1], 1);
    assert_eq!(stores.of(1).saves(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_in_use_is_not_evicted_for_being_idle() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO)
        .idle_timeout(IDLE)
        .build();
    request(&pool, 1).await;
    request(&pool, 2).await;
    let held = pool.session(&1).await.unwrap();
    let call = pool
        .session(&2)
        .await
        .unwrap()
        .call::<()>(RequestSpec::bearer());

    tokio::time::sleep(IDLE * 10).await;
    assert!(pool.contains(&1), "a held PooledSession's key was evicted");
    assert!(pool.contains(&2), "a PooledCall's key was evicted");

    drop((held, call));
    tokio::time::sleep(IDLE + IDLE / 2).await;
    assert!(
        pool.is_empty(),
        "keys released for longer than the idle timeout stay"
    );
    assert_eq!(log.built.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn at_max_keys_the_least_recently_used_key_not_in_use_makes_room() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO)
        .max_keys(2)
        .build();
    request(&pool, 1).await;
    request(&pool, 2).await;
    request(&pool, 1).await;
    request(&pool, 3).await;
    assert!(
        pool.contains(&1) && pool.contains(&3),
        "the recently used keys stay"
    );
    assert!(!pool.contains(&2), "the least recently used key is evicted");
    assert_eq!(pool.len(), 2);

    // Every key in use: a new one is refused instead of stopping someone's session.
    let held: Vec<PooledSession> = vec![
        pool.session(&1).await.unwrap(),
        pool.session(&3).await.unwrap(),
    ];
    assert_eq!(
        pool.session(&4).await.unwrap_err(),
        PoolError::Full { max_keys: 2 }
    );
    drop(held);
    assert_eq!(request(&pool, 4).await, "at-4-login1");
    // Key 2 comes back from its store.
    assert_eq!(request(&pool, 2).await, "at-2-login1");
    assert_eq!(log.logins.lock().unwrap()[&2], 1);
}

#[tokio::test(start_paused = true)]
async fn a_key_evicted_during_a_refresh_comes_back_with_the_rotated_tokens() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::from_secs(5))
        .max_keys(1)
        .build();
    request(&pool, 1).await;

    // A 401 starts a refresh that takes 5 s; the caller gives up meanwhile.
    let session = pool.session(&1).await.unwrap();
    let mut call = session.call::<&str>(RequestSpec::bearer());
    let Next::Send(_) = call.next_step().await.unwrap() else {
        panic!("expected a send")
    };
    call.respond("401", Verdict::Rejected);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        log.presented.lock().unwrap().len(),
        1,
        "the refresh started"
    );
    drop((call, session));

    // Key 2 takes key 1's room: key 1's session stops, its refresh still in flight...
    request(&pool, 2).await;
    assert!(!pool.contains(&1));
    // ...and key 1's next session waits for that refresh to be persisted, then uses its tokens.
    assert_eq!(request(&pool, 1).await, "at-after-rt-1-login1");
    let presented = log.presented.lock().unwrap().clone();
    assert_eq!(
        presented,
        ["rt-1-login1"],
        "a refresh token presented twice"
    );
    assert_eq!(log.logins.lock().unwrap()[&1], 1);
}

#[tokio::test(start_paused = true)]
async fn evict_and_shutdown_stop_sessions_in_use() {
    let (log, stores) = (Arc::new(Log::default()), Stores::default());
    let pool = keyed_pool(&log, &stores, Duration::ZERO).build();
    request(&pool, 1).await;
    request(&pool, 2).await;
    let held = pool.session(&1).await.unwrap();
    assert!(pool.evict(&1).await);
    assert!(!pool.evict(&1).await, "evicted twice");
    let mut call = held.call::<()>(RequestSpec::bearer());
    assert!(matches!(call.next_step().await, Err(CallError::Stopped)));

    pool.shutdown().await;
    assert!(pool.is_empty());
    assert_eq!(pool.session(&2).await.unwrap_err(), PoolError::Closed);
}

// ---------------------------------------------------------------------------------------------
// Single flight of a new key.

/// A store whose load takes a while, so that every task asks while the session is being built.
#[derive(Clone, Default)]
struct SlowStore(MemoryStore);

impl TokenStore for SlowStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.0.load().await
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.0.save(snapshot).await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.0.clear().await
    }
}

/// A pool whose sessions load a [`SlowStore`], counting the sessions built.
fn slow_pool(log: &Arc<Log>) -> SessionPool<u32> {
    let log = Arc::clone(log);
    SessionPool::builder(move |key: &u32| {
        log.built.fetch_add(1, Ordering::SeqCst);
        let backend = Keyed {
            key: *key,
            log: Arc::clone(&log),
            refresh_delay: Duration::ZERO,
        };
        SessionHandle::builder(backend).store(SlowStore::default())
    })
    .build()
}

/// `n` tasks, each with one request through `key`'s session: the tokens they went out with.
async fn requests_at_once(pool: &SessionPool<u32>, key: u32, n: usize) -> HashSet<String> {
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let pool = pool.clone();
        tasks.spawn(async move { request(&pool, key).await });
    }
    tasks.join_all().await.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_asking_for_a_new_key_together_build_one_session() {
    let log = Arc::new(Log::default());
    let pool = slow_pool(&log);
    let tokens = requests_at_once(&pool, 7, 64).await;
    assert_eq!(tokens, HashSet::from(["at-7-login1".to_owned()]));
    assert_eq!(
        log.built.load(Ordering::SeqCst),
        1,
        "sessions built for one key"
    );
    assert_eq!(log.logins.lock().unwrap()[&7], 1);
    assert_eq!(pool.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_gives_up_on_a_new_key_hands_its_build_to_the_others() {
    let log = Arc::new(Log::default());
    let pool = slow_pool(&log);
    // The first to ask builds, and gives up while the store loads.
    let quitter = tokio::time::timeout(Duration::from_millis(10), pool.session(&7)).await;
    assert!(quitter.is_err(), "the store load was not slow");
    let tokens = requests_at_once(&pool, 7, 64).await;
    assert_eq!(tokens, HashSet::from(["at-7-login1".to_owned()]));
    // The abandoned build never started its session: one build finished, one login.
    assert_eq!(log.built.load(Ordering::SeqCst), 2);
    assert_eq!(log.logins.lock().unwrap()[&7], 1);
    assert_eq!(pool.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_evicted_while_its_session_is_built_gets_no_orphan_session() {
    let log = Arc::new(Log::default());
    let pool = slow_pool(&log);
    let asking = pool.clone();
    let first = tokio::spawn(async move { asking.session(&7).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        pool.evict(&7).await,
        "the key being built was not in the pool"
    );
    // The session built for the evicted key is shut down, not handed out...
    assert_eq!(first.await.unwrap().unwrap_err(), PoolError::Evicted);
    assert!(!pool.contains(&7));
    // ...and the key's next session works (built after that shutdown).
    assert_eq!(request(&pool, 7).await, "at-7-login1");
    assert_eq!(log.built.load(Ordering::SeqCst), 2);
    assert_eq!(pool.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 1,000 keys over real loopback HTTP.

const KEYS: u32 = 1_000;

/// The demo backend, shared by every key (one HTTP client, one connection pool), counting each
/// key's logins and refreshes.
#[derive(Clone)]
struct Counted {
    key: usize,
    inner: DemoBackend,
    logins: Arc<Vec<AtomicUsize>>,
    refreshes: Arc<Vec<AtomicUsize>>,
}

impl Backend for Counted {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        self.logins[self.key].fetch_add(1, Ordering::SeqCst);
        self.inner.login().await
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.refreshes[self.key].fetch_add(1, Ordering::SeqCst);
        self.inner.refresh(refresh_token).await
    }
}

fn counters(n: u32) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

/// Runs `test` on a two-worker runtime whose logs are captured; fails on any `ERROR` log and
/// on any secret the server issued appearing in them.
fn e2e<F, Fut>(test: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(Some(2)).unwrap();
    let secrets = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), test())
            .await
            .expect("the test did not finish in time")
    });
    drop(runtime);
    assert!(!secrets.is_empty(), "the server issued no secret");
    let text = logs.text();
    if let Some(problem) = log_problem(&text, &secrets) {
        let tail = &text[text.len().saturating_sub(4_000)..];
        panic!("{problem}\n--- captured logs (tail) ---\n{tail}");
    }
}

/// `LogCapture::check` in one pass over the logs: with thousands of secrets, its scan of every
/// line for every secret takes minutes. The demo server's secrets are `code_`, `at_` or `rt_`
/// and 32 hex digits, so every such word in the logs is looked up.
fn log_problem(text: &str, secrets: &[String]) -> Option<String> {
    if let Some(line) = text
        .lines()
        .find(|line| line.trim_start().starts_with("ERROR"))
    {
        return Some(format!("an ERROR was logged: {line}"));
    }
    let secrets: HashSet<&str> = secrets.iter().map(String::as_str).collect();
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    let leak = words.filter(|word| word.len() >= 32).find(|word| {
        // A secret anywhere in a longer word counts too.
        (0..word.len()).any(|start| {
            ["code_", "at_", "rt_"].iter().any(|prefix| {
                let end = start + prefix.len() + 32;
                word[start..].starts_with(prefix)
                    && end <= word.len()
                    && secrets.contains(&word[start..end])
            })
        })
    });
    leak.map(|_| "a secret the server issued appears in the logs".to_owned())
}

#[test]
fn the_log_check_finds_errors_and_secrets() {
    let secret = format!("at_{}", "0123456789abcdef".repeat(2));
    let secrets = [secret.clone()];
    assert_eq!(
        log_problem(" INFO refresh: rotated serial=3\n", &secrets),
        None
    );
    let leak = format!(" DEBUG api: sent token={secret}\n");
    assert!(
        log_problem(&leak, &secrets).is_some(),
        "a leaked secret passed"
    );
    let glued = format!(" DEBUG Bearer x{secret}y\n");
    assert!(
        log_problem(&glued, &secrets).is_some(),
        "a secret inside a word passed"
    );
    assert!(log_problem("ERROR session: broken\n", &secrets).is_some());
}

/// `per_key` concurrent GETs for every key, all at once; each key's token serials (from the
/// demo API's answer).
async fn storm(
    pool: &SessionPool<u32>,
    http: &reqwest::Client,
    scope: &Scope,
    base: &str,
    per_key: usize,
) -> HashMap<u32, HashSet<u64>> {
    let mut tasks = JoinSet::new();
    for key in 0..KEYS {
        for i in 0..per_key {
            let (pool, http, scope) = (pool.clone(), http.clone(), scope.clone());
            let url = format!("{base}/api/{key}/{i}");
            tasks.spawn(async move {
                let session = pool.session(&key).await.unwrap();
                let api = ApiClient::new(http, session.handle().clone(), scope);
                let response = api.get(&url).await.unwrap();
                assert_eq!(response.status().as_u16(), 200, "key {key} not delivered");
                let body = response.text().await.unwrap();
                drop(session);
                (key, serial(&body))
            });
        }
    }
    let mut serials: HashMap<u32, HashSet<u64>> = HashMap::new();
    for (key, serial) in tasks.join_all().await {
        serials.entry(key).or_default().insert(serial);
    }
    serials
}

/// The `token_serial` of a demo API answer.
fn serial(body: &str) -> u64 {
    let (_, rest) = body.split_once("\"token_serial\":").unwrap();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// Every key used one token of its own: one serial per key, no serial shared by two keys.
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
fn patient() -> auth_tokio::auth_core::Config {
    auth_tokio::auth_core::Config {
        operation_timeout: Duration::from_secs(60),
        queue_timeout: Duration::from_secs(90),
        ..auth_tokio::auth_core::Config::default()
    }
}

#[test]
fn a_storm_across_1000_keys_logs_in_and_refreshes_once_per_key() {
    e2e(|| async {
        let server = server::spawn(ServerConfig::default()).await.unwrap();
        let admin = server.admin().clone();
        let http = reqwest::Client::new();
        let demo = DemoBackend::new(http.clone(), server.base_url()).unwrap();
        let (logins, refreshes) = (counters(KEYS), counters(KEYS));
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
        .idle_timeout(Duration::from_secs(600))
        .build();
        let scope = Scope::new(server.base_url()).unwrap();
        let each = |counts: &[AtomicUsize]| -> Vec<usize> {
            counts.iter().map(|n| n.load(Ordering::SeqCst)).collect()
        };

        // First use: two requests per key at once, one silent login per key.
        let started = std::time::Instant::now();
        let first = storm(&pool, &http, &scope, server.base_url(), 2).await;
        eprintln!("1,000 keys, first use: {:?}", started.elapsed());
        assert_own_tokens(&first);
        assert_eq!(each(&logins), vec![1; KEYS as usize], "logins per key");
        assert_eq!(admin.counters().logins, u64::from(KEYS));
        assert_eq!(pool.len(), KEYS as usize);

        // Every token expires: three requests per key at once, one refresh per key.
        admin.expire_access_tokens();
        let started = std::time::Instant::now();
        let expired = storm(&pool, &http, &scope, server.base_url(), 3).await;
        eprintln!("1,000 keys, through an expiry: {:?}", started.elapsed());
        assert_own_tokens(&expired);
        assert_eq!(
            each(&refreshes),
            vec![1; KEYS as usize],
            "refreshes per key"
        );
        let after = admin.counters();
        assert_eq!(after.refreshes, u64::from(KEYS));
        assert_eq!(after.refresh_calls, u64::from(KEYS));
        assert_eq!(after.reuse_detected, 0);
        assert_eq!(after.logins, u64::from(KEYS), "nobody logged in again");
        for (key, serials) in &expired {
            assert_ne!(first[key], *serials, "key {key} kept its expired token");
        }

        pool.shutdown().await;
        admin.issued_secrets()
    });
}

// ---------------------------------------------------------------------------------------------
// Memory per idle key.

/// A backend with fixed short tokens: the measurement counts the pool and the session, not a
/// test's bookkeeping.
#[derive(Clone, Copy)]
struct Fixed;

impl Backend for Fixed {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(TokenSet::new(AccessToken::new("at-0123456789abcdef"))
            .with_refresh_token(RefreshToken::new("rt-0123456789abcdef")))
    }

    async fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
        Ok(TokenSet::new(AccessToken::new("at-0123456789abcdef"))
            .with_refresh_token(RefreshToken::new("rt-0123456789abcdef")))
    }
}

/// Lets every spawned task run until it waits (all on this thread).
async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// Heap bytes per idle, signed-in key: its session (core, driver, background task, channels),
/// its `MemoryStore` holding the encoded snapshot, and its pool entry. Then the pool's shutdown
/// gives (almost) all of it back.
#[tokio::test]
async fn memory_per_idle_key() {
    for n in [1_000u32, 10_000] {
        let pool =
            SessionPool::builder(|_: &u32| SessionHandle::builder(Fixed).store(MemoryStore::new()))
                .idle_timeout(Duration::from_secs(3600))
                .build();
        // The sweeper and the runtime's first allocations are not a key's.
        request_fixed(&pool, u32::MAX).await;
        settle().await;
        let before = live();
        for key in 0..n {
            request_fixed(&pool, key).await;
        }
        settle().await;
        let per_key = (live() - before) as f64 / f64::from(n);
        pool.shutdown().await;
        settle().await;
        let left = (live() - before) as f64 / f64::from(n);
        println!(
            "memory: {n} idle keys: {per_key:.0} heap bytes per key; after shutdown {left:.0} per key"
        );
        assert!(per_key < 16_384.0, "{per_key} bytes per idle key");
        assert!(
            left < per_key / 4.0,
            "{left} bytes per key left after shutdown"
        );
    }
}

async fn request_fixed(pool: &SessionPool<u32>, key: u32) {
    let session = pool.session(&key).await.unwrap();
    let mut call = session.call::<()>(RequestSpec::bearer());
    while let Next::Send(_) = call.next_step().await.unwrap() {
        call.respond((), Verdict::Accepted);
    }
}
