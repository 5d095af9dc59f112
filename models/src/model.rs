//! The stateright model of the real `auth_core::Session`.
//!
//! State: the real session with its [`Monitor`] as history state (through [`Checked`], the one
//! place where inputs reach both), a fake auth server, the messages in flight, the token store,
//! and the environment's remaining budgets. Every transition feeds real inputs to the real
//! session and executes the commands it emits; nothing here restates the session's rules.
//!
//! Time passes only when a timer fires: [`Action::Fire`] moves the clock to the session's next
//! deadline ([`auth_core::Session::next_timer`]) and calls `handle_timeout`. An operation
//! deadline firing while its login/refresh is unanswered is a hung operation and spends a fault;
//! its late result stays deliverable.

use core::hash::{Hash, Hasher};
use std::collections::BTreeMap;

use auth_core::{
    AccessToken, Checked, Command, Input, Instant, LoginFailure, OpId, Outcome, Property,
    RefreshFailure, RefreshToken, RequestError, RequestId, Session, SessionState, Snapshot, Start,
    Timer, TokenSet, UnixTime, Verdict,
};
use stateright::{Model, Representative};

use crate::world::{Budget, Kind, World};

/// Wall-clock time at virtual time zero (the wall clock moves with the virtual one).
pub const WALL_EPOCH_MS: u64 = 1_700_000_000_000;

/// The wall-clock time read together with `now`.
pub fn wall(now: Instant) -> UnixTime {
    UnixTime::from_millis(WALL_EPOCH_MS.saturating_add(now.as_millis()))
}

/// A message in flight. Tokens are named by the number the fake server issued them with
/// (`a{n}`, `r{n}`), so the state hashes and prints them faithfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// An API request on its way; the server judges its token when it is delivered.
    Response {
        /// The request.
        id: RequestId,
        /// Which send it answers.
        attempt: u16,
        /// The access token it carried.
        token: Option<u64>,
        /// A public endpoint, which answers without looking at tokens.
        public: bool,
    },
    /// A silent login at the auth server.
    Login {
        /// Its operation id.
        op: OpId,
    },
    /// A refresh at the auth server.
    Refresh {
        /// Its operation id.
        op: OpId,
        /// The refresh token it presents.
        token: u64,
    },
}

/// The fake auth server and API: it issues numbered tokens, rotates the refresh token on every
/// issue, and accepts access tokens issued since the last server-side expiry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Server {
    /// Token sets issued so far.
    pub issued: u64,
    /// The one refresh token the server accepts.
    pub live_refresh: Option<u64>,
    /// Access tokens numbered below this were expired server-side.
    pub valid_from: u64,
}

/// What the token store holds (or the tokens the session adopted last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stored {
    /// Access token number.
    pub access: u64,
    /// Refresh token number.
    pub refresh: Option<u64>,
    /// Wall-clock expiry.
    pub expires_at: Option<UnixTime>,
}

/// Interesting things that happened in the last step (not cumulative: the `sometimes`
/// properties read them from the state the step produced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Events(u16);

impl Events {
    /// A request that had been retried was delivered.
    pub const RETRIED_DELIVERED: Events = Events(1);
    /// A 401 for an older token generation was re-sent at once, without a login or refresh.
    pub const LATE_401_RESENT: Events = Events(1 << 1);
    /// An `invalid_grant` refresh result started a silent login.
    pub const INVALID_GRANT_LOGIN: Events = Events(1 << 2);
    /// The user logged out while a refresh was in flight.
    pub const LOGOUT_DURING_REFRESH: Events = Events(1 << 3);
    /// A queued request failed with `Timeout`.
    pub const QUEUE_TIMEOUT: Events = Events(1 << 4);
    /// The process crashed and the session was restored from a stored snapshot.
    pub const RESTORED: Events = Events(1 << 5);
    /// A login/refresh result for an operation that is no longer current changed nothing.
    pub const STALE_RESULT_IGNORED: Events = Events(1 << 6);
    /// A 401 for a retryable, replayable request was delivered as is: its retry budget was
    /// spent.
    pub const BUDGET_SPENT: Events = Events(1 << 7);

