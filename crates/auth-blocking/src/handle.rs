//! The app's side: [`SessionHandle`] (cheap to clone, shared by threads), its [`Builder`], and
//! [`Call`], one request's conversation with the driver thread.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use auth_core::{
    AccessToken, Config, Outcome, RequestError, RequestId, RequestSpec, SessionState, Verdict,
};
use tracing::warn;
use zeroize::Zeroizing;

use crate::backend::Backend;
use crate::clock::Clock;
use crate::driver::{self, Driver, Msg, StateCell, Step, Ticket};
use crate::store::{MemoryStore, StoreError, TokenStore};

/// How much longer than the session's `queue_timeout` a caller waits by default: the session
/// itself answers a waiting request by its queue deadline, so this only covers a driver that
/// cannot answer (a hung store, an overloaded machine).
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// A handle to one session driven by its own thread. Clone it freely and share it between
/// threads: every clone talks to the same session. The driver thread stops when the last handle
/// and the last [`Call`] are dropped (after a login or refresh in flight finished, so rotated
/// tokens are persisted), or at [`SessionHandle::shutdown`].
#[derive(Clone, Debug)]
pub struct SessionHandle {
    link: Arc<Link>,
    state: Arc<StateCell>,
    tickets: Arc<AtomicU64>,
    wait: Duration,
}

/// Configures and starts a session; from [`SessionHandle::builder`].
#[derive(Debug)]
pub struct Builder<B, S = MemoryStore> {
    backend: B,
    store: S,
    config: Config,
    wait: Option<Duration>,
}

/// Why a [`Call`] (or a handle's request, or [`SessionHandle::logout`]) did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The session refused or gave up on the request; the [`RequestError`] says what the caller
    /// can do (log in again after `LoggedOut`/`LoginRequired`, retry later after `Timeout`,
    /// `AuthUnavailable`, `CircuitOpen`, `QueueFull`).
    #[error(transparent)]
    Session(#[from] RequestError),
    /// The caller's wait ran out before the session answered; the request was cancelled (it is
    /// never sent after this).
    #[error("gave up waiting for the session; the request was cancelled")]
    TimedOut,
    /// The session's driver thread has stopped ([`SessionHandle::shutdown`]).
    #[error("the session driver has stopped")]
    Stopped,
    /// [`Call::next_step`] was called again before [`Call::respond`] answered the last attempt: a
    /// bug in the integration.
    #[error("the last attempt was not answered with Call::respond")]
    ResponseMissing,
    /// From [`SessionHandle::logout`]: the session is logged out in this process, but the store
    /// could not be cleared (read-only file system, permissions...), so a restart, or another
    /// process sharing the store, may come back signed in with the stored tokens. Fix the cause
    /// if you can and call `logout` again: it retries the clear. If it keeps failing, tell the
    /// user that signing out could not be completed on this device.
    #[error("logged out, but the stored session could not be cleared")]
    LogoutNotDurable(#[source] StoreError),
}

/// One request's conversation with the session: the driver says when to send (with which
/// token), the caller sends and reports how the API answered, until the driver says done.
///
/// ```text
/// let mut call = session.call(RequestSpec::bearer());
/// loop {
///     match call.next_step()? {
///         Next::Send(attempt) => {
///             let response = send(request_with(attempt.bearer()));
///             let verdict = verdict_of(&response); // Verdict::Accepted for a transport error
///             call.respond(response, verdict);
///         }
///         Next::Deliver(response) => return Ok(response),
///     }
/// }
/// ```
///
/// [`SessionHandle::request`] runs this loop for you. [`Call::next_step`] waits at most until the
/// call's deadline (the handle's wait timeout from the call's start, or [`Call::timeout`]); when
/// it runs out, or when the `Call` is dropped before it is done, the request is cancelled: it
/// is never sent after that.
#[derive(Debug)]
#[must_use = "a call does nothing until `next` is called"]
pub struct Call<T> {
    link: Arc<Link>,
    ticket: Ticket,
    rx: Receiver<Step>,
    state: CallState,
    held: Option<T>,
    deadline: Instant,
}

#[derive(Clone, Copy, Debug)]
enum CallState {
    /// Waiting for the driver's next step.
    Waiting,
    /// The caller is sending attempt `attempt`; [`Call::respond`] answers it.
    Sending { id: RequestId, attempt: u16 },
    /// An accepted response is held for the caller; the next [`Call::next_step`] hands it over.
    Accepted,
    /// Delivered, failed, timed out or stopped.
    Done,
}

/// What to do next in a [`Call`].
#[derive(Debug)]
pub enum Next<T> {
    /// Send the request now, with [`Attempt::bearer`]; then [`Call::respond`].
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

/// The sending side of the driver's channel. When the last handle and call drop it, the driver
/// is told to stop.
#[derive(Debug)]
struct Link {
    tx: Sender<Msg>,
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown { done: None });
    }
}

