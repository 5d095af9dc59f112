//! What the session publishes to handles: its state (a value, a condition to wait on, and event
//! channels), and whether the driver has finished.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use auth_core::SessionState;

/// The board the driver core's state hook writes and handles read. Its lock is taken after the
/// core's (the hook runs under the core's lock), never before.
#[derive(Debug)]
pub(crate) struct Published {
    board: Mutex<Board>,
    changed: Condvar,
}

#[derive(Debug)]
struct Board {
    /// The latest state the session notified.
    state: SessionState,
    subscribers: Vec<Sender<SessionState>>,
    /// The driver's background thread has ended: no more events.
    finished: bool,
}

impl Published {
    pub(crate) fn new(state: SessionState) -> Self {
        Published {
            board: Mutex::new(Board {
                state,
                subscribers: Vec::new(),
                finished: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// The latest state.
    pub(crate) fn state(&self) -> SessionState {
        self.board().state
    }

    /// A state change: stored, sent to every subscriber still listening, waiters woken.
    pub(crate) fn set(&self, state: SessionState) {
        let mut board = self.board();
        board.state = state;
        board
            .subscribers
            .retain(|subscriber| subscriber.send(state).is_ok());
        self.changed.notify_all();
    }

    /// Every change from now on, starting with the current state; closed when the driver has
    /// finished.
    pub(crate) fn subscribe(&self) -> Receiver<SessionState> {
        let (events, rx) = mpsc::channel();
        let mut board = self.board();
        if !board.finished && events.send(board.state).is_ok() {
            board.subscribers.push(events);
        }
        rx
    }

    /// Waits at most `timeout` until `done(state)` holds; the state seen last either way.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(SessionState) -> bool,
    ) -> Result<SessionState, SessionState> {
        let board = self.board();
        let (board, _) = self
            .changed
            .wait_timeout_while(board, timeout, |board| !done(board.state))
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = board.state;
        if done(state) {
            Ok(state)
        } else {
            Err(state)
        }
    }

    /// The driver's background thread ended: event channels close, `shutdown` returns.
    pub(crate) fn finish(&self) {
        let mut board = self.board();
        board.finished = true;
        board.subscribers.clear();
        self.changed.notify_all();
    }

    /// Waits at most `timeout` for [`Published::finish`]; whether it came.
    pub(crate) fn wait_finished(&self, timeout: Duration) -> bool {
        let board = self.board();
        let (board, _) = self
            .changed
            .wait_timeout_while(board, timeout, |board| !board.finished)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        board.finished
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // Every write is a whole assignment or a `Vec` operation that cannot leave the board
        // half-written: a poisoned lock still holds a consistent board.
        self.board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