    /// Whether every event of `other` happened.
    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    fn insert(&mut self, other: Events) {
        self.0 |= other.0;
    }
}

/// One state of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The real session and its monitor.
    pub checked: Checked,
    /// The auth server.
    pub server: Server,
    /// Messages in flight, sorted (a multiset): any of them may be delivered next.
    pub net: Vec<Msg>,
    /// The token store.
    pub store: Option<Stored>,
    /// Requests the app is waiting for, with their kinds.
    pub open: BTreeMap<RequestId, Kind>,
    /// What the environment may still do.
    pub budget: Budget,
    /// What the last step did, for the `sometimes` properties.
    pub events: Events,
    /// The tokens the session adopted last. The session's `Debug` redacts its tokens, so the
    /// symmetry key reads them from here; the plain hash ignores this field (the session's own
    /// hash covers its tokens).
    pub held: Option<Stored>,
    /// Set only on a symmetry representative: then this key is the state's whole hash.
    pub(crate) key: Option<u64>,
}

impl Hash for State {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        if let Some(key) = self.key {
            return key.hash(hasher);
        }
        self.checked.hash(hasher);
        self.server.hash(hasher);
        self.net.hash(hasher);
        self.store.hash(hasher);
        self.open.hash(hasher);
        self.budget.hash(hasher);
        self.events.hash(hasher);
    }
}

impl Representative for State {
    /// A state whose hash is the same for every state that differs from this one only by a
    /// renaming of request ids (see [`crate::symmetry`]).
    fn representative(&self) -> Self {
        let mut representative = self.clone();
        representative.key = Some(crate::symmetry::canonical_key(self));
        representative
    }
}

impl State {
    /// Whether the monitor recorded a violation of `property`.
    pub fn violates(&self, property: Property) -> bool {
        violates(&self.checked, property)
    }

    /// Whether the world is quiet: no message in flight and no timer armed, so nothing can
    /// happen until the app acts. Every terminal state is quiet.
    pub fn is_quiet(&self) -> bool {
        self.net.is_empty() && self.checked.session.poll_timeout().is_none()
    }

    /// P8: at a quiet state every request is completed and the session has settled (judged by
    /// the Monitor's `check_settled`). Non-quiet states pass.
    pub fn settled_if_quiet(&self) -> bool {
        !self.is_quiet() || settled(&self.checked)
    }

    /// The session's query methods agree with what the monitor saw: as many requests
    /// outstanding as the monitor has pending, the queue within them and non-empty only while a
    /// login or refresh is under way (in flight or backing off), and no command left undrained.
    pub fn queries_agree(&self) -> bool {
        let session = &self.checked.session;
        let queued = session.queued();
        session.outstanding() == self.checked.monitor.pending()
            && queued <= session.outstanding()
            && (queued == 0
                || matches!(
                    session.state(),
                    SessionState::LoggingIn | SessionState::Refreshing
                ))
            && !session.has_commands()
    }

    fn insert_msg(&mut self, msg: Msg) {
        let at = self.net.partition_point(|m| *m <= msg);
        self.net.insert(at, msg);
    }

    fn take_msg(&mut self, found: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let at = self.net.iter().position(found)?;
        Some(self.net.remove(at))
    }

    fn now(&self) -> Instant {
        self.checked.session.now()
    }
}

/// Whether `checked`'s monitor recorded a violation of `property` (shared by every model of
/// this crate, so a property is read the same way everywhere).
pub fn violates(checked: &Checked, property: Property) -> bool {
    checked
        .monitor
        .violations()
        .iter()
        .any(|v| v.property() == property)
}

/// P8 for one session whose world is quiet: every request completed and the session settled,
/// as the Monitor's `check_settled` judges it.
pub fn settled(checked: &Checked) -> bool {
    let mut monitor = checked.monitor.clone();
    monitor.check_settled(checked.session.state());
    !monitor
        .violations()
        .iter()
        .any(|v| v.property() == Property::P8Progress)
}