impl SessionHandle {
    /// A builder with `backend`, the default [`Config`] and an empty [`MemoryStore`].
    pub fn builder<B: Backend>(backend: B) -> Builder<B> {
        Builder {
            backend,
            store: MemoryStore::new(),
            config: Config::default(),
            wait: None,
        }
    }

    /// Starts a request with the session. The submit goes out at once, so the request keeps its
    /// place in line; [`Call::next_step`] says what to do.
    pub fn call<T>(&self, spec: RequestSpec) -> Call<T> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = mpsc::channel();
        let state = match self.link.tx.send(Msg::Submit {
            ticket,
            spec,
            reply,
        }) {
            Ok(()) => CallState::Waiting,
            Err(_) => CallState::Done,
        };
        Call {
            link: Arc::clone(&self.link),
            ticket,
            rx,
            state,
            held: None,
            deadline: deadline_after(self.wait),
        }
    }

    /// Runs a whole request: `send` is called for every attempt with its token and returns the
    /// response and how the API answered (a transport error is [`Verdict::Accepted`]: it is
    /// delivered as is). Returns the response to deliver.
    pub fn request<T>(
        &self,
        spec: RequestSpec,
        mut send: impl FnMut(&Attempt) -> (T, Verdict),
    ) -> Result<T, CallError> {
        let mut call = self.call(spec);
        loop {
            match call.next_step()? {
                Next::Send(attempt) => {
                    let (response, verdict) = send(&attempt);
                    call.respond(response, verdict);
                }
                Next::Deliver(response) => return Ok(response),
            }
        }
    }

    /// The user logs out: waiting requests fail with `LoggedOut`, the store is cleared, and
    /// nothing refreshes or logs in until [`SessionHandle::login`].
    ///
    /// `Ok` means the logout is durable: the store no longer holds the session, so no restart
    /// brings it back. If the store could not be cleared, this returns
    /// [`CallError::LogoutNotDurable`]; the session in memory is logged out either way, and
    /// calling `logout` again retries the clear.
    pub fn logout(&self) -> Result<(), CallError> {
        let (done, rx) = mpsc::channel();
        self.ask(Msg::Logout { done }, &rx)?
            .map_err(CallError::LogoutNotDurable)
    }

    /// Asks for a silent login: after a logout, after `LoginRequired` once the user acted, or to
    /// log in before the first request. Returns once the login has started (or was ignored
    /// because a session is held); [`SessionHandle::wait_for`] or [`SessionHandle::events`]
    /// tell the result.
    pub fn login(&self) -> Result<(), CallError> {
        let (done, rx) = mpsc::channel();
        self.ask(Msg::Login { done }, &rx)
    }

    /// Stops the driver thread once the login or refresh in flight (if any) has finished and its
    /// tokens are persisted, waiting at most `wait`. Requests still waiting fail with
    /// [`CallError::Stopped`]; so does every later use of any clone of this handle.
    pub fn shutdown(&self, wait: Duration) -> Result<(), CallError> {
        let (done, rx) = mpsc::channel();
        self.link
            .tx
            .send(Msg::Shutdown { done: Some(done) })
            .map_err(|_| CallError::Stopped)?;
        match rx.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(CallError::TimedOut),
        }
    }

    /// The session's state now: `Active` is signed in, `LoggedOut` signed out, `LoginRequired`
    /// needs the user.
    pub fn state(&self) -> SessionState {
        self.state.get()
    }

    /// Waits at most `timeout` until the session's state satisfies `done`; `Err` holds the
    /// state when the wait ran out. A state that comes and goes within the wait may be missed:
    /// [`SessionHandle::events`] sees every change.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl FnMut(SessionState) -> bool,
    ) -> Result<SessionState, SessionState> {
        self.state.wait_for(timeout, done)
    }

    /// Every change of the session's state from now on, starting with the current state. The
    /// channel closes when the driver stops; dropping the receiver unsubscribes.
    pub fn events(&self) -> Receiver<SessionState> {
        let (events, rx) = mpsc::channel();
        let _ = self.link.tx.send(Msg::Subscribe { events });
        rx
    }

    /// How long a [`Call`] waits for the session by default.
    pub fn wait_timeout(&self) -> Duration {
        self.wait
    }

    /// A handle to the same session whose calls wait at most `wait` (e.g. for a UI thread that
    /// must not block long).
    pub fn with_wait_timeout(&self, wait: Duration) -> SessionHandle {
        SessionHandle {
            wait,
            ..self.clone()
        }
    }

    /// Sends `message` and waits (at most the handle's wait timeout) for its answer on `done`.
    fn ask<R>(&self, message: Msg, done: &Receiver<R>) -> Result<R, CallError> {
        self.link.tx.send(message).map_err(|_| CallError::Stopped)?;
        match done.recv_timeout(self.wait) {
            Ok(answer) => Ok(answer),
            Err(RecvTimeoutError::Timeout) => Err(CallError::TimedOut),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::Stopped),
        }
    }
}

