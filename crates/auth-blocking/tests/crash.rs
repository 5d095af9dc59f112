//! Crash safety of refresh-token rotation, with real processes killed by SIGKILL.
//!
//! Each test runs the `seamless-probe` child against the demo server with a file store: a first
//! wave of requests logs in and succeeds; the test expires the access tokens; a second wave
//! storms into a refresh, and the test SIGKILLs the child at a kill point around it. A restarted
//! child must then end signed in, with at most one silent login, and the store must never be
//! half-written.
//!
//! | kill point | store after the kill | what the restart costs |
//! |---|---|---|
//! | before the server rotates | old tokens, still valid | one refresh, no login |
//! | after the rotation, before the persist | old tokens, refresh token spent | one refresh refused (`invalid_grant`), exactly one silent login |
//! | after the persist | rotated tokens | nothing: no refresh, no login |
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use auth_blocking::auth_core::Snapshot;
use auth_blocking::FileStore;
use auth_demo::server::{Counters, ThreadedServer};

use common::{server, Probe};

/// What one crash-and-restart run saw.
struct Run {
    /// The store right before the refresh (after the first wave).
    before: Snapshot,
    /// The store right after the kill.
    after_kill: Snapshot,
    /// Counters after the kill, and after the restart.
    at_kill: Counters,
    restarted: Counters,
    /// Paths the killed probe and the restarted one were told succeeded.
    delivered: BTreeSet<String>,
}

fn crash_and_restart(server: &ThreadedServer, dir: &Path, kill_at: &str) -> Run {
    let path = dir.join("session.json");
    let store = FileStore::new(&path);
    let mut probe = Probe::start(
        server,
        &path,
        &[
            "--tag",
            "crash",
            "--waves",
            "2",
            "--wait-go",
            "--threads",
            "8",
            "--requests",
            "32",
            "--kill-at",
            kill_at,
        ],
    );
    probe.expect("ready 1");
    probe.go();
    probe.expect("ready 2");
    assert_eq!(probe.delivered().len(), 32, "{:#?}", probe.said());
    let before = store
        .load()
        .unwrap()
        .expect("the first wave's login is stored");
    server.admin().expire_access_tokens();
    probe.go();
    probe.expect(&format!("at {kill_at}"));
    probe.kill();
    let at_kill = server.admin().counters();
    let mut delivered = probe.delivered();

    // Never half-written: the store decodes, and no temporary file is left beside it.
    let after_kill = store
        .load()
        .unwrap()
        .expect("the store survives the kill whole");
    assert_eq!(names(dir), ["session.json"], "nothing but the store");

    let mut restart = Probe::start(
        server,
        &path,
        &["--tag", "restart", "--threads", "8", "--requests", "32"],
    );
    assert!(restart.finish().success(), "{:#?}", restart.said());
    assert_eq!(restart.delivered().len(), 32);
    assert!(restart.failures().is_empty());
    delivered.extend(restart.delivered());

    // Ends signed in: one more run costs neither a refresh nor a login.
    let settled = server.admin().counters();
    let mut again = Probe::start(server, &path, &["--tag", "again"]);
    assert!(again.finish().success(), "{:#?}", again.said());
    let last = server.admin().counters();
    assert_eq!(
        (last.logins, last.refresh_calls),
        (settled.logins, settled.refresh_calls),
        "signed in after the restart"
    );
    assert!(store.load().unwrap().is_some());

    // No request the caller was told succeeded is unknown to the server.
    for path in &delivered {
        assert!(
            last.requests_per_path.get(path).is_some_and(|&n| n >= 1),
            "{path} was reported delivered but the server never saw it"
        );
    }
    Run {
        before,
        after_kill,
        at_kill,
        restarted: settled,
        delivered,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn sigkill_before_the_server_rotates_restarts_with_one_refresh_and_no_login() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let run = crash_and_restart(&server, dir.path(), "before-refresh");
    assert_eq!(
        run.after_kill, run.before,
        "nothing rotated, nothing written"
    );
    assert_eq!(
        run.at_kill.refresh_calls, 0,
        "killed before the refresh left"
    );
    assert_eq!(run.restarted.logins, 1, "no silent login after the crash");
    assert_eq!(run.restarted.refreshes, 1);
    assert_eq!(run.restarted.invalid_grant, 0);
    assert_eq!(run.delivered.len(), 64);
}

#[test]
fn sigkill_after_rotation_before_persist_ends_in_exactly_one_silent_login() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let run = crash_and_restart(&server, dir.path(), "after-rotation");
    assert_eq!(run.at_kill.refreshes, 1, "the server rotated");
    assert_eq!(
        run.after_kill, run.before,
        "the rotated tokens died with the process; the old ones are whole"
    );
    assert_eq!(
        run.restarted.invalid_grant, 1,
        "the spent refresh token is refused once"
    );
    assert_eq!(
        run.restarted.logins, 2,
        "exactly one silent login after the crash"
    );
    assert_eq!(run.delivered.len(), 64);
}

#[test]
fn sigkill_after_persist_restarts_signed_in_without_refresh_or_login() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let run = crash_and_restart(&server, dir.path(), "after-persist");
    assert_ne!(
        run.after_kill.refresh_token, run.before.refresh_token,
        "the rotated tokens are durable"
    );
    assert_eq!(
        (run.restarted.logins, run.restarted.refresh_calls),
        (run.at_kill.logins, run.at_kill.refresh_calls),
        "the restart needs neither a refresh nor a login"
    );
    assert_eq!((run.restarted.logins, run.restarted.refreshes), (1, 1));
    assert_eq!(run.delivered.len(), 64);
}
