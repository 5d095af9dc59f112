//! # auth-demo: the Seamless story over real HTTP
//!
//! - [`server`]: a demo auth server (axum) on an ephemeral loopback port that behaves like a
//!   real backend (one-time codes, rotating refresh tokens, RFC 6750 401s, a public path), with
//!   admin knobs and counters for tests. [`server::spawn`] for a tokio caller,
//!   [`server::spawn_in_thread`] for a blocking one.
//! - [`backend::DemoBackend`]: the app's [`auth_tokio::Backend`] for that server (WeChat-style
//!   silent login, RFC 6749 refresh grant).
//! - [`multiprocess`]: the verdicts of a storm from several sessions or processes (one refresh
//!   on a shared store, one per process on a plain file store), for the drivers' tests.
//! - [`story`]: the scenario `cargo run --release -p auth-demo` plays, with its expectations.
//! - [`hostile`]: a hostile loopback token endpoint that echoes the refresh token it was sent in
//!   its error, for the tests that no secret a server can shape reaches the logs (both drivers').
//! - `fleet` (unix): several real processes sharing one session through a file or Redis store
//!   (`auth-demo fleet`, and the fleet fault tests).
//! - [`testing`]: log capture for end-to-end tests (fail on `ERROR`, fail on a leaked token).
#![warn(missing_docs, unreachable_pub)]

pub mod backend;
#[cfg(unix)]
pub mod fleet;
pub mod hostile;
pub mod multiprocess;
pub mod server;
pub mod story;
pub mod testing;
