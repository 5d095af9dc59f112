//! # auth-fuzz: the fuzz targets of Seamless, on stable Rust
//!
//! Each function here takes the raw bytes a fuzzer produced and panics when a promise of the
//! project is broken; nothing else. The cargo-fuzz crate in `fuzz/` (nightly, libFuzzer) calls
//! them from one-line targets, and this crate's `tests/corpus.rs` replays every committed corpus
//! file and every past finding through the very same functions with a plain stable
//! `cargo test`, so the targets never rot and every finding stays a regression test.
//!
//! | target | input | what must hold |
//! |---|---|---|
//! | [`session`] | a typed [`session::Scenario`]: config knobs, server token lifetime, then ops (submits, cancels, responses and results delivered, lost, duplicated or late, logout, login, time jumps, server faults, restarts from the store, forged results and responses) | the shared [`auth_core::Monitor`] records no violation of P1–P7 after any op, the world settles once faults stop, P8 holds, and the recorded trace round-trips and replays identically |
//! | [`token_response`] | an HTTP status (picked by the first byte) and a token endpoint body | no panic; a parsed [`auth_core::TokenSet`] is well formed, written back as RFC 6749 JSON it parses to the same set, and its `Debug` never depends on the secrets |
//! | [`www_authenticate`] | a `WWW-Authenticate` value | no panic; parsed challenges written back parse to the same challenges, classify the same, and two values joined with `", "` parse to both lists in order |
//! | [`snapshot`] | the bytes of a token store | no panic; a decoded snapshot re-encodes canonically and decodes equal, its fingerprinted form round-trips, and a session restored from it (at several wall-clock times) settles clean |
//! | [`trace`] | a JSON trace | no panic; a parsed trace writes and reads back to the same trace and JSON, and replays (never panicking) to the same commands twice |
//! | [`fleet`] | a typed [`fleet::FleetScenario`]: 2–4 processes sharing one session, config knobs, latencies of the network and the store, watch interval, then ops (requests and storms, logout and login in any process, steps and time jumps, server faults, lost answers, crashes and restarts, paused holders, store outages, leases running out mid-operation) | the shared [`auth_core::FleetMonitor`] (P9–P11) and every process's [`auth_core::Monitor`] record nothing after any op, the fleet settles once faults stop, and P8 holds in every process |
//!
//! The properties themselves live in one place, [`auth_core::Monitor`] (and
//! [`auth_core::FleetMonitor`] for a fleet); nothing here restates them. `docs/fuzzing.md` says how to run the fuzzer and how to turn a finding into a test.
#![warn(missing_docs, unreachable_pub)]

pub mod fleet;
pub mod session;
mod snapshot;
mod token_response;
mod trace;
mod www_authenticate;

pub use fleet::fleet;
pub use session::session;
pub use snapshot::snapshot;
pub use token_response::token_response;
pub use trace::trace;
pub use www_authenticate::www_authenticate;

/// A fuzz target: bytes in, panic on a broken promise.
pub type Target = fn(&[u8]);

/// Every target by name. The name is the cargo-fuzz target's name and the folder of its corpus
/// (`fuzz/corpus/<name>/`) and findings (`fuzz/regressions/<name>/`).
pub const TARGETS: [(&str, Target); 6] = [
    ("session", session),
    ("token_response", token_response),
    ("www_authenticate", www_authenticate),
    ("snapshot", snapshot),
    ("trace", trace),
    ("fleet", fleet),
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, target)| *target)
}
