//! The conformance suite of [`SharedStore`] backends: the semantics written down in the
//! [module documentation](super), as checks every backend (memory, file, Redis) runs in its own
//! tests. Behind the `conformance` feature, so only tests build it.
//!
//! Each check takes a **fresh** store (never written, no lease: it reads as [`Record::empty`])
//! and panics with a message naming the rule it found broken. [`run_all`] runs every check, each
//! on a new store from its factory:
//!
//! ```
//! use auth_store::shared::{conformance, MemorySharedStore};
//!
//! conformance::run_all(MemorySharedStore::new);
//! ```
//!
//! Checks that need time to pass (lease expiry) sleep for a few hundred milliseconds with leases
//! of [`SHORT_TTL`]; they only assert that a lease is still live when the check measured that
//! less than its ttl passed, so a slow machine makes them weaker, never flaky. The clock of a
//! backend may be another host's (Redis): expiry is allowed [`EXPIRY_MARGIN`] of lateness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use auth_core::{AccessToken, RefreshToken, Snapshot, StoreVersion, UnixTime};

use super::{
    Acquired, LeaseOwner, Published, Record, RecordContent, SharedStore, SharedStoreError,
};

/// The ttl of leases the checks expect to expire while they sleep.
pub const SHORT_TTL: Duration = Duration::from_millis(150);

/// How late after its ttl a lease may still be live: the store's clock and the network between
/// the check and the store.
pub const EXPIRY_MARGIN: Duration = Duration::from_millis(250);

/// The ttl of leases that must stay live for the whole check.
pub const LONG_TTL: Duration = Duration::from_secs(120);

/// Text inside every token of [`sample_snapshot`]: search for it in anything a backend shows
/// (errors, `Debug`, key names) to prove it shows no token.
pub const SAMPLE_SECRET: &str = "seamless-conformance-secret";

/// How many threads race for one lease in [`concurrent_acquires_grant_exactly_one`].
pub const RACERS: usize = 8;

/// Runs every check, each on a new store from `make`. A factory for a backend shared by
/// processes must return stores that share nothing with each other (a new file, a new key
/// prefix).
pub fn run_all<S: SharedStore>(make: impl Fn() -> S) {
    a_fresh_store_reads_empty(&make());
    grant_sets_the_spent_mark_and_answers_the_record_before_it(&make());
    a_live_lease_makes_every_acquire_busy(&make());
    a_lease_expires_after_its_ttl(&make());
    release_lets_the_next_owner_in(&make());
    release_by_another_owner_does_nothing(&make());
    release_clears_the_mark_only_when_unspent_and_unchanged(&make());
    release_after_the_ttl_does_nothing(&make());
    publish_is_a_compare_and_swap_on_the_version(&make());
    publish_leaves_the_lease_alone(&make());
    every_logout_writes_a_new_tombstone(&make());
    logout_leaves_the_lease_alone(&make());
    concurrent_acquires_grant_exactly_one(&make());
    answers_show_no_token(&make());
}

/// A store never written reads as [`Record::empty`]: version 0, nothing, no mark.
pub fn a_fresh_store_reads_empty<S: SharedStore>(store: &S) {
    assert_eq!(
        read(store),
        Record::empty(),
        "a fresh store must read as Record::empty() (version 0, Empty, not spent)"
    );
}

/// A grant sets the spent mark in the same step, and answers with the record as it was before
/// the mark was set; the tokens come back as they were published.
pub fn grant_sets_the_spent_mark_and_answers_the_record_before_it<S: SharedStore>(store: &S) {
    let granted = acquire(store, "grant-1", LONG_TTL);
    assert_eq!(
        granted,
        Acquired::Granted(Record::empty()),
        "the first acquire of a fresh store must be granted with the record before the mark"
    );
    assert_eq!(
        read(store),
        Record {
            spent: true,
            ..Record::empty()
        },
        "a grant must set the spent mark and change nothing else"
    );
    publish(store, StoreVersion::EMPTY, &sample_snapshot(1));
    release(store, "grant-1", StoreVersion(1), false);
    let written = Record {
        version: StoreVersion(1),
        content: RecordContent::Tokens(sample_snapshot(1)),
        spent: false,
    };
    assert_eq!(
        acquire(store, "grant-2", LONG_TTL),
        Acquired::Granted(written.clone()),
        "a grant must answer with the published tokens and the mark as it was before the grant"
    );
    assert_eq!(
        read(store),
        Record {
            spent: true,
            ..written
        },
        "a grant on a record with tokens must set its mark"
    );
}

