//! The app's side: [`SessionHandle`] (cheap to clone), its [`Builder`], and [`Call`], one request's
//! conversation with the driver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use auth_core::{
    AccessToken, Config, Outcome, RequestError, RequestId, RequestSpec, SessionState, Verdict,
};
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{warn, Instrument};
use zeroize::Zeroizing;

use crate::backend::Backend;
use crate::clock::Clock;
use crate::driver::{restore_or_new, Driver, Msg, Step, Ticket};
use crate::store::{MemoryStore, StoreError, TokenStore};

/// A handle to one session driven by its own tokio task. Clone it freely: every clone talks to
/// the same session. The driver stops when the last handle and the last [`Call`] are dropped.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    tx: mpsc::UnboundedSender<Msg>,
    state: watch::Receiver<SessionState>,
    tickets: Arc<AtomicU64>,
}

/// Configures and starts a session; from [`SessionHandle::builder`].
#[derive(Debug)]
pub struct Builder<B, S = MemoryStore> {
    backend: B,
    store: S,
    config: Config,
}

/// Why a [`Call`] ended without a response to deliver, or why [`SessionHandle::logout`] could
/// not promise that the logout survives a restart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The session refused or gave up on the request; the variant says what the caller can do
    /// (log in again, retry later...).
    #[error(transparent)]
    Session(#[from] RequestError),
    /// The session's driver task is gone (its runtime shut down).
    #[error("the session driver has stopped")]
    Stopped,
    /// [`Call::next`] was called again before [`Call::respond`] answered the last attempt: a
    /// bug in the integration.
    #[error("the last attempt was not answered with Call::respond")]
    ResponseMissing,
    /// From [`SessionHandle::logout`] only: the session is logged out in memory (nothing
    /// refreshes or logs in, requests fail with `LoggedOut`), but the store could not be
    /// cleared, so a restart would sign the user back in with the stored tokens. Call
    /// `logout()` again to retry the clear (after fixing the store, e.g. freeing the disk), or
    /// remove the stored session yourself; until one succeeds, do not tell the user they are
    /// signed out for good.
    #[error(
        "logged out, but the stored session could not be removed; a restart would sign back in"
    )]
    LogoutNotDurable(#[source] StoreError),
}

/// One request's conversation with the session: the driver says when to send (with which
/// token), the caller sends and reports how the API answered, until the driver says done.
///
/// ```text
/// let mut call = session.call(RequestSpec::bearer());
/// loop {
///     match call.next().await? {
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
/// Dropping a `Call` before it is done cancels the request: it is never sent after the drop
/// (a send already under way is the caller's own future, dropped with it).
#[derive(Debug)]
#[must_use = "a call does nothing until `next` is awaited"]
pub struct Call<T> {
    tx: mpsc::UnboundedSender<Msg>,
    ticket: Ticket,
    state: CallState,
    held: Option<T>,
}

#[derive(Debug)]
enum CallState {
    /// Waiting for the driver's next step.
    Waiting(oneshot::Receiver<Step>),
    /// The caller is sending attempt `attempt`; [`Call::respond`] answers it.
    Sending { id: RequestId, attempt: u16 },
    /// An accepted response is held for the caller; the next [`Call::next`] hands it over.
    Accepted,
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

impl SessionHandle {
    /// A builder with `backend`, the default [`Config`] and an empty [`MemoryStore`].
    pub fn builder<B: Backend>(backend: B) -> Builder<B> {
        Builder {
            backend,
            store: MemoryStore::new(),
            config: Config::default(),
        }
    }

    /// Starts a request with the session. Nothing happens until [`Call::next`] is awaited
    /// (the submit itself is sent at once, so the request keeps its place in line).
    pub fn call<T>(&self, spec: RequestSpec) -> Call<T> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let state = match self.tx.send(Msg::Submit {
            ticket,
            spec,
            reply,
        }) {
            Ok(()) => CallState::Waiting(rx),
            Err(_) => CallState::Done,
        };
        Call {
            tx: self.tx.clone(),
            ticket,
            state,
            held: None,
        }
    }

