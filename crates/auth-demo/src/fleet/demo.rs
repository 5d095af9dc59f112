//! `auth-demo fleet --processes P --store file|redis [--requests R]`: P processes share one
//! session and storm the demo server through an access-token expiry; the server's counters
//! show that the fleet refreshed once and never presented a refresh token twice.
//!
//! The run, so that exactly one expiry is crossed whatever the machine's speed:
//!
//! 1. the demo server starts with short-lived access tokens ([`FleetOptions::token_lifetime`])
//!    and family revocation on reuse (a refresh token presented twice would cost the fleet its
//!    session, as in production); the store (a file, or a real `redis-server`) starts empty;
//! 2. the P children start, each a tokio-driver session on the shared store, and say `ready`
//!    (the barrier);
//! 3. all are told at once to send the first half of their R requests: the first requests need
//!    a login, which one process makes while the others wait for it and adopt its tokens;
//! 4. the parent waits out the access token's lifetime (it was issued before step 3 ended), so
//!    every process now holds an expired token;
//! 5. all are told at once to send the second half: each needs new tokens, one process takes the
//!    lease and refreshes, the others wait and adopt; the new tokens outlive the rest of the run;
//! 6. each child reports its counts and exits; the parent reads the server's counters.
//!
//! Expected: `ok` = `requests`, `errors` 0, `refresh_calls` 1, `invalid_grant` 0, `logins` 1,
//! `reuse_detected` 0.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use auth_tokio::auth_core::Config;
use serde::Serialize;

use super::protocol::Tally;
use super::{storm, ChildProcess, Fleet, FleetError, StoreKind};
use crate::server::{Counters, ServerConfig};

/// How long the parent waits for a child's answer before giving up on the run.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// How a fleet run goes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FleetOptions {
    /// How many child processes share the session.
    pub processes: usize,
    /// The shared store.
    pub store: StoreKind,
    /// Requests per process (half before the expiry, half after).
    pub requests: u32,
    /// The access tokens' lifetime on the demo server (whole seconds). Each half of the storm
    /// must end within half of it (the session refreshes a token that has less than half its
    /// life left), so the default leaves a loaded machine seconds to spare.
    pub token_lifetime: Duration,
    /// The `auth-demo` binary the children run.
    pub exe: PathBuf,
}

impl FleetOptions {
    /// P processes on `store`, R requests each, children running `exe`.
    pub fn new(processes: usize, store: StoreKind, requests: u32, exe: PathBuf) -> Self {
        FleetOptions {
            processes,
            store,
            requests,
            token_lifetime: Duration::from_secs(6),
            exe,
        }
    }

    /// The children's session configuration: deadlines far above how long the storm takes, so
    /// a slow machine shows up as slow, not as errors.
    pub fn child_config() -> Config {
        Config {
            queue_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(5),
            ..Config::default()
        }
    }
}

