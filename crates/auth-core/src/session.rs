//! The session machine of DESIGN.md §3.
//!
//! Every method takes `now`, queues commands for [`Session::poll`] and returns. Nothing here does
//! work that grows with the number of outstanding requests, except releasing or failing the
//! queue, which touches each waiting request once.

mod shared;

use std::collections::VecDeque;

use crate::broken::Bug;
use crate::command::{Command, Outcome, Persist, RequestError, SessionState};
use crate::config::Config;
use crate::input::{
    Auth, Generation, Input, LoginFailure, OpId, RefreshFailure, RequestId, RequestSpec, Retry,
    Verdict,
};
use crate::requests::{Place, Request, Requests};
use crate::snapshot::Snapshot;
use crate::time::{Instant, UnixTime};
use crate::timer::{backoff_delay, Timer};
use crate::token::{AccessToken, RefreshToken, TokenSet};

/// One user session: tokens, the login/refresh operation, and every outstanding request.
///
/// `Clone + Eq + Hash` and free of hidden randomness, so the model checker can store and compare
/// states and a trace replays identically.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    config: Config,
    stage: SessionState,
    tokens: Option<Tokens>,
    op: Option<Operation>,
    backoff: Option<Backoff>,
    /// Transient failures of the current reset (rule 5).
    attempts: u32,
    /// Transient failures since the last success, across resets (rule 14).
    consecutive_failures: u32,
    breaker_until: Option<Instant>,
    /// Bumped by every logout: a request from an earlier epoch is never sent with a later user's
    /// token.
    epoch: u32,
    next_request: u64,
    next_op: u64,
    next_generation: u64,
    /// Outstanding requests and the queue of waiting ones.
    requests: Requests,
    out: VecDeque<Command>,
    now: Instant,
    /// Present when several processes share the session through a store (DESIGN.md §7).
    shared: Option<shared::Shared>,
    #[cfg(feature = "broken-variants")]
    bug: Option<crate::broken::Bug>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Tokens {
    access: AccessToken,
    refresh: Option<RefreshToken>,
    generation: Generation,
    /// From here on the token is refreshed before use (rule 9).
    refresh_at: Option<Instant>,
    /// The token was rejected (or a reset for it gave up): the next request refreshes first.
    stale: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum OpKind {
    Login,
    Refresh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Operation {
    id: OpId,
    kind: OpKind,
    deadline: Instant,
    phase: Phase,
}

/// Where an operation is. A local session's operations are always `Running`; a shared one's
/// first take the store's lease and end by publishing their tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// `Command::Acquire` sent; waiting for `Input::Lease`.
    Leasing,
    /// Another process holds the lease; ask again at `retry_at`.
    Waiting { retry_at: Instant },
    /// `Command::Login` or `Command::Refresh` sent; waiting for its result.
    Running,
    /// `Command::Publish` sent; waiting for `Input::Published`.
    Publishing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Backoff {
    kind: OpKind,
    retry_at: Instant,
}

impl Session {
    /// A session with no tokens (first start, or nothing in the store). With
    /// `Config::eager_login` the silent login starts at once.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut session = Session {
            config,
            stage: SessionState::Anonymous,
            tokens: None,
            op: None,
            backoff: None,
            attempts: 0,
            consecutive_failures: 0,
            breaker_until: None,
            epoch: 0,
            next_request: 1,
            next_op: 1,
            next_generation: 1,
            requests: Requests::default(),
            out: VecDeque::new(),
            now,
            shared: None,
            #[cfg(feature = "broken-variants")]
            bug: None,
        };
        if config.eager_login {
            session.start(OpKind::Login);
        }
        session
    }

    /// A session restored from the store (rule 11): `Active` with generation 1. `now` and
    /// `wall_now` must be read together; they turn the stored wall-clock expiry back into the
    /// monotonic clock. A restored session that turns out dead takes the refresh path.
    pub fn restore(config: Config, snapshot: Snapshot, now: Instant, wall_now: UnixTime) -> Self {
        let mut session = Session::new(
            Config {
                eager_login: false,
                ..config
            },
            now,
        );
        session.config = config;
        let lifetime = snapshot.expires_at.map(|at| {
            core::time::Duration::from_millis(at.as_millis().saturating_sub(wall_now.as_millis()))
        });
        session.adopt_tokens(TokenSet {
            access_token: snapshot.access_token,
            refresh_token: snapshot.refresh_token,
            expires_in: lifetime,
        });
        session.stage = SessionState::Active;
        session
    }

    /// Feeds one input. Drain [`Session::poll`] before the next input.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Submit(spec) => {
                self.submit(spec, now);
            }
            Input::Cancel(id) => self.cancel(id, now),
            Input::Response {
                id,
                attempt,
                verdict,
            } => self.handle_response(id, attempt, verdict, now),
            Input::LoginResult { op, result } => self.handle_login_result(op, result, now),
            Input::RefreshResult { op, result } => self.handle_refresh_result(op, result, now),
            Input::Logout => self.logout(now),
            Input::Login => self.login(now),
            Input::Timeout => self.handle_timeout(now),
            Input::Lease { op, result } => self.handle_lease(op, result, now),
            Input::Published { op, result } => self.handle_published(op, result, now),
            Input::StoreChanged(observed) => self.handle_store_changed(observed, now),
        }
    }

    /// The app issues a request; returns its id. A public request is sent at once without a
    /// token; an authenticated one is sent, queued, or failed according to the session's state.
    pub fn submit(&mut self, spec: RequestSpec, now: Instant) -> RequestId {
        self.advance(now);
        let sequence = self.next_request;
        self.next_request += 1;
        let request = Request {
            spec,
            sends: 0,
            epoch: self.epoch,
            place: Place::New,
        };
        let id = match self.requests.insert(sequence, request) {
            Ok(id) => id,
            Err(id) => {
                let outcome = Outcome::Fail(RequestError::TooManyOutstanding);
                self.out.push_back(Command::Complete { id, outcome });
                return id;
            }
        };
        match spec.auth {
            Auth::Public => self.send(id),
            Auth::Bearer => self.dispatch(id),
        }
        id
    }

    /// The app gives up on a request (rule 10): it is never sent again and completes with
    /// `Cancelled` exactly once. Cancelling a finished or unknown request does nothing.
    pub fn cancel(&mut self, id: RequestId, now: Instant) {
        self.advance(now);
        if self.requests.get(id).is_some() {
            self.complete(id, Outcome::Fail(RequestError::Cancelled));
        }
    }

    /// The API answered send number `attempt` of request `id`. Answers to a cancelled or finished
    /// request, or to an earlier send, are dropped.
    ///
    /// Guarantee drivers may rely on: an [`Verdict::Accepted`] answer to the current send of an
    /// outstanding request completes it with [`Outcome::Deliver`] at once, in every state (a
    /// logout does not touch requests in flight). A driver can therefore hand an accepted response
    /// to its caller without waiting for the `Complete` command.
    pub fn handle_response(&mut self, id: RequestId, attempt: u16, verdict: Verdict, now: Instant) {
        self.advance(now);
        let Some(request) = self.requests.get(id) else {
            return;
        };
        let Place::InFlight { generation } = request.place else {
            return;
        };
        if request.sends != attempt {
            return;
        }
        match verdict {
            Verdict::Accepted => self.complete(id, Outcome::Deliver),
            Verdict::Rejected => self.rejected(id, generation),
        }
    }

    /// A silent login finished. Results of any other operation than the current one are ignored.
    pub fn handle_login_result(
        &mut self,
        op: OpId,
        result: Result<TokenSet, LoginFailure>,
        now: Instant,
    ) {
        self.advance(now);
        if !self.take_operation(op, OpKind::Login) {
            return;
        }
        if result.is_err() {
            self.release_lease();
            self.blame_store(false);
        }
        match result {
            Ok(tokens) => self.succeed(op, tokens),
            Err(LoginFailure::Transient) => self.transient_failure(OpKind::Login),
            Err(LoginFailure::Fatal) => {
                self.tokens = None;
                self.attempts = 0;
                // The stored tokens are dead (their refresh failed or there were none): a restart
                // must not come back `Active` with them. A shared record belongs to every process
                // sharing it and is left as is (its refresh token is marked spent already).
                if self.shared.is_none() {
                    self.out.push_back(Command::ClearStore);
                }
                // State first, so a caller woken by its failure already sees why.
                self.enter(SessionState::LoginRequired);
                self.fail_queue(RequestError::LoginRequired);
            }
        }
    }

    /// A refresh finished. Results of any other operation than the current one are ignored.
    pub fn handle_refresh_result(
        &mut self,
        op: OpId,
        result: Result<TokenSet, RefreshFailure>,
        now: Instant,
    ) {
        self.advance(now);
        if !self.take_operation(op, OpKind::Refresh) {
            return;
        }
        if result.is_err() {
            self.release_lease();
            self.blame_store(false);
        }
        match result {
            Ok(tokens) => self.succeed(op, tokens),
            Err(RefreshFailure::Transient) => self.transient_failure(OpKind::Refresh),
            Err(RefreshFailure::InvalidGrant) => {
                // The refresh token is dead: silent login, keeping the queue.
                self.tokens = None;
                self.attempts = 0;
                self.start(OpKind::Login);
            }
        }
    }

    /// The user logs out (rule 6): waiting requests fail with `LoggedOut`, the store is cleared,
    /// the operation in flight is forgotten, and nothing logs in until [`Session::login`].
    ///
    /// Logging out again while logged out only emits [`Command::ClearStore`] again, so a driver
    /// whose first clear failed (read-only disk) can retry it and report the result.
    pub fn logout(&mut self, now: Instant) {
        self.advance(now);
        if self.stage == SessionState::LoggedOut {
            self.out.push_back(Command::ClearStore);
            return;
        }
        self.epoch = self.epoch.wrapping_add(1);
        self.op = None;
        self.release_lease();
        self.backoff = None;
        self.attempts = 0;
        if let Some(tokens) = self.tokens.take() {
            if let (true, Some(refresh_token)) = (self.config.revoke_on_logout, tokens.refresh) {
                self.out.push_back(Command::Revoke { refresh_token });
            }
        }
        self.out.push_back(Command::ClearStore);
        self.enter(SessionState::LoggedOut);
        self.fail_queue(RequestError::LoggedOut);
    }

    /// The app asks for a login: after a logout, after `LoginRequired` once the user acted, or to
    /// log in before the first request. Ignored while a session is held or being reset. Being an
    /// explicit user action, it also closes the circuit breaker.
    pub fn login(&mut self, now: Instant) {
        self.advance(now);
        if matches!(
            self.stage,
            SessionState::LoggedOut | SessionState::LoginRequired | SessionState::Anonymous
        ) {
            self.breaker_until = None;
            self.consecutive_failures = 0;
            self.attempts = 0;
            self.start(OpKind::Login);
        }
    }

    /// Fires every timer due at `now`. Calling it early or twice does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        let now = self.now;
        if let Some(op) = self.op.filter(|op| op.deadline <= now) {
            // A hung operation counts as a transient failure; its late result no longer matches.
            self.op = None;
            self.release_lease();
            if op.phase == Phase::Publishing {
                // The tokens are new and good; only the store did not answer in time.
                self.release_queue();
            } else {
                // A lease request that hung is the store's trouble; anything else the auth server's.
                self.blame_store(op.phase == Phase::Leasing);
                self.transient_failure(op.kind);
            }
        }
        self.retry_lease(now);
        if let Some(backoff) = self.backoff.filter(|b| b.retry_at <= now) {
            self.backoff = None;
            if self.requests.queued() == 0 {
                // Nobody waits any more: stop bothering the auth server; the next request retries.
                self.give_up_quietly();
            } else {
                self.start(backoff.kind);
            }
        }
        if self.breaker_until.is_some_and(|until| until <= now) {
            // Half-open: the next failure opens the breaker again at once.
            self.breaker_until = None;
            self.consecutive_failures = self.config.max_refresh_failures.saturating_sub(1);
        }
        while let Some((id, deadline)) = self.requests.front() {
            if deadline > now {
                break;
            }
            self.complete(id, Outcome::Fail(RequestError::Timeout));
        }
    }

    /// The next command for the driver; call until `None` after every input.
    pub fn poll(&mut self) -> Option<Command> {
        self.out.pop_front()
    }

    /// The earliest deadline at which [`Session::handle_timeout`] must be called, if any.
    /// A pure query: call it after draining [`Session::poll`] to re-arm the driver's one timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(_, at)| at)
    }

    /// Like [`Session::poll_timeout`], with the reason.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        let queue = self
            .requests
            .front()
            .map(|(_, deadline)| (Timer::QueueDeadline, deadline));
        [
            queue,
            self.op.map(|op| (Timer::OperationDeadline, op.deadline)),
            self.op.and_then(|op| match op.phase {
                Phase::Waiting { retry_at } => Some((Timer::LeaseRetry, retry_at)),
                _ => None,
            }),
            self.backoff.map(|b| (Timer::OperationBackoff, b.retry_at)),
            self.breaker_until.map(|at| (Timer::BreakerCooldown, at)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|&(timer, at)| (at, timer))
    }

    /// The session's externally visible state.
    pub fn state(&self) -> SessionState {
        self.stage
    }

    /// The generation of the tokens held, if any.
    pub fn generation(&self) -> Option<Generation> {
        self.tokens.as_ref().map(|t| t.generation)
    }

    /// The configuration the session was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the circuit breaker is open (authenticated requests that need a login or refresh
    /// fail fast with `CircuitOpen`).
    pub fn is_circuit_open(&self) -> bool {
        self.breaker_until.is_some()
    }

    /// How many requests are outstanding (waiting or in flight).
    pub fn outstanding(&self) -> usize {
        self.requests.len()
    }

    /// How many requests wait for the session.
    pub fn queued(&self) -> usize {
        self.requests.queued()
    }

    /// Whether commands wait to be polled.
    pub fn has_commands(&self) -> bool {
        !self.out.is_empty()
    }

    /// The latest time the session has seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Whether this session carries a deliberately planted bug (only with the
    /// `broken-variants` feature; always `false` otherwise, so the checks compile away).
    fn has_bug(&self, bug: Bug) -> bool {
        #[cfg(feature = "broken-variants")]
        return self.bug == Some(bug);
        #[cfg(not(feature = "broken-variants"))]
        {
            let _ = bug;
            false
        }
    }

    /// Time never goes backwards inside the session, even if a driver's inputs race.
    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Sends, queues or fails an authenticated request that is not in flight.
    fn dispatch(&mut self, id: RequestId) {
        match self.stage {
            SessionState::LoggedOut => self.complete(id, Outcome::Fail(RequestError::LoggedOut)),
            SessionState::LoginRequired => {
                self.complete(id, Outcome::Fail(RequestError::LoginRequired))
            }
            SessionState::Refreshing if self.has_bug(Bug::SecondRefreshInFlight) => {
                if self.enqueue(id) {
                    self.start(OpKind::Refresh);
                }
            }
            SessionState::LoggingIn | SessionState::Refreshing => {
                self.enqueue(id);
            }
            SessionState::Active | SessionState::Anonymous => {
                if self.tokens.as_ref().is_some_and(|t| t.usable(self.now)) {
                    self.send(id);
                } else if self.breaker_until.is_some() {
                    self.complete(id, Outcome::Fail(RequestError::CircuitOpen));
                } else {
                    // The reset starts even when this request cannot wait for it (only with
                    // `max_queued: 0`, as nothing waits in these states): otherwise such a
                    // session would never log in or refresh again.
                    self.enqueue(id);
                    self.reset();
                }
            }
        }
    }

    /// A 401 for a request sent with `generation`.
    fn rejected(&mut self, id: RequestId, generation: Option<Generation>) {
        let Some(request) = self.requests.get(id) else {
            return;
        };
        let spec = request.spec;
        // `sends` is a `u16` and at most `1 + u8::MAX`: it never saturates, so the budget check
        // fires for every `max_retries` (a `u8` counter stuck at 255 never passed 255).
        let sends = if self.has_bug(Bug::SaturatingSendCounter) {
            request.sends.min(u16::from(u8::MAX))
        } else {
            request.sends
        };
        let budget_spent =
            sends > u16::from(self.config.max_retries) && !self.has_bug(Bug::RetryWithoutBudget);
        if spec.auth == Auth::Public {
            return self.complete(id, Outcome::Deliver);
        }
        if request.epoch != self.epoch || self.stage == SessionState::LoggedOut {
            return self.complete(id, Outcome::Fail(RequestError::LoggedOut));
        }
        if self.stage == SessionState::LoginRequired {
            return self.complete(id, Outcome::Fail(RequestError::LoginRequired));
        }
        if spec.retry == Retry::Deny || !spec.replayable || budget_spent {
            return self.complete(id, Outcome::Deliver);
        }
        let ignore_generation = self.has_bug(Bug::NoGenerationCheck);
        if let Some(tokens) = self.tokens.as_mut() {
            if Some(tokens.generation) == generation || ignore_generation {
                tokens.stale = true;
            } else if self.stage == SessionState::Active && !tokens.stale {
                // Rule 2: a newer token is already held; resend without a refresh.
                return self.send(id);
            }
        }
        self.dispatch(id);
    }

    /// Starts the operation that gets a usable token: refresh when a refresh token is held,
    /// silent login otherwise.
    fn reset(&mut self) {
        match self.tokens.as_ref().and_then(|t| t.refresh.as_ref()) {
            Some(_) => self.start(OpKind::Refresh),
            None => self.start(OpKind::Login),
        }
    }

    fn start(&mut self, kind: OpKind) {
        let refresh_token = match kind {
            OpKind::Refresh => match self.tokens.as_ref().and_then(|t| t.refresh.clone()) {
                Some(token) => Some(token),
                None => return self.start(OpKind::Login),
            },
            OpKind::Login => None,
        };
        let id = OpId(self.next_op);
        self.next_op += 1;
        let leased = self.shared.is_some() && !self.has_bug(Bug::NoLease);
        self.op = Some(Operation {
            id,
            kind,
            deadline: self.now.saturating_add(self.config.operation_timeout),
            phase: if leased {
                Phase::Leasing
            } else {
                Phase::Running
            },
        });
        self.backoff = None;
        if leased {
            // Login or refresh is decided once the lease is granted, from the record it shows.
            let ttl = self.lease_ttl();
            self.out.push_back(Command::Acquire { op: id, ttl });
            return self.enter(match kind {
                OpKind::Login => SessionState::LoggingIn,
                OpKind::Refresh => SessionState::Refreshing,
            });
        }
        match refresh_token {
            Some(refresh_token) => self.out.push_back(Command::Refresh {
                op: id,
                refresh_token,
            }),
            None => self.out.push_back(Command::Login { op: id }),
        }
        self.enter(match kind {
            OpKind::Login => SessionState::LoggingIn,
            OpKind::Refresh => SessionState::Refreshing,
        });
    }

    /// Whether `op` is the operation in flight; if so it is over.
    fn take_operation(&mut self, op: OpId, kind: OpKind) -> bool {
        if self.has_bug(Bug::NoOperationIdCheck) {
            self.op = None;
            return true;
        }
        match self.op {
            Some(current)
                if current.id == op && current.kind == kind && current.phase == Phase::Running =>
            {
                self.op = None;
                true
            }
            _ => false,
        }
    }

    /// Rule 3: persist, then release the queue in FIFO order, then notify. A shared session
    /// publishes instead and releases the queue on the store's answer.
    fn succeed(&mut self, op: OpId, tokens: TokenSet) {
        self.reset_failures();
        let persist = self.adopt_tokens(tokens);
        if let Some(expected) = self.basis() {
            return self.publish(op, expected, persist);
        }
        let persist = Command::Persist(persist);
        // Only a planted bug holds the persist back until after the sends.
        if self.has_bug(Bug::ReleaseBeforePersist) {
            self.release_queue();
            self.out.push_back(persist);
        } else {
            self.out.push_back(persist);
            self.release_queue();
        }
    }

    /// A success (or good tokens from elsewhere) ends every count of failures.
    fn reset_failures(&mut self) {
        self.attempts = 0;
        self.consecutive_failures = 0;
        self.breaker_until = None;
        self.backoff = None;
    }

    /// The session holds usable tokens: `Active`, the waiting requests go out in FIFO order,
    /// then the state change is announced.
    fn release_queue(&mut self) {
        let previous = core::mem::replace(&mut self.stage, SessionState::Active);
        while let Some(id) = self.requests.pop_front() {
            self.send(id);
        }
        if previous != SessionState::Active {
            self.out.push_back(Command::Notify(SessionState::Active));
        }
    }

    fn adopt_tokens(&mut self, set: TokenSet) -> Persist {
        let generation = Generation(self.next_generation);
        self.next_generation += 1;
        let refresh = set
            .refresh_token
            .or_else(|| self.tokens.take().and_then(|t| t.refresh));
        let now = self.now;
        let expires_at = set.expires_in.map(|life| now.saturating_add(life));
        let refresh_at = set.expires_in.map(|life| {
            let early = life
                .saturating_sub(self.config.refresh_margin)
                .max(life / 2);
            now.saturating_add(early)
        });
        let tokens = Tokens {
            access: set.access_token,
            refresh,
            generation,
            refresh_at,
            stale: false,
        };
        let persist = Persist {
            generation,
            access_token: tokens.access.clone(),
            refresh_token: tokens.refresh.clone(),
            expires_at,
        };
        self.tokens = Some(tokens);
        persist
    }

    /// Rule 5 and rule 14: back off and retry, give up, or open the circuit breaker.
    fn transient_failure(&mut self, kind: OpKind) {
        // Retries already made, compared before counting this failure: the counters saturate,
        // so with `max_operation_retries: u32::MAX` a comparison after the increment would
        // never give up.
        let retried = self.attempts;
        self.attempts = self.attempts.saturating_add(1);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let breaker = self.config.max_refresh_failures;
        if breaker > 0 && self.consecutive_failures >= breaker {
            self.breaker_until = Some(self.now.saturating_add(self.config.breaker_cooldown));
            self.give_up(RequestError::CircuitOpen);
        } else if retried >= self.config.max_operation_retries {
            let attempts = self.attempts;
            self.give_up(if self.store_trouble() {
                RequestError::StoreUnavailable { attempts }
            } else {
                RequestError::AuthUnavailable { attempts }
            });
        } else {
            let delay = backoff_delay(&self.config, self.attempts, self.next_op);
            self.backoff = Some(Backoff {
                kind,
                retry_at: self.now.saturating_add(delay),
            });
        }
    }

    fn give_up(&mut self, error: RequestError) {
        self.give_up_quietly();
        self.fail_queue(error);
    }

    /// Back to `Active` with the tokens kept but marked stale, so the next request tries again;
    /// or to `Anonymous` when there are none.
    fn give_up_quietly(&mut self) {
        self.attempts = 0;
        self.backoff = None;
        match self.tokens.as_mut() {
            Some(tokens) => {
                tokens.stale = true;
                self.enter(SessionState::Active);
            }
            None => self.enter(SessionState::Anonymous),
        }
    }

    fn enter(&mut self, stage: SessionState) {
        if self.stage != stage {
            self.stage = stage;
            self.out.push_back(Command::Notify(stage));
        }
    }

    fn send(&mut self, id: RequestId) {
        let Some(request) = self.requests.get_mut(id) else {
            return;
        };
        let (token, generation) = match (request.spec.auth, &self.tokens) {
            (Auth::Bearer, Some(tokens)) => (Some(tokens.access.clone()), Some(tokens.generation)),
            // Callers only send authenticated requests while tokens are held.
            (Auth::Bearer, None) | (Auth::Public, _) => (None, None),
        };
        request.sends = request.sends.saturating_add(1);
        request.place = Place::InFlight { generation };
        let attempt = request.sends;
        self.out.push_back(Command::Send {
            id,
            attempt,
            token,
            generation,
        });
    }

    /// Queues a request; fails it with `QueueFull` (rule 8) and returns `false` when full.
    fn enqueue(&mut self, id: RequestId) -> bool {
        if self.requests.queued() >= self.config.max_queued {
            self.complete(id, Outcome::Fail(RequestError::QueueFull));
            return false;
        }
        let deadline = self.now.saturating_add(self.config.queue_timeout);
        self.requests.enqueue(id, deadline);
        true
    }

    fn fail_queue(&mut self, error: RequestError) {
        while let Some(id) = self.requests.pop_front() {
            self.requests.remove(id);
            self.out.push_back(Command::Complete {
                id,
                outcome: Outcome::Fail(error),
            });
        }
    }

    fn complete(&mut self, id: RequestId, outcome: Outcome) {
        if self.requests.remove(id).is_some() {
            self.out.push_back(Command::Complete { id, outcome });
        }
    }
}

