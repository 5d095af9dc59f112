//! The table of outstanding requests and the queue of those waiting for the session.
//!
//! A slab (slots reused through a free list) rather than a map: lookups, inserts and removals are
//! O(1) whatever the number of outstanding requests, and in steady state nothing is allocated,
//! because freed slots and queue capacity are reused. Ids stay unique forever: each id packs the
//! submit counter above the slot index, and a lookup checks both.

use std::collections::VecDeque;

use crate::input::{Generation, RequestId, RequestSpec};
use crate::time::Instant;

/// Bits of a [`RequestId`] that hold the slot index: about a million requests outstanding at
/// once. The remaining 44 bits count submits.
pub(crate) const SLOT_BITS: u32 = 20;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// One outstanding request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Request {
    pub(crate) spec: RequestSpec,
    /// How many times it was sent so far.
    pub(crate) sends: u16,
    /// The session epoch (bumped by logout) it was submitted in.
    pub(crate) epoch: u32,
    pub(crate) place: Place,
}

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Place {
    /// Between submit and the first decision.
    New,
    /// Waiting for the session until `deadline`.
    Queued { deadline: Instant },
    /// Sent with the token of `generation` (`None` for public requests).
    InFlight { generation: Option<Generation> },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Slot {
    id: RequestId,
    request: Option<Request>,
}

/// Outstanding requests plus the FIFO of waiting ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Requests {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    /// Waiting requests in enqueue order, which is deadline order (every entry waits the same
    /// `queue_timeout`). A cancelled entry stays behind as a stale id and is skipped; the front
    /// is always a live waiting request, so the earliest deadline is a constant-time query.
    queue: VecDeque<RequestId>,
    queued: usize,
}

impl Requests {
    /// Stores a new request; `sequence` (the submit counter) makes its id unique.
    /// When every slot is taken, returns `Err` with an id that names no slot, for the caller to
    /// fail the request with.
    pub(crate) fn insert(
        &mut self,
        sequence: u64,
        request: Request,
    ) -> Result<RequestId, RequestId> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => match u32::try_from(self.slots.len()) {
                Ok(index) if u64::from(index) < SLOT_MASK => {
                    self.slots.push(Slot {
                        id: RequestId(0),
                        request: None,
                    });
                    index
                }
                _ => return Err(RequestId((sequence << SLOT_BITS) | SLOT_MASK)),
            },
        };
        let id = RequestId((sequence << SLOT_BITS) | u64::from(index));
        let slot = &mut self.slots[index as usize];
        *slot = Slot {
            id,
            request: Some(request),
        };
        self.live += 1;
        Ok(id)
    }

    pub(crate) fn get(&self, id: RequestId) -> Option<&Request> {
        self.slots
            .get(slot_of(id))
            .filter(|slot| slot.id == id)?
            .request
            .as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: RequestId) -> Option<&mut Request> {
        self.slots
            .get_mut(slot_of(id))
            .filter(|slot| slot.id == id)?
            .request
            .as_mut()
    }

    /// Forgets a request (and its place in the queue).
    pub(crate) fn remove(&mut self, id: RequestId) -> Option<Request> {
        let slot = self
            .slots
            .get_mut(slot_of(id))
            .filter(|slot| slot.id == id)?;
        let request = slot.request.take()?;
        self.free.push(slot_of(id) as u32);
        self.live -= 1;
        if matches!(request.place, Place::Queued { .. }) {
            self.queued -= 1;
            self.drop_stale_front();
        }
        Some(request)
    }

    /// Outstanding requests.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Waiting requests.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Puts a request at the back of the queue.
    pub(crate) fn enqueue(&mut self, id: RequestId, deadline: Instant) {
        if let Some(request) = self.get_mut(id) {
            request.place = Place::Queued { deadline };
            self.queue.push_back(id);
            self.queued += 1;
        }
    }

    /// The oldest waiting request and its deadline.
    pub(crate) fn front(&self) -> Option<(RequestId, Instant)> {
        let id = *self.queue.front()?;
        match self.get(id)?.place {
            Place::Queued { deadline } => Some((id, deadline)),
            _ => None,
        }
    }

    /// Takes the oldest waiting request out of the queue (it stays outstanding, placed `New`).
    pub(crate) fn pop_front(&mut self) -> Option<RequestId> {
        let (id, _) = self.front()?;
        self.queue.pop_front();
        self.queued -= 1;
        if let Some(request) = self.get_mut(id) {
            request.place = Place::New;
        }
        self.drop_stale_front();
        Some(id)
    }

    fn drop_stale_front(&mut self) {
        while let Some(&id) = self.queue.front() {
            if matches!(self.get(id).map(|r| r.place), Some(Place::Queued { .. })) {
                break;
            }
            self.queue.pop_front();
        }
        if self.queued == 0 {
            // Stale ids may remain only behind live ones; with none waiting, none remain.
            self.queue.clear();
        }
    }
}

fn slot_of(id: RequestId) -> usize {
    (id.0 & SLOT_MASK) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            spec: RequestSpec::bearer(),
            sends: 0,
            epoch: 0,
            place: Place::New,
        }
    }

    #[test]
    fn ids_stay_unique_when_slots_are_reused() {
        let mut table = Requests::default();
        let a = table.insert(1, request()).unwrap();
        assert!(table.remove(a).is_some());
        let b = table.insert(2, request()).unwrap();
        assert_ne!(a, b);
        assert!(
            table.get(a).is_none(),
            "a stale id never reaches the slot's new request"
        );
        assert!(table.remove(a).is_none());
        assert!(table.get(b).is_some());
        assert_eq!((a.sequence(), b.sequence()), (1, 2));
    }

    /// The table holds `SLOT_MASK` requests (slot bits all ones are kept for the refusal), then
    /// refuses with an id that carries the submit counter and names no slot; a freed slot is
    /// used again. About a million small inserts: this test is the only one that fills the table.
    #[test]
    fn a_full_table_refuses_with_an_id_that_names_no_slot() {
        let mut table = Requests::default();
        let capacity = SLOT_MASK;
        for sequence in 1..=capacity {
            assert!(table.insert(sequence, request()).is_ok(), "slot {sequence}");
        }
        assert_eq!(table.len(), capacity as usize);
        let refused = table.insert(capacity + 1, request()).unwrap_err();
        assert_eq!(refused.sequence(), capacity + 1);
        assert_eq!(slot_of(refused), SLOT_MASK as usize, "names no slot");
        assert!(table.get(refused).is_none());
        let last = RequestId((capacity << SLOT_BITS) | (capacity - 1));
        assert!(table.remove(last).is_some());
        let reused = table.insert(capacity + 2, request()).unwrap();
        assert_eq!(slot_of(reused), slot_of(last));
        assert_eq!(reused.sequence(), capacity + 2);
    }

    #[test]
    fn queue_skips_removed_entries_and_keeps_fifo_order() {
        let mut table = Requests::default();
        let ids: Vec<_> = (1..=4)
            .map(|n| table.insert(n, request()).unwrap())
            .collect();
        for (n, id) in ids.iter().enumerate() {
            table.enqueue(*id, Instant::from_millis(n as u64));
        }
        table.remove(ids[0]);
        table.remove(ids[2]);
        assert_eq!(table.queued(), 2);
        assert_eq!(table.front(), Some((ids[1], Instant::from_millis(1))));
        assert_eq!(table.pop_front(), Some(ids[1]));
        assert_eq!(table.pop_front(), Some(ids[3]));
        assert_eq!(table.pop_front(), None);
        assert_eq!(table.len(), 2, "popped requests stay outstanding");
    }
}
