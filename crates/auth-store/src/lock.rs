//! [`StoreLock`]: the exclusive advisory lock beside a store.
//!
//! `flock(2)` locks belong to an open file description, not to a process: two opens of the lock
//! file exclude each other even inside one process, so threads and processes are treated alike.
//! (POSIX `fcntl` locks would not: they are per process and vanish when any descriptor of the
//! file closes.)

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use crate::StoreError;

/// First pause between two attempts to take a busy lock; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause between two attempts: the lock is held for one refresh, tens of milliseconds.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// The store's exclusive lock, held until dropped (or until the process dies: the kernel
/// releases it). From [`crate::FileStore::lock`].
#[derive(Debug)]
#[must_use = "the lock is released as soon as it is dropped"]
pub struct StoreLock {
    file: File,
}

impl StoreLock {
    pub(crate) fn acquire(path: &Path, wait: Duration) -> Result<StoreLock, StoreError> {
        let file = open(path)?;
        let start = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            if FileExt::try_lock_exclusive(&file)? {
                return Ok(StoreLock { file });
            }
            let waited = start.elapsed();
            if waited >= wait {
                return Err(StoreError::LockTimeout { waited });
            }
            // flock has no timed wait: poll, backing off, never past the deadline.
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    pub(crate) fn try_acquire(path: &Path) -> Result<Option<StoreLock>, StoreError> {
        let file = open(path)?;
        if FileExt::try_lock_exclusive(&file)? {
            Ok(Some(StoreLock { file }))
        } else {
            Ok(None)
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = FileExt::unlock(&self.file);
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::mpsc;
    use std::thread;

    use crate::{FileStore, StoreError};

    use super::*;

    #[test]
    fn the_lock_excludes_another_holder_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        let held = store.try_lock().unwrap().expect("free");
        assert!(
            store.try_lock().unwrap().is_none(),
            "two opens exclude each other"
        );
        let error = store.lock(Duration::from_millis(30)).unwrap_err();
        assert!(
            matches!(error, StoreError::LockTimeout { waited } if waited >= Duration::from_millis(30))
        );
        drop(held);
        assert!(store.try_lock().unwrap().is_some());
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        let held = store.lock(Duration::from_secs(1)).unwrap();
        let (tried, wait_started) = mpsc::channel();
        let waiter = {
            let store = store.clone();
            thread::spawn(move || {
                tried.send(()).unwrap();
                store.lock(Duration::from_secs(10)).map(drop)
            })
        };
        wait_started.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(held);
        waiter.join().unwrap().unwrap();
    }
}
