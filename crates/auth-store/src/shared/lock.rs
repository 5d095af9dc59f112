//! [`StoreLock`]: the exclusive advisory lock beside a [`super::SharedFileStore`], its short
//! mutex around one read and one write.
//!
//! `flock(2)` locks belong to an open file description, not to a process: two opens of the lock
//! file exclude each other even inside one process, so threads and processes are treated alike.
//! (POSIX `fcntl` locks would not: they are per process and vanish when any descriptor of the
//! file closes.)

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

/// First pause between two attempts to take a busy lock; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause between two attempts: the lock is held for one read and one write.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// The store's exclusive lock, held until dropped (or until the process dies: the kernel
/// releases it).
#[derive(Debug)]
#[must_use = "the lock is released as soon as it is dropped"]
pub(super) struct StoreLock {
    file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub(super) enum LockError {
    /// The lock file could not be opened or locked.
    #[error("the store's lock file failed: {0}")]
    Io(#[from] io::Error),
    /// Another holder kept it longer than the wait allowed.
    #[error("the store stayed locked for {waited:?}")]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
    },
}

impl StoreLock {
    /// Takes the lock on the file at `path` (created `0600` if missing), waiting at most `wait`
    /// for another holder, in this process or another, to release it.
    pub(super) fn acquire(path: &Path, wait: Duration) -> Result<StoreLock, LockError> {
        let file = open(path)?;
        let start = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            if FileExt::try_lock_exclusive(&file)? {
                return Ok(StoreLock { file });
            }
            let waited = start.elapsed();
            if waited >= wait {
                return Err(LockError::Timeout { waited });
            }
            // flock has no timed wait: poll, backing off, never past the deadline.
            std::thread::sleep(pause.min(wait - waited));
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = FileExt::unlock(&self.file);
    }
}

fn open(path: &Path) -> io::Result<File> {
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

    use super::*;

    #[test]
    fn the_lock_excludes_another_holder_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.json.lock");
        let held = StoreLock::acquire(&path, Duration::ZERO).unwrap();
        let error = StoreLock::acquire(&path, Duration::from_millis(30)).unwrap_err();
        assert!(
            matches!(error, LockError::Timeout { waited } if waited >= Duration::from_millis(30)),
            "two opens exclude each other: {error:?}"
        );
        drop(held);
        drop(StoreLock::acquire(&path, Duration::ZERO).unwrap());
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.json.lock");
        let held = StoreLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let (tried, wait_started) = mpsc::channel();
        let waiter = {
            let path = path.clone();
            thread::spawn(move || {
                tried.send(()).unwrap();
                StoreLock::acquire(&path, Duration::from_secs(10)).map(drop)
            })
        };
        wait_started.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(held);
        waiter.join().unwrap().unwrap();
    }
}
