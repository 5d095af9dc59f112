//! The fleet model: 2-3 processes, each a real `auth_core::Session::shared` with its own
//! `Monitor`, sharing one modelled store (record, spent mark, lease) and one auth server that
//! rotates refresh tokens and revokes the token family on reuse (DESIGN.md §7, issue 12).
//!
//! It checks, in every interleaving of a bounded world ([`FleetWorld`]):
//!
//! - `always` P1-P7 in every process (each process's own `Monitor`), and P8 as progress: at
//!   every quiet state (no message in flight, no timer armed anywhere) every request of every
//!   process is completed and every session has settled;
//! - `always` P9 (no refresh token presented twice; the server's reuse detection never fires),
//!   P10 (one login or refresh in flight across the fleet, outside the takeover window after a
//!   lease expired) and P11 (after a logout anywhere, nobody logs in, refreshes or writes tokens
//!   until an explicit login), read from auth-core's `FleetMonitor`, the one definition; and
//!   that an older token set never overwrites a newer one in the store (DESIGN.md §7);
//! - `sometimes`: waiting for the holder and adopting its tokens, a lease takeover after expiry
//!   where the spent mark makes the next holder log in, logout propagation, a late publish that
//!   loses the compare-and-swap, a restart after logout that stays logged out, a late grant
//!   given back unused.
//!
//! Faults, each with its own budget: process crash with restart from the store, a hung holder
//! or store (the operation deadline fires with its request unanswered), a lease that expires
//! while held, the store unreachable (before or after it acted), transient server failures
//! (before or after it rotated), a process paused past its deadline, a store answer that travels
//! back slowly, a store that loses its data; a logout in any process; stale watcher reads;
//! messages delivered in any order. [`FleetCheck`] names the small worlds CI explores.
//!
//! `cargo run --release -p auth-model -- fleet` runs it; see `docs/verification.md`.

pub mod model;
pub mod render;
pub mod store;
pub mod world;

pub use model::{fleet_names, FleetAction, FleetModel, FleetState};
pub use world::{FleetBudget, FleetCheck, FleetWorld};