/// The outcome of a run. [`FleetReport::json`] is the line the command prints last.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    /// Child processes.
    pub processes: usize,
    /// `file` or `redis`.
    pub store: &'static str,
    /// Requests sent, all processes together.
    pub requests: u64,
    /// Requests answered 200.
    pub ok: u64,
    /// Requests that failed.
    pub errors: u64,
    /// `POST /refresh` calls the server saw.
    pub refresh_calls: u64,
    /// Refreshes the server answered `invalid_grant`.
    pub invalid_grant: u64,
    /// Silent logins the server saw.
    pub logins: u64,
    /// Refresh tokens presented a second time.
    pub reuse_detected: u64,
    /// The children's tallies together (errors by kind, the slowest request).
    #[serde(skip)]
    pub tally: Tally,
    /// How long the storm's halves took (from the order to the last answer).
    #[serde(skip)]
    pub halves: [Duration; 2],
    /// The whole run.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl FleetReport {
    /// Whether the run met every expectation.
    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }

    /// The expectations the run missed, each as `name: expected E, got G`.
    pub fn problems(&self) -> Vec<String> {
        let checks = [
            ("ok", self.requests, self.ok),
            ("errors", 0, self.errors),
            ("refresh_calls", 1, self.refresh_calls),
            ("invalid_grant", 0, self.invalid_grant),
            ("logins", 1, self.logins),
            ("reuse_detected", 0, self.reuse_detected),
        ];
        checks
            .iter()
            .filter(|(_, expected, got)| expected != got)
            .map(|(name, expected, got)| format!("{name}: expected {expected}, got {got}"))
            .collect()
    }

    /// The one-line JSON summary (printed last by the command).
    pub fn json(&self) -> String {
        // A struct of numbers and a static string always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The readable summary.
    pub fn summary(&self) -> String {
        let failures = if self.tally.failures.is_empty() {
            String::new()
        } else {
            let kinds: Vec<String> = self
                .tally
                .failures
                .iter()
                .map(|(kind, n)| format!("{kind}: {n}"))
                .collect();
            format!("  ({})", kinds.join(", "))
        };
        let rows = [
            ("processes sharing one session", self.processes.to_string()),
            ("shared store", self.store.to_owned()),
            ("requests sent", self.requests.to_string()),
            ("answered 200", self.ok.to_string()),
            ("failed", format!("{}{failures}", self.errors)),
            (
                "refresh calls (server)",
                format!("{}  (expected 1)", self.refresh_calls),
            ),
            (
                "invalid_grant answers (server)",
                self.invalid_grant.to_string(),
            ),
            ("silent logins (server)", self.logins.to_string()),
            (
                "refresh tokens reused (server)",
                format!("{}  (expected 0)", self.reuse_detected),
            ),
            (
                "storm halves",
                format!(
                    "{:.2} s before the expiry, {:.2} s after",
                    self.halves[0].as_secs_f64(),
                    self.halves[1].as_secs_f64()
                ),
            ),
            ("slowest request", format!("{} ms", self.tally.slowest_ms)),
            ("time", format!("{:.2} s", self.elapsed.as_secs_f64())),
        ];
        let mut out = format!("{:-<64}\n Fleet summary\n", "");
        for (name, value) in rows {
            out.push_str(&format!("   {name:<32} {value}\n"));
        }
        let problems = self.problems();
        if problems.is_empty() {
            out.push_str(" every expectation met\n");
        } else {
            for problem in problems {
                out.push_str(&format!(" FAILED {problem}\n"));
            }
        }
        out.push_str(&format!("{:-<64}", ""));
        out
    }
}

