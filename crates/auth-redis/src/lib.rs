//! # auth-redis: the Redis backend of Seamless shared sessions
//!
//! (Work in progress: implements `auth_store::shared::SharedStore` on Redis.)
#![warn(missing_docs, unreachable_pub)]

#[cfg(all(feature = "testing", unix))]
pub mod testing;
