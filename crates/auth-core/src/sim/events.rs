//! The simulators' event queue: messages in flight and timers, due in time order.
//!
//! One queue type serves the single-session [`crate::sim::Sim`] and the fleet simulator
//! ([`crate::sim::fleet`]), so both order the world the same way: by due time, and events due at
//! the same instant in the order they were scheduled (a network that keeps FIFO order per
//! instant), which makes every run replay exactly.

use std::collections::BTreeMap;

use crate::time::Instant;

/// Where an event sits in the queue, so that it can be cancelled before it is due.
pub(crate) type EventKey = (Instant, u64);

/// Events ordered by due time, then by scheduling order.
#[derive(Clone, Debug)]
pub(crate) struct Events<E> {
    queue: BTreeMap<EventKey, E>,
    next: u64,
}

impl<E> Default for Events<E> {
    fn default() -> Self {
        Events {
            queue: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<E> Events<E> {
    /// Queues `event` to happen at `at`; returns its key.
    pub(crate) fn schedule(&mut self, at: Instant, event: E) -> EventKey {
        let key = (at, self.next);
        self.next += 1;
        self.queue.insert(key, event);
        key
    }

    /// Removes an event that has not happened yet (nothing if it has).
    pub(crate) fn cancel(&mut self, key: EventKey) {
        self.queue.remove(&key);
    }

    /// When the next event is due.
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Takes the next event, with its due time.
    pub(crate) fn pop(&mut self) -> Option<(Instant, E)> {
        self.queue.pop_first().map(|((at, _), event)| (at, event))
    }

    /// Forgets every event.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
