//! `seamless-probe`: the child process of auth-blocking's crash tests. Not a tool for users.
//!
//! It runs an app against the demo server at `--server`, with a file store at `--store`:
//! `--waves` waves of `--requests` GETs spread over `--threads` threads. Every line it prints
//! (stdout, flushed per line) is a fact the test reads:
//!
//! - `ready <wave>`: the session is started (store loaded); with `--wait-go` it then waits for a
//!   line on stdin before the wave.
//! - `ok <path>` / `fail <path> <reason>`: one request delivered 2xx / failed.
//! - `at <point>`: a kill point was reached; the process then waits to be killed.
//! - `done ok=<n> failed=<m>`; exit status 0 when every request was delivered 2xx.
//!
//! Kill points (`--kill-at`): `before-refresh` (the refresh is about to go to the server),
//! `after-rotation` (the server rotated the refresh token, nothing is persisted yet),
//! `after-persist` (the rotated tokens are in the store, no queued request is sent yet).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper: a failure should be loud

#[path = "demo.rs"]
mod demo;

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use auth_blocking::auth_core::{Config, RefreshToken, Snapshot, TokenSet};
use auth_blocking::ureq::{ApiClient, Scope};
use auth_blocking::{
    Backend, FileStore, LoginError, RefreshError, SessionHandle, StoreError, TokenStore,
};

use demo::DemoBackend;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillAt {
    BeforeRefresh,
    AfterRotation,
    AfterPersist,
}

struct Options {
    server: String,
    store: String,
    tag: String,
    threads: usize,
    requests: usize,
    waves: usize,
    wait_go: bool,
    kill_at: Option<KillAt>,
}

/// The demo backend with the kill points around a refresh.
struct Hooked {
    inner: DemoBackend,
    kill_at: Option<KillAt>,
    refreshed: Arc<AtomicBool>,
}

/// The file store with the kill point after a persist.
struct HookedStore {
    inner: FileStore,
    kill_at: Option<KillAt>,
    refreshed: Arc<AtomicBool>,
}

fn main() -> ExitCode {
    let options = parse();
    let refreshed = Arc::new(AtomicBool::new(false));
    let backend = Hooked {
        inner: DemoBackend::new(&options.server, Duration::from_secs(5)),
        kill_at: options.kill_at,
        refreshed: Arc::clone(&refreshed),
    };
    let store = HookedStore {
        inner: FileStore::new(&options.store),
        kill_at: options.kill_at,
        refreshed,
    };
    let config = Config {
        operation_timeout: Duration::from_secs(5),
        queue_timeout: Duration::from_secs(15),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..Config::default()
    };
    let session = SessionHandle::builder(backend)
        .store(store)
        .config(config)
        .start()
        .expect("start the session");
    let scope = Scope::new(&options.server).expect("server URL");
    let api = ApiClient::new(demo::agent(Duration::from_secs(5)), session.clone(), scope);
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stdin = std::io::stdin();
    for wave in 1..=options.waves {
        println!("ready {wave}");
        if options.wait_go {
            let mut line = String::new();
            stdin.lock().read_line(&mut line).expect("stdin");
        }
        let threads: Vec<_> = (0..options.threads)
            .map(|t| {
                let api = api.clone();
                let (ok, failed) = (Arc::clone(&ok), Arc::clone(&failed));
                let (server, prefix) = (
                    options.server.clone(),
                    format!("/api/{}/w{wave}/t{t}", options.tag),
                );
                let count = options.requests / options.threads
                    + usize::from(t < options.requests % options.threads);
                thread::spawn(move || {
                    for i in 0..count {
                        let path = format!("{prefix}/{i}");
                        let url = format!("{server}{path}");
                        match api.get(&url) {
                            Ok(response) if response.status().is_success() => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                println!("ok {path}");
                            }
                            Ok(response) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                println!("fail {path} HTTP {}", response.status().as_u16());
                            }
                            Err(error) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                println!("fail {path} {error}");
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("request thread");
        }
    }
    // Let a login or refresh still in flight finish and persist before exiting.
    let _ = session.shutdown(Duration::from_secs(10));
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("done ok={ok} failed={failed}");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse() -> Options {
    let mut options = Options {
        server: String::new(),
        store: String::new(),
        tag: "probe".into(),
        threads: 1,
        requests: 1,
        waves: 1,
        wait_go: false,
        kill_at: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--server" => options.server = value(),
            "--store" => options.store = value(),
            "--tag" => options.tag = value(),
            "--threads" => options.threads = value().parse().expect("--threads"),
            "--requests" => options.requests = value().parse().expect("--requests"),
            "--waves" => options.waves = value().parse().expect("--waves"),
            "--wait-go" => options.wait_go = true,
            "--kill-at" => {
                options.kill_at = Some(match value().as_str() {
                    "before-refresh" => KillAt::BeforeRefresh,
                    "after-rotation" => KillAt::AfterRotation,
                    "after-persist" => KillAt::AfterPersist,
                    other => panic!("unknown kill point {other}"),
                })
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!options.server.is_empty() && !options.store.is_empty());
    assert!(options.threads > 0);
    options
}

/// Says where the process stands, then waits for the test's SIGKILL.
fn wait_for_the_kill(point: &str) -> ! {
    println!("at {point}");
    loop {
        thread::park();
    }
}

impl Backend for Hooked {
    fn login(&self) -> Result<TokenSet, LoginError> {
        self.inner.login()
    }

    fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        if self.kill_at == Some(KillAt::BeforeRefresh) {
            wait_for_the_kill("before-refresh");
        }
        let result = self.inner.refresh(refresh_token);
        if result.is_ok() {
            self.refreshed.store(true, Ordering::SeqCst);
            if self.kill_at == Some(KillAt::AfterRotation) {
                wait_for_the_kill("after-rotation");
            }
        }
        result
    }
}

impl TokenStore for HookedStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load()
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.inner.save(snapshot)?;
        if self.kill_at == Some(KillAt::AfterPersist) && self.refreshed.load(Ordering::SeqCst) {
            wait_for_the_kill("after-persist");
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear()
    }
}