/// One action of the environment or the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The app submits a request of this kind.
    Submit(Kind),
    /// The app cancels a request it waits for.
    Cancel(RequestId),
    /// The API's answer to a send arrives (the server judges the token now).
    Deliver(RequestId, u16),
    /// Fault: the answer arrives and a copy of it stays in flight.
    Duplicate(RequestId, u16),
    /// The silent login succeeds.
    LoginOk(OpId),
    /// Fault: the silent login fails transiently.
    LoginTransient(OpId),
    /// Fault: the silent login fails for good.
    LoginFatal(OpId),
    /// The refresh succeeds (the server rotates the refresh token).
    RefreshOk(OpId),
    /// The refresh token is dead (a fault when the token presented is still live: revoked).
    RefreshInvalidGrant(OpId),
    /// Fault: the refresh fails transiently.
    RefreshTransient(OpId),
    /// The server expires every access token issued so far.
    Expire,
    /// The user logs out.
    Logout,
    /// The app asks for a login.
    Login,
    /// Time passes until the session's next timer (an operation deadline is a fault: a hang).
    Fire(Timer),
    /// The process dies and restarts from the token store; a login/refresh the server was
    /// processing completes there (it rotates the refresh token), its answer is lost.
    Crash,
}

/// What one step fed to the session and what the session answered: the material of traces.
#[derive(Clone, Debug, Default)]
pub struct StepLog {
    /// The session was replaced (crash and restart): how the new one began.
    pub restart: Option<Start>,
    /// Inputs fed, with their times.
    pub inputs: Vec<(Instant, Input)>,
    /// Commands emitted, in order.
    pub commands: Vec<Command>,
}

/// The model: a [`World`] and the session under test.
#[derive(Clone)]
pub struct AuthModel {
    /// The bounded world.
    pub world: World,
    /// Applied to every session the model creates (at start and after a crash). The identity
    /// for the real core; tests use it to plant one of auth-core's deliberate bugs.
    pub plant: fn(Session) -> Session,
}

fn identity(session: Session) -> Session {
    session
}

/// The number a fake-server token was issued with (`a7` → 7).
pub(crate) fn number(text: &str) -> u64 {
    text.get(1..).and_then(|n| n.parse().ok()).unwrap_or(0)
}

impl AuthModel {
    /// The model of the real core in `world`.
    pub fn new(world: World) -> Self {
        AuthModel {
            world,
            plant: identity,
        }
    }

    /// The same model with every session passed through `plant` (to plant a bug).
    pub fn with_plant(mut self, plant: fn(Session) -> Session) -> Self {
        self.plant = plant;
        self
    }

