//! The app's side: [`SessionHandle`] (cheap to clone), its [`Builder`], and [`CallError`].

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Config, RequestError, RequestSpec, Session, SessionState};
use auth_driver::{
    no_answer, start_session, Core, Ended, LogoutError, LogoutTicket, SharedLink, StartRead, Stats,
};
use auth_store::shared::{Record, SharedStore};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::backend::Backend;
use crate::background::{self, Finished, Watched};
use crate::call::Call;
use crate::clock::{wall_now, Clock};
use crate::store::{MemoryStore, StoreError, TokenStore};

/// A handle to one session. Clone it freely: every clone talks to the same session.
///
/// Requests run their own transitions on the session (no hand-off to another task when the
/// session is `Active`); one background task runs logins, refreshes, persists and the timer.
/// The session stops when the last handle and the last [`Call`] are dropped, or at
/// [`SessionHandle::shutdown`]; its background task then lets a login or refresh in flight
/// finish (bounded by its deadline) and persists its tokens, so a rotated refresh token is not
/// lost.
#[derive(Clone)]
pub struct SessionHandle {
    link: Arc<Link>,
}

/// What the handles and calls of one session share; its last drop stops the session.
pub(crate) struct Link {
    pub(crate) core: Arc<Core>,
    pub(crate) clock: Clock,
    events: watch::Receiver<SessionState>,
    finished: Finished,
}

/// How often a session on a shared store reads the record by default
/// ([`Builder::watch_interval`]).
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

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
}

/// Why a [`Call`] ended without a response to deliver, or why a [`SessionHandle`] method did
/// not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The session refused or gave up on the request; the [`RequestError`] says what the caller
    /// can do (log in again after `LoggedOut`/`LoginRequired`, retry later after `Timeout`,
    /// `AuthUnavailable`, `CircuitOpen`, `QueueFull`, and `StoreUnavailable` for a
    /// [`Builder::shared_store`] that could not be reached).
    #[error(transparent)]
    Session(#[from] RequestError),
    /// From [`SessionHandle::shutdown`] only: the login or refresh in flight did not finish
    /// within the wait. The session is stopped all the same; its background task still persists
    /// that operation's tokens if they come by the operation's deadline.
    #[error("gave up waiting for the session to stop")]
    TimedOut,
    /// The session has stopped ([`SessionHandle::shutdown`], or its runtime shut down).
    #[error("the session driver has stopped")]
    Stopped,
    /// [`Call::next_step`] was called again before [`Call::respond`] answered the last
    /// attempt: a bug in the integration.
    #[error("the last attempt was not answered with Call::respond")]
    ResponseMissing,
    /// From [`SessionHandle::logout`] only: the session is logged out in memory (nothing
    /// refreshes or logs in, requests fail with `LoggedOut`), but the store could not be
    /// cleared, so a restart, or another process sharing the store, may come back signed in
    /// with the stored tokens. For a [`Builder::shared_store`]: the logout's tombstone was not
    /// written by the operation deadline; the store's own error is the source of the
    /// [`StoreError::Io`]. Call `logout()` again to retry the clear (after fixing the
    /// store, e.g. freeing the disk), or remove the stored session yourself; until one
    /// succeeds, do not tell the user they are signed out for good.
    #[error(
        "logged out, but the stored session could not be removed; a restart would sign back in"
    )]
    LogoutNotDurable(#[source] StoreError),
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
        }
    }

    /// Starts a request with the session: it is submitted at once (so it keeps its place in
    /// line), and [`Call::next_step`] says what to do.
    pub fn call<T>(&self, spec: RequestSpec) -> Call<T> {
        Call::submit(Arc::clone(&self.link), spec)
    }

    /// The user logs out: waiting requests fail with `LoggedOut`, nothing refreshes or logs in
    /// until [`SessionHandle::login`], and the store is cleared before this returns.
    ///
    /// `Ok` means the logout is durable: no restart from the store brings the session back
    /// (on a [`Builder::shared_store`], the tombstone is written: every process sharing the
    /// store follows it, within its watch interval).
    /// [`CallError::LogoutNotDurable`] means the store could not be cleared; the session is
    /// logged out in memory all the same, and calling `logout()` again retries the clear.
    pub async fn logout(&self) -> Result<(), CallError> {
        let core = &self.link.core;
        info!("logout");
        let ticket = core.logout(self.link.clock.now());
        // Dropped before the clear is reported: the core forgets the ticket.
        let waiting = ForgetLogout { core, ticket };
        let cleared = poll_fn(|cx| core.poll_logout(ticket, cx.waker())).await;
        std::mem::forget(waiting);
        cleared.map_err(|error| match error {
            LogoutError::NotDurable(error) => CallError::LogoutNotDurable(error),
            _ => CallError::Stopped,
        })
    }

    /// Asks for a silent login: after a logout, after `LoginRequired` once the user acted, or
    /// to log in before the first request. Returns once the login has started (or was ignored
    /// because a session is held); [`SessionHandle::events`] tells the result.
    pub async fn login(&self) -> Result<(), CallError> {
        let link = &self.link;
        if link.core.is_stopped() {
            return Err(CallError::Stopped);
        }
        info!("login requested");
        link.core.login(link.clock.now());
        Ok(())
    }

    /// Stops the session: requests still waiting fail with [`CallError::Stopped`], and so does
    /// every later use of any clone of this handle. Then waits, at most `wait`, until the login
    /// or refresh in flight (if any) has finished and its tokens are persisted, so a rotated
    /// refresh token is not lost; [`CallError::TimedOut`] if it takes longer.
    pub async fn shutdown(&self, wait: Duration) -> Result<(), CallError> {
        let link = &self.link;
        link.core.stop();
        let mut finished = link.finished.clone();
        // `Ok(Err(_))`: the background task is gone with its runtime; nothing is in flight.
        let ended = tokio::time::timeout(wait, finished.wait_for(|done| *done))
            .await
            .is_ok();
        if ended {
            Ok(())
        } else {
            Err(CallError::TimedOut)
        }
    }

    /// The session's state now: `Active` is signed in, `LoggedOut` signed out, `LoginRequired`
    /// needs the user.
    pub fn state(&self) -> SessionState {
        *self.link.events.borrow()
    }

    /// What the session did since it started (requests and their outcomes, resends, waits,
    /// logins, refreshes, a shared store's answers) and where it stands (state, queue, circuit
    /// breaker). Cheap: a copy of counters the session keeps anyway, under its short lock. The
    /// same events go to the `metrics` recorder, if the app installed one.
    pub fn stats(&self) -> Stats {
        self.link.core.stats()
    }

    /// A `watch` of the session's state, starting with the current one:
    /// `changed().await` / `wait_for(..)` follow it.
    pub fn events(&self) -> watch::Receiver<SessionState> {
        self.link.events.clone()
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("state", &self.state())
            .field("stopped", &self.link.core.is_stopped())
            .finish()
    }
}

