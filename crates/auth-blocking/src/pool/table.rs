//! The pool's bookkeeping is auth-driver's [`auth_driver::pool::Table`], shared with the tokio
//! driver; here only what this driver puts in it: a `OnceLock` per key, holding the started
//! session or why it could not start.

use std::sync::{Arc, OnceLock};

use crate::handle::SessionHandle;

/// One key's session, started once (single flight: every thread asking for the key blocks on
/// the same cell while one starts it), or why it could not start.
pub(crate) type Slot = Arc<OnceLock<Started>>;

/// A started session, or the error of its start (the slot is then dropped from the table).
pub(crate) type Started = Result<SessionHandle, Arc<std::io::Error>>;

/// The entries of the pool, with their order of last use.
pub(crate) type Table<K> = auth_driver::pool::Table<K, OnceLock<Started>, SessionHandle>;

/// A session taken out of the table: shut it down (outside the lock).
pub(crate) type Evicted<K> = auth_driver::pool::Evicted<K, SessionHandle>;

/// What [`Table::checkout`] found.
pub(crate) type Checkout<K> = auth_driver::pool::Checkout<K, OnceLock<Started>, SessionHandle>;

/// An empty table.
pub(crate) fn new<K: std::hash::Hash + Eq>() -> Table<K> {
    Table::new(|cell| {
        cell.get()
            .and_then(|started| started.as_ref().ok())
            .cloned()
    })
}