    /// Applies `action` to `state`, recording what the session saw in `log`. `None` when the
    /// action is not possible (the same rule as [`Model::actions`]).
    pub fn step(&self, state: &State, action: Action, log: &mut StepLog) -> Option<State> {
        let mut s = state.clone();
        s.events = Events::default();
        s.key = None;
        let now = s.now();
        match action {
            Action::Submit(kind) => {
                s.budget.requests = s.budget.requests.checked_sub(1)?;
                self.feed(&mut s, Input::Submit(kind.spec()), now, Some(kind), log);
            }
            Action::Cancel(id) => {
                s.budget.cancels = s.budget.cancels.checked_sub(1)?;
                s.open.get(&id)?;
                self.feed(&mut s, Input::Cancel(id), now, None, log);
            }
            Action::Deliver(id, attempt) | Action::Duplicate(id, attempt) => {
                let duplicate = matches!(action, Action::Duplicate(..));
                if duplicate {
                    s.budget.faults = s.budget.faults.checked_sub(1)?;
                }
                let found = |m: &Msg| matches!(m, Msg::Response { id: i, attempt: a, .. } if *i == id && *a == attempt);
                let msg = if duplicate {
                    *s.net.iter().find(|m| found(m))?
                } else {
                    s.take_msg(found)?
                };
                let Msg::Response { token, public, .. } = msg else {
                    return None;
                };
                let valid = !self.world.reject_every_call
                    && token.is_some_and(|n| n >= s.server.valid_from);
                let verdict = if public || valid {
                    Verdict::Accepted
                } else {
                    Verdict::Rejected
                };
                let input = Input::Response {
                    id,
                    attempt,
                    verdict,
                };
                let out = self.feed(&mut s, input, now, None, log);
                let delivered = out.iter().any(|c| {
                    matches!(c, Command::Complete { id: i, outcome: Outcome::Deliver } if *i == id)
                });
                if verdict == Verdict::Accepted && attempt >= 2 && delivered {
                    s.events.insert(Events::RETRIED_DELIVERED);
                }
                if verdict == Verdict::Rejected
                    && delivered
                    && state.open.get(&id) == Some(&Kind::Bearer)
                {
                    s.events.insert(Events::BUDGET_SPENT);
                }
                let resent = out
                    .iter()
                    .any(|c| matches!(c, Command::Send { id: i, .. } if *i == id));
                let reset = out
                    .iter()
                    .any(|c| matches!(c, Command::Login { .. } | Command::Refresh { .. }));
                if verdict == Verdict::Rejected && resent && !reset {
                    s.events.insert(Events::LATE_401_RESENT);
                }
            }
            Action::LoginOk(op) | Action::LoginTransient(op) | Action::LoginFatal(op) => {
                s.take_msg(|m| *m == Msg::Login { op })?;
                let result = match action {
                    Action::LoginOk(_) => Ok(self.issue(&mut s.server)),
                    Action::LoginTransient(_) => {
                        s.budget.faults = s.budget.faults.checked_sub(1)?;
                        Err(LoginFailure::Transient)
                    }
                    _ => {
                        s.budget.faults = s.budget.faults.checked_sub(1)?;
                        Err(LoginFailure::Fatal)
                    }
                };
                self.feed_result(&mut s, Input::LoginResult { op, result }, now, log);
            }
            Action::RefreshOk(op)
            | Action::RefreshInvalidGrant(op)
            | Action::RefreshTransient(op) => {
                let Some(Msg::Refresh { token, .. }) =
                    s.take_msg(|m| matches!(m, Msg::Refresh { op: o, .. } if *o == op))
                else {
                    return None;
                };
                let live = s.server.live_refresh == Some(token);
                let result = match action {
                    Action::RefreshOk(_) if live => Ok(self.issue(&mut s.server)),
                    Action::RefreshOk(_) => return None,
                    Action::RefreshInvalidGrant(_) => {
                        if live {
                            // The server revoked the live token.
                            s.budget.faults = s.budget.faults.checked_sub(1)?;
                            s.server.live_refresh = None;
                        }
                        Err(RefreshFailure::InvalidGrant)
                    }
                    _ => {
                        s.budget.faults = s.budget.faults.checked_sub(1)?;
                        Err(RefreshFailure::Transient)
                    }
                };
                let invalid_grant = result == Err(RefreshFailure::InvalidGrant);
                let out = self.feed_result(&mut s, Input::RefreshResult { op, result }, now, log);
                if invalid_grant && out.iter().any(|c| matches!(c, Command::Login { .. })) {
                    s.events.insert(Events::INVALID_GRANT_LOGIN);
                }
            }
            Action::Expire => {
                s.budget.expiries = s.budget.expiries.checked_sub(1)?;
                s.server.valid_from = s.server.issued + 1;
            }
            Action::Logout => {
                s.budget.logouts = s.budget.logouts.checked_sub(1)?;
                if s.checked.session.state() == SessionState::Refreshing {
                    s.events.insert(Events::LOGOUT_DURING_REFRESH);
                }
                self.feed_unless_ignored(&mut s, state, Input::Logout, now, log)?;
            }
            Action::Login => {
                s.budget.logins = s.budget.logins.checked_sub(1)?;
                self.feed_unless_ignored(&mut s, state, Input::Login, now, log)?;
            }
            Action::Fire(timer) => {
                let (next, at) = s.checked.session.next_timer()?;
                if next != timer {
                    return None;
                }
                if timer == Timer::OperationDeadline {
                    s.budget.faults = s.budget.faults.checked_sub(1)?;
                }
                self.feed(&mut s, Input::Timeout, at.max(now), None, log);
            }
            Action::Crash => {
                s.budget.crashes = s.budget.crashes.checked_sub(1)?;
                self.crash(&mut s, now, log);
            }
        }
        Some(s)
    }

