//! The decisions of the four shared-store operations over one record and one lease, written once
//! for every backend that holds both in one place (memory, file): the backend only supplies the
//! clock and the atomicity (a mutex, a file lock) and stores the result.
//!
//! `T` is the backend's clock: a monotonic [`std::time::Instant`] in memory, wall-clock
//! milliseconds in a file shared by processes.

use auth_core::{Snapshot, StoreVersion};

use super::{Acquired, LeaseOwner, Published, Record, RecordContent};

/// A lease: who holds it, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease<T> {
    /// The holder.
    pub(crate) owner: LeaseOwner,
    /// The first instant at which the lease no longer holds.
    pub(crate) expires_at: T,
}

/// The record and its lease, as one backend keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State<T> {
    /// The shared record.
    pub(crate) record: Record,
    /// The last lease granted; it may have expired (see [`State::live_lease`]).
    pub(crate) lease: Option<Lease<T>>,
}

/// Whether an operation changed the state, so a backend that writes it out knows it must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Change {
    /// Something changed: store the new state.
    Write,
    /// Nothing changed: nothing to store.
    Keep,
}

impl<T: Ord + Copy> State<T> {
    /// A store never written: the empty record, no lease.
    pub(crate) const fn empty() -> State<T> {
        State {
            record: Record::empty(),
            lease: None,
        }
    }

    /// The lease, if one is still live at `now`. An expired lease is nobody's: its holder can no
    /// longer release it (nor clear the mark), exactly as if a store had dropped it at its ttl.
    pub(crate) fn live_lease(&self, now: T) -> Option<&Lease<T>> {
        self.lease.as_ref().filter(|lease| now < lease.expires_at)
    }

    /// [`super::SharedStore::acquire`]: `owner` takes the lease until `expires_at` if none is
    /// live at `now`, and the mark is set; the answer holds the record from before.
    pub(crate) fn acquire(
        &mut self,
        owner: &LeaseOwner,
        now: T,
        expires_at: T,
    ) -> (Acquired, Change) {
        if self.live_lease(now).is_some() {
            return (Acquired::Busy(self.record.clone()), Change::Keep);
        }
        let before = self.record.clone();
        self.record.spent = true;
        self.lease = Some(Lease {
            owner: owner.clone(),
            expires_at,
        });
        (Acquired::Granted(before), Change::Write)
    }

    /// [`super::SharedStore::publish`]: compare-and-swap on the version; the lease is untouched.
    pub(crate) fn publish(
        &mut self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> (Published, Change) {
        if self.record.version != expected {
            return (Published::Conflict(self.record.clone()), Change::Keep);
        }
        self.record = Record {
            version: expected.next(),
            content: RecordContent::Tokens(snapshot.clone()),
            spent: false,
        };
        (Published::Written, Change::Write)
    }

    /// [`super::SharedStore::release`]: only the holder of a live lease gives it back; the mark
    /// is cleared only when the holder says it did not present the token of the version it still
    /// sees.
    pub(crate) fn release(
        &mut self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
        now: T,
    ) -> Change {
        if self
            .live_lease(now)
            .is_none_or(|lease| lease.owner != *owner)
        {
            return Change::Keep;
        }
        self.lease = None;
        if !spent && self.record.version == version {
            self.record.spent = false;
        }
        Change::Write
    }

    /// [`super::SharedStore::logout`]: the tombstone as a new version with its mark clear (a
    /// tombstone holds no token to spend), every time, a tombstone over a tombstone included, so
    /// a login under way anywhere loses its compare-and-swap; the lease is untouched.
    pub(crate) fn logout(&mut self) -> (Record, Change) {
        self.record = Record {
            version: self.record.version.next(),
            content: RecordContent::LoggedOut,
            spent: false,
        };
        (self.record.clone(), Change::Write)
    }
}
