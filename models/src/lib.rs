//! # auth-model: exhaustive model checking of the real auth-core session
//!
//! A [stateright] model whose state is the real [`auth_core::Session`] (not a re-written copy),
//! with the shared [`auth_core::Monitor`] as history state, a fake auth server, the messages in
//! flight and the token store. Within a bounded world ([`World`]: so many requests, faults,
//! expiries, logouts, logins, cancels and crashes) the checker visits every interleaving and
//! checks:
//!
//! - `always` P1–P7, read from the Monitor (the one definition of the properties);
//! - `always` P8 as progress: whenever the world is quiet (no message in flight, no timer
//!   armed) every request is completed and the session has settled;
//! - `sometimes` properties that show the interesting paths are reached, so the check cannot
//!   pass vacuously.
//!
//! `cargo run --release -p auth-model -- check` runs it; `explore` serves stateright's Explorer.
//! See `docs/verification.md` for the world, the properties, the caveats of stateright 0.31
//! and measured state counts.
//!
//! [`shared`] is the fleet model: several shared sessions, one store, one auth server with
//! reuse detection, checked for P1-P11 (`cargo run --release -p auth-model -- fleet`).
#![warn(missing_docs, unreachable_pub)]

pub mod check;
pub mod model;
pub mod shared;
pub mod symmetry;
pub mod trace;
pub mod world;

pub use check::{run, Outcome, Report, Search, Settings};
pub use model::{Action, AuthModel, State};
pub use world::{Budget, Corner, Kind, World};