/// While a lease is live, every acquire is `Busy` with the record as it is, whoever asks
/// (the holder too: a lease is not re-entrant), and changes nothing.
pub fn a_live_lease_makes_every_acquire_busy<S: SharedStore>(store: &S) {
    publish(store, StoreVersion::EMPTY, &sample_snapshot(1));
    assert!(
        matches!(acquire(store, "holder", LONG_TTL), Acquired::Granted(_)),
        "the first acquire must be granted"
    );
    let held = read(store);
    for owner in ["other", "holder"] {
        assert_eq!(
            acquire(store, owner, LONG_TTL),
            Acquired::Busy(held.clone()),
            "an acquire by {owner:?} during a live lease must be Busy with the record as it is"
        );
    }
    assert_eq!(
        read(store),
        held,
        "a Busy acquire must not change the record"
    );
}

/// A lease nobody releases ends at its ttl: then the next owner is granted, and sees the mark
/// the silent holder left.
pub fn a_lease_expires_after_its_ttl<S: SharedStore>(store: &S) {
    let start = Instant::now();
    assert!(
        matches!(acquire(store, "silent", SHORT_TTL), Acquired::Granted(_)),
        "the first acquire must be granted"
    );
    // An early probe; if the machine was too slow for it to come early, it may be granted,
    // and its lease expires like the first one.
    let probed = Instant::now();
    let early = acquire(store, "early", SHORT_TTL);
    if start.elapsed() < SHORT_TTL {
        assert!(
            matches!(early, Acquired::Busy(_)),
            "a lease must hold until its ttl: {early:?}"
        );
    }
    sleep_past(probed, SHORT_TTL);
    assert_eq!(
        acquire(store, "next", LONG_TTL),
        Acquired::Granted(Record {
            spent: true,
            ..Record::empty()
        }),
        "after its ttl a lease must pass to the next owner, who sees the mark left behind"
    );
}

/// A released lease is free at once: the next acquire is granted.
pub fn release_lets_the_next_owner_in<S: SharedStore>(store: &S) {
    assert!(matches!(
        acquire(store, "first", LONG_TTL),
        Acquired::Granted(_)
    ));
    release(store, "first", StoreVersion::EMPTY, true);
    assert!(
        matches!(acquire(store, "second", LONG_TTL), Acquired::Granted(_)),
        "a released lease must be granted to the next owner"
    );
}

/// A release by anyone but the holder leaves the lease and the mark alone.
pub fn release_by_another_owner_does_nothing<S: SharedStore>(store: &S) {
    assert!(matches!(
        acquire(store, "holder", LONG_TTL),
        Acquired::Granted(_)
    ));
    let held = read(store);
    release(store, "stranger", StoreVersion::EMPTY, false);
    assert_eq!(
        read(store),
        held,
        "a release by a non-owner must not clear the mark"
    );
    assert!(
        matches!(acquire(store, "third", LONG_TTL), Acquired::Busy(_)),
        "a release by a non-owner must not drop the lease"
    );
}

/// The holder's release drops its lease in every case; it clears the mark only when the holder
/// did not present the token (`spent: false`) of the version the record still has.
pub fn release_clears_the_mark_only_when_unspent_and_unchanged<S: SharedStore>(store: &S) {
    let marked = Record {
        spent: true,
        ..Record::empty()
    };
    // Presented (spent: true): the mark stays.
    assert!(matches!(
        acquire(store, "a", LONG_TTL),
        Acquired::Granted(_)
    ));
    release(store, "a", StoreVersion::EMPTY, true);
    assert_eq!(
        read(store),
        marked,
        "release(spent: true) must keep the mark"
    );
    // Not presented, but of another version than the record's: the mark stays.
    assert_eq!(
        acquire(store, "b", LONG_TTL),
        Acquired::Granted(marked.clone()),
        "a released lease must be granted again, the mark showing"
    );
    release(store, "b", StoreVersion(41), false);
    assert_eq!(
        read(store),
        marked,
        "release(spent: false) of another version must keep the mark"
    );
    // Not presented, same version: the mark goes.
    assert_eq!(
        acquire(store, "c", LONG_TTL),
        Acquired::Granted(marked),
        "release of another version must still drop the lease"
    );
    release(store, "c", StoreVersion::EMPTY, false);
    assert_eq!(
        read(store),
        Record::empty(),
        "release(spent: false) by the holder of the unchanged version must clear the mark"
    );
}

