//! The verdicts of the cross-process storm, shared by both drivers' `multiprocess` tests:
//! several processes restore one `FileStore` holding an expired access token and storm the demo
//! server at the same moment; the server's [`Counters`] before and after tell whether the
//! refresh was single flight across them.

use crate::server::Counters;

/// With the store's refresh lock: exactly one refresh call, which rotated the tokens, no
/// `invalid_grant`, and no process fell back to a silent login.
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

/// Without the lock (the non-vacuity check): every one of `processes` presented the same
/// refresh token; one of them rotated it, the server saw each of the others as a reuse and
/// answered `invalid_grant`, and they logged in again.
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