impl<B: Backend, S: TokenStore> Builder<B, S> {
    /// The session's configuration (timeouts, retries, queue size...).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where tokens persist between runs: a [`crate::FileStore`] makes refreshes single flight
    /// across the processes that share it.
    pub fn store<S2: TokenStore>(self, store: S2) -> Builder<B, S2> {
        Builder {
            backend: self.backend,
            store,
            config: self.config,
            wait: self.wait,
        }
    }

    /// How long a [`Call`] (and `logout`/`login`) waits for the session before giving up and
    /// cancelling. Default: the config's `queue_timeout` plus 5 seconds.
    pub fn wait_timeout(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Loads the store, restores the stored session (or starts anonymous), and starts the driver
    /// thread. An unreadable store counts as empty (logged). Fails only if the thread cannot be
    /// spawned.
    ///
    /// The driver's threads log to the `tracing` dispatcher current here.
    pub fn start(self) -> io::Result<SessionHandle> {
        let stored = match self.store.load() {
            Ok(stored) => stored,
            Err(error) => {
                warn!(%error, "stored session unreadable; starting without one");
                None
            }
        };
        let restored = stored.is_some();
        let clock = Clock::start();
        let session = driver::restore_or_new(self.config, stored, clock.now());
        let state = Arc::new(StateCell::new(session.state()));
        let (tx, rx) = driver::channel();
        let span = tracing::info_span!("session", restored);
        let driver = Driver::new(
            session,
            clock,
            self.backend,
            self.store,
            rx,
            tx.clone(),
            Arc::clone(&state),
            span,
        );
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        thread::Builder::new()
            .name("seamless-session".into())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || driver.run()))?;
        Ok(SessionHandle {
            link: Arc::new(Link { tx }),
            state,
            tickets: Arc::new(AtomicU64::new(1)),
            wait: self
                .wait
                .unwrap_or_else(|| self.config.queue_timeout.saturating_add(WAIT_MARGIN)),
        })
    }
}

impl<T> Call<T> {
    /// Waits for the session's next step: send (again), or done.
    ///
    /// `Err` ends the call: the session failed the request ([`CallError::Session`]), the wait
    /// ran out ([`CallError::TimedOut`], the request is cancelled), or the driver stopped.
    pub fn next_step(&mut self) -> Result<Next<T>, CallError> {
        match self.state {
            CallState::Waiting => {}
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
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
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
            Err(RecvTimeoutError::Timeout) => {
                self.cancel();
                Err(CallError::TimedOut)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.state = CallState::Done;
                Err(CallError::Stopped)
            }
        }
    }

    /// Answers the attempt [`Call::next_step`] just returned: the response (or the transport error,
    /// as `T`) and how the API answered. A transport error is [`Verdict::Accepted`]: it is
    /// delivered as is. Calling it at any other time does nothing.
    pub fn respond(&mut self, response: T, verdict: Verdict) {
        let CallState::Sending { id, attempt } = self.state else {
            return;
        };
        self.held = Some(response);
        let sent = self.link.tx.send(Msg::Response {
            id,
            attempt,
            verdict,
        });
        // auth-core completes an accepted answer to the current send with `Deliver`, always and
        // at once (`Session::handle_response`): hand it over without a round trip to the driver.
        self.state = match (sent, verdict) {
            (Ok(()), Verdict::Accepted) => CallState::Accepted,
            (Ok(()), Verdict::Rejected) => CallState::Waiting,
            (Err(_), _) => CallState::Done,
        };
    }

    /// The same call with another wait: [`Call::next_step`] gives up `timeout` from now.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = deadline_after(timeout);
        self
    }

    /// Gives up on the request: it is never sent after this, and the call is done.
    pub fn cancel(&mut self) {
        if !matches!(self.state, CallState::Done | CallState::Accepted) {
            self.state = CallState::Done;
            self.held = None;
            let _ = self.link.tx.send(Msg::Cancel {
                ticket: self.ticket,
            });
        }
    }
}

impl<T> Drop for Call<T> {
    fn drop(&mut self) {
        self.cancel();
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

    /// The `Authorization` header value, `Bearer <token>`, wiped when dropped; `None` for a
    /// public request.
    pub fn bearer(&self) -> Option<Zeroizing<String>> {
        let token = self.token.as_ref()?;
        Some(Zeroizing::new(format!("Bearer {}", token.expose_secret())))
    }
}

/// `wait` from now; a wait too long to represent means thirty years.
fn deadline_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 60 * 60))
}