    fn initial(&self) -> State {
        let session = (self.plant)(Session::new(self.world.config, Instant::ZERO));
        let mut out = Vec::new();
        let checked = Checked::new(session, &mut out);
        let mut s = State {
            checked,
            server: Server {
                valid_from: 1,
                ..Server::default()
            },
            net: Vec::new(),
            store: None,
            open: BTreeMap::new(),
            budget: self.world.budget,
            events: Events::default(),
            held: None,
            key: None,
        };
        for command in &out {
            self.execute(&mut s, command, Instant::ZERO);
        }
        s
    }

    fn crash(&self, s: &mut State, now: Instant, log: &mut StepLog) {
        // What the server was processing completes there; the answers are lost with the process.
        for msg in core::mem::take(&mut s.net) {
            match msg {
                Msg::Login { .. } => {
                    self.issue(&mut s.server);
                }
                Msg::Refresh { token, .. } if s.server.live_refresh == Some(token) => {
                    self.issue(&mut s.server);
                }
                Msg::Refresh { .. } | Msg::Response { .. } => {}
            }
        }
        s.open.clear();
        let config = self.world.config;
        let (session, start) = match s.store {
            Some(stored) => {
                let snapshot = snapshot(stored);
                let session = Session::restore(config, snapshot.clone(), now, wall(now));
                s.events.insert(Events::RESTORED);
                let start = Start::Restore {
                    at: now,
                    wall: wall(now),
                    snapshot,
                };
                (session, start)
            }
            None => (Session::new(config, now), Start::New { at: now }),
        };
        s.held = s.store;
        log.restart = Some(start);
        let mut out = Vec::new();
        s.checked = Checked::new((self.plant)(session), &mut out);
        for command in &out {
            self.execute(s, command, now);
        }
        log.commands.extend(out);
    }

    fn issue(&self, server: &mut Server) -> TokenSet {
        server.issued += 1;
        let n = server.issued;
        server.live_refresh = Some(n);
        let tokens = TokenSet::new(AccessToken::new(format!("a{n}")))
            .with_refresh_token(RefreshToken::new(format!("r{n}")));
        match self.world.token_lifetime {
            Some(lifetime) => tokens.with_expires_in(lifetime),
            None => tokens,
        }
    }

    /// Feeds an app input; `None` when the session ignored it (no command, session unchanged),
    /// so that the model does not spend a budget on a no-op.
    fn feed_unless_ignored(
        &self,
        s: &mut State,
        before: &State,
        input: Input,
        now: Instant,
        log: &mut StepLog,
    ) -> Option<()> {
        let out = self.feed(s, input, now, None, log);
        (!out.is_empty() || s.checked.session != before.checked.session).then_some(())
    }

    /// Feeds a login/refresh result and notes when the session ignored it.
    fn feed_result(
        &self,
        s: &mut State,
        input: Input,
        now: Instant,
        log: &mut StepLog,
    ) -> Vec<Command> {
        let before = s.checked.session.clone();
        let out = self.feed(s, input, now, None, log);
        if s.checked.session == before {
            s.events.insert(Events::STALE_RESULT_IGNORED);
        }
        out
    }

    fn feed(
        &self,
        s: &mut State,
        input: Input,
        now: Instant,
        kind: Option<Kind>,
        log: &mut StepLog,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        log.inputs.push((now, input.clone()));
        let id = s.checked.handle(input, now, &mut out);
        if let (Some(id), Some(kind)) = (id, kind) {
            s.open.insert(id, kind);
        }
        for command in &out {
            self.execute(s, command, now);
        }
        log.commands.extend(out.iter().cloned());
        out
    }

