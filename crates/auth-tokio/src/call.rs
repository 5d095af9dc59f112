//! [`Call`]: one request's conversation with the session, run on the caller's own task.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;

use auth_core::{AccessToken, Outcome, RequestId, RequestSpec, Verdict};
use auth_driver::Step;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use tracing::trace;
use zeroize::Zeroizing;

use crate::handle::{CallError, Link};

/// One request's conversation with the session: the session says when to send (with which
/// token), the caller sends and reports how the API answered, until the session says done.
///
/// ```text
/// let mut call = session.call(RequestSpec::bearer());
/// loop {
///     match call.next_step().await? {
///         Next::Send(attempt) => {
///             let response = send(request_with(attempt.authorization())).await;
///             let verdict = verdict_of(&response);   // auth_tokio::verdict / Verdict::Accepted on a transport error
///             call.respond(response, verdict);
///         }
///         Next::Deliver(response) => return response,
///     }
/// }
/// ```
///
/// Every transition runs on the caller's task under a short lock: when the session is `Active`
/// the first step comes from the submit itself and the delivery from [`Call::respond`], with no
/// other task involved. Only a request that waits (for a login, a refresh, the persist of new
/// tokens) is woken by another.
///
/// Dropping a `Call` before it is done cancels the request: it is never sent after the drop
/// (a send already under way is the caller's own future, dropped with it).
#[must_use = "a call does nothing until `next_step` is awaited"]
pub struct Call<T> {
    link: Arc<Link>,
    /// `None` when the session had stopped at the submit.
    id: Option<RequestId>,
    state: CallState,
    held: Option<T>,
}

enum CallState {
    /// Waiting for the session's next step.
    Waiting,
    /// The next step is known already (from the submit or the response).
    Ready(Step),
    /// The caller is sending attempt `attempt`; [`Call::respond`] answers it.
    Sending { attempt: u16 },
    /// Delivered, failed or stopped.
    Done,
}

/// What to do next in a [`Call`].
#[derive(Debug)]
pub enum Next<T> {
    /// Send the request now, with [`Attempt::authorization`]; then [`Call::respond`].
    Send(Attempt),
    /// Done: hand this response (the one given to the last [`Call::respond`]) to the caller.
    Deliver(T),
}

/// One send of a request: its number and the token to send it with.
#[derive(Debug)]
pub struct Attempt {
    number: u16,
    token: Option<AccessToken>,
}

impl<T> Call<T> {
    /// Submits `spec` to the session of `link`.
    pub(crate) fn submit(link: Arc<Link>, spec: RequestSpec) -> Self {
        let (id, step) = link.core.submit(spec, link.clock.now());
        let state = step.map_or(CallState::Waiting, CallState::Ready);
        Call {
            link,
            id,
            state,
            held: None,
        }
    }

    /// Waits for the session's next step: send (again), or done.
    ///
    /// `Err` ends the call: the session failed the request ([`CallError::Session`]), or the
    /// session stopped. Cancel safe: dropping the future keeps the call where it was.
    pub async fn next_step(&mut self) -> Result<Next<T>, CallError> {
        let step = match &self.state {
            CallState::Waiting => {
                let Some(id) = self.id else {
                    self.state = CallState::Done;
                    return Err(CallError::Stopped);
                };
                let core = &self.link.core;
                poll_fn(|cx| core.poll_step(id, cx.waker())).await
            }
            CallState::Sending { .. } => return Err(CallError::ResponseMissing),
            CallState::Done => return Err(CallError::Stopped),
            CallState::Ready(_) => match std::mem::replace(&mut self.state, CallState::Waiting) {
                CallState::Ready(step) => step,
                _ => Step::Stopped,
            },
        };
        self.state = CallState::Done;
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
                self.state = CallState::Sending { attempt };
                Ok(Next::Send(Attempt {
                    number: attempt,
                    token,
                }))
            }
            // The core delivers only after a response, which `respond` holds.
            Step::Done(Outcome::Deliver) => self
                .held
                .take()
                .map(Next::Deliver)
                .ok_or(CallError::Stopped),
            Step::Done(Outcome::Fail(error)) => {
                self.held = None;
                Err(CallError::Session(error))
            }
            // `Step::Stopped`, and steps of a later release.
            _ => {
                self.held = None;
                Err(CallError::Stopped)
            }
        }
    }

    /// Answers the attempt [`Call::next_step`] just returned: the response (or the transport
    /// error, as `T`) and how the API answered. A transport error is [`Verdict::Accepted`]: it
    /// is delivered as is. Calling it at any other time does nothing.
    ///
    /// An accepted response is settled here, on the caller's task (auth-core completes an
    /// accepted answer to the current send at once); the next [`Call::next_step`] hands it over
    /// without waiting.
    pub fn respond(&mut self, response: T, verdict: Verdict) {
        let (CallState::Sending { attempt }, Some(id)) = (&self.state, self.id) else {
            return;
        };
        let attempt = *attempt;
        self.held = Some(response);
        let link = &self.link;
        self.state = match link.core.respond(id, attempt, verdict, link.clock.now()) {
            Some(step) => CallState::Ready(step),
            None => CallState::Waiting,
        };
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        let finished = matches!(
            self.state,
            CallState::Done | CallState::Ready(Step::Done(_) | Step::Stopped)
        );
        if let (Some(id), false) = (self.id, finished) {
            self.link.core.cancel(id, self.link.clock.now());
        }
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            CallState::Waiting => "waiting",
            CallState::Ready(_) => "ready",
            CallState::Sending { .. } => "sending",
            CallState::Done => "done",
        };
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("state", &state)
            .finish()
    }
}

impl Attempt {
    /// 1 for the first send, 2 for the retry after a refresh, ...
    pub fn number(&self) -> u16 {
        self.number
    }

    /// The bearer token to send with; `None` for a public request.
    pub fn token(&self) -> Option<&AccessToken> {
        self.token.as_ref()
    }

    /// The `Authorization: Bearer …` value, marked sensitive (hyper never logs or compresses
    /// it); `None` for a public request.
    pub fn authorization(&self) -> Option<HeaderValue> {
        let token = self.token.as_ref()?;
        let text = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Sets `Authorization` on `headers` for a bearer request. A public request's headers are
    /// left as they are.
    pub fn authorize(&self, headers: &mut HeaderMap) {
        if let Some(value) = self.authorization() {
            headers.insert(AUTHORIZATION, value);
        }
    }
}
