//! [`Conversation`]: one request's side of the driver core, the part of a driver's `Call` that
//! does not depend on how the caller waits.
//!
//! A request goes through the same turns in every driver: submitted, told to send (with which
//! token), answered by the caller, then delivered, failed or resent. `Conversation` keeps where
//! it stands, the response held for delivery, and the mapping of the core's [`Step`]s to what
//! the caller does next ([`Turn`]) or why the call ended ([`Ended`]). A driver adds only how it
//! waits while [`Conversation::poll_next`] is `Pending` (a task's `poll_fn`, a parked thread
//! with a deadline) and its own public types.

use std::fmt;
use std::mem;
use std::task::{Poll, Waker};

use auth_core::{AccessToken, Instant, Outcome, RequestError, RequestId, RequestSpec, Verdict};
use tracing::trace;

use crate::core::Core;
use crate::work::Step;

/// One request's conversation with the [`Core`], generic over the response `T` the caller
/// hands back (held until the core says to deliver it).
///
/// The driver's loop:
/// 1. [`Conversation::begin`] submits the request.
/// 2. [`Conversation::poll_next`] until `Ready`: a [`Turn::Send`] (send, then
///    [`Conversation::respond`]), a [`Turn::Deliver`] with the held response, or [`Ended`].
/// 3. A caller that gives up (dropped its call, its wait ran out) calls
///    [`Conversation::cancel`]; a conversation that already ended ignores it.
///
/// Every method runs the caller's own transition under the core's short lock: when the session
/// is `Active`, the first send comes from the submit and the delivery from the response, and
/// `poll_next` is `Ready` without waiting.
pub struct Conversation<T> {
    /// `None` when the core had stopped at the submit.
    id: Option<RequestId>,
    state: State,
    /// The response of the last send, delivered if the core says so.
    held: Option<T>,
}

/// Where a [`Conversation`] stands.
enum State {
    /// Waiting for the core's next step.
    Waiting,
    /// The next step is known already (from the submit or the response).
    Ready(Step),
    /// The caller is sending attempt `attempt`; [`Conversation::respond`] answers it.
    Sending { attempt: u16 },
    /// Delivered, failed, cancelled or stopped.
    Done,
}

/// What the caller does next in a [`Conversation`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Turn<T> {
    /// Send the request now with `token`, then [`Conversation::respond`].
    Send {
        /// 1 for the first send, 2 for the retry after a refresh, ...
        attempt: u16,
        /// The bearer token; `None` for a public request.
        token: Option<AccessToken>,
    },
    /// Done: hand this response (the one given to the last [`Conversation::respond`]) to the
    /// caller.
    Deliver(T),
}

/// Why a [`Conversation`] ended without a response to deliver. Each driver maps it to its own
/// `CallError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ended {
    /// The session refused or gave up on the request.
    #[error(transparent)]
    Session(#[from] RequestError),
    /// The core stopped, or the conversation had already ended (delivered, failed, cancelled).
    #[error("the session driver has stopped")]
    Stopped,
    /// [`Conversation::poll_next`] was called again before [`Conversation::respond`] answered
    /// the last attempt: a bug in the integration. The conversation stays where it was.
    #[error("the last attempt was not answered")]
    ResponseMissing,
}

impl<T> Conversation<T> {
    /// Submits `spec` to `core`; the first step is often known at once (a usable token).
    pub fn begin(core: &Core, spec: RequestSpec, now: Instant) -> Self {
        let (id, step) = core.submit(spec, now);
        Conversation {
            id,
            state: step.map_or(State::Waiting, State::Ready),
            held: None,
        }
    }

    /// The next turn: `Ready` at once when the step is known (or the conversation ended);
    /// otherwise asks the core, with `waker` registered to be woken when the step comes.
    /// `Pending` leaves the conversation where it was, so a driver may stop waiting (a dropped
    /// future) and poll again later, or [`Conversation::cancel`].
    pub fn poll_next(&mut self, core: &Core, waker: &Waker) -> Poll<Result<Turn<T>, Ended>> {
        let step = match mem::replace(&mut self.state, State::Done) {
            State::Ready(step) => step,
            State::Waiting => {
                let Some(id) = self.id else {
                    return Poll::Ready(Err(Ended::Stopped));
                };
                match core.poll_step(id, waker) {
                    Poll::Ready(step) => step,
                    Poll::Pending => {
                        self.state = State::Waiting;
                        return Poll::Pending;
                    }
                }
            }
            sending @ State::Sending { .. } => {
                self.state = sending;
                return Poll::Ready(Err(Ended::ResponseMissing));
            }
            State::Done => return Poll::Ready(Err(Ended::Stopped)),
        };
        Poll::Ready(self.take(step))
    }

    /// Answers the attempt [`Conversation::poll_next`] just returned with the caller's
    /// `response` and how the API answered (`verdict`). An accepted answer is settled here: the
    /// next `poll_next` delivers it without waiting. Ignored at any other time.
    pub fn respond(&mut self, core: &Core, response: T, verdict: Verdict, now: Instant) {
        let (State::Sending { attempt }, Some(id)) = (&self.state, self.id) else {
            return;
        };
        let attempt = *attempt;
        self.held = Some(response);
        // An accepted answer comes back as the delivery at once; a rejected one may bring the
        // resend at once, or nothing yet (a refresh first).
        self.state = match core.respond(id, attempt, verdict, now) {
            Some(step) => State::Ready(step),
            None => State::Waiting,
        };
    }

    /// Gives up on the request: it is never sent after this, and the conversation ends. One
    /// whose outcome already arrived keeps it (and `now` is not read).
    pub fn cancel(&mut self, core: &Core, now: impl FnOnce() -> Instant) {
        let live = matches!(
            self.state,
            State::Waiting | State::Sending { .. } | State::Ready(Step::Send { .. })
        );
        if !live {
            return;
        }
        self.state = State::Done;
        self.held = None;
        if let Some(id) = self.id {
            core.cancel(id, now());
        }
    }

    /// The request's id; `None` when the core had stopped at the submit.
    pub fn id(&self) -> Option<RequestId> {
        self.id
    }

    /// Maps the core's `step` to the caller's turn, logging it (never the token).
    fn take(&mut self, step: Step) -> Result<Turn<T>, Ended> {
        if let Some(id) = self.id {
            match &step {
                Step::Send { attempt, .. } => trace!(request = %id, attempt, "send"),
                Step::Done(outcome) => trace!(request = %id, ?outcome, "complete"),
                _ => trace!(request = %id, "stopped"),
            }
        }
        match step {
            Step::Send { attempt, token } => {
                self.held = None;
                self.state = State::Sending { attempt };
                Ok(Turn::Send { attempt, token })
            }
            // The core delivers only after a response, which `respond` holds.
            Step::Done(Outcome::Deliver) => {
                self.held.take().map(Turn::Deliver).ok_or(Ended::Stopped)
            }
            Step::Done(Outcome::Fail(error)) => {
                self.held = None;
                Err(Ended::Session(error))
            }
            // `Step::Stopped`, and outcomes of a later auth-core release.
            _ => {
                self.held = None;
                Err(Ended::Stopped)
            }
        }
    }
}

impl<T> fmt::Debug for Conversation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting => "waiting",
            State::Ready(_) => "ready",
            State::Sending { .. } => "sending",
            State::Done => "done",
        };
        f.debug_struct("Conversation")
            .field("id", &self.id)
            .field("state", &state)
            .field("held", &self.held.is_some())
            .finish()
    }
}