    /// Does what a driver does with a command: sends, stores, completes.
    fn execute(&self, s: &mut State, command: &Command, now: Instant) {
        match command {
            Command::Send {
                id, attempt, token, ..
            } => {
                let public = s.open.get(id) == Some(&Kind::Public);
                s.insert_msg(Msg::Response {
                    id: *id,
                    attempt: *attempt,
                    token: token.as_ref().map(|t| number(t.expose_secret())),
                    public,
                });
            }
            Command::Login { op } => s.insert_msg(Msg::Login { op: *op }),
            Command::Refresh { op, refresh_token } => s.insert_msg(Msg::Refresh {
                op: *op,
                token: number(refresh_token.expose_secret()),
            }),
            Command::Persist(persist) => {
                let snapshot = persist.snapshot(now, wall(now));
                let stored = Stored {
                    access: number(snapshot.access_token.expose_secret()),
                    refresh: snapshot
                        .refresh_token
                        .as_ref()
                        .map(|t| number(t.expose_secret())),
                    expires_at: snapshot.expires_at,
                };
                s.store = Some(stored);
                s.held = Some(stored);
            }
            Command::ClearStore => s.store = None,
            Command::Revoke { refresh_token }
                if s.server.live_refresh == Some(number(refresh_token.expose_secret())) =>
            {
                s.server.live_refresh = None;
            }
            Command::Complete { id, outcome } => {
                s.open.remove(id);
                if *outcome == Outcome::Fail(RequestError::Timeout) {
                    s.events.insert(Events::QUEUE_TIMEOUT);
                }
            }
            _ => {}
        }
    }
}

/// The snapshot the store holds, with the fake server's token names.
pub fn snapshot(stored: Stored) -> Snapshot {
    Snapshot {
        access_token: AccessToken::new(format!("a{}", stored.access)),
        refresh_token: stored.refresh.map(|n| RefreshToken::new(format!("r{n}"))),
        expires_at: stored.expires_at,
    }
}

/// Names of the properties, in the order of [`AuthModel::properties`].
pub mod names {
    /// P1.
    pub const P1: &str = "P1 exactly once";
    /// P2.
    pub const P2: &str = "P2 single flight";
    /// P3.
    pub const P3: &str = "P3 no refresh after logout";
    /// P4.
    pub const P4: &str = "P4 current token";
    /// P5.
    pub const P5: &str = "P5 bounded retries";
    /// P6.
    pub const P6: &str = "P6 no wasted refresh";
    /// P7.
    pub const P7: &str = "P7 durability order";
    /// P8.
    pub const P8: &str = "P8 progress (quiet => settled)";
    /// The session's query methods agree with the monitor.
    pub const QUERIES: &str = "session queries agree with the monitor";
    /// A retried request delivered.
    pub const RETRIED: &str = "retried request delivered";
    /// Late 401 re-sent without refresh.
    pub const LATE_401: &str = "late 401 re-sent without refresh";
    /// `invalid_grant` then silent login.
    pub const INVALID_GRANT: &str = "invalid_grant then silent login";
    /// Logout during refresh.
    pub const LOGOUT_REFRESH: &str = "logout during refresh";
    /// A queued request timing out.
    pub const QUEUE_TIMEOUT: &str = "queued request timed out";
    /// Restore after crash.
    pub const RESTORED: &str = "restore after crash";
    /// Stale result ignored.
    pub const STALE: &str = "stale login/refresh result ignored";
    /// A 401 delivered once the retry budget was spent (only in worlds whose API rejects
    /// every call).
    pub const BUDGET_SPENT: &str = "retry budget spent, 401 delivered";
}

/// The auth-core property an `always` property of the model stands for.
pub fn core_property(name: &str) -> Option<Property> {
    Some(match name {
        names::P1 => Property::P1ExactlyOnce,
        names::P2 => Property::P2SingleFlight,
        names::P3 => Property::P3NoRefreshAfterLogout,
        names::P4 => Property::P4CurrentToken,
        names::P5 => Property::P5BoundedRetries,
        names::P6 => Property::P6NoWastedRefresh,
        names::P7 => Property::P7DurabilityOrder,
        names::P8 => Property::P8Progress,
        _ => return None,
    })
}

