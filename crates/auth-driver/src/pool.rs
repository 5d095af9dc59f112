//! The bookkeeping of a pool of keyed sessions (`auth_tokio::pool`, `auth_blocking::pool`), once
//! for both drivers, without I/O or time of its own: the entries by key, their order of last use
//! (for least-recently-used and idle eviction), and which of them are in use.
//!
//! Everything here runs under the pool's one short lock; nothing here waits. The drivers differ
//! only in the cell that starts a key's session once (`C`: tokio's `OnceCell`, std's
//! `OnceLock`), in what it holds, and in how its session (`S`) is read from it, which
//! [`Table::new`] takes as a function. Times are std [`Instant`]s (tokio's convert exactly,
//! paused clock included).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use std::time::{Duration, Instant};

/// One key's session cell, started once (single flight: every caller asking for the key waits on
/// the same cell). Whoever holds a clone of the `Arc` uses the session: a caller starting or
/// waiting for it, or a pooled session handed out. The table's own copy is the one left when
/// nobody does.
pub type Slot<C> = Arc<C>;

/// The entries of a pool, with their order of last use.
pub struct Table<K, C, S> {
    entries: HashMap<Arc<K>, Entry<C>>,
    /// Keys by the tick of their last use, oldest first. Ticks grow with the (monotonic) time
    /// of use, so the oldest tick is also the longest idle.
    order: BTreeMap<u64, Arc<K>>,
    next_tick: u64,
    /// The session a cell holds, if it started.
    session_of: fn(&C) -> Option<S>,
}

struct Entry<C> {
    slot: Slot<C>,
    tick: u64,
    used_at: Instant,
}

/// A session taken out of the table: shut it down (outside the lock).
pub struct Evicted<K, S> {
    /// Its key.
    pub key: Arc<K>,
    /// `None` when its session never started (its starters gave up or failed): nothing to shut
    /// down.
    pub session: Option<S>,
}

/// What [`Table::checkout`] found.
pub enum Checkout<K, C, S> {
    /// The key's slot (new or not), and the session evicted to make room for it, if any.
    Slot {
        /// The key's cell.
        slot: Slot<C>,
        /// `true` when the key was not in the table.
        new: bool,
        /// The session taken out to make room.
        evicted: Option<Evicted<K, S>>,
    },
    /// The key is new, the table is at `max_keys` and every key is in use.
    Full,
}

impl<K, C, S> Table<K, C, S> {
    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Hash + Eq, C: Default, S> Table<K, C, S> {
    /// An empty table whose cells' sessions are read with `session_of`.
    pub fn new(session_of: fn(&C) -> Option<S>) -> Self {
        Table {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
            session_of,
        }
    }

    /// The slot of `key`, marked used at `now`. A new key gets an empty slot; when that makes
    /// more than `max_keys`, the least recently used key not in use makes room.
    pub fn checkout(&mut self, key: &K, now: Instant, max_keys: usize) -> Checkout<K, C, S>
    where
        K: Clone,
    {
        let tick = self.tick();
        if let Some(entry) = self.entries.get_mut(key) {
            let old = std::mem::replace(&mut entry.tick, tick);
            entry.used_at = now;
            let slot = Arc::clone(&entry.slot);
            if let Some(name) = self.order.remove(&old) {
                self.order.insert(tick, name);
            }
            return Checkout::Slot {
                slot,
                new: false,
                evicted: None,
            };
        }
        let mut evicted = None;
        if self.entries.len() >= max_keys {
            match self.oldest_unused() {
                Some(victim) => evicted = self.remove_at(victim),
                None => return Checkout::Full,
            }
        }
        let key = Arc::new(key.clone());
        let slot = Slot::<C>::default();
        self.order.insert(tick, Arc::clone(&key));
        self.entries.insert(
            key,
            Entry {
                slot: Arc::clone(&slot),
                tick,
                used_at: now,
            },
        );
        Checkout::Slot {
            slot,
            new: true,
            evicted,
        }
    }

    /// Takes out every key not used since `now - idle` and not in use. A key in use past its
    /// idle time is not idle: it starts a new idle period now. The scan stops at the first key
    /// used too recently (the order is by last use). Returns the evicted sessions and when the
    /// next key would turn idle.
    pub fn sweep(&mut self, now: Instant, idle: Duration) -> (Vec<Evicted<K, S>>, Option<Instant>) {
        let mut evicted = Vec::new();
        let mut in_use = Vec::new();
        while let Some((&tick, key)) = self.order.first_key_value() {
            let Some(entry) = self.entries.get(key) else {
                // Unreachable: `order` and `entries` change together. Drop the stray tick.
                self.order.remove(&tick);
                continue;
            };
            if entry.used_at.checked_add(idle).is_none_or(|at| at > now) {
                break;
            }
            if Arc::strong_count(&entry.slot) > 1 {
                if let Some(key) = self.order.remove(&tick) {
                    in_use.push(key);
                }
                continue;
            }
            evicted.extend(self.remove_at(tick));
        }
        for key in in_use {
            let tick = self.tick();
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.tick = tick;
                entry.used_at = now;
                self.order.insert(tick, key);
            }
        }
        (evicted, self.next_idle(idle))
    }

