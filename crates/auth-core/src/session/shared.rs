//! The rules of a session shared by several processes through one store (DESIGN.md §7): lease
//! before every login or refresh, present a refresh token only when the lease found it unspent,
//! publish by compare-and-swap, adopt what other processes wrote, and follow their logout.
//!
//! A local session (built with [`Session::new`] or [`Session::restore`]) never reaches any of
//! this: its `shared` is `None`, every operation is `Running` from the start, and the inputs of
//! this module are ignored.

use crate::broken::Bug;
use crate::command::{Command, Persist, RequestError, SessionState};
use crate::config::Config;
use crate::input::OpId;
use crate::shared::{LeaseResult, Observed, PublishResult, StoreVersion, Stored, LEASE_RETRY};
use crate::time::Instant;
use crate::token::TokenSet;

use super::{OpKind, Operation, Phase, Session};

/// What a shared session knows about the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Shared {
    /// The version of the record the session's view comes from: its tokens were read or written
    /// as this version, or it saw this tombstone. Any other version means the record changed.
    basis: StoreVersion,
    /// What that record held. A version alone does not name a record: a store that lost its
    /// data reuses versions, and a tombstone at the version of this session's tokens is a logout.
    basis_content: Content,
    /// The lease this session holds, if any.
    lease: Option<Lease>,
    /// The last transient failure was the store's (the lease could not be taken), so a queue that
    /// gives up fails with `StoreUnavailable` rather than `AuthUnavailable`.
    store_trouble: bool,
}

/// The kind of record the basis is (its tokens, if any, are the session's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Content {
    Empty,
    Tokens,
    LoggedOut,
}