impl Model for AuthModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.initial()]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let b = s.budget;
        let session = &s.checked.session;
        if b.requests > 0 {
            actions.extend(self.world.kinds.iter().map(|k| Action::Submit(*k)));
        }
        if b.cancels > 0 {
            actions.extend(s.open.keys().map(|id| Action::Cancel(*id)));
        }
        let mut previous = None;
        for msg in &s.net {
            if previous == Some(msg) {
                continue; // an identical copy offers the same actions
            }
            previous = Some(msg);
            match *msg {
                Msg::Response { id, attempt, .. } => {
                    actions.push(Action::Deliver(id, attempt));
                    if b.faults > 0 {
                        actions.push(Action::Duplicate(id, attempt));
                    }
                }
                Msg::Login { op } => {
                    actions.push(Action::LoginOk(op));
                    if b.faults > 0 {
                        actions.push(Action::LoginTransient(op));
                        actions.push(Action::LoginFatal(op));
                    }
                }
                Msg::Refresh { op, token } => {
                    let live = s.server.live_refresh == Some(token);
                    if live {
                        actions.push(Action::RefreshOk(op));
                    }
                    if !live || b.faults > 0 {
                        actions.push(Action::RefreshInvalidGrant(op));
                    }
                    if b.faults > 0 {
                        actions.push(Action::RefreshTransient(op));
                    }
                }
            }
        }
        if b.expiries > 0 && s.server.valid_from <= s.server.issued {
            actions.push(Action::Expire);
        }
        // A logout or login the session ignores is a no-op (`next_state` gives `None`).
        if b.logouts > 0 {
            actions.push(Action::Logout);
        }
        if b.logins > 0 {
            actions.push(Action::Login);
        }
        if let Some((timer, _)) = session.next_timer() {
            if timer != Timer::OperationDeadline || b.faults > 0 {
                actions.push(Action::Fire(timer));
            }
        }
        if b.crashes > 0 {
            actions.push(Action::Crash);
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        self.step(state, action, &mut StepLog::default())
    }

    fn format_action(&self, action: &Action) -> String {
        crate::trace::describe(action)
    }

    fn properties(&self) -> Vec<stateright::Property<Self>> {
        use stateright::Property as P;
        let mut properties = vec![
            P::always(names::P1, |_, s: &State| {
                !s.violates(Property::P1ExactlyOnce)
            }),
            P::always(names::P2, |_, s: &State| {
                !s.violates(Property::P2SingleFlight)
            }),
            P::always(names::P3, |_, s: &State| {
                !s.violates(Property::P3NoRefreshAfterLogout)
            }),
            P::always(names::P4, |_, s: &State| {
                !s.violates(Property::P4CurrentToken)
            }),
            P::always(names::P5, |_, s: &State| {
                !s.violates(Property::P5BoundedRetries)
            }),
            P::always(names::P6, |_, s: &State| {
                !s.violates(Property::P6NoWastedRefresh)
            }),
            P::always(names::P7, |_, s: &State| {
                !s.violates(Property::P7DurabilityOrder)
            }),
            P::always(names::P8, |_, s: &State| {
                !s.violates(Property::P8Progress) && s.settled_if_quiet()
            }),
            P::always(names::QUERIES, |_, s: &State| s.queries_agree()),
            P::sometimes(names::RETRIED, |_, s: &State| {
                s.events.contains(Events::RETRIED_DELIVERED)
            }),
            P::sometimes(names::LATE_401, |_, s: &State| {
                s.events.contains(Events::LATE_401_RESENT)
            }),
            P::sometimes(names::INVALID_GRANT, |_, s: &State| {
                s.events.contains(Events::INVALID_GRANT_LOGIN)
            }),
            P::sometimes(names::LOGOUT_REFRESH, |_, s: &State| {
                s.events.contains(Events::LOGOUT_DURING_REFRESH)
            }),
            P::sometimes(names::QUEUE_TIMEOUT, |_, s: &State| {
                s.events.contains(Events::QUEUE_TIMEOUT)
            }),
            P::sometimes(names::RESTORED, |_, s: &State| {
                s.events.contains(Events::RESTORED)
            }),
            P::sometimes(names::STALE, |_, s: &State| {
                s.events.contains(Events::STALE_RESULT_IGNORED)
            }),
        ];
        if self.world.reject_every_call {
            properties.push(P::sometimes(names::BUDGET_SPENT, |_, s: &State| {
                s.events.contains(Events::BUDGET_SPENT)
            }));
        }
        properties
    }
}
