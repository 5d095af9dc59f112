//! The pool's bookkeeping is auth-driver's [`auth_driver::pool::Table`], shared with the blocking
//! driver; here only what this driver puts in it: a tokio `OnceCell` per key, so every task asking
//! for a key awaits one build.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::handle::SessionHandle;

/// One key's session, built once: every task asking for the key awaits the same cell.
pub(crate) type Slot = Arc<OnceCell<SessionHandle>>;

/// The entries of the pool, with their order of last use.
pub(crate) type Table<K> = auth_driver::pool::Table<K, OnceCell<SessionHandle>, SessionHandle>;

/// A session taken out of the table: shut it down (outside the lock).
pub(crate) type Evicted<K> = auth_driver::pool::Evicted<K, SessionHandle>;

/// What [`Table::checkout`] found.
pub(crate) type Checkout<K> =
    auth_driver::pool::Checkout<K, OnceCell<SessionHandle>, SessionHandle>;

/// An empty table.
pub(crate) fn new<K: std::hash::Hash + Eq>() -> Table<K> {
    Table::new(|cell| cell.get().cloned())
}