/// Runs the fleet; `progress` gets a line at every step. Everything started is stopped when
/// this returns, on success or error (children killed, Redis stopped, the directory removed).
pub fn run(
    options: &FleetOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<FleetReport, FleetError> {
    let started = Instant::now();
    let server_config = ServerConfig::default()
        .with_access_token_lifetime(options.token_lifetime)
        .with_family_revocation(true);
    let fleet = Fleet::start(options.store, server_config, &options.exe)?;
    progress(&format!(
        "demo auth server on {} (access tokens live {} s; a reused refresh token revokes its family)",
        fleet.server().base_url(),
        options.token_lifetime.as_secs()
    ));
    progress(&format!(
        "{} store: {}",
        options.store,
        fleet.store_location()
    ));
    let mut children = (0..options.processes)
        .map(|n| fleet.spawn(&format!("p{n}"), FleetOptions::child_config()))
        .collect::<Result<Vec<ChildProcess>, FleetError>>()?;
    for child in &mut children {
        child.ready(ANSWER_LIMIT)?;
    }
    progress(&format!(
        "{} processes ready, each with a session on the shared store",
        children.len()
    ));
    let before = fleet.server().admin().counters();
    let first = options.requests / 2;
    let second = options.requests - first;
    let mut totals = Tally::default();

    progress(&format!(
        "storm, first half: {first} requests per process (the first ones log in once)"
    ));
    let (tally, first_half) = storm_all(&mut children, first)?;
    totals.add(&tally);
    progress(&format!(
        "  {} ok, {} failed in {:.2} s",
        tally.ok,
        tally.errors,
        first_half.as_secs_f64()
    ));

    progress(&format!(
        "waiting {} s for the access token to expire",
        options.token_lifetime.as_secs()
    ));
    if !super::interrupt::sleep(options.token_lifetime) {
        return Err(FleetError::Interrupted);
    }

    progress(&format!(
        "storm, second half: {second} requests per process through the expiry (one refresh for the fleet)"
    ));
    let (tally, second_half) = storm_all(&mut children, second)?;
    totals.add(&tally);
    progress(&format!(
        "  {} ok, {} failed in {:.2} s",
        tally.ok,
        tally.errors,
        second_half.as_secs_f64()
    ));

    let mut reported = Tally::default();
    for child in children {
        reported.add(&child.quit(ANSWER_LIMIT)?);
    }
    progress("every process reported and exited");
    let after = fleet.server().admin().counters();
    drop(fleet);
    Ok(report(
        options,
        &reported,
        &before,
        &after,
        [first_half, second_half],
        started.elapsed(),
    ))
}

/// Orders every child to storm `requests` at once and waits for all their answers.
fn storm_all(
    children: &mut [ChildProcess],
    requests: u32,
) -> Result<(Tally, Duration), FleetError> {
    let started = Instant::now();
    for child in children.iter_mut() {
        child.send(&storm(requests, Duration::ZERO))?;
    }
    let mut tally = Tally::default();
    for child in children.iter_mut() {
        tally.add(&child.stormed(ANSWER_LIMIT)?);
    }
    Ok((tally, started.elapsed()))
}

fn report(
    options: &FleetOptions,
    totals: &Tally,
    before: &Counters,
    after: &Counters,
    halves: [Duration; 2],
    elapsed: Duration,
) -> FleetReport {
    let processes = u64::try_from(options.processes).unwrap_or(u64::MAX);
    FleetReport {
        processes: options.processes,
        store: options.store.name(),
        requests: processes * u64::from(options.requests),
        ok: totals.ok,
        errors: totals.errors,
        refresh_calls: after.refresh_calls - before.refresh_calls,
        invalid_grant: after.invalid_grant - before.invalid_grant,
        logins: after.logins - before.logins,
        reuse_detected: after.reuse_detected - before.reuse_detected,
        tally: totals.clone(),
        halves,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> FleetReport {
        FleetReport {
            processes: 2,
            store: "redis",
            requests: 10,
            ok: 10,
            errors: 0,
            refresh_calls: 1,
            invalid_grant: 0,
            logins: 1,
            reuse_detected: 0,
            tally: Tally::default(),
            halves: [Duration::ZERO; 2],
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn the_json_line_has_the_fields_of_issue_12_in_order() {
        assert_eq!(
            report().json(),
            r#"{"processes":2,"store":"redis","requests":10,"ok":10,"errors":0,"refresh_calls":1,"invalid_grant":0,"logins":1,"reuse_detected":0}"#
        );
        assert!(report().passed());
    }

    #[test]
    fn every_missed_expectation_is_named() {
        let report = FleetReport {
            ok: 9,
            errors: 1,
            refresh_calls: 2,
            invalid_grant: 1,
            reuse_detected: 1,
            ..report()
        };
        assert_eq!(
            report.problems(),
            [
                "ok: expected 10, got 9",
                "errors: expected 0, got 1",
                "refresh_calls: expected 1, got 2",
                "invalid_grant: expected 0, got 1",
                "reuse_detected: expected 0, got 1",
            ]
        );
        assert!(report
            .summary()
            .contains("FAILED reuse_detected: expected 0, got 1"));
    }
}
