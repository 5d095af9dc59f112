//! [`SharedFileStore`]: the shared store of one host, one file holding the record and the lease.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use auth_core::{Snapshot, SnapshotError, StoreVersion};

use super::format::{self, FileState, MAX_FILE_LEN, MAX_OWNER_LEN};
use super::lock::StoreLock;
use super::state::{Change, State};
use super::{Acquired, LeaseOwner, Published, Record, SharedStore, SharedStoreError};
use crate::file::create_private_dir;
use crate::{FileStore, StoreError, MAX_SNAPSHOT_LEN};

/// How long an operation waits for another one holding the file's lock before answering
/// [`SharedStoreError::Unavailable`], unless [`SharedFileStore::with_lock_wait`] says otherwise.
/// The lock is held for one read and one atomic write (milliseconds), never across a refresh.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(1);

/// A session shared by the processes of one host through one file.
///
/// The file holds the record **and** the lease, so every operation is one short critical
/// section: take the store's exclusive lock (`flock(2)` on `<path>.lock` on Unix, `LockFileEx`
/// on Windows, waited for at most the store's lock wait), read the file, decide, write
/// the new file atomically (temporary file `0600`, `fsync`, rename, `fsync` of the directory:
/// the write of [`FileStore::save`]), unlock. The lock is never held longer than that, so a
/// process killed at any instant blocks nobody (the kernel drops its lock), and a torn file is
/// impossible. [`SharedStore::read`] takes no lock: a rename is atomic, so a reader sees one
/// whole file, old or new.
///
/// Leases are kept in **wall-clock** time (milliseconds since the Unix epoch), since the
/// processes sharing the file share no monotonic clock: a holder killed with `SIGKILL` loses its
/// lease at its ttl. A step of the host's clock shortens or lengthens live leases by the step;
/// the spent mark still keeps every refresh token from being presented twice (a takeover finds
/// the mark and logs in), so a clock step can cost a login, never a reuse. Each write is durable
/// before the operation answers: the spent mark of a grant survives a power cut before the
/// holder presents the token.
///
/// # Format
///
/// One JSON object (versioned like [`Snapshot::encode`]'s document; at most
/// [`MAX_SNAPSHOT_LEN`] of tokens, and a lease owner of at most 512 bytes):
///
/// ```json
/// {"format":1,"version":7,
///  "content":{"tokens":{"version":1,"access_token":"…","refresh_token":"…","expires_at_unix_ms":1754000000000}},
///  "spent":true,
///  "lease":{"owner":"host-4242-op-3","expires_at_unix_ms":1754000012000}}
/// ```
///
/// - `format`: the file format, 1; a file of another format is unreadable to this release.
/// - `version`: the record's [`StoreVersion`], bumped by every write of the record.
/// - `content`: `"empty"`, `"logged_out"` (the tombstone of a logout), or `{"tokens": …}` with
///   exactly the document [`Snapshot::encode`] writes (its own `version` is the snapshot
///   format's).
/// - `spent`: the spent mark.
/// - `lease`: `null`, or its owner and its wall-clock end; a lease whose end has passed is
///   nobody's, whatever the file says.
///
/// No file means [`Record::empty`] and no lease. A file that is not this document (corrupt,
/// truncated, another format, over the size limit, not a regular file) makes every operation
/// answer [`SharedStoreError::Unreadable`] and is never overwritten by one; a driver that wants
/// to go on calls [`SharedFileStore::reset`] (the sessions then log in afresh).
///
/// Errors and `Debug` never show a token: errors are fixed text (with the OS's error for I/O),
/// and the records they carry show token fingerprints only.
///
/// The lock is advisory: only this store's operations take it. The lock file holds no data and
/// is never removed (removing it would let two processes lock two different files). The path
/// must not also be used by a plain [`FileStore`], which is one process's store in another
/// format.
///
/// ```
/// use std::time::Duration;
/// use auth_store::shared::{Acquired, LeaseOwner, Record, SharedFileStore, SharedStore};
/// # let dir = tempfile::tempdir()?;
///
/// let store = SharedFileStore::new(dir.path().join("shared.json"));
/// assert_eq!(store.read()?, Record::empty());
/// let me = LeaseOwner("host-4242-op-1".to_owned());
/// assert!(matches!(store.acquire(&me, Duration::from_secs(20))?, Acquired::Granted(_)));
/// assert!(store.read()?.spent);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFileStore {
    file: FileStore,
    lock_path: PathBuf,
    lock_wait: Duration,
}

