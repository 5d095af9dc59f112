//! The one definition of the properties P1–P8 (DESIGN.md §4).
//!
//! The [`Monitor`] watches every input and every command of a session and records violations as
//! values. The stateright model keeps it as history state, proptest checks it after every step and
//! the fuzz target asserts it stays empty, so a property is written once, here. It only looks at
//! the session's interface (inputs and commands), never at its internals, so it judges the real
//! machine rather than restating it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{Command, SessionState};
use crate::config::Config;
use crate::input::{Auth, Generation, Input, OpId, RequestId, RequestSpec, Verdict};
use crate::session::Session;
use crate::time::Instant;

/// The properties of DESIGN.md §4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Property {
    /// Every submitted request completes exactly once; a finished request is never sent again.
    P1ExactlyOnce,
    /// Never two login/refresh operations in flight.
    P2SingleFlight,
    /// After `Logout`, no `Refresh`, `Login` or `Persist` until the next `Login` input.
    P3NoRefreshAfterLogout,
    /// Every `Send` carries the newest generation; public requests carry no token.
    P4CurrentToken,
    /// No request is sent more than `1 + max_retries` times.
    P5BoundedRetries,
    /// A 401 for an older generation never starts a refresh.
    P6NoWastedRefresh,
    /// Tokens are persisted before any request is sent with them.
    P7DurabilityOrder,
    /// Once faults stop, every request completes and the session settles.
    P8Progress,
}

/// One broken promise, with what the monitor saw.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// P1: a second `Complete` for one request.
    #[error("P1: request {0:?} completed twice")]
    CompletedTwice(RequestId),
    /// P1: a `Complete` or `Send` for a request that was never submitted.
    #[error("P1: request {0:?} was never submitted")]
    Unknown(RequestId),
    /// P1: a `Send` after the request completed or was cancelled.
    #[error("P1: request {0:?} sent after it completed")]
    SentAfterCompletion(RequestId),
    /// P1/P8: the session settled with this request never completed.
    #[error("P1/P8: request {0:?} never completed")]
    Lost(RequestId),
    /// P2: an operation started while another was in flight.
    #[error("P2: operation {started:?} started while {running:?} was in flight")]
    ConcurrentOperation {
        /// The operation already in flight.
        running: OpId,
        /// The one started beside it.
        started: OpId,
    },
    /// P3: a login, refresh or persist after a logout and before the next login.
    #[error("P3: {0} after logout")]
    ActAfterLogout(String),
    /// P4: a public request carried a token.
    #[error("P4: public request {0:?} carried a token")]
    TokenOnPublic(RequestId),
    /// P4: an authenticated request went out without a token.
    #[error("P4: authenticated request {0:?} sent without a token")]
    MissingToken(RequestId),
    /// P4: an authenticated request carried an older generation than the newest persisted.
    #[error("P4: request {id:?} sent with generation {sent:?}, newest is {newest:?}")]
    OldToken {
        /// The request.
        id: RequestId,
        /// The generation it carried.
        sent: Generation,
        /// The newest generation persisted.
        newest: Option<Generation>,
    },
    /// P5: a request was sent more often than the retry budget allows.
    #[error("P5: request {id:?} sent {sends} times")]
    TooManySends {
        /// The request.
        id: RequestId,
        /// How many sends were seen.
        sends: u16,
    },
    /// P6: a 401 for an older generation started a refresh.
    #[error("P6: a 401 for an older generation of request {0:?} started a refresh")]
    WastedRefresh(RequestId),
    /// P7: a request went out with a generation that was not persisted yet.
    #[error("P7: request {id:?} sent with generation {generation:?} before it was persisted")]
    SentBeforePersist {
        /// The request.
        id: RequestId,
        /// The generation it carried.
        generation: Generation,
    },
    /// P8: the session was left with an operation in flight or pending.
    #[error("P8: the session did not settle (left {0:?})")]
    NotSettled(SessionState),
}

impl Violation {
    /// Which property this violation breaks.
    pub fn property(&self) -> Property {
        match self {
            Violation::CompletedTwice(_)
            | Violation::Unknown(_)
            | Violation::SentAfterCompletion(_) => Property::P1ExactlyOnce,
            Violation::Lost(_) | Violation::NotSettled(_) => Property::P8Progress,
            Violation::ConcurrentOperation { .. } => Property::P2SingleFlight,
            Violation::ActAfterLogout(_) => Property::P3NoRefreshAfterLogout,
            Violation::TokenOnPublic(_)
            | Violation::MissingToken(_)
            | Violation::OldToken { .. } => Property::P4CurrentToken,
            Violation::TooManySends { .. } => Property::P5BoundedRetries,
            Violation::WastedRefresh(_) => Property::P6NoWastedRefresh,
            Violation::SentBeforePersist { .. } => Property::P7DurabilityOrder,
        }
    }
}