impl Tokens {
    fn usable(&self, now: Instant) -> bool {
        !self.stale && self.refresh_at.is_none_or(|at| now < at)
    }
}

#[cfg(feature = "broken-variants")]
impl Session {
    /// The same session with a deliberately planted bug, so tests can show the model checker and
    /// the Monitor catch it. Only with the `broken-variants` feature; never in a release build.
    pub fn with_bug(mut self, bug: Bug) -> Self {
        self.bug = Some(bug);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(session: &mut Session) -> Vec<Command> {
        core::iter::from_fn(|| session.poll()).collect()
    }

    /// With the largest `max_operation_retries` (and the breaker off) the retries still run out.
    /// Four billion real failures cannot be run here, so the failure counter is set just below
    /// and at its saturation point; a check after a saturating increment never gave up.
    #[test]
    fn the_largest_operation_retry_budget_still_runs_out() {
        let config = Config {
            max_operation_retries: u32::MAX,
            max_refresh_failures: 0,
            ..Config::default()
        };
        let waiting = |failures_before: u32| {
            let mut session = Session::new(config, Instant::ZERO);
            let id = session.submit(RequestSpec::bearer(), Instant::ZERO);
            drain(&mut session);
            session.attempts = failures_before;
            session.handle_timeout(Instant::ZERO.saturating_add(config.operation_timeout));
            (session, id)
        };
        // u32::MAX - 1 failures so far: this one is retry number u32::MAX, still allowed.
        let (mut session, _) = waiting(u32::MAX - 1);
        assert!(session
            .next_timer()
            .is_some_and(|(timer, _)| timer == Timer::OperationBackoff));
        assert!(!drain(&mut session)
            .iter()
            .any(|c| matches!(c, Command::Complete { .. })));
        // u32::MAX failures so far (the counter's maximum): this one spends the budget.
        let (mut session, id) = waiting(u32::MAX);
        let commands = drain(&mut session);
        assert!(
            commands.contains(&Command::Complete {
                id,
                outcome: Outcome::Fail(RequestError::AuthUnavailable { attempts: u32::MAX }),
            }),
            "{commands:?}"
        );
        assert_eq!(session.state(), SessionState::Anonymous);
        assert_eq!(session.next_timer(), None);
    }
}