impl CallError {
    /// Why a [`Call`]'s conversation with the driver core ended.
    pub(crate) fn ended(ended: Ended) -> Self {
        match ended {
            Ended::Session(error) => CallError::Session(error),
            Ended::ResponseMissing => CallError::ResponseMissing,
            // `Stopped`, and reasons of a later driver core.
            _ => CallError::Stopped,
        }
    }
}

impl Drop for Link {
    /// The last handle and call are gone: stop. The background task still finishes and
    /// persists an operation in flight.
    fn drop(&mut self) {
        self.core.stop();
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
    /// asks for, on tokio's blocking pool, each bounded by `Config::operation_timeout`: a store
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
    /// call to the store per session. `Duration::ZERO` turns the reads off: other processes'
    /// changes then arrive only when this session next needs the lease.
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.watch_interval = interval;
        self
    }

    /// Loads the store, restores the stored session (or starts anonymous), and spawns the
    /// session's background task on the current tokio runtime. An unreadable store counts as
    /// empty (logged).
    ///
    /// On a [`Builder::shared_store`]: reads the record (bounded by the operation timeout,
    /// retried every 100 ms within it while the store cannot be reached) and starts from it:
    /// `Active` with its tokens, `LoggedOut` after a logout anywhere, `Anonymous` on an empty
    /// store. A store still unreachable after that starts `Anonymous` without the record, which
    /// is safe: every login first takes the lease, whose answer carries the real record (a
    /// logout there is followed, tokens there adopted), and until the store answers, requests
    /// that need tokens fail with `StoreUnavailable`; nothing is sent with a token it did not
    /// read.
    pub async fn start(self) -> SessionHandle {
        let clock = Clock::start();
        let operation_timeout = self.config.operation_timeout;
        let (session, restored, watched) = match self.shared {
            Some(link) => {
                let record = read_at_start(&link, operation_timeout).await;
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
                let stored = match self.store.load().await {
                    Ok(stored) => stored,
                    Err(error) => {
                        warn!(%error, "stored session unreadable; starting without one");
                        None
                    }
                };
                let restored = stored.is_some();
                let session = match stored {
                    Some(snapshot) => {
                        Session::restore(self.config, snapshot, clock.now(), wall_now())
                    }
                    None => Session::new(self.config, clock.now()),
                };
                (session, restored, None)
            }
        };
        let (state_tx, events) = watch::channel(session.state());
        let on_state = Box::new(move |state| {
            info!(?state, "session state");
            state_tx.send_replace(state);
        });
        let core = Arc::new(Core::named(session, on_state, self.name.as_deref()));
        let finished = background::spawn(
            Arc::clone(&core),
            self.backend,
            self.store,
            watched,
            clock,
            operation_timeout,
            tracing::info_span!("session", restored),
        );
        SessionHandle {
            link: Arc::new(Link {
                core,
                clock,
                events,
                finished,
            }),
        }
    }
}

/// The shared record at start: retried within `timeout` while the store cannot be reached (each
/// read bounded by what is left); `None` if it never answered.
async fn read_at_start(link: &SharedLink, timeout: Duration) -> Option<Record> {
    let mut start = StartRead::new(timeout);
    while let Some(left) = start.left() {
        let reader = link.clone();
        let read = tokio::task::spawn_blocking(move || reader.read());
        let error = match tokio::time::timeout(left, read).await {
            Ok(Ok(Ok(record))) => return Some(record),
            Ok(Ok(Err(error))) => error,
            _ => no_answer(),
        };
        tokio::time::sleep(start.failed(&error)?).await;
    }
    None
}

/// Forgets a logout's ticket in the core when `logout()`'s future is dropped before its clear is
/// reported, so the result nobody will read does not stay behind.
struct ForgetLogout<'a> {
    core: &'a Core,
    ticket: LogoutTicket,
}

impl Drop for ForgetLogout<'_> {
    fn drop(&mut self) {
        self.core.forget_logout(self.ticket);
    }
}