    /// Takes `key` out, in use or not (an explicit eviction, or the pool's shutdown).
    pub fn remove(&mut self, key: &K) -> Option<Evicted<K, S>> {
        let tick = self.entries.get(key)?.tick;
        self.remove_at(tick)
    }

    /// Whether `slot` is still `key`'s entry.
    pub fn holds(&self, key: &K, slot: &Slot<C>) -> bool {
        self.entries
            .get(key)
            .is_some_and(|entry| Arc::ptr_eq(&entry.slot, slot))
    }

    /// Takes every entry out.
    pub fn drain(&mut self) -> Vec<Evicted<K, S>> {
        self.order.clear();
        let session_of = self.session_of;
        self.entries
            .drain()
            .map(|(key, entry)| Evicted {
                key,
                session: session_of(&entry.slot),
            })
            .collect()
    }

    /// Whether `key` has an entry.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// When the least recently used key turns idle; `None` for an empty table, or an idle
    /// time too long to be reached.
    fn next_idle(&self, idle: Duration) -> Option<Instant> {
        let (_, key) = self.order.first_key_value()?;
        self.entries.get(key)?.used_at.checked_add(idle)
    }

    /// The tick of the least recently used key that nobody uses.
    fn oldest_unused(&self) -> Option<u64> {
        self.order.iter().find_map(|(&tick, key)| {
            let entry = self.entries.get(key)?;
            (Arc::strong_count(&entry.slot) == 1).then_some(tick)
        })
    }

    fn remove_at(&mut self, tick: u64) -> Option<Evicted<K, S>> {
        let key = self.order.remove(&tick)?;
        let entry = self.entries.remove(&key)?;
        Some(Evicted {
            key,
            session: (self.session_of)(&entry.slot),
        })
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::OnceLock;

    use super::*;

    type TestTable = Table<u32, OnceLock<u32>, u32>;

    fn new_table() -> TestTable {
        Table::new(|cell| cell.get().copied())
    }

    fn checkout(
        table: &mut TestTable,
        key: u32,
        now: Instant,
        max_keys: usize,
    ) -> Slot<OnceLock<u32>> {
        match table.checkout(&key, now, max_keys) {
            Checkout::Slot { slot, .. } => slot,
            Checkout::Full => panic!("full"),
        }
    }

    #[test]
    fn the_sweep_takes_the_idle_keys_oldest_first_and_says_when_the_next_turns_idle() {
        let (mut table, t0, idle) = (new_table(), Instant::now(), Duration::from_secs(60));
        for (key, at) in [(1, 0), (2, 10), (3, 20)] {
            drop(checkout(
                &mut table,
                key,
                t0 + Duration::from_secs(at),
                usize::MAX,
            ));
        }
        // Key 1 used again at 30 s: now the most recent.
        drop(checkout(
            &mut table,
            1,
            t0 + Duration::from_secs(30),
            usize::MAX,
        ));
        let (evicted, next) = table.sweep(t0 + Duration::from_secs(75), idle);
        let keys: Vec<u32> = evicted.iter().map(|e| *e.key).collect();
        assert_eq!(keys, [2]);
        assert_eq!(next, Some(t0 + Duration::from_secs(80)));
        assert!(table.contains(&1) && table.contains(&3));
    }

    #[test]
    fn a_key_in_use_past_its_idle_time_starts_a_new_idle_period() {
        let (mut table, t0, idle) = (new_table(), Instant::now(), Duration::from_secs(60));
        let held = checkout(&mut table, 1, t0, usize::MAX);
        let later = t0 + Duration::from_secs(90);
        let (evicted, next) = table.sweep(later, idle);
        assert!(evicted.is_empty());
        assert_eq!(next, Some(later + idle));
        drop(held);
        let (evicted, next) = table.sweep(later + idle, idle);
        assert_eq!(evicted.len(), 1);
        assert_eq!(next, None);
    }

    #[test]
    fn an_idle_time_too_long_to_reach_has_no_deadline() {
        let mut table = new_table();
        drop(checkout(&mut table, 1, Instant::now(), usize::MAX));
        let (evicted, next) = table.sweep(Instant::now(), Duration::MAX);
        assert!(evicted.is_empty());
        assert_eq!(next, None, "a deadline in the past would spin the sweeper");
    }

    #[test]
    fn at_max_keys_the_oldest_key_not_in_use_makes_room_or_the_table_is_full() {
        let (mut table, t0) = (new_table(), Instant::now());
        let held = checkout(&mut table, 1, t0, 2);
        drop(checkout(&mut table, 2, t0, 2));
        match table.checkout(&3, t0, 2) {
            Checkout::Slot { new, evicted, .. } => {
                assert!(new);
                assert_eq!(evicted.map(|e| *e.key), Some(2), "the key in use was taken");
            }
            Checkout::Full => panic!("full with a key not in use"),
        }
        let also_held = checkout(&mut table, 3, t0, 2);
        assert!(matches!(table.checkout(&4, t0, 2), Checkout::Full));
        drop((held, also_held));
        assert_eq!(table.len(), 2);
    }
}