impl SharedFileStore {
    /// A store at `path`, locked through `<path>.lock`, waiting at most [`DEFAULT_LOCK_WAIT`]
    /// for the lock. Nothing is touched until the first call; a missing directory is created
    /// `0700` by the first write.
    pub fn new(path: impl Into<PathBuf>) -> SharedFileStore {
        let path = path.into();
        let mut lock_name = path.as_os_str().to_owned();
        lock_name.push(".lock");
        SharedFileStore {
            file: FileStore::new(path),
            lock_path: PathBuf::from(lock_name),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// The same store, waiting at most `wait` for the file's lock before an operation answers
    /// [`SharedStoreError::Unavailable`]: the bound of every call but the disk's own latency.
    #[must_use]
    pub fn with_lock_wait(self, wait: Duration) -> SharedFileStore {
        SharedFileStore {
            lock_wait: wait,
            ..self
        }
    }

    /// Forgets the record and the lease: removes the file and its temporary files, under the
    /// lock. The store then reads as [`Record::empty`], and the sessions sharing it log in
    /// afresh rather than present a refresh token whose history is gone. For a file that
    /// answers [`SharedStoreError::Unreadable`]; a holder's lease is dropped with it, so a
    /// second login may run while the holder's operation ends (never a second refresh).
    pub fn reset(&self) -> Result<(), SharedStoreError> {
        let _lock = self.lock()?;
        self.file.clear().map_err(unavailable)
    }

    /// Where the record is stored.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The lock file beside it.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Takes the lock, reads the state, lets `decide` change it, writes it back if it changed.
    fn update<T>(
        &self,
        decide: impl FnOnce(&mut FileState) -> (T, Change),
    ) -> Result<T, SharedStoreError> {
        let _lock = self.lock()?;
        let mut state = self.load()?;
        let (answer, change) = decide(&mut state);
        if change == Change::Write {
            self.file
                .replace(&format::encode(&state))
                .map_err(unavailable)?;
        }
        Ok(answer)
    }

    fn lock(&self) -> Result<StoreLock, SharedStoreError> {
        create_private_dir(&self.file.directory()).map_err(|error| unavailable(error.into()))?;
        StoreLock::acquire(&self.lock_path, self.lock_wait)
            .map_err(|error| SharedStoreError::Unavailable(error.to_string()))
    }

    /// The file's state; no file is a store never written.
    fn load(&self) -> Result<FileState, SharedStoreError> {
        match self.file.read_bytes(MAX_FILE_LEN) {
            Ok(Some(bytes)) => Ok(format::decode(&bytes)?),
            Ok(None) => Ok(State::empty()),
            Err(StoreError::TooLarge { .. }) => Err(SnapshotError::Corrupt(
                "larger than any record the shared file store writes",
            )
            .into()),
            Err(StoreError::NotRegularFile) => {
                Err(SnapshotError::Corrupt("the store's path is not a regular file").into())
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

impl SharedStore for SharedFileStore {
    fn read(&self) -> Result<Record, SharedStoreError> {
        Ok(self.load()?.record)
    }

    fn acquire(&self, owner: &LeaseOwner, ttl: Duration) -> Result<Acquired, SharedStoreError> {
        if owner.0.len() > MAX_OWNER_LEN {
            return Err(SharedStoreError::Unavailable(format!(
                "a lease owner's name is {} bytes, over the store's limit of {MAX_OWNER_LEN}",
                owner.0.len()
            )));
        }
        // Whole milliseconds, rounded up: a lease never ends before its ttl.
        let ttl_ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        self.update(|state| {
            // Read under the lock, so no later grant can carry an earlier time.
            let now = unix_now_ms();
            state.acquire(owner, now, now.saturating_add(ttl_ms))
        })
    }

    fn publish(
        &self,
        expected: StoreVersion,
        snapshot: &Snapshot,
    ) -> Result<Published, SharedStoreError> {
        let len = snapshot.encode().len();
        if len > MAX_SNAPSHOT_LEN {
            return Err(SharedStoreError::Unavailable(format!(
                "the session is {len} bytes, over the store's limit of {MAX_SNAPSHOT_LEN}"
            )));
        }
        self.update(|state| state.publish(expected, snapshot))
    }

    fn release(
        &self,
        owner: &LeaseOwner,
        version: StoreVersion,
        spent: bool,
    ) -> Result<(), SharedStoreError> {
        self.update(|state| ((), state.release(owner, version, spent, unix_now_ms())))
    }

    fn logout(&self) -> Result<Record, SharedStoreError> {
        self.update(State::logout)
    }
}

/// Milliseconds since the Unix epoch; a clock set before 1970 reads as the epoch (its leases
/// then last until the clock passes their end, like any clock step).
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A file-store failure as the shared store's: the environment (I/O), to retry. The texts are
/// the store's own and the OS's, never the file's content.
fn unavailable(error: StoreError) -> SharedStoreError {
    SharedStoreError::Unavailable(error.to_string())
}