/// A lease past its ttl is nobody's: its former holder's release changes nothing, not even
/// the mark (someone may take the lease over at any moment, and must see it).
pub fn release_after_the_ttl_does_nothing<S: SharedStore>(store: &S) {
    let start = Instant::now();
    assert!(matches!(
        acquire(store, "late", SHORT_TTL),
        Acquired::Granted(_)
    ));
    sleep_past(start, SHORT_TTL);
    release(store, "late", StoreVersion::EMPTY, false);
    assert!(
        read(store).spent,
        "a release after the lease's ttl must not clear the mark"
    );
}

/// Publish writes only over the expected version: `Written` bumps the version and clears the
/// mark; `Conflict` answers with the record and writes nothing.
pub fn publish_is_a_compare_and_swap_on_the_version<S: SharedStore>(store: &S) {
    assert_eq!(
        store
            .publish(StoreVersion(7), &sample_snapshot(7))
            .unwrap_or_else(|error| panic!("publish failed: {error}")),
        Published::Conflict(Record::empty()),
        "publish over a version the store does not have must be a Conflict with the record"
    );
    assert_eq!(
        read(store),
        Record::empty(),
        "a Conflict must write nothing"
    );
    assert!(matches!(
        acquire(store, "a", LONG_TTL),
        Acquired::Granted(_)
    ));
    publish(store, StoreVersion::EMPTY, &sample_snapshot(1));
    let first = Record {
        version: StoreVersion(1),
        content: RecordContent::Tokens(sample_snapshot(1)),
        spent: false,
    };
    assert_eq!(
        read(store),
        first,
        "a Written publish must hold the tokens as expected + 1 with the mark cleared"
    );
    assert_eq!(
        store
            .publish(StoreVersion::EMPTY, &sample_snapshot(2))
            .unwrap_or_else(|error| panic!("publish failed: {error}")),
        Published::Conflict(first.clone()),
        "a late publish over an older version must be a Conflict with the newer record"
    );
    assert_eq!(read(store), first, "a Conflict must write nothing");
    publish(store, StoreVersion(1), &sample_snapshot(2));
    assert_eq!(
        read(store).version,
        StoreVersion(2),
        "each Written publish must bump the version by one"
    );
}

/// Publish checks the version, not the lease: a lease stays live across it.
pub fn publish_leaves_the_lease_alone<S: SharedStore>(store: &S) {
    assert!(matches!(
        acquire(store, "holder", LONG_TTL),
        Acquired::Granted(_)
    ));
    publish(store, StoreVersion::EMPTY, &sample_snapshot(1));
    assert!(
        matches!(acquire(store, "other", LONG_TTL), Acquired::Busy(_)),
        "publish must not drop the lease"
    );
}

/// Logout writes the tombstone as a new version with its mark clear, every time: a repeated
/// logout writes another, so a login granted on the first loses its compare-and-swap. A login
/// after the last one publishes over it.
pub fn every_logout_writes_a_new_tombstone<S: SharedStore>(store: &S) {
    let tombstone = |version| Record {
        version: StoreVersion(version),
        content: RecordContent::LoggedOut,
        spent: false,
    };
    assert_eq!(
        logout(store),
        tombstone(1),
        "logout of a fresh store must write the tombstone as version 1"
    );
    assert_eq!(read(store), tombstone(1), "logout must be durable");
    assert_eq!(
        logout(store),
        tombstone(2),
        "a repeated logout must write a new tombstone (a login under way on the first one must \
         lose its compare-and-swap)"
    );
    assert!(matches!(
        acquire(store, "a", LONG_TTL),
        Acquired::Granted(_)
    ));
    // (The grant above set the mark on the tombstone; only version and content matter here.)
    assert!(
        matches!(
            ok(
                "publish",
                store.publish(StoreVersion(1), &sample_snapshot(1))
            ),
            Published::Conflict(Record {
                version: StoreVersion(2),
                content: RecordContent::LoggedOut,
                ..
            })
        ),
        "a login granted on the first tombstone must not be written over the second"
    );
    publish(store, StoreVersion(2), &sample_snapshot(1));
    release(store, "a", StoreVersion(2), false);
    assert_eq!(
        logout(store),
        tombstone(4),
        "logout over tokens must write the tombstone as the next version, mark cleared"
    );
    assert_eq!(read(store), tombstone(4), "logout must be durable");
}

