//! # auth-tokio: the tokio driver of Seamless
//!
//! Runs auth-core's sans-IO [`auth_core::Session`] on tokio, over real HTTP: silent login on
//! first use, one refresh for any storm of 401s, fallback to silent login when the refresh token
//! is dead, logout that nothing undoes, and a queue of requests that wait and are sent again
//! once, with the new token.
//!
//! ## Shape
//!
//! - A thin shell over `auth-driver`'s runtime-agnostic driver core (shared with
//!   `auth-blocking`): the session behind a short lock, and the routing of every command.
//!   Each request runs its own transitions on the caller's task: when the session is `Active`
//!   its [`Call`] gets the token from the submit and its outcome from the response, with no
//!   hand-off to another task. A request that must wait (for a login, a refresh, the persist of
//!   new tokens) is woken when its step comes.
//! - One background task per session runs what the session asks of the runtime: logins,
//!   refreshes and revocations (each on a task of its own, bounded by `operation_timeout`),
//!   persists and clears of the store (in order; no request goes out with new tokens before
//!   their `save` finished), and the one timer. The state is a value
//!   ([`SessionHandle::state`]) and a `watch` ([`SessionHandle::events`]).
//! - The app provides a [`Backend`] (silent login and refresh) and a [`TokenStore`]
//!   ([`MemoryStore`], or [`FileStore`]: atomic, `fsync`ed, `0600`, auth-core's versioned
//!   snapshot). A `TokenStore` belongs to one process: processes that share one session share
//!   it through a shared store.
//! - Or a **shared store** ([`Builder::shared_store`], any
//!   [`auth_store::shared::SharedStore`]: in memory, a file on one host, Redis for a fleet):
//!   one session shared by every process using the store, with auth-core's rules for it
//!   (`Session::shared`): a lease before every login or refresh, a refresh token presented at
//!   most once across all of them, compare-and-swap writes, tokens refreshed elsewhere adopted,
//!   and a logout anywhere that ends the session everywhere, restarts included. The driver only
//!   makes the store calls, each on the blocking pool and bounded by the operation timeout,
//!   and reads the record every [`Builder::watch_interval`] so other processes' changes arrive.
//!   A store that cannot be reached fails the requests that need new tokens with
//!   [`auth_core::RequestError::StoreUnavailable`]; the others go on with the tokens held.
//!   `examples/shared_tokio.rs` runs two sessions on one store.
//! - Requests go out through the caller's own HTTP stack, driven by a [`Call`]: the session says
//!   when to send and with which token, the caller reports how the API answered. Ready
//!   integrations do this for you: [`tower::AuthLayer`] (feature `tower`) for any service of
//!   `http::Request`s, and [`reqwest::ApiClient`] (feature `reqwest`).
//! - A [`Scope`] says which requests are the API's: other origins and public paths never carry
//!   the token.
//! - A [`Classifier`] says which of the API's answers mean the token was refused: RFC 6750's
//!   401s by default ([`Rfc6750`]), or [`BodyCode`] for backends that answer HTTP 200 with
//!   `{"code":401}` (`with_classifier` on either integration). A classifier reads at most a
//!   bounded start of the body, once, and the caller gets the whole response all the same.
//! - Dropping a request's future cancels it: it is never sent after the drop.
//! - `tracing` spans: `session` for the driver, `login`/`refresh` for operations, `api` for a
//!   request. Tokens are never logged (their `Debug` is `***`; the `Authorization` header is
//!   marked sensitive).
//! - Counts: [`SessionHandle::stats`] is a [`Stats`] snapshot (requests by outcome, resends,
//!   waits, logins, refreshes, the circuit breaker, a shared store's answers), and the same
//!   events go to the `metrics` facade for any exporter, labelled with [`Builder::name`]; the
//!   names are in [`stats`] and `docs/integration.md` ("Metrics").
//!
//! ## Example: the [`Call`] loop with your own transport
//!
//! ```
//! use auth_core::{AccessToken, RefreshToken, RequestSpec, TokenSet, Verdict};
//! use auth_tokio::{Backend, LoginError, Next, RefreshError, SessionHandle};
//!
//! struct MyBackend;
//!
//! impl Backend for MyBackend {
//!     async fn login(&self) -> Result<TokenSet, LoginError> {
//!         // Get a platform code and exchange it on your backend.
//!         Ok(TokenSet::new(AccessToken::new("access")).with_refresh_token(RefreshToken::new("refresh")))
//!     }
//!     async fn refresh(&self, _refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
//!         Ok(TokenSet::new(AccessToken::new("access-2")))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let session = SessionHandle::builder(MyBackend).start().await;
//! let mut call = session.call(RequestSpec::bearer());
//! let body = loop {
//!     match call.next_step().await? {
//!         Next::Send(attempt) => {
//!             // Send the request with `attempt.authorization()`; here the API says 200.
//!             assert!(attempt.token().is_some());
//!             call.respond(String::from("200 OK"), Verdict::Accepted);
//!         }
//!         Next::Deliver(response) => break response,
//!     }
//! };
//! assert_eq!(body, "200 OK");
//! session.shutdown(std::time::Duration::from_secs(1)).await?;
//! # Ok::<(), auth_tokio::CallError>(())
//! # }).unwrap();
//! ```
//!
//! ## Errors
//!
//! A request fails with [`CallError`] (or the integrations' [`Error`]): `Session(reason)` where
//! the [`auth_core::RequestError`] says what the caller can do, `Transport` when the HTTP stack
//! failed (delivered as is, never retried by the session), or `Stopped` when the session was
//! shut down ([`SessionHandle::shutdown`]) or its runtime is shutting down. A 401 the session could not fix (retry budget spent, opted out, not
//! replayable) is delivered as a normal response. [`SessionHandle::logout`] returns
//! [`CallError::LogoutNotDurable`] when the store could not be cleared (a shared store: when
//! the logout's tombstone could not be written by the operation deadline): logged out in
//! memory, but a restart (or another process sharing the store) would sign back in until a
//! later `logout()` succeeds. See `docs/integration.md`.
#![warn(missing_docs, unreachable_pub)]

mod backend;
mod background;
mod call;
mod clock;
mod handle;
mod http;
pub mod pool;
pub mod store;

#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tower")]
pub mod tower;

pub use backend::{Backend, BoxError, LoginError, RefreshError};
pub use call::{Attempt, Call, Next};
pub use handle::{Builder, CallError, SessionHandle, DEFAULT_WATCH_INTERVAL};
pub use http::{
    verdict, BodyCode, BodyCodeError, Classifier, Error, Peeked, RequestOptions, Rfc6750, Scope,
    ScopeError, Target,
};
pub use pool::{PoolError, PooledCall, PooledSession, SessionPool};
pub use store::{FileStore, MemoryStore, StoreError, TokenStore};

/// What [`SessionHandle::stats`] returns; the metric names are in `auth_driver::stats`.
pub use auth_driver::{stats, LoginStats, RefreshStats, RequestStats, SharedStats, Stats};

/// The session core this driver runs, re-exported so apps need one dependency.
pub use auth_core;
