//! The simulated shared store: one record (version, content, spent mark) and one lease, with the
//! four atomic operations of the protocol in `crate::shared` and a read, each applied at one
//! instant of the simulated clock. It decides nothing about sessions; the fleet tells the
//! [`crate::FleetMonitor`] what it did.

use core::time::Duration;

use crate::command::Persist;
use crate::input::OpId;
use crate::shared::{LeaseResult, Observed, PublishResult, StoreVersion, Stored};
use crate::time::Instant;
use crate::token::TokenSet;

use super::super::events::EventKey;
use super::Process;

/// Who holds a lease: a process, its incarnation (so a restarted process never releases the
/// lease its previous life took) and the operation, as the drivers' owner tokens do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Owner {
    pub(super) process: Process,
    pub(super) incarnation: u32,
    pub(super) op: OpId,
}

/// The end of the simulated clock: an instant that saturated there means "never", as the core's
/// deadlines do.
const NEVER: Instant = Instant::from_millis(u64::MAX);

/// A live lease and the queued event that ends it when its ttl runs out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lease {
    pub(super) owner: Owner,
    /// When its ttl runs out; `None` when that saturates the clock (a ttl of `Duration::MAX`, or
    /// a grant at the end of time, where no ttl can pass): it then lasts until released.
    pub(super) until: Option<Instant>,
    /// The event that ends it at `until`.
    pub(super) expiry: Option<EventKey>,
    /// Its holder has started the login or refresh it took the lease for.
    pub(super) started: bool,
}

/// How often each store operation ran and what it answered: the figures of
/// docs/performance.md ("Shared sessions in the simulator").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOps {
    /// Reads of the record (the watch's polls that found a change, process starts).
    pub reads: u64,
    /// `Acquire` calls.
    pub acquires: u64,
    /// ... of which granted the lease.
    pub granted: u64,
    /// ... of which found it busy.
    pub busy: u64,
    /// `Publish` calls.
    pub publishes: u64,
    /// ... of which wrote the tokens.
    pub written: u64,
    /// ... of which found another version (compare-and-swap lost).
    pub conflicts: u64,
    /// `Release` calls.
    pub releases: u64,
    /// Logouts (`ClearStore`), each writing a tombstone.
    pub logouts: u64,
    /// Operations of any kind that found the store unavailable.
    pub unavailable: u64,
    /// Leases that ran out before their holder released them.
    pub lease_expiries: u64,
}

impl StoreOps {
    /// Every operation that reached the store (or tried to).
    pub fn total(&self) -> u64 {
        self.reads + self.acquires + self.publishes + self.releases + self.logouts
    }

    /// What happened between `earlier` (a copy of these counters taken before) and now: the
    /// figures of one expiry, one storm. (Saturating: counters taken in the wrong order give
    /// zeros, not a panic.)
    pub fn since(&self, earlier: &StoreOps) -> StoreOps {
        StoreOps {
            reads: self.reads.saturating_sub(earlier.reads),
            acquires: self.acquires.saturating_sub(earlier.acquires),
            granted: self.granted.saturating_sub(earlier.granted),
            busy: self.busy.saturating_sub(earlier.busy),
            publishes: self.publishes.saturating_sub(earlier.publishes),
            written: self.written.saturating_sub(earlier.written),
            conflicts: self.conflicts.saturating_sub(earlier.conflicts),
            releases: self.releases.saturating_sub(earlier.releases),
            logouts: self.logouts.saturating_sub(earlier.logouts),
            unavailable: self.unavailable.saturating_sub(earlier.unavailable),
            lease_expiries: self.lease_expiries.saturating_sub(earlier.lease_expiries),
        }
    }
}

/// What the record holds; tokens with their expiry on the one simulated clock.
#[derive(Clone, Debug)]
enum Content {
    Empty,
    Tokens(Persist),
    LoggedOut,
}

/// The record and its lease.
#[derive(Clone, Debug)]
pub(super) struct Store {
    version: StoreVersion,
    content: Content,
    spent: bool,
    /// Every change of the record (publish, logout, data loss): what a driver that compares
    /// whole records notices, reused versions included.
    changes: u64,
    pub(super) lease: Option<Lease>,
    /// Unreachable while the clock is before this.
    pub(super) down_until: Instant,
    pub(super) ops: StoreOps,
}

impl Store {
    pub(super) fn new() -> Self {
        Store {
            version: StoreVersion::EMPTY,
            content: Content::Empty,
            spent: false,
            changes: 0,
            lease: None,
            down_until: Instant::ZERO,
            ops: StoreOps::default(),
        }
    }

    pub(super) fn available(&self, now: Instant) -> bool {
        now >= self.down_until
    }

