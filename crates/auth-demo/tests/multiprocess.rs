//! Why shared stores exist: four processes (fleet children, `auth-demo fleet-child`) restore one
//! plain `FileStore` holding an expired access token and each storms 64 requests at the same
//! moment. A `FileStore` belongs to one process, so every process spends the same refresh
//! token; the server rotates it once and sees the others as reuse, and they fall back to a
//! silent login. Every request is still answered, at the price of three logins.
//!
//! The same storm on a shared store (`SharedFileStore`, Redis) makes one refresh for all of
//! them: the fleet tests (`fleet_demo.rs`, eight processes per store) and both drivers'
//! `tests/shared.rs` check that.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_demo::fleet::protocol::{ChildSpec, StoreSpec};
use auth_demo::fleet::{storm, ChildProcess};
use auth_demo::multiprocess::assert_every_process_refreshed;
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
fn processes_sharing_a_plain_file_store_each_spend_the_same_refresh_token() {
    let server = server::spawn_in_thread(ServerConfig::default()).unwrap();
    let (before, after) = storm_from_processes(&server);
    assert_every_process_refreshed(&before, &after, PROCESSES as u64);
}

/// A child on the file store at `path`, ready.
fn child(server: &ThreadedServer, path: &Path, tag: &str) -> ChildProcess {
    let spec = ChildSpec {
        tag: tag.to_owned(),
        server: server.base_url().to_owned(),
        store: StoreSpec::Local {
            path: PathBuf::from(path),
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
fn storm_from_processes(server: &ThreadedServer) -> (Counters, Counters) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let mut login = child(server, &path, "login");
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
        .map(|n| child(server, &path, &format!("p{n}")))
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
