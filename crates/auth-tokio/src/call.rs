//! [`Call`]: one request's conversation with the session, run on the caller's own task.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;

use auth_core::{AccessToken, RequestSpec, Verdict};
use auth_driver::{Conversation, Turn};
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
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
    conversation: Conversation<T>,
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
        let conversation = Conversation::begin(&link.core, spec, link.clock.now());
        Call { link, conversation }
    }

    /// Waits for the session's next step: send (again), or done.
    ///
    /// `Err` ends the call: the session failed the request ([`CallError::Session`]), or the
    /// session stopped. Cancel safe: dropping the future keeps the call where it was.
    pub async fn next_step(&mut self) -> Result<Next<T>, CallError> {
        let (core, conversation) = (&self.link.core, &mut self.conversation);
        let turn = poll_fn(|cx| conversation.poll_next(core, cx.waker())).await;
        match turn.map_err(CallError::ended)? {
            Turn::Send { attempt, token } => Ok(Next::Send(Attempt {
                number: attempt,
                token,
            })),
            Turn::Deliver(response) => Ok(Next::Deliver(response)),
            // Turns of a later driver core.
            _ => Err(CallError::Stopped),
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
        let link = &self.link;
        self.conversation
            .respond(&link.core, response, verdict, link.clock.now());
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        let link = &self.link;
        self.conversation.cancel(&link.core, || link.clock.now());
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("conversation", &self.conversation)
            .finish_non_exhaustive()
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
