//! # auth-driver: the runtime-agnostic driver core of Seamless
//!
//! `auth-core` decides; a driver carries out. This crate is everything a driver does that does
//! not depend on the runtime, written once for `auth-tokio` (async tasks) and `auth-blocking`
//! (threads): the [`Session`](auth_core::Session) behind a short lock, the table of callers
//! waiting for their next [`Step`], and the routing of every command the session emits, to the
//! caller it concerns (`Send`, `Complete`) or to the runtime as [`Work`] (`Login`, `Refresh`,
//! `Revoke`, `Persist`, `ClearStore`, and for shared sessions `Acquire`, `Publish`, `Release`)
//! and its one timer.
//!
//! ## How a driver uses it
//!
//! Callers (any task or thread, many at once):
//! 1. [`Core::submit`] → the request's id, and its first step when the session decided at once
//!    (the happy path: sent with a usable token).
//! 2. Otherwise [`Core::poll_step`] with a `Waker` (a task's, or one that unparks a thread)
//!    until a step comes.
//! 3. On [`Step::Send`]: send the request, then [`Core::respond`] → `Done(Deliver)` at once for
//!    an accepted answer, or the resend, or nothing (poll again).
//! 4. A caller that gives up calls [`Core::cancel`]; it is never sent after that.
//!
//! [`Conversation`] runs steps 1–4 for one request (the held response, the mapping of each
//! [`Step`] to the caller's [`Turn`] or to why it [`Ended`]), so a driver's `Call` adds only how
//! it waits while [`Conversation::poll_next`] is pending: a task's `poll_fn`, or a parked thread
//! with a deadline.
//!
//! The runtime (one background task or thread):
//! 1. [`Core::take_work`] until `None`, in order: start `Login`/`Refresh`/`Revoke` on a task or
//!    thread of their own (they report with [`Core::login_done`]/[`Core::refresh_done`] from
//!    there); carry out `Persist` and `ClearStore` in place and report with
//!    [`Core::persisted`]/[`Core::cleared`] before taking the next work. A shared session's
//!    store work (see below) runs like an operation, on a task or thread of its own.
//! 2. Arm the one timer for [`Core::next_deadline`]; when it fires, [`Core::handle_timeout`].
//! 3. Wait on [`Core::poll_background`] (work arrived, or a deadline moved earlier) or the timer.
//!
//! Every auth decision stays in `auth-core`; the one rule here is about durability: a `Send`
//! carrying tokens whose `Persist` is not reported done is held back until it is (P7 for the
//! whole system, not only for the command stream).
//!
//! ## Shared sessions
//!
//! A session shared with other processes through a store (auth-core's `Session::shared`, an
//! [`auth_store::shared::SharedStore`]) adds three kinds of work and never persists: `Acquire`
//! (the store's lease, before every login or refresh), `Publish` (new tokens, by
//! compare-and-swap) and `Release`; its `ClearStore` writes the logout's tombstone. The runtime
//! turns each into a [`StoreCall`] with [`SharedLink::call`], runs it where blocking is allowed
//! (a thread, tokio's blocking pool) bounded by the operation deadline, and feeds the answer with
//! [`StoreAnswer::report`] ([`StoreCall::late`] when the deadline came first), which ends in
//! [`Core::lease_done`], [`Core::published`], or [`Core::store_changed`] then [`Core::cleared`]
//! for a logout. A [`StoreWatch`] over periodic reads feeds [`Core::store_changed`], so a logout
//! or a refresh in another process reaches this one; [`start_session`] builds the session from
//! the record read at start ([`StartRead`] retries an unreachable store for a while). The
//! requests that will carry published tokens wait inside the session for the store's answer, so
//! the persist gate above is not needed there.
//!
//! ## Counting
//!
//! The core counts what passes through it (requests and their outcomes, resends, waits for the
//! session, logins, refreshes, the circuit breaker, a shared store's answers) for
//! [`Core::stats`] and as metrics through the `metrics` facade; [`stats`] has the names.
#![warn(missing_docs, unreachable_pub)]

mod conversation;
mod core;
pub mod pool;
mod shared;
pub mod stats;
mod sync;
mod work;

pub use crate::conversation::{Conversation, Ended, Turn};
pub use crate::core::{Core, StateHook};
pub use crate::shared::{
    no_answer, start_session, SharedLink, StartRead, StoreAnswer, StoreCall, StoreWatch,
    START_READ_RETRY,
};
pub use crate::stats::{LoginStats, RefreshStats, RequestStats, SharedStats, Stats};
pub use crate::work::{LogoutError, LogoutTicket, Step, Work};
