//! The verdicts of a storm from several sessions or processes through an expiry, for the tests
//! of both drivers and of the demo: the server's [`Counters`] before and after tell whether the
//! refresh was single flight across them.

use crate::server::Counters;

/// Single flight (sessions sharing a shared store): exactly one refresh call, which rotated the
/// tokens, no `invalid_grant`, and no process fell back to a silent login.
#[track_caller]
pub fn assert_one_refresh(before: &Counters, after: &Counters) {
    assert_eq!(after.refresh_calls - before.refresh_calls, 1);
    assert_eq!(after.refreshes - before.refreshes, 1);
    assert_eq!(after.invalid_grant, before.invalid_grant);
    assert_eq!(after.reuse_detected, before.reuse_detected);
    assert_eq!(
        after.logins, before.logins,
        "no process fell back to a login"
    );
}

/// Processes that share only a plain `FileStore` (one process's store): every one of
/// `processes` presented the same refresh token; one of them rotated it, the server saw each of
/// the others as a reuse and answered `invalid_grant`, and they logged in again.
///
/// The server must not revoke token families on reuse (the default [`crate::server::ServerConfig`]):
/// with revocation the winner's new tokens die too, and how many of its requests fail depends on
/// timing.
#[track_caller]
pub fn assert_every_process_refreshed(before: &Counters, after: &Counters, processes: u64) {
    assert_eq!(after.refresh_calls - before.refresh_calls, processes);
    assert_eq!(after.refreshes - before.refreshes, 1);
    assert_eq!(after.invalid_grant - before.invalid_grant, processes - 1);
    assert_eq!(after.reuse_detected - before.reuse_detected, processes - 1);
    assert_eq!(after.logins - before.logins, processes - 1);
}
