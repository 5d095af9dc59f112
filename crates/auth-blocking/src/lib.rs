//! # auth-blocking: the blocking driver of Seamless
//!
//! Runs auth-core's sans-IO [`auth_core::Session`] on plain `std` threads, for apps without an
//! async runtime: silent login on first use, one refresh for any storm of 401s from any number
//! of threads, fallback to silent login when the refresh token is dead, logout that nothing
//! undoes, deadlines on everything, and a queue of requests that wait and are sent again once,
//! with the new token. Same semantics as `auth-tokio`.
//!
//! ## Shape
//!
//! A thin shell over [`auth_driver::Core`], the driver core shared with `auth-tokio` (quinn's
//! shape: many callers, a short lock, one background thread):
//!
//! - **Callers run their own transitions.** A request's thread submits it to the core under its
//!   short lock and, when the session is signed in, gets its send (with the token) back at once;
//!   it sends, and its accepted answer comes back as the delivery at once. No other thread is
//!   involved on that path. A request that must wait (first login, a refresh) parks its thread
//!   until the core wakes it, at most until the call's deadline: a caller that gives up (or
//!   drops its call) cancels the request, and it is never sent after that.
//! - **One background thread** per session carries out what the session asks of the runtime,
//!   in order: it persists new tokens (the requests that will carry them are held until the
//!   store has them), clears the store on logout, starts logins, refreshes and revocations on
//!   threads of their own, and runs the session's one timer. Every backend call is bounded by
//!   the operation's deadline whatever the HTTP client does: at the deadline the driver stops
//!   waiting, and a hung call's late answer is ignored.
//! - The app provides a [`Backend`] (silent login and refresh, blocking) and a [`TokenStore`]:
//!   [`MemoryStore`], or auth-store's [`FileStore`] (atomic, `fsync`ed, `0600`, auth-core's
//!   versioned snapshot). A `TokenStore` belongs to one process: processes that share one
//!   session share it through a shared store.
//! - Or a **shared store** ([`Builder::shared_store`], any
//!   [`auth_store::shared::SharedStore`]: in memory, a file on one host, Redis for a fleet):
//!   one session shared by every process using the store, with auth-core's rules for it
//!   (`Session::shared`): a lease before every login or refresh, a refresh token presented at
//!   most once across all of them, compare-and-swap writes, tokens refreshed elsewhere adopted,
//!   and a logout anywhere that ends the session everywhere, restarts included. The driver only
//!   makes the store calls, each on a thread of its own bounded by the operation timeout, and a
//!   watcher thread reads the record every [`Builder::watch_interval`] so other processes'
//!   changes arrive. A store that cannot be reached fails the requests that need new tokens
//!   with [`auth_core::RequestError::StoreUnavailable`]; the others go on with the tokens held.
//!   `examples/shared_blocking.rs` runs two sessions on one store.
//! - [`ureq::ApiClient`] (feature `ureq`, on by default) sends `ureq` requests through the
//!   session; [`ureq::TokenEndpoint`] talks to an RFC 6749 token endpoint for a backend. Which
//!   answers mean the token was refused is the client's [`ureq::Classifier`]: RFC 6750's 401s
//!   by default, or [`ureq::BodyCode`] for backends that answer HTTP 200 with `{"code":401}`
//!   ([`ureq::ApiClient::with_classifier`]).
//! - `tracing`: spans `session` and `operation`; the driver's threads log to the dispatcher that
//!   was current at [`Builder::start`]. Tokens are never logged.
//! - Counts: [`SessionHandle::stats`] is a [`Stats`] snapshot (requests by outcome, resends,
//!   waits, logins, refreshes, the circuit breaker, a shared store's answers), and the same
//!   events go to the `metrics` facade for any exporter, labelled with [`Builder::name`]; the
//!   names are in [`stats`] and `docs/integration.md` ("Metrics").
//!
//! ## Quick start: your own transport
//!
//! ```
//! use auth_blocking::{Backend, LoginError, RefreshError, SessionHandle};
//! use auth_core::{AccessToken, RefreshToken, RequestSpec, TokenSet, Verdict};
//!
//! struct MyBackend;
//!
//! impl Backend for MyBackend {
//!     fn login(&self) -> Result<TokenSet, LoginError> {
//!         // Get a platform code and exchange it on your backend.
//!         Ok(TokenSet::new(AccessToken::new("access")).with_refresh_token(RefreshToken::new("refresh")))
//!     }
//!     fn refresh(&self, _refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
//!         Ok(TokenSet::new(AccessToken::new("access-2")))
//!     }
//! }
//!
//! let session = SessionHandle::builder(MyBackend).start()?;
//! // Any thread, any number of them: the session logs in once and sends with the token.
//! let body = session.request(RequestSpec::bearer(), |attempt| {
//!     assert_eq!(attempt.bearer().as_deref().map(String::as_str), Some("Bearer access"));
//!     // Send the request here; the API answered 200.
//!     (String::from("200 OK"), Verdict::Accepted)
//! })?;
//! assert_eq!(body, "200 OK");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Quick start: ureq and a file store
//!
//! ```no_run
//! # #[cfg(feature = "ureq")] {
//! use std::time::Duration;
//! use auth_blocking::ureq::{ApiClient, Scope, TokenEndpoint};
//! use auth_blocking::{Backend, FileStore, LoginError, RefreshError, SessionHandle};
//! use auth_core::{RefreshToken, TokenSet};
//!
//! struct App {
//!     token: TokenEndpoint,
//! }
//!
//! impl Backend for App {
//!     fn login(&self) -> Result<TokenSet, LoginError> {
//!         let code = "one-time code from the platform's login()";
//!         Ok(self.token.post_form(&[("grant_type", "authorization_code"), ("code", code)])?)
//!     }
//!     fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
//!         self.token.refresh(refresh_token)
//!     }
//! }
//!
//! // Timeouts that cost nothing per request (see `auth_blocking::ureq`); the session bounds
//! // its own logins and refreshes by their deadlines whatever the agent does.
//! let agent: ureq::Agent = ureq::Agent::config_builder()
//!     .http_status_as_error(false)
//!     .timeout_connect(Some(Duration::from_secs(5)))
//!     .timeout_per_read(Some(Duration::from_secs(30)))
//!     .timeout_per_write(Some(Duration::from_secs(30)))
//!     .build()
//!     .into();
//! let backend = App { token: TokenEndpoint::new(agent.clone(), "https://api.example.com/oauth/token") };
//! let session = SessionHandle::builder(backend)
//!     .store(FileStore::new("/var/lib/my-app/session.json"))
//!     .start()?;
//! let api = ApiClient::new(agent, session, Scope::new("https://api.example.com")?.public_path("/public"));
//! let mut response = api.get("https://api.example.com/me")?;
//! println!("{}", response.body_mut().read_to_string()?);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Errors
//!
//! A request fails with [`CallError`] (or [`ureq::Error`]): `Session(reason)` where the
//! [`auth_core::RequestError`] says what the caller can do, `TimedOut` when the caller's wait ran
//! out (the request was cancelled), `Transport` when the HTTP client failed (delivered as is,
//! never retried by the session), or `Stopped` after [`SessionHandle::shutdown`]. A 401 the
//! session could not fix (retry budget spent, opted out, not replayable) is delivered as a normal
//! response. [`SessionHandle::logout`] returns `Ok` only once the store is cleared (a shared
//! store: once the logout's tombstone is written), so no restart signs the user back in;
//! otherwise [`CallError::LogoutNotDurable`] (logged out in memory all the same; calling
//! `logout` again retries the clear). See `docs/integration.md`.
#![warn(missing_docs, unreachable_pub)]

mod backend;
mod background;
mod clock;
mod handle;
mod park;
pub mod pool;
mod published;
mod shared;
mod store;

#[cfg(feature = "ureq")]
pub mod ureq;

pub use backend::{Backend, BoxError, LoginError, RefreshError};
pub use handle::{Attempt, Builder, Call, CallError, Next, SessionHandle, DEFAULT_WATCH_INTERVAL};
pub use pool::{PoolError, PooledCall, PooledSession, SessionPool};
pub use store::{FileStore, MemoryStore, StoreError, TokenStore};

/// What [`SessionHandle::stats`] returns; the metric names are in `auth_driver::stats`.
pub use auth_driver::{stats, LoginStats, RefreshStats, RequestStats, SharedStats, Stats};

/// The session core this driver runs, re-exported so apps need one dependency.
pub use auth_core;
