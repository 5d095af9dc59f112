//! Cross-process single flight: four `seamless-probe` processes share one file store and each
//! storms 64 requests at an expired access token. With the store's refresh lock the server sees
//! exactly one refresh; without it (`--no-lock`, the non-vacuity check) every process spends the
//! same refresh token, and all but one fall back to a silent login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use auth_demo::multiprocess::{assert_every_process_refreshed, assert_one_refresh};
use auth_demo::server::{Counters, ThreadedServer};

use common::{server, Probe};

const PROCESSES: usize = 4;

/// Logs in once, expires the access token, then lets the processes storm at the same moment
/// (each restored the stored session before the go). Returns the counters' growth.
fn storm_from_processes(server: &ThreadedServer, extra: &[&str]) -> (Counters, Counters) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let mut login = Probe::start(server, &path, &["--tag", "login"]);
    assert!(login.finish().success(), "{:#?}", login.said());
    server.admin().expire_access_tokens();
    let before = server.admin().counters();

    let mut probes: Vec<Probe> = (0..PROCESSES)
        .map(|n| {
            let tag = format!("p{n}");
            let mut args = vec![
                "--tag",
                &tag,
                "--wait-go",
                "--threads",
                "16",
                "--requests",
                "64",
            ];
            args.extend_from_slice(extra);
            Probe::start(server, &path, &args)
        })
        .collect();
    for probe in &mut probes {
        probe.expect("ready 1");
    }
    for probe in &mut probes {
        probe.go();
    }
    for probe in &mut probes {
        assert!(probe.finish().success(), "{:#?}", probe.said());
        assert_eq!(probe.delivered().len(), 64);
    }
    (before, server.admin().counters())
}

#[test]
fn four_processes_sharing_a_store_make_exactly_one_refresh() {
    let server = server();
    let (before, after) = storm_from_processes(&server, &[]);
    assert_one_refresh(&before, &after);
}

#[test]
fn without_the_lock_every_process_spends_the_same_refresh_token() {
    let server = server();
    let (before, after) = storm_from_processes(&server, &["--no-lock"]);
    assert_every_process_refreshed(&before, &after, PROCESSES as u64);
}
