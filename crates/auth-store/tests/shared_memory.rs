//! The in-memory shared store passes the conformance suite, and its clones are one store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use auth_core::StoreVersion;
use auth_store::shared::conformance::{self, sample_snapshot};
use auth_store::shared::{Acquired, LeaseOwner, MemorySharedStore, SharedStore};

#[test]
fn the_memory_store_passes_the_conformance_suite() {
    conformance::run_all(MemorySharedStore::new);
}

#[test]
fn clones_of_a_memory_store_share_its_record_and_lease() {
    let store = MemorySharedStore::new();
    let clone = store.clone();
    let owner = LeaseOwner("clone".to_owned());
    assert!(matches!(
        clone.acquire(&owner, Duration::from_secs(60)).unwrap(),
        Acquired::Granted(_)
    ));
    clone
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    assert_eq!(store.read().unwrap(), clone.read().unwrap());
    assert!(matches!(
        store
            .acquire(&LeaseOwner("original".to_owned()), Duration::from_secs(60))
            .unwrap(),
        Acquired::Busy(_)
    ));
}

#[test]
fn a_separate_memory_store_shares_nothing() {
    let store = MemorySharedStore::new();
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    assert_eq!(
        MemorySharedStore::new().read().unwrap(),
        auth_store::shared::Record::empty()
    );
}

#[test]
fn a_ttl_too_long_to_represent_is_a_lease_that_holds() {
    let store = MemorySharedStore::new();
    assert!(matches!(
        store
            .acquire(&LeaseOwner("forever".to_owned()), Duration::MAX)
            .unwrap(),
        Acquired::Granted(_)
    ));
    assert!(matches!(
        store
            .acquire(&LeaseOwner("next".to_owned()), Duration::from_secs(1))
            .unwrap(),
        Acquired::Busy(_)
    ));
}