impl Content {
    fn of(stored: &Stored) -> Content {
        match stored {
            Stored::Empty => Content::Empty,
            Stored::Tokens(_) => Content::Tokens,
            Stored::LoggedOut => Content::LoggedOut,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Lease {
    op: OpId,
    /// The version it was granted on.
    version: StoreVersion,
    /// The version's refresh token may have been presented: it was marked spent when granted,
    /// or this holder presented it. Released with `spent: false`, the store clears the mark.
    spent: bool,
}

impl Session {
    /// A session shared with other processes through a store, starting from the record the
    /// driver read: `Active` with its tokens (generation 1), `LoggedOut` after a logout anywhere
    /// (a restart never brings a logged-out session back), or `Anonymous` when the store holds
    /// nothing (with `Config::eager_login` the login starts at once, through the lease).
    ///
    /// The token lifetime in `observed` is counted from when the driver read it.
    pub fn shared(config: Config, observed: Observed, now: Instant) -> Self {
        let mut session = Session::new(
            Config {
                eager_login: false,
                ..config
            },
            now,
        );
        session.config = config;
        session.shared = Some(Shared {
            basis: observed.version,
            basis_content: Content::of(&observed.content),
            lease: None,
            store_trouble: false,
        });
        match observed.content {
            Stored::Tokens(tokens) => {
                session.adopt_tokens(tokens);
                session.stage = SessionState::Active;
            }
            Stored::LoggedOut => session.stage = SessionState::LoggedOut,
            Stored::Empty if config.eager_login => session.start(OpKind::Login),
            Stored::Empty => {}
        }
        session
    }

    /// Whether this session is shared through a store ([`Session::shared`]).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The store answered `Command::Acquire` of `op`. A grant for an operation that is no longer
    /// waiting for it (timed out, logged out) is given back at once.
    pub fn handle_lease(&mut self, op: OpId, result: LeaseResult, now: Instant) {
        self.advance(now);
        if self.shared.is_none() {
            return;
        }
        // An answer read after the operation's deadline (a process paused past it) is late
        // whatever order the driver feeds it in: the operation is given up first, so a grant
        // is given back instead of starting a login or refresh after the lease may have passed.
        // Read at the deadline instant is still in time (with a zero `operation_timeout`, an
        // instant answer must work): the lease lasts at least twice that from the ask.
        if self.op.is_some_and(|current| current.deadline < self.now) {
            self.handle_timeout(now);
        }
        let Some(current) = self
            .op
            .filter(|current| current.id == op && current.phase == Phase::Leasing)
        else {
            if let LeaseResult::Granted(observed) = result {
                self.out.push_back(Command::Release {
                    op,
                    version: observed.version,
                    spent: observed.spent,
                });
            }
            return;
        };
        match result {
            LeaseResult::Unavailable => {
                self.op = None;
                self.blame_store(true);
                self.transient_failure(current.kind);
            }
            LeaseResult::Busy(observed) => {
                if !self.observe(observed) {
                    self.set_phase(Phase::Waiting {
                        retry_at: self.now.saturating_add(LEASE_RETRY),
                    });
                }
            }
            LeaseResult::Granted(observed) => self.granted(current, observed),
        }
    }

    /// The store answered `Command::Publish` of `op`.
    pub fn handle_published(&mut self, op: OpId, result: PublishResult, now: Instant) {
        self.advance(now);
        if self
            .op
            .is_none_or(|current| current.id != op || current.phase != Phase::Publishing)
        {
            return;
        }
        self.op = None;
        let written = matches!(result, PublishResult::Written);
        if let (true, Some(shared)) = (written, self.shared.as_mut()) {
            // The version the tokens were offered on: the lease's (the basis, without a lease).
            let expected = shared.lease.map_or(shared.basis, |lease| lease.version);
            shared.basis = expected.next();
            shared.basis_content = Content::Tokens;
        }
        self.release_lease();
        match result {
            PublishResult::Conflict(observed) if !self.is_basis(&observed) => {
                match observed.content {
                    Stored::LoggedOut => return self.shared_logout(observed.version),
                    Stored::Tokens(tokens) if self.usable_set(&tokens) => {
                        // Another process wrote newer tokens while ours were in flight (its
                        // lease followed ours): theirs are the fleet's; ours are dropped.
                        self.adopt_observed(tokens, observed.version);
                    }
                    // Ours are good and theirs are not: use ours in memory; they were never
                    // stored, so the next lease re-reads the store first.
                    Stored::Tokens(_) | Stored::Empty => {}
                }
            }
            // Written; or the store could not be reached (the tokens live in memory only, and
            // the record keeps its spent mark: whoever needs tokens next logs in).
            _ => {}
        }
        self.release_queue();
    }

    /// The driver saw the shared record change. While this session's lease is being asked for or
    /// held, only a logout elsewhere counts (the lease path reads the record itself).
    pub fn handle_store_changed(&mut self, observed: Observed, now: Instant) {
        self.advance(now);
        if self.shared.is_none() {
            return;
        }
        match self.op.map(|op| op.phase) {
            Some(Phase::Leasing | Phase::Running | Phase::Publishing) => {
                if observed.content == Stored::LoggedOut && !self.is_basis(&observed) {
                    self.shared_logout(observed.version);
                }
            }
            Some(Phase::Waiting { .. }) | None => {
                self.observe(observed);
            }
        }
    }

    /// The store's version this session's view comes from; `None` for a local session.
    pub(super) fn basis(&self) -> Option<StoreVersion> {
        self.shared.as_ref().map(|shared| shared.basis)
    }

    /// Whether `observed` is the record this session's view comes from: the same version and,
    /// for tokens, the same tokens. Versions alone do not say it: a store that lost its data
    /// starts again from 0 and reuses them, and a refresh token from before the loss may have
    /// been presented by a holder whose spent mark was lost with it.
    fn is_basis(&self, observed: &Observed) -> bool {
        let Some(shared) = self.shared.as_ref() else {
            return false;
        };
        observed.version == shared.basis
            && Content::of(&observed.content) == shared.basis_content
            && match &observed.content {
                Stored::Tokens(set) => self.tokens.as_ref().is_some_and(|held| {
                    held.access == set.access_token && held.refresh == set.refresh_token
                }),
                Stored::Empty | Stored::LoggedOut => true,
            }
    }

    pub(super) fn store_trouble(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| shared.store_trouble)
    }

    pub(super) fn blame_store(&mut self, store: bool) {
        if let Some(shared) = self.shared.as_mut() {
            shared.store_trouble = store;
        }
    }

    /// Gives the lease back, if one is held.
    pub(super) fn release_lease(&mut self) {
        if let Some(lease) = self.shared.as_mut().and_then(|shared| shared.lease.take()) {
            self.out.push_back(Command::Release {
                op: lease.op,
                version: lease.version,
                spent: lease.spent,
            });
        }
    }

    /// A waiting operation asks for the lease again once its pause is over.
    pub(super) fn retry_lease(&mut self, now: Instant) {
        let ttl = self.lease_ttl();
        let Some(op) = self.op.as_mut() else {
            return;
        };
        if let Phase::Waiting { retry_at } = op.phase {
            if retry_at <= now {
                op.phase = Phase::Leasing;
                let op = op.id;
                self.out.push_back(Command::Acquire { op, ttl });
            }
        }
    }

    /// How long a lease lasts if never released: twice the operation timeout, so a holder gives
    /// its operation up well before the lease can pass on.
    pub(super) fn lease_ttl(&self) -> core::time::Duration {
        self.config
            .operation_timeout
            .saturating_mul(2)
            .max(core::time::Duration::from_millis(1))
    }

    /// New tokens of `op`: offered to the store; the queue waits for the answer.
    pub(super) fn publish(&mut self, op: OpId, expected: StoreVersion, persist: Persist) {
        let expected = self
            .shared
            .as_ref()
            .and_then(|shared| shared.lease)
            .map_or(expected, |lease| lease.version);
        self.op = Some(Operation {
            id: op,
            // Unused: a publish that times out releases the queue with the tokens in memory.
            kind: OpKind::Login,
            deadline: self.now.saturating_add(self.config.operation_timeout),
            phase: Phase::Publishing,
        });
        self.out.push_back(Command::Publish {
            op,
            expected,
            persist,
        });
    }

    /// The lease is ours: decide from the record what the operation does.
    fn granted(&mut self, current: Operation, observed: Observed) {
        let changed = !self.is_basis(&observed);
        if let Some(shared) = self.shared.as_mut() {
            shared.lease = Some(Lease {
                op: current.id,
                version: observed.version,
                spent: observed.spent,
            });
        }
        let spent = observed.spent && !self.has_bug(Bug::IgnoreSpentMark);
        let mut may_refresh = false;
        match observed.content {
            // A logout elsewhere since this session last looked: it wins.
            Stored::LoggedOut if changed => return self.shared_logout(observed.version),
            // The tombstone this session knows: only an explicit login gets here.
            Stored::LoggedOut => {}
            Stored::Tokens(tokens) if changed => {
                self.adopt_observed(tokens, observed.version);
                if self.tokens.as_ref().is_some_and(|t| t.usable(self.now)) {
                    self.op = None;
                    self.release_lease();
                    return self.finish_adopted();
                }
                may_refresh = true;
            }
            Stored::Tokens(_) => may_refresh = current.kind == OpKind::Refresh,
            // The store forgot its record (or never had one): nobody can tell whether the refresh
            // token held here was presented elsewhere, so log in.
            Stored::Empty => {
                if let Some(shared) = self.shared.as_mut() {
                    shared.basis = observed.version;
                    shared.basis_content = Content::Empty;
                }
            }
        }
        let refresh_token = self
            .tokens
            .as_ref()
            .and_then(|tokens| tokens.refresh.clone())
            .filter(|_| may_refresh && !spent);
        let (kind, command, stage) = match refresh_token {
            Some(refresh_token) => {
                if let Some(lease) = self.shared.as_mut().and_then(|s| s.lease.as_mut()) {
                    lease.spent = true;
                }
                (
                    OpKind::Refresh,
                    Command::Refresh {
                        op: current.id,
                        refresh_token,
                    },
                    SessionState::Refreshing,
                )
            }
            None => (
                OpKind::Login,
                Command::Login { op: current.id },
                SessionState::LoggingIn,
            ),
        };
        // The operation's own time starts at the grant: waiting for the lease does not eat into
        // it. Still safe: the grant was read before the first deadline, so less than
        // `operation_timeout` after the last ask, and the lease lasts twice that from the ask.
        self.op = Some(Operation {
            kind,
            phase: Phase::Running,
            deadline: self.now.saturating_add(self.config.operation_timeout),
            ..current
        });
        self.out.push_back(command);
        self.enter(stage);
    }

    /// A record read while not holding the lease. Returns whether the session moved on (a logout
    /// elsewhere, or usable tokens that ended the wait).
    fn observe(&mut self, observed: Observed) -> bool {
        if self.is_basis(&observed) {
            return false;
        }
        match observed.content {
            Stored::LoggedOut => {
                self.shared_logout(observed.version);
                true
            }
            Stored::Tokens(tokens) => {
                self.adopt_observed(tokens, observed.version);
                let usable = self.tokens.as_ref().is_some_and(|t| t.usable(self.now));
                if usable || (self.op.is_none() && self.backoff.is_none()) {
                    self.op = None;
                    self.finish_adopted();
                    return true;
                }
                false
            }
            Stored::Empty => false,
        }
    }

    /// Takes tokens another process wrote as the next generation.
    fn adopt_observed(&mut self, tokens: TokenSet, version: StoreVersion) {
        // Never fall back to a refresh token of another version.
        self.tokens = None;
        let generation = self.adopt_tokens(tokens).generation;
        if let Some(shared) = self.shared.as_mut() {
            shared.basis = version;
            shared.basis_content = Content::Tokens;
        }
        self.out.push_back(Command::Adopted(generation));
    }

    /// Tokens from elsewhere end any reset under way: the queue goes out with them.
    fn finish_adopted(&mut self) {
        self.reset_failures();
        self.release_queue();
    }

    fn usable_set(&self, tokens: &TokenSet) -> bool {
        tokens.expires_in.is_none_or(|life| {
            let early = life
                .saturating_sub(self.config.refresh_margin)
                .max(life / 2);
            !early.is_zero()
        })
    }

    /// A logout in another process (its tombstone is `version`): as a local logout, except that
    /// the store is already cleared and the token already revoked by that process.
    fn shared_logout(&mut self, version: StoreVersion) {
        if let Some(shared) = self.shared.as_mut() {
            shared.basis = version;
            shared.basis_content = Content::LoggedOut;
        }
        self.release_lease();
        if self.stage == SessionState::LoggedOut {
            return;
        }
        self.epoch = self.epoch.wrapping_add(1);
        self.op = None;
        self.backoff = None;
        self.attempts = 0;
        self.tokens = None;
        self.enter(SessionState::LoggedOut);
        self.fail_queue(RequestError::LoggedOut);
    }

    fn set_phase(&mut self, phase: Phase) {
        if let Some(op) = self.op.as_mut() {
            op.phase = phase;
        }
    }
}