/// Logout does not touch the lease: its holder keeps it until it releases.
pub fn logout_leaves_the_lease_alone<S: SharedStore>(store: &S) {
    assert!(matches!(
        acquire(store, "holder", LONG_TTL),
        Acquired::Granted(_)
    ));
    logout(store);
    assert!(
        matches!(acquire(store, "other", LONG_TTL), Acquired::Busy(_)),
        "logout must not drop the lease"
    );
}

/// [`RACERS`] threads ask for a free lease at the same moment: exactly one is granted. Five
/// rounds, the winner releasing between them.
pub fn concurrent_acquires_grant_exactly_one<S: SharedStore>(store: &S) {
    for round in 0..5 {
        let barrier = Barrier::new(RACERS);
        let winners: Vec<String> = thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|racer| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let owner = format!("racer-{round}-{racer}");
                        barrier.wait();
                        match acquire(store, &owner, LONG_TTL) {
                            Acquired::Granted(_) => Some(owner),
                            Acquired::Busy(_) => None,
                        }
                    })
                })
                .collect();
            racers
                .into_iter()
                .filter_map(|racer| racer.join().expect("a racer panicked"))
                .collect()
        });
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one of {RACERS} concurrent acquires must be granted, \
             granted: {winners:?}"
        );
        release(store, &winners[0], StoreVersion::EMPTY, true);
    }
}

/// Nothing a store answers shows a token: not the `Debug` of its records nor the text of its
/// errors (checked on the answers of a store holding [`sample_snapshot`]s).
pub fn answers_show_no_token<S: SharedStore>(store: &S) {
    publish(store, StoreVersion::EMPTY, &sample_snapshot(1));
    let shown = format!(
        "{:?} {:?} {:?} {:?}",
        read(store),
        acquire(store, "a", LONG_TTL),
        acquire(store, "b", LONG_TTL),
        store.publish(StoreVersion::EMPTY, &sample_snapshot(2)),
    );
    assert!(
        !shown.contains(SAMPLE_SECRET),
        "a store's answers must not show a token: {shown}"
    );
}

/// A snapshot whose tokens hold [`SAMPLE_SECRET`] and `generation` (so two generations differ),
/// expiring at a fixed wall-clock time.
pub fn sample_snapshot(generation: u64) -> Snapshot {
    Snapshot {
        access_token: AccessToken::new(format!("at-{SAMPLE_SECRET}-{generation}")),
        refresh_token: Some(RefreshToken::new(format!(
            "rt-{SAMPLE_SECRET}-{generation}"
        ))),
        expires_at: Some(UnixTime::from_millis(1_900_000_000_000 + generation)),
    }
}

fn ok<T>(operation: &str, result: Result<T, SharedStoreError>) -> T {
    result.unwrap_or_else(|error| panic!("{operation} failed: {error}"))
}

fn read<S: SharedStore>(store: &S) -> Record {
    ok("read", store.read())
}

fn acquire<S: SharedStore>(store: &S, owner: &str, ttl: Duration) -> Acquired {
    ok(
        "acquire",
        store.acquire(&LeaseOwner(format!("conformance-{owner}")), ttl),
    )
}

/// Publishes and insists on `Written`.
fn publish<S: SharedStore>(store: &S, expected: StoreVersion, snapshot: &Snapshot) {
    let published = ok("publish", store.publish(expected, snapshot));
    assert_eq!(
        published,
        Published::Written,
        "publish over the record's own version {expected:?} must be Written"
    );
}

fn release<S: SharedStore>(store: &S, owner: &str, version: StoreVersion, spent: bool) {
    ok(
        "release",
        store.release(&LeaseOwner(format!("conformance-{owner}")), version, spent),
    );
}

fn logout<S: SharedStore>(store: &S) -> Record {
    ok("logout", store.logout())
}

/// Sleeps until `ttl` and [`EXPIRY_MARGIN`] have passed since `start`.
fn sleep_past(start: Instant, ttl: Duration) {
    let until = start + ttl + EXPIRY_MARGIN;
    let now = Instant::now();
    if until > now {
        thread::sleep(until - now);
    }
}
