//! Cross-process single flight of auth-tokio: four processes (this test binary again, running
//! the same test with the probe's settings in its environment, which makes it [`probe`]) share
//! one `FileStore` and each storms 64 requests at an expired
//! access token. With the store's refresh lock the demo server sees exactly one refresh call;
//! without it (a store that does not lock, the non-vacuity check) every process spends the same
//! refresh token, and all but one fall back to a silent login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use auth_demo::backend::DemoBackend;
use auth_demo::multiprocess::{assert_every_process_refreshed, assert_one_refresh};
use auth_demo::server::{self, Counters, ServerConfig, ThreadedServer};
use auth_tokio::auth_core::{Config, Snapshot};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{FileStore, Scope, SessionHandle, StoreError, TokenStore};
use tokio::task::JoinSet;

const PROCESSES: usize = 4;
const REQUESTS: usize = 64;
/// Upper bound of every wait on a child.
const LIMIT: Duration = Duration::from_secs(60);

/// What a probe is told: the server, the store, whether to lock. A child started with it runs
/// its parent's test, which becomes the probe.
const PROBE_ENV: &str = "SEAMLESS_TOKIO_PROBE";
/// The tests' names, for the child to run the same one.
const TEST_WITH_LOCK: &str = "four_tokio_processes_sharing_a_file_store_make_exactly_one_refresh";
const TEST_WITHOUT_LOCK: &str =
    "without_the_lock_every_tokio_process_spends_the_same_refresh_token";

fn config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(20),
        operation_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

#[test]
fn four_tokio_processes_sharing_a_file_store_make_exactly_one_refresh() {
    if let Ok(spec) = std::env::var(PROBE_ENV) {
        return probe(&spec);
    }
    let server = server::spawn_in_thread(ServerConfig::default()).unwrap();
    let (before, after) = storm_from_processes(&server, true, TEST_WITH_LOCK);
    assert_one_refresh(&before, &after);
}

#[test]
fn without_the_lock_every_tokio_process_spends_the_same_refresh_token() {
    if let Ok(spec) = std::env::var(PROBE_ENV) {
        return probe(&spec);
    }
    let server = server::spawn_in_thread(ServerConfig::default()).unwrap();
    let (before, after) = storm_from_processes(&server, false, TEST_WITHOUT_LOCK);
    assert_every_process_refreshed(&before, &after, PROCESSES as u64);
}

/// Logs in once (and shuts down, so the tokens are on disk), expires the access token, then
/// lets the processes storm at the same moment (each restored the stored session before the
/// go). Returns the counters before and after the storm.
fn storm_from_processes(server: &ThreadedServer, lock: bool, test: &str) -> (Counters, Counters) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let api = api(server.base_url(), FileStore::new(&path)).await;
        let status = api.get(&server.url("/api/login")).await.unwrap().status();
        assert_eq!(status, 200);
        api.session()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
    });
    assert!(FileStore::new(&path).load().unwrap().is_some());
    server.admin().expire_access_tokens();
    let before = server.admin().counters();

    let mut probes: Vec<Probe> = (0..PROCESSES)
        .map(|_| Probe::start(server, &path, lock, test))
        .collect();
    for probe in &mut probes {
        probe.expect("ready");
    }
    for probe in &mut probes {
        probe.go();
    }
    for probe in &mut probes {
        probe.expect(&format!("delivered {REQUESTS}"));
        let status = probe.child.wait().unwrap();
        assert!(status.success(), "{:#?}", probe.said);
    }
    (before, server.admin().counters())
}

async fn api<S: TokenStore>(base_url: &str, store: S) -> ApiClient {
    let http = reqwest::Client::new();
    let backend = DemoBackend::new(http.clone(), base_url).unwrap();
    let session = SessionHandle::builder(backend)
        .config(config())
        .store(store)
        .start()
        .await;
    ApiClient::new(http, session, Scope::new(base_url).unwrap())
}

/// One child process running [`probe`].
struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    said: Vec<String>,
}

impl Probe {
    fn start(server: &ThreadedServer, store: &Path, lock: bool, test: &str) -> Probe {
        let spec = format!(
            "{}\n{}\n{}",
            server.base_url(),
            store.display(),
            if lock { "lock" } else { "no-lock" }
        );
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture"])
            .env(PROBE_ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Probe {
            stdin: child.stdin.take(),
            child,
            lines,
            said: Vec::new(),
        }
    }

    /// Waits for the line `probe: {what}`.
    fn expect(&mut self, what: &str) {
        let wanted = format!("probe: {what}");
        loop {
            let line = self
                .lines
                .recv_timeout(LIMIT)
                .unwrap_or_else(|_| panic!("no {wanted:?} from the probe: {:#?}", self.said));
            let found = line == wanted;
            self.said.push(line);
            if found {
                return;
            }
        }
    }

    fn go(&mut self) {
        let mut stdin = self.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
}

/// The child's side (a test run with the probe's settings in its environment): restore the
/// session from the shared store, say `ready`, wait for `go` on stdin, storm, say how many
/// requests were delivered.
fn probe(spec: &str) {
    let mut spec = spec.lines();
    let (base_url, store, lock) = (
        spec.next().unwrap().to_owned(),
        PathBuf::from(spec.next().unwrap()),
        spec.next() == Some("lock"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = FileStore::new(store);
        let api = if lock {
            api(&base_url, store).await
        } else {
            api(&base_url, Unlocked(store)).await
        };
        println!("probe: ready");
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        let mut calls = JoinSet::new();
        for i in 0..REQUESTS {
            let api = api.clone();
            let url = format!("{base_url}/api/mp/{i}");
            calls.spawn(async move { api.get(&url).await.map(|r| r.status().as_u16()) });
        }
        let mut delivered = 0;
        while let Some(outcome) = calls.join_next().await {
            match outcome.unwrap() {
                Ok(200) => delivered += 1,
                other => println!("probe: unexpected {other:?}"),
            }
        }
        api.session()
            .shutdown(Duration::from_secs(5))
            .await
            .unwrap();
        println!("probe: delivered {delivered}");
    });
}

/// The file store without its refresh lock: what two processes sharing a store did before.
struct Unlocked(FileStore);

impl TokenStore for Unlocked {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        TokenStore::load(&self.0).await
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        TokenStore::save(&self.0, snapshot).await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        TokenStore::clear(&self.0).await
    }
}
