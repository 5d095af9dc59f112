//! The fleet demo as users run it: `auth-demo fleet --processes 8 --store file|redis
//! --requests R`. Its last line of output is the JSON summary, which must show one refresh for
//! the whole fleet, no refresh token presented twice and every request answered; and nothing
//! it started (temporary directory, redis-server) outlives it.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PROCESSES: u64 = 8;
/// Requests per process: enough for a storm on each side of the expiry, few enough for the
/// demo to stay a few seconds (its time is mostly the wait for the token to expire).
const REQUESTS: u64 = 40;

/// Runs the demo; its stdout lines.
fn run_fleet(store: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_auth-demo"))
        .args(["fleet", "--processes", &PROCESSES.to_string()])
        .args(["--store", store, "--requests", &REQUESTS.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

/// Checks the last line against the expectations of issue 12, field by field and in order.
fn assert_expected_json(lines: &[String], store: &str) {
    let last = lines.last().unwrap();
    let json: Value = serde_json::from_str(last).unwrap();
    assert!(json.is_object(), "{last}");
    let requests = PROCESSES * REQUESTS;
    let expected = format!(
        r#"{{"processes":{PROCESSES},"store":"{store}","requests":{requests},"ok":{requests},"errors":0,"refresh_calls":1,"invalid_grant":0,"logins":1,"reuse_detected":0}}"#
    );
    assert_eq!(last, &expected);
    assert!(
        lines
            .iter()
            .any(|line| line.contains("every expectation met")),
        "no readable summary: {lines:#?}"
    );
}

/// What follows `prefix` on the progress line that starts with it.
fn progress_value<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {lines:#?}"))
}

#[test]
fn eight_processes_on_a_file_store_refresh_once_and_never_reuse() {
    let lines = run_fleet("file");
    assert_expected_json(&lines, "file");
    let dir = progress_value(&lines, "file store: ");
    assert!(!Path::new(dir).exists(), "{dir} was left behind");
}

#[test]
fn eight_processes_on_redis_refresh_once_and_never_reuse() {
    let lines = run_fleet("redis");
    assert_expected_json(&lines, "redis");
    let url = progress_value(&lines, "redis store: redis://");
    let address = url.split('/').next().unwrap();
    assert!(
        TcpStream::connect(address).is_err(),
        "redis-server still answers on {address}"
    );
}
