//! # auth-tokio: the tokio driver of Seamless
//!
//! Runs auth-core's sans-IO [`auth_core::Session`] on tokio, over real HTTP: silent login on
//! first use, one refresh for any storm of 401s, fallback to silent login when the refresh token
//! is dead, logout that nothing undoes, and a queue of requests that wait and are sent again
//! once, with the new token.
//!
//! ## Shape
//!
//! - One task owns the session (the single-owner loop of the drive contract): requests, their
//!   responses, cancels, logout and login reach it over one `mpsc`; each request hears back on a
//!   `oneshot` per step; the state is a `watch` ([`SessionHandle::state`]). After every input
//!   the task drains the session's commands in order, awaiting the store's `save` before any
//!   request goes out with new tokens, then re-arms its one timer from `poll_timeout`.
//! - The app provides a [`Backend`] (silent login and refresh) and a [`TokenStore`]
//!   ([`MemoryStore`], or [`FileStore`]: atomic, `fsync`ed, `0600`, auth-core's versioned
//!   snapshot).
//! - Requests go out through the caller's own HTTP stack, driven by a [`Call`]: the session says
//!   when to send and with which token, the caller reports how the API answered. Ready
//!   integrations do this for you: [`tower::AuthLayer`] (feature `tower`) for any service of
//!   `http::Request`s, and [`reqwest::ApiClient`] (feature `reqwest`).
//! - A [`Scope`] says which requests are the API's: other origins and public paths never carry
//!   the token.
//! - Dropping a request's future cancels it: it is never sent after the drop.
//! - `tracing` spans: `session` for the driver, `login`/`refresh` for operations, `api` for a
//!   request. Tokens are never logged (their `Debug` is `***`; the `Authorization` header is
//!   marked sensitive).
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
//!     async fn refresh(&self, _refresh_token: RefreshToken) -> Result<TokenSet, RefreshError> {
//!         Ok(TokenSet::new(AccessToken::new("access-2")))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let session = SessionHandle::builder(MyBackend).start().await;
//! let mut call = session.call(RequestSpec::bearer());
//! let body = loop {
//!     match call.next().await? {
//!         Next::Send(attempt) => {
//!             // Send the request with `attempt.authorization()`; here the API says 200.
//!             assert!(attempt.token().is_some());
//!             call.respond(String::from("200 OK"), Verdict::Accepted);
//!         }
//!         Next::Deliver(response) => break response,
//!     }
//! };
//! assert_eq!(body, "200 OK");
//! # Ok::<(), auth_tokio::CallError>(())
//! # }).unwrap();
//! ```
//!
//! ## Errors
//!
//! A request fails with [`CallError`] (or the integrations' [`Error`]): `Session(reason)` where
//! the [`auth_core::RequestError`] says what the caller can do, `Transport` when the HTTP stack
//! failed (delivered as is, never retried by the session), or `Stopped` when the runtime is
//! shutting down. A 401 the session could not fix (retry budget spent, opted out, not
//! replayable) is delivered as a normal response. [`SessionHandle::logout`] returns
//! [`CallError::LogoutNotDurable`] when the store could not be cleared: logged out in memory,
//! but a restart would sign back in until a later `logout()` clears it. See
//! `docs/integration.md`.
#![warn(missing_docs, unreachable_pub)]

mod backend;
mod clock;
mod driver;
mod handle;
mod http;
pub mod store;

#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tower")]
pub mod tower;

pub use backend::{Backend, BoxError, LoginError, RefreshError};
pub use handle::{Attempt, Builder, Call, CallError, Next, SessionHandle};
pub use http::{verdict, Error, RequestOptions, Scope, ScopeError, Target};
pub use store::{FileStore, MemoryStore, StoreError, TokenStore};

/// The session core this driver runs, re-exported so apps need one dependency.
pub use auth_core;
