//! The app's side: [`SessionHandle`] (cheap to clone, shared by threads), its [`Builder`], and
//! [`Call`], one request's conversation with the session.
//!
//! Every caller runs its own transitions on the driver core ([`auth_driver::Core`]) under its
//! short lock: `submit` returns the first send at once when the session holds a usable token,
//! `respond` with an accepted answer returns the delivery at once. A caller that must wait (for
//! a login or a refresh) parks its thread with a waker that unparks it, bounded by its own
//! deadline.

use std::fmt;
use std::io;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use auth_core::{AccessToken, Config, RequestError, RequestSpec, SessionState, Verdict};
use auth_driver::{start_session, Conversation, Core, Ended, LogoutError, SharedLink, Stats, Turn};
use auth_store::shared::SharedStore;
use tracing::{info, warn, Dispatch};
use zeroize::Zeroizing;

use crate::backend::Backend;
use crate::background::{restore_or_new, Background};
use crate::clock::{wall_now, Clock};
use crate::park;
use crate::published::Published;
use crate::shared::{read_at_start, Watched};
use crate::store::{MemoryStore, StoreError, TokenStore};

/// How often a session on a shared store reads the record by default
/// ([`Builder::watch_interval`]).
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How much longer than the session's `queue_timeout` a caller waits by default: the session
/// itself answers a waiting request by its queue deadline, so this only covers a driver that
/// cannot answer (a hung store, an overloaded machine).
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// A handle to one session. Clone it freely and share it between threads: every clone talks to
/// the same session. The session's background thread (timer, login, refresh, store) stops when
/// the last handle and the last [`Call`] are dropped (after a login or refresh in flight
/// finished, so rotated tokens are persisted), or at [`SessionHandle::shutdown`].
#[derive(Clone, Debug)]
pub struct SessionHandle {
    link: Arc<Link>,
    wait: Duration,
}

/// Configures and starts a session; from [`SessionHandle::builder`].
#[derive(Debug)]
pub struct Builder<B, S = MemoryStore> {
    backend: B,
    store: S,
    /// Set by [`Builder::shared_store`]: the session is shared and `store` is unused.
    shared: Option<SharedLink>,
    watch_interval: Duration,
    config: Config,
    /// The `session` label of the session's metrics ([`Builder::name`]).
    name: Option<String>,
    wait: Option<Duration>,
}