/// Watches one session's inputs and commands. `Clone + Eq + Hash` so that the model checker can
/// keep it in its states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Monitor {
    max_sends: u16,
    operation_timeout: core::time::Duration,
    requests: BTreeMap<RequestId, Watched>,
    /// Operations started and not yet answered, with their deadlines.
    operations: BTreeMap<OpId, Instant>,
    logged_out: bool,
    newest: Option<Generation>,
    /// The newest generation was rejected, or the session already set out to replace it.
    newest_suspect: bool,
    /// Set while handling a 401 for an older generation: a refresh now is wasted (P6).
    older_rejection: Option<RequestId>,
    now: Instant,
    violations: Vec<Violation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Watched {
    auth: Auth,
    sends: u16,
    generation: Option<Generation>,
    completed: bool,
}

impl Monitor {
    /// A monitor for `session` as it is now (a restored session's generation counts as
    /// persisted: it came from the store).
    pub fn new(session: &Session) -> Self {
        Monitor::with_config(session.config(), session.generation(), session.now())
    }

    /// A monitor for a session built with `config`, holding `generation` (persisted) at `now`.
    pub fn with_config(config: &Config, generation: Option<Generation>, now: Instant) -> Self {
        Monitor {
            max_sends: u16::from(config.max_retries) + 1,
            operation_timeout: config.operation_timeout,
            requests: BTreeMap::new(),
            operations: BTreeMap::new(),
            logged_out: false,
            newest: generation,
            newest_suspect: false,
            older_rejection: None,
            now,
            violations: Vec::new(),
        }
    }

    /// Records that `id` was submitted as `spec`.
    pub fn on_submit(&mut self, id: RequestId, spec: &RequestSpec) {
        let watched = Watched {
            auth: spec.auth,
            sends: 0,
            generation: None,
            completed: false,
        };
        self.requests.insert(id, watched);
    }

    /// Records an input, before the session handles it. (A `Submit` is recorded with
    /// [`Monitor::on_submit`] instead, because only the session knows the id it assigns.)
    pub fn on_input(&mut self, input: &Input, now: Instant) {
        self.now = self.now.max(now);
        self.older_rejection = None;
        match input {
            Input::Response {
                id,
                verdict: Verdict::Rejected,
                ..
            } => {
                let generation = self.requests.get(id).and_then(|r| r.generation);
                match (generation, self.newest) {
                    (Some(sent), Some(newest)) if sent < newest => self.older_rejection = Some(*id),
                    (Some(sent), Some(newest)) if sent == newest => self.newest_suspect = true,
                    _ => {}
                }
            }
            Input::LoginResult { op, .. } | Input::RefreshResult { op, .. } => {
                self.operations.remove(op);
            }
            Input::Logout => {
                self.logged_out = true;
                self.operations.clear();
            }
            Input::Login => self.logged_out = false,
            Input::Timeout => {
                let now = self.now;
                self.operations.retain(|_, deadline| *deadline > now);
            }
            Input::Submit(_)
            | Input::Cancel(_)
            | Input::Response { .. }
            | Input::Lease { .. }
            | Input::Published { .. }
            | Input::StoreChanged(_) => {}
        }
    }

    /// Records a command the session emitted.
    pub fn on_command(&mut self, command: &Command) {
        match command {
            Command::Send {
                id,
                token,
                generation,
                ..
            } => self.on_send(*id, token.is_some(), *generation),
            Command::Login { op } => self.on_operation(*op, "Login"),
            Command::Refresh { op, .. } => {
                if let (Some(id), false) = (self.older_rejection, self.newest_suspect) {
                    self.violations.push(Violation::WastedRefresh(id));
                }
                self.newest_suspect = true;
                self.on_operation(*op, "Refresh");
            }
            Command::Persist(persist) | Command::Publish { persist, .. } => {
                if self.logged_out {
                    self.violations
                        .push(Violation::ActAfterLogout("Persist".into()));
                }
                self.newest = Some(persist.generation);
                self.newest_suspect = false;
            }
            // Tokens another process stored: durable already. Taken after a logout, they come
            // from a login there (an explicit `Login`, judged by the fleet's monitor).
            Command::Adopted(generation) => {
                self.newest = Some(*generation);
                self.newest_suspect = false;
                self.logged_out = false;
            }
            // A logout in another process, seen in the shared store: as a `Logout` input.
            Command::Notify(SessionState::LoggedOut) => {
                self.logged_out = true;
                self.operations.clear();
            }
            Command::Complete { id, .. } => match self.requests.get_mut(id) {
                None => self.violations.push(Violation::Unknown(*id)),
                Some(watched) if watched.completed => {
                    self.violations.push(Violation::CompletedTwice(*id))
                }
                Some(watched) => watched.completed = true,
            },
            // A shared session gives its lease back when it gives its operation up (result,
            // deadline or logout): the operation is over, whatever deadline the monitor guessed.
            Command::Release { op, .. } => {
                self.operations.remove(op);
            }
            Command::ClearStore
            | Command::Revoke { .. }
            | Command::Notify(_)
            | Command::Acquire { .. } => {}
        }
    }