    pub(super) fn version(&self) -> StoreVersion {
        self.version
    }

    /// How many times the record changed so far.
    pub(super) fn changes(&self) -> u64 {
        self.changes
    }

    /// The store lost its data (restarted without persistence): an empty record at version 0
    /// again, no mark, no lease. Returns the lease that was lost (its expiry event is the
    /// caller's to cancel).
    pub(super) fn lose_data(&mut self) -> Option<Lease> {
        self.version = StoreVersion::EMPTY;
        self.content = Content::Empty;
        self.spent = false;
        self.changes += 1;
        self.lease.take()
    }

    /// Whether the record holds a logout's tombstone.
    pub(super) fn holds_tombstone(&self) -> bool {
        matches!(self.content, Content::LoggedOut)
    }

    /// The record as a driver reading it at `now` sees it: token lifetimes counted from `now`.
    pub(super) fn observe(&self, now: Instant) -> Observed {
        let content = match &self.content {
            Content::Empty => Stored::Empty,
            Content::LoggedOut => Stored::LoggedOut,
            Content::Tokens(persist) => Stored::Tokens(TokenSet {
                access_token: persist.access_token.clone(),
                refresh_token: persist.refresh_token.clone(),
                expires_in: persist.expires_at.map(|at| at.saturating_since(now)),
            }),
        };
        Observed {
            version: self.version,
            content,
            spent: self.spent,
        }
    }

    /// A read; `None` when the store is unreachable.
    pub(super) fn read(&mut self, now: Instant) -> Option<Observed> {
        self.ops.reads += 1;
        if !self.available(now) {
            self.ops.unavailable += 1;
            return None;
        }
        Some(self.observe(now))
    }

    /// `Acquire`: the caller must have ended a lease whose ttl ran out (the fleet tells the
    /// monitor). Granting sets the spent mark in the same step and answers with the record as it
    /// was before. The lease's expiry event is filled in by the caller.
    pub(super) fn acquire(
        &mut self,
        owner: Owner,
        ttl: Duration,
        now: Instant,
        expiry: impl FnOnce(Instant) -> EventKey,
    ) -> LeaseResult {
        self.ops.acquires += 1;
        if !self.available(now) {
            self.ops.unavailable += 1;
            return LeaseResult::Unavailable;
        }
        let observed = self.observe(now);
        if self.lease.is_some() {
            self.ops.busy += 1;
            return LeaseResult::Busy(observed);
        }
        self.ops.granted += 1;
        self.spent = true;
        let until = Some(now.saturating_add(ttl)).filter(|&until| until != NEVER);
        self.lease = Some(Lease {
            owner,
            until,
            expiry: until.map(expiry),
            started: false,
        });
        LeaseResult::Granted(observed)
    }

    /// `Publish`: compare-and-swap on the version. The lease is not checked (the version is the
    /// guard).
    pub(super) fn publish(
        &mut self,
        expected: StoreVersion,
        persist: Persist,
        now: Instant,
    ) -> PublishResult {
        self.ops.publishes += 1;
        if !self.available(now) {
            self.ops.unavailable += 1;
            return PublishResult::Unavailable;
        }
        if self.version != expected {
            self.ops.conflicts += 1;
            return PublishResult::Conflict(self.observe(now));
        }
        self.ops.written += 1;
        self.changes += 1;
        self.version = expected.next();
        self.content = Content::Tokens(persist);
        self.spent = false;
        PublishResult::Written
    }

    /// `Release`: compare-and-delete on the owner; with `spent: false` the mark of `version` is
    /// cleared if the record is still at it. Returns the lease dropped (its expiry event is the
    /// caller's to cancel); a lease that is no longer `owner`'s is left alone.
    pub(super) fn release(
        &mut self,
        owner: Owner,
        version: StoreVersion,
        spent: bool,
        now: Instant,
    ) -> Option<Lease> {
        self.ops.releases += 1;
        if !self.available(now) {
            self.ops.unavailable += 1;
            return None;
        }
        let lease = self.lease.filter(|lease| lease.owner == owner)?;
        self.lease = None;
        if !spent && self.version == version {
            self.spent = false;
        }
        Some(lease)
    }

    /// `ClearStore`: a new tombstone as version + 1, over a tombstone too (so a login under way
    /// elsewhere loses its compare-and-swap). Answers with the record; `None` when unreachable.
    /// Leases are left alone.
    pub(super) fn logout(&mut self, now: Instant) -> Option<Observed> {
        self.ops.logouts += 1;
        if !self.available(now) {
            self.ops.unavailable += 1;
            return None;
        }
        self.changes += 1;
        self.version = self.version.next();
        self.content = Content::LoggedOut;
        self.spent = false;
        Some(self.observe(now))
    }
}