/// Why a [`Call`] (or a handle's request, or [`SessionHandle::logout`]) did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The session refused or gave up on the request; the [`RequestError`] says what the caller
    /// can do (log in again after `LoggedOut`/`LoginRequired`, retry later after `Timeout`,
    /// `AuthUnavailable`, `CircuitOpen`, `QueueFull`, and `StoreUnavailable` for a
    /// [`Builder::shared_store`] that could not be reached).
    #[error(transparent)]
    Session(#[from] RequestError),
    /// The caller's wait ran out before the session answered; the request was cancelled (it is
    /// never sent after this).
    #[error("gave up waiting for the session; the request was cancelled")]
    TimedOut,
    /// The session's driver has stopped ([`SessionHandle::shutdown`], or the last handle and
    /// call were dropped).
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
    /// user that signing out could not be completed on this device. For a
    /// [`Builder::shared_store`]: the logout's tombstone was not written by the operation
    /// deadline; the store's own error is the source of the [`StoreError::Io`].
    #[error("logged out, but the stored session could not be cleared")]
    LogoutNotDurable(#[source] StoreError),
}

/// One request's conversation with the session: the session says when to send (with which
/// token), the caller sends and reports how the API answered, until the session says done.
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
/// [`SessionHandle::request`] runs this loop for you. When the session is signed in, the first
/// [`Call::next_step`] and the one after an accepted [`Call::respond`] return at once; otherwise
/// it waits at most until the call's deadline (the handle's wait timeout from the call's start,
/// or [`Call::timeout`]). When that runs out, or when the `Call` is dropped before it is done,
/// the request is cancelled: it is never sent after that.
#[derive(Debug)]
#[must_use = "a call does nothing until `next_step` is called"]
pub struct Call<T> {
    link: Arc<Link>,
    conversation: Conversation<T>,
    deadline: Instant,
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

/// What the handles and calls of one session share. When the last of them drops it, the core is
/// stopped and the background thread ends.
struct Link {
    core: Arc<Core>,
    clock: Clock,
    published: Arc<Published>,
}

impl CallError {
    /// Why a [`Call`]'s conversation with the driver core ended.
    fn ended(ended: Ended) -> Self {
        match ended {
            Ended::Session(error) => CallError::Session(error),
            Ended::ResponseMissing => CallError::ResponseMissing,
            // `Stopped`, and reasons of a later driver core.
            _ => CallError::Stopped,
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.core.stop();
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("state", &self.published.state())
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// A builder with `backend`, the default [`Config`] and an empty [`MemoryStore`].
    pub fn builder<B: Backend>(backend: B) -> Builder<B> {
        Builder {
            backend,
            store: MemoryStore::new(),
            shared: None,
            watch_interval: DEFAULT_WATCH_INTERVAL,
            config: Config::default(),
            name: None,
            wait: None,
        }
    }

    /// Starts a request with the session: it is submitted at once, so it keeps its place in
    /// line; [`Call::next_step`] says what to do.
    pub fn call<T>(&self, spec: RequestSpec) -> Call<T> {
        Call {
            conversation: Conversation::begin(&self.link.core, spec, self.link.clock.now()),
            link: Arc::clone(&self.link),
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
    /// brings it back (on a [`Builder::shared_store`], the tombstone is written: every process
    /// sharing the store follows it, within its watch interval). If the store could not be cleared, this returns
    /// [`CallError::LogoutNotDurable`]; the session in memory is logged out either way, and
    /// calling `logout` again retries the clear. Waits for the clear at most the handle's wait
    /// timeout ([`CallError::TimedOut`]: logged out in memory, the clear still under way).
    pub fn logout(&self) -> Result<(), CallError> {
        let core = &self.link.core;
        let ticket = core.logout(self.link.clock.now());
        match park::block_until(deadline_after(self.wait), |waker| {
            core.poll_logout(ticket, waker)
        }) {
            Some(Ok(())) => Ok(()),
            Some(Err(LogoutError::NotDurable(error))) => Err(CallError::LogoutNotDurable(error)),
            Some(Err(_)) => Err(CallError::Stopped),
            None => {
                core.forget_logout(ticket);
                Err(CallError::TimedOut)
            }
        }
    }

    /// Asks for a silent login: after a logout, after `LoginRequired` once the user acted, or to
    /// log in before the first request. Returns once the login has started (or was ignored
    /// because a session is held); [`SessionHandle::wait_for`] or [`SessionHandle::events`]
    /// tell the result.
    pub fn login(&self) -> Result<(), CallError> {
        let core = &self.link.core;
        if core.is_stopped() {
            return Err(CallError::Stopped);
        }
        core.login(self.link.clock.now());
        Ok(())
    }

    /// Stops the session: requests still waiting fail with [`CallError::Stopped`] at once, and
    /// so does every later use of any clone of this handle. Returns once the login or refresh
    /// in flight (if any) has finished and its tokens are persisted, and the background thread
    /// has ended, waiting at most `wait` ([`CallError::TimedOut`] otherwise: the thread still
    /// ends, by the operation's deadline).
    pub fn shutdown(&self, wait: Duration) -> Result<(), CallError> {
        self.link.core.stop();
        if self.link.published.wait_finished(wait) {
            Ok(())
        } else {
            Err(CallError::TimedOut)
        }
    }

    /// The session's state now: `Active` is signed in, `LoggedOut` signed out, `LoginRequired`
    /// needs the user.
    pub fn state(&self) -> SessionState {
        self.link.published.state()
    }

    /// Waits at most `timeout` until the session's state satisfies `done`; `Err` holds the
    /// state when the wait ran out. A state that comes and goes within the wait may be missed:
    /// [`SessionHandle::events`] sees every change.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl FnMut(SessionState) -> bool,
    ) -> Result<SessionState, SessionState> {
        self.link.published.wait_for(timeout, done)
    }

    /// Every change of the session's state from now on, starting with the current state. The
    /// channel closes when the session's background thread ends; dropping the receiver
    /// unsubscribes.
    pub fn events(&self) -> Receiver<SessionState> {
        self.link.published.subscribe()
    }

    /// What the session did since it started (requests and their outcomes, resends, waits,
    /// logins, refreshes, a shared store's answers) and where it stands (state, queue, circuit
    /// breaker). Cheap: a copy of counters the session keeps anyway, under its short lock. The
    /// same events go to the `metrics` recorder, if the app installed one.
    pub fn stats(&self) -> Stats {
        self.link.core.stats()
    }

    /// How long a [`Call`] (and `logout`) waits for the session by default.
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
}

impl<B: Backend, S: TokenStore> Builder<B, S> {
    /// The session's configuration (timeouts, retries, queue size...).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Where tokens persist between runs, for this process alone: two processes on one
    /// [`crate::FileStore`] would each refresh with the same refresh token. Processes that
    /// share a session use [`Builder::shared_store`]. Replaces a [`Builder::shared_store`] set
    /// before.
    pub fn store<S2: TokenStore>(self, store: S2) -> Builder<B, S2> {
        Builder {
            backend: self.backend,
            store,
            shared: None,
            watch_interval: self.watch_interval,
            config: self.config,
            name: self.name,
            wait: self.wait,
        }
    }

    /// Shares the session with every process (and every session of this process) using the
    /// same `store`: any [`SharedStore`] backend (memory, file on one host, Redis for a fleet).
    /// Replaces the [`Builder::store`] (last one wins).
    ///
    /// Then at most one login or refresh runs at a time across all of them, a refresh token is
    /// never presented twice, new tokens reach every process (they adopt them instead of
    /// refreshing), and a logout anywhere ends the session everywhere, restarts included. The
    /// rules are auth-core's (`Session::shared`); this driver only makes the store calls it
    /// asks for, each on a thread of its own bounded by `Config::operation_timeout`: a store
    /// that fails or does not answer in time is unavailable, and requests that need new tokens
    /// then fail with [`RequestError::StoreUnavailable`] while the others go on. The lease
    /// owner of each operation is a random id of this session instance plus the operation id.
    pub fn shared_store<T: SharedStore>(mut self, store: T) -> Self {
        self.shared = Some(SharedLink::new(store));
        self
    }

    /// Names the session in its metrics: every metric it emits carries the label
    /// `session = name` (see [`Stats`] and `docs/integration.md`, "Metrics"). For an app with
    /// a few sessions (one per API or service); never a user id or anything else unbounded.
    /// Without a name the metrics carry no `session` label.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How often a session on a [`Builder::shared_store`] reads the record to notice what
    /// other processes did ([`DEFAULT_WATCH_INTERVAL`]: 1 s): a logout elsewhere reaches this
    /// session within about one interval (its waiting and later requests then fail with
    /// `LoggedOut`), tokens refreshed elsewhere are adopted without a refresh. Each read is one
    /// call to the store per session, from a watcher thread. `Duration::ZERO` turns the reads
    /// off: other processes' changes then arrive only when this session next needs the lease.
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.watch_interval = interval;
        self
    }

    /// How long a [`Call`] (and `logout`) waits for the session before giving up and
    /// cancelling. Default: the config's `queue_timeout` plus 5 seconds.
    pub fn wait_timeout(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Loads the store, restores the stored session (or starts anonymous), and starts the
    /// session's background thread. An unreadable store counts as empty (logged). Fails only
    /// if a thread cannot be spawned.
    ///
    /// On a [`Builder::shared_store`]: reads the record (bounded by the operation timeout,
    /// retried every 100 ms within it while the store cannot be reached) and starts from it:
    /// `Active` with its tokens, `LoggedOut` after a logout anywhere, `Anonymous` on an empty
    /// store. A store still unreachable after that starts `Anonymous` without the record, which
    /// is safe: every login first takes the lease, whose answer carries the real record (a
    /// logout there is followed, tokens there adopted), and until the store answers, requests
    /// that need tokens fail with `StoreUnavailable`; nothing is sent with a token it did not
    /// read.
    ///
    /// The driver's threads, and its state-change logs, go to the `tracing` dispatcher current
    /// here.
    pub fn start(self) -> io::Result<SessionHandle> {
        let wait = self
            .wait
            .unwrap_or_else(|| self.config.queue_timeout.saturating_add(WAIT_MARGIN));
        let operation_timeout = self.config.operation_timeout;
        let clock = Clock::start();
        let (session, restored, watched) = match self.shared {
            Some(link) => {
                let record = read_at_start(&link, operation_timeout);
                let session = start_session(self.config, record.as_ref(), clock.now(), wall_now());
                let read = record.is_some();
                let watched = Watched {
                    link,
                    interval: self.watch_interval,
                    start: record,
                };
                (session, read, Some(watched))
            }
            None => {
                let stored = match self.store.load() {
                    Ok(stored) => stored,
                    Err(error) => {
                        warn!(%error, "stored session unreadable; starting without one");
                        None
                    }
                };
                let restored = stored.is_some();
                let session = restore_or_new(self.config, stored, clock.now());
                (session, restored, None)
            }
        };
        let published = Arc::new(Published::new(session.state()));
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let span = tracing::info_span!("session", restored);
        let on_state = {
            let (published, dispatch, span) =
                (Arc::clone(&published), dispatch.clone(), span.clone());
            // Runs on whichever thread made the change, under the core's lock: log to the
            // session's dispatcher, publish, nothing more.
            move |state: SessionState| {
                tracing::dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| info!(?state, "session state"));
                });
                published.set(state);
            }
        };
        let core = Arc::new(Core::named(
            session,
            Box::new(on_state),
            self.name.as_deref(),
        ));
        let background = Background::new(
            Arc::clone(&core),
            self.backend,
            self.store,
            watched,
            clock,
            Arc::clone(&published),
            operation_timeout,
            dispatch,
            span,
        );
        let link = Link {
            core,
            clock,
            published,
        };
        thread::Builder::new()
            .name("seamless-session".into())
            .spawn(move || background.run())?;
        Ok(SessionHandle {
            link: Arc::new(link),
            wait,
        })
    }
}

impl<T> Call<T> {
    /// The session's next step: send (again), or done. Returns at once when the step is known
    /// (a signed-in session's first send, the delivery after an accepted answer); otherwise
    /// waits for it, at most until the call's deadline.
    ///
    /// `Err` ends the call: the session failed the request ([`CallError::Session`]), the wait
    /// ran out ([`CallError::TimedOut`], the request is cancelled), or the driver stopped.
    pub fn next_step(&mut self) -> Result<Next<T>, CallError> {
        let (core, conversation) = (&self.link.core, &mut self.conversation);
        let Some(turn) =
            park::block_until(self.deadline, |waker| conversation.poll_next(core, waker))
        else {
            conversation.cancel(core, || self.link.clock.now());
            return Err(CallError::TimedOut);
        };
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
    pub fn respond(&mut self, response: T, verdict: Verdict) {
        let link = &self.link;
        self.conversation
            .respond(&link.core, response, verdict, link.clock.now());
    }

    /// The same call with another wait: [`Call::next_step`] gives up `timeout` from now.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = deadline_after(timeout);
        self
    }

    /// Gives up on the request: it is never sent after this, and the call is done. A call whose
    /// outcome already arrived keeps it.
    pub fn cancel(&mut self) {
        let link = &self.link;
        self.conversation.cancel(&link.core, || link.clock.now());
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
