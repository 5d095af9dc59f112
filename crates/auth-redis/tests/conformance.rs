//! The shared-store conformance suite of auth-store, against a real `redis-server`: every rule
//! of `auth_store::shared`, each check on a fresh key prefix.

mod common;

use auth_store::shared::conformance;

#[test]
fn redis_store_passes_the_shared_store_conformance_suite() {
    let server = common::server();
    conformance::run_all(|| common::store(&server));
}