    /// The user logs out: waiting requests fail with `LoggedOut`, nothing refreshes or logs in
    /// until [`SessionHandle::login`], and the store is cleared before this returns.
    ///
    /// `Ok` means the logout is durable: no restart from the store brings the session back.
    /// [`CallError::LogoutNotDurable`] means the store could not be cleared; the session is
    /// logged out in memory all the same, and calling `logout()` again retries the clear.
    pub async fn logout(&self) -> Result<(), CallError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Msg::Logout { done })
            .map_err(|_| CallError::Stopped)?;
        rx.await
            .map_err(|_| CallError::Stopped)?
            .map_err(CallError::LogoutNotDurable)
    }

    /// Asks for a silent login: after a logout, after `LoginRequired` once the user acted, or to
    /// log in before the first request. Returns once the login has started (or was ignored
    /// because a session is held); watch [`SessionHandle::state`] for the result.
    pub async fn login(&self) -> Result<(), CallError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Msg::Login { done })
            .map_err(|_| CallError::Stopped)?;
        rx.await.map_err(|_| CallError::Stopped)
    }

    /// The session's state now.
    pub fn current_state(&self) -> SessionState {
        *self.state.borrow()
    }

    /// A `watch` of the session's state: `Active` is signed in, `LoggedOut` signed out,
    /// `LoginRequired` needs the user. `changed().await` / `wait_for(..)` follow it.
    pub fn state(&self) -> watch::Receiver<SessionState> {
        self.state.clone()
    }
}

impl<B: Backend, S: TokenStore> Builder<B, S> {
    /// The session's configuration (timeouts, retries, queue size...).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where tokens persist between runs.
    pub fn store<S2: TokenStore>(self, store: S2) -> Builder<B, S2> {
        Builder {
            backend: self.backend,
            store,
            config: self.config,
        }
    }

    /// Loads the store, restores the stored session (or starts anonymous), and spawns the driver
    /// task on the current tokio runtime. An unreadable store counts as empty (logged).
    pub async fn start(self) -> SessionHandle {
        let stored = match self.store.load().await {
            Ok(stored) => stored,
            Err(error) => {
                warn!(%error, "stored session unreadable; starting without one");
                None
            }
        };
        let restored = stored.is_some();
        let clock = Clock::start();
        let session = restore_or_new(self.config, stored, clock.now());
        let (state_tx, state_rx) = watch::channel(session.state());
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver::new(
            session,
            clock,
            Arc::new(self.backend),
            Arc::new(self.store),
            rx,
            state_tx,
        );
        let span = tracing::info_span!("session", restored);
        tokio::spawn(driver.run().instrument(span));
        SessionHandle {
            tx,
            state: state_rx,
            tickets: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl<T> Call<T> {
    /// Waits for the session's next step: send (again), or done.
    ///
    /// `Err` ends the call: the session failed the request ([`CallError::Session`]), or the
    /// driver stopped.
    pub async fn next(&mut self) -> Result<Next<T>, CallError> {
        let rx = match &mut self.state {
            CallState::Waiting(rx) => rx,
            CallState::Accepted => {
                self.state = CallState::Done;
                return self
                    .held
                    .take()
                    .map(Next::Deliver)
                    .ok_or(CallError::Stopped);
            }
            CallState::Sending { .. } => return Err(CallError::ResponseMissing),
            CallState::Done => return Err(CallError::Stopped),
        };
        let step = rx.await;
        match step {
            Ok(Step::Send { id, attempt, token }) => {
                self.held = None;
                self.state = CallState::Sending { id, attempt };
                Ok(Next::Send(Attempt {
                    number: attempt,
                    token,
                }))
            }
            Ok(Step::Done(Outcome::Deliver)) => {
                self.state = CallState::Done;
                // The core delivers only after a response, which `respond` holds.
                self.held
                    .take()
                    .map(Next::Deliver)
                    .ok_or(CallError::Stopped)
            }
            Ok(Step::Done(Outcome::Fail(error))) => {
                self.state = CallState::Done;
                self.held = None;
                Err(CallError::Session(error))
            }
            Err(_) => {
                self.state = CallState::Done;
                Err(CallError::Stopped)
            }
        }
    }

    /// Answers the attempt [`Call::next`] just returned: the response (or the transport error,
    /// as `T`) and how the API answered. A transport error is [`Verdict::Accepted`]: it is
    /// delivered as is. Calling it at any other time does nothing.
    ///
    /// An accepted response is handed over by the next [`Call::next`] without waiting for the
    /// driver: auth-core completes an accepted answer to the current send with `Deliver`, always
    /// and at once, so the round trip through the driver task would only add latency (it halves
    /// the task wake-ups of a request; see docs/performance.md). The driver still gets the
    /// response, to forget the request.
    pub fn respond(&mut self, response: T, verdict: Verdict) {
        let CallState::Sending { id, attempt } = self.state else {
            return;
        };
        let (reply, rx) = oneshot::channel();
        self.held = Some(response);
        let sent = self.tx.send(Msg::Response {
            id,
            attempt,
            verdict,
            reply,
        });
        self.state = match (sent, verdict) {
            (Ok(()), Verdict::Accepted) => CallState::Accepted,
            (Ok(()), Verdict::Rejected) => CallState::Waiting(rx),
            (Err(_), _) => CallState::Done,
        };
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        if !matches!(self.state, CallState::Done | CallState::Accepted) {
            let _ = self.tx.send(Msg::Cancel {
                ticket: self.ticket,
            });
        }
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