    /// Judges P8 (and the "none lost" half of P1) once the world is quiet: no message in flight,
    /// no timer left that could change anything.
    pub fn check_settled(&mut self, state: SessionState) {
        let lost: Vec<_> = self
            .requests
            .iter()
            .filter(|(_, r)| !r.completed)
            .map(|(id, _)| *id)
            .collect();
        self.violations
            .extend(lost.into_iter().map(Violation::Lost));
        if matches!(state, SessionState::LoggingIn | SessionState::Refreshing) {
            self.violations.push(Violation::NotSettled(state));
        }
    }

    /// Everything seen so far that broke a property.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Whether any property was broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// Requests submitted and not yet completed.
    pub fn pending(&self) -> usize {
        self.requests.values().filter(|r| !r.completed).count()
    }

    fn on_send(&mut self, id: RequestId, has_token: bool, generation: Option<Generation>) {
        let max_sends = self.max_sends;
        let newest = self.newest;
        let Some(watched) = self.requests.get_mut(&id) else {
            return self.violations.push(Violation::Unknown(id));
        };
        let mut found = Vec::new();
        if watched.completed {
            found.push(Violation::SentAfterCompletion(id));
        }
        watched.sends = watched.sends.saturating_add(1);
        if watched.sends > max_sends {
            found.push(Violation::TooManySends {
                id,
                sends: watched.sends,
            });
        }
        watched.generation = generation;
        match (watched.auth, has_token, generation) {
            (Auth::Public, true, _) => found.push(Violation::TokenOnPublic(id)),
            (Auth::Bearer, false, _) | (Auth::Bearer, true, None) => {
                found.push(Violation::MissingToken(id))
            }
            (Auth::Bearer, true, Some(sent)) => match newest {
                Some(newest) if sent == newest => {}
                Some(newest) if sent < newest => found.push(Violation::OldToken {
                    id,
                    sent,
                    newest: Some(newest),
                }),
                _ => found.push(Violation::SentBeforePersist {
                    id,
                    generation: sent,
                }),
            },
            (Auth::Public, false, _) => {}
        }
        self.violations.extend(found);
    }

    fn on_operation(&mut self, op: OpId, what: &str) {
        if self.logged_out {
            self.violations.push(Violation::ActAfterLogout(what.into()));
        }
        if let Some((&running, _)) = self.operations.first_key_value() {
            self.violations.push(Violation::ConcurrentOperation {
                running,
                started: op,
            });
        }
        self.operations
            .insert(op, self.now.saturating_add(self.operation_timeout));
    }
}

/// A session with its monitor attached: the single place where inputs reach both, used by the
/// simulator, the model, proptest and the fuzzer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    /// The real session.
    pub session: Session,
    /// Its monitor.
    pub monitor: Monitor,
}

impl Checked {
    /// Attaches a fresh monitor to `session` and appends to `out` the commands its constructor
    /// emitted (an eager login), judged like any other.
    pub fn new(session: Session, out: &mut Vec<Command>) -> Self {
        let monitor = Monitor::new(&session);
        let mut checked = Checked { session, monitor };
        checked.drain(out);
        checked
    }

    /// Feeds `input` to the session and the monitor and appends the commands to `out`.
    /// Returns the id a `Submit` was given.
    pub fn handle(
        &mut self,
        input: Input,
        now: Instant,
        out: &mut Vec<Command>,
    ) -> Option<RequestId> {
        let id = match input {
            Input::Submit(spec) => {
                self.monitor.on_input(&input, now);
                let id = self.session.submit(spec, now);
                self.monitor.on_submit(id, &spec);
                Some(id)
            }
            input => {
                self.monitor.on_input(&input, now);
                self.session.handle(input, now);
                None
            }
        };
        self.drain(out);
        id
    }

    fn drain(&mut self, out: &mut Vec<Command>) {
        while let Some(command) = self.session.poll() {
            self.monitor.on_command(&command);
            out.push(command);
        }
    }
}
