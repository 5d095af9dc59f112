//! Cross-process single flight of auth-tokio on the single-process file store: four processes
//! (fleet children, `auth-demo fleet-child`) restore one `FileStore` holding an expired access
//! token and each storms 64 requests at the same moment. With the store's refresh lock the demo
//! server sees exactly one refresh call; without it (the non-vacuity check) every process spends
//! the same refresh token, and all but one fall back to a silent login.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_demo::fleet::protocol::{ChildSpec, StoreSpec};
use auth_demo::fleet::{storm, ChildProcess};
use auth_demo::multiprocess::{assert_every_process_refreshed, assert_one_refresh};
use auth_demo::server::{self, Counters, ServerConfig, ThreadedServer};
use auth_tokio::auth_core::Config;
use auth_tokio::{FileStore, TokenStore};

const PROCESSES: usize = 4;
const REQUESTS: u32 = 64;
/// Upper bound of every wait on a child.
const LIMIT: Duration = Duration::from_secs(60);

fn config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(20),
        operation_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

#[test]
fn four_tokio_processes_sharing_a_file_store_make_exactly_one_refresh() {
    let server = server::spawn_in_thread(ServerConfig::default()).unwrap();
    let (before, after) = storm_from_processes(&server, true);
    assert_one_refresh(&before, &after);
}

#[test]
fn without_the_lock_every_tokio_process_spends_the_same_refresh_token() {
    let server = server::spawn_in_thread(ServerConfig::default()).unwrap();
    let (before, after) = storm_from_processes(&server, false);
    assert_every_process_refreshed(&before, &after, PROCESSES as u64);
}

/// A child on the file store at `path`, ready.
fn child(server: &ThreadedServer, path: &Path, lock: bool, tag: &str) -> ChildProcess {
    let spec = ChildSpec {
        tag: tag.to_owned(),
        server: server.base_url().to_owned(),
        store: StoreSpec::Local {
            path: PathBuf::from(path),
            lock,
        },
        config: config(),
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_auth-demo"));
    let mut child = ChildProcess::spawn(exe, &spec, None).unwrap();
    child.ready(LIMIT).unwrap();
    child
}

/// Logs in once (in a child that then quits, so the tokens are on disk), expires the access
/// token, then lets the processes storm at the same moment (each restored the stored session
/// before the go). Returns the counters before and after the storm.
fn storm_from_processes(server: &ThreadedServer, lock: bool) -> (Counters, Counters) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let mut login = child(server, &path, lock, "login");
    let tally = login.storm(1, Duration::ZERO, LIMIT).unwrap();
    assert_eq!(tally.ok, 1, "{tally:?}");
    login.quit(LIMIT).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let stored = runtime.block_on(TokenStore::load(&FileStore::new(&path)));
    assert!(stored.unwrap().is_some());
    server.admin().expire_access_tokens();
    let before = server.admin().counters();

    let mut probes: Vec<ChildProcess> = (0..PROCESSES)
        .map(|n| child(server, &path, lock, &format!("p{n}")))
        .collect();
    for probe in &mut probes {
        probe.send(&storm(REQUESTS, Duration::ZERO)).unwrap();
    }
    for mut probe in probes {
        let tally = probe.stormed(LIMIT).unwrap();
        assert_eq!(tally.ok, u64::from(REQUESTS), "{}: {tally:?}", probe.tag());
        probe.quit(LIMIT).unwrap();
    }
    (before, server.admin().counters())
}
