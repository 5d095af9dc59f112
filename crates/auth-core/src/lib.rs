//! # auth-core: the sans-IO session machine of Seamless
//!
//! Silent login, token refresh, logout, and the queue of requests that wait while the session is
//! reset, as a pure state machine: events in, commands out, time passed in. It does no I/O, reads
//! no clock and no randomness, spawns nothing, and builds for `wasm32-unknown-unknown`. Drivers
//! (`auth-tokio`, `auth-blocking`, your own) own the clock, the timers, the HTTP client and the
//! token store, and do nothing but execute [`Command`]s and feed back results.
//!
//! Because [`Session`] is `Clone + Eq + Hash` and deterministic, the stateright model checker
//! explores the real machine, and a [`Trace`] of inputs replays it bit for bit.
//!
//! ## The drive contract
//!
//! A driver owns one [`Session`] and runs this loop:
//!
//! 1. Feed one input with the current time: [`Session::submit`], [`Session::cancel`],
//!    [`Session::handle_response`], [`Session::handle_login_result`],
//!    [`Session::handle_refresh_result`], [`Session::logout`], [`Session::login`] (or
//!    [`Session::handle`] with an [`Input`]).
//! 2. Drain [`Session::poll`] until it returns `None`, executing each [`Command`] in order.
//!    Execute [`Command::Persist`] to completion before the `Send`s that follow it. Never feed
//!    the next input before the queue is drained (the single-mutation rule: commands reflect the
//!    state right after the input that produced them).
//! 3. Re-arm the driver's one timer from [`Session::poll_timeout`] (a pure query).
//! 4. When the timer fires, call [`Session::handle_timeout`] with the current time and go to 2.
//!    A spurious or early call is harmless.
//! 5. When a command's work finishes (an HTTP response, a login or refresh result), feed it as
//!    an input: go to 1.
//!
//! Drain `poll` again after *every* input, including `handle_timeout`; nothing else ever adds
//! commands.
//!
//! ```
//! use auth_core::{Command, Config, Instant, Outcome, RequestSpec, Session, TokenSet, AccessToken, Verdict};
//!
//! let mut session = Session::new(Config::default(), Instant::from_millis(0));
//! // 1. The app issues a request; there is no session yet, so it waits for a silent login.
//! let id = session.submit(RequestSpec::bearer(), Instant::from_millis(0));
//! // 2. Drain the commands.
//! let Some(Command::Login { op }) = session.poll() else { panic!("expected a login") };
//! assert!(matches!(session.poll(), Some(Command::Notify(_))));
//! assert_eq!(session.poll(), None);
//! // 3. One timer: the login's deadline.
//! assert!(session.poll_timeout().is_some());
//! // 5. The login finished: persist first, then the queued request goes out, then notify.
//! let tokens = TokenSet::new(AccessToken::new("token-from-backend"));
//! session.handle_login_result(op, Ok(tokens), Instant::from_millis(40));
//! assert!(matches!(session.poll(), Some(Command::Persist(_))));
//! let Some(Command::Send { id: sent, attempt, token: Some(token), .. }) = session.poll() else {
//!     panic!("expected the queued request")
//! };
//! assert_eq!((sent, attempt, token.expose_secret()), (id, 1, "token-from-backend"));
//! assert!(matches!(session.poll(), Some(Command::Notify(_))));
//! assert_eq!(session.poll(), None);
//! // The API answered 200: the caller gets its response.
//! session.handle_response(id, attempt, Verdict::Accepted, Instant::from_millis(90));
//! assert_eq!(session.poll(), Some(Command::Complete { id, outcome: Outcome::Deliver }));
//! ```
//!
//! ## What is where
//!
//! - [`Session`]: the machine (DESIGN.md §3 rules 1–14); [`Config`] apart from it.
//! - [`Input`], [`Command`]: its interface; [`Timer`]: why it wants to wake up.
//! - [`Monitor`] and [`Checked`]: the one definition of the properties P1–P8, shared by the
//!   simulator, the model checker, proptest and the fuzzer; [`FleetMonitor`]: P9–P11 across
//!   the processes sharing one session.
//! - [`Session::shared`] and the [`Observed`] / [`LeaseResult`] / [`PublishResult`] vocabulary:
//!   one session shared by several processes through a store with a lease (see the `shared`
//!   types for the protocol a store implements).
//! - [`sim`]: the deterministic simulator with a fake auth server.
//! - [`Trace`]: serialized inputs that replay a session.
//! - [`Snapshot`]: the versioned persisted session.
//! - [`parse`]: parsers of untrusted input (token endpoint responses, `WWW-Authenticate`).
//!
//! Tokens ([`AccessToken`], [`RefreshToken`]) never print their secret: `Debug` shows `***`,
//! `Serialize` a fingerprint, and the secret is wiped when the last copy drops.
#![warn(missing_docs, unreachable_pub)]

pub mod broken;
mod command;
mod config;
mod fleet;
mod input;
mod monitor;
pub mod parse;
mod requests;
mod session;
mod shared;
pub mod sim;
mod snapshot;
mod time;
mod timer;
mod token;
mod trace;

pub use command::{Command, Outcome, Persist, RequestError, SessionState};
pub use config::Config;
pub use fleet::{FleetMonitor, FleetProperty, FleetViolation, Process};
pub use input::{
    Auth, Generation, Input, LoginFailure, OpId, RefreshFailure, RequestId, RequestSpec, Retry,
    Verdict,
};
pub use monitor::{Checked, Monitor, Property, Violation};
pub use parse::{
    parse_token_response, parse_www_authenticate, BearerChallenge, BearerError, Challenge,
    ChallengeError, ExpiresInError, FieldError, MalformedReason, OAuthError, ServerText,
    TokenResponseError, MAX_BODY_LEN, MAX_EXPIRES_IN,
};
pub use session::Session;
pub use shared::{LeaseResult, Observed, PublishResult, StoreVersion, Stored, LEASE_RETRY};
pub use snapshot::{Snapshot, SnapshotError, SnapshotFieldError, SNAPSHOT_VERSION};
pub use time::{Instant, UnixTime};
pub use timer::Timer;
pub use token::{fingerprint, AccessToken, RefreshToken, TokenSet};
pub use trace::{Replay, Start, Step, Trace, TraceError, TraceProblem, TRACE_VERSION};
