//! [`FileStore`]: load, atomic save and clear of one session file.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use auth_core::Snapshot;
use zeroize::Zeroizing;

use crate::StoreError;

/// Makes temporary file names unique within the process (the pid makes them unique across).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The largest session the store keeps, in bytes of [`Snapshot::encode`]: [`FileStore::save`]
/// refuses a larger one ([`StoreError::TooLarge`]) and [`FileStore::load`] does not read past
/// it, so whatever `save` accepts, `load` reads back. A snapshot is usually a few hundred bytes.
pub const MAX_SNAPSHOT_LEN: usize = 64 * 1024;

/// Age after which a temporary file is an orphan of a crashed save (a save takes milliseconds).
const ORPHAN_AGE: Duration = Duration::from_secs(60);

/// One process's session stored in one file; see the [crate documentation](crate) for the
/// format and the crash guarantees. Processes that share a session use a
/// [`SharedFileStore`](crate::shared::SharedFileStore) instead. Cheap to clone; clones use the
/// same file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path`. Nothing is touched until the first call.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// Reads the stored session: `Ok(None)` when there is none. Never blocks: anything but a
    /// regular file at the path (a FIFO, a device, a directory) is
    /// [`StoreError::NotRegularFile`] at once; a file over [`MAX_SNAPSHOT_LEN`] is
    /// [`StoreError::TooLarge`] (not one [`FileStore::save`] wrote). Removes this store's temporary files orphaned by
    /// a crash in the middle of a save (best effort, see [`FileStore::save`]).
    pub fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        match self.read_bytes(MAX_SNAPSHOT_LEN)? {
            Some(bytes) => Ok(Some(Snapshot::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Replaces the stored session atomically: temporary file (`0600`), `fsync`, rename over the
    /// target, `fsync` of the directory. When it returns `Ok`, the new session is durable; when
    /// it fails or the process dies on the way, the old one is still there, whole.
    ///
    /// A session whose encoding is over [`MAX_SNAPSHOT_LEN`] is refused with
    /// [`StoreError::TooLarge`] before anything is written: a saved session always loads back.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let bytes = snapshot.encode();
        if bytes.len() > MAX_SNAPSHOT_LEN {
            return Err(StoreError::TooLarge {
                len: bytes.len(),
                max: MAX_SNAPSHOT_LEN,
            });
        }
        self.replace(&bytes)
    }

    /// Forgets the stored session: removes the file and every temporary file of this store
    /// whatever its age (a save that crashed, or one under way, holds tokens too), then `fsync`s
    /// the directory. Clearing an empty store succeeds.
    ///
    /// `Ok` means no file of this store holds a token any more, durably. On `Err` some may
    /// (everything removable was removed); the call may be retried.
    pub fn clear(&self) -> Result<(), StoreError> {
        let dir = self.directory();
        let mut first_error = remove_present(&self.path).err();
        match self.temp_files(&dir) {
            Ok(temps) => {
                for temp in temps {
                    if let Err(error) = remove_present(&temp) {
                        first_error.get_or_insert(error);
                    }
                }
            }
            // No directory: no file of this store either.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
        if let Some(error) = first_error {
            return Err(error.into());
        }
        match sync_dir(&dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Where the session is stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes (`Ok(None)` when there is no file), refusing more than `max` of them:
    /// what [`FileStore::load`] reads before decoding, shared with the shared file store, whose
    /// file holds more than a snapshot. Never blocks; removes orphaned temporary files.
    pub(crate) fn read_bytes(&self, max: usize) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.remove_orphans(&self.directory());
        let file = match open_to_read(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(StoreError::NotRegularFile);
        }
        let mut bytes = Zeroizing::new(Vec::new());
        // One byte more than the limit, so a file that grew since `metadata` is refused too
        // without being held whole.
        file.take(max as u64 + 1).read_to_end(&mut bytes)?;
        if bytes.len() > max {
            return Err(StoreError::TooLarge {
                len: usize::try_from(meta.len())
                    .unwrap_or(usize::MAX)
                    .max(bytes.len()),
                max,
            });
        }
        Ok(Some(bytes))
    }

    /// Replaces the file's content with `bytes` atomically and durably: the crash-safe write of
    /// [`FileStore::save`] (temporary file `0600`, `fsync`, rename, `fsync` of the directory),
    /// shared with the shared file store.
    pub(crate) fn replace(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = self.directory();
        create_private_dir(&dir)?;
        let temp = self.temp_path(&dir);
        let written = write_new_private(&temp, bytes).and_then(|()| fs::rename(&temp, &self.path));
        if let Err(error) = written {
            // Do not leave a copy of the tokens behind.
            let _ = fs::remove_file(&temp);
            return Err(error.into());
        }
        sync_dir(&dir)?;
        self.remove_orphans(&dir);
        Ok(())
    }

    /// The directory the file is in.
    pub(crate) fn directory(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// `.<name>.tmp-`: the prefix of this store's temporary files.
    fn temp_prefix(&self) -> OsString {
        let mut prefix = OsString::from(".");
        prefix.push(self.path.file_name().unwrap_or_else(|| "session".as_ref()));
        prefix.push(".tmp-");
        prefix
    }

    fn temp_path(&self, dir: &Path) -> PathBuf {
        let mut name = self.temp_prefix();
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        name.push(format!("{}-{n}", std::process::id()));
        dir.join(name)
    }

    /// This store's temporary files in `dir` (named with [`FileStore::temp_prefix`]).
    fn temp_files(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let prefix = self.temp_prefix();
        let prefix = prefix.as_encoded_bytes();
        let mut temps = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().as_encoded_bytes().starts_with(prefix) {
                temps.push(entry.path());
            }
        }
        Ok(temps)
    }

    /// Best effort: removes this store's temporary files left by a save that crashed (older than
    /// [`ORPHAN_AGE`], so a save under way in another process is never disturbed).
    fn remove_orphans(&self, dir: &Path) {
        let Ok(temps) = self.temp_files(dir) else {
            return;
        };
        let now = SystemTime::now();
        for temp in temps {
            let old = fs::symlink_metadata(&temp)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= ORPHAN_AGE);
            if old {
                let _ = fs::remove_file(&temp);
            }
        }
    }
}

/// Opens `path` for reading without ever blocking: on Unix with `O_NONBLOCK`, so a FIFO opens
/// at once instead of waiting for a writer (regular files ignore the flag).
fn open_to_read(path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
    }
    #[cfg(not(unix))]
    {
        File::open(path)
    }
}

/// Removes the file at `path`; a missing one is already removed.
fn remove_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Creates `path` exclusively with owner-only permissions, writes `bytes` and flushes them to
/// disk.
fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `dir` (and its parents) `0700` if it is missing.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes a rename or removal in `dir` durable. Windows cannot open a directory for syncing;
/// there the rename is as durable as the platform makes it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use auth_core::{AccessToken, RefreshToken, SnapshotError, UnixTime};

    fn sample(access: &str) -> Snapshot {
        Snapshot {
            access_token: AccessToken::new(access),
            refresh_token: Some(RefreshToken::new("rt-file-secret")),
            expires_at: Some(UnixTime::from_millis(1_800_000_000_000)),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn saves_loads_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("nested/session.json"));
        assert!(store.load().unwrap().is_none());
        store.save(&sample("at-1")).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample("at-1")));
        store.clear().unwrap();
        assert!(store.load().unwrap().is_none());
        store.clear().unwrap();
    }

    #[test]
    fn file_holds_exactly_the_core_encoding_and_no_temporary_file_remains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let store = FileStore::new(&path);
        store.save(&sample("at-1")).unwrap();
        store.save(&sample("at-2")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), *sample("at-2").encode());
        assert_eq!(names(dir.path()), ["session.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn file_and_new_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("private/session.json"));
        store.save(&sample("at-1")).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&dir.path().join("private")), 0o700);
    }

    #[test]
    fn an_interrupted_save_leaves_the_old_session_and_its_orphan_is_swept_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        store.save(&sample("at-old")).unwrap();
        // What a save killed before its rename leaves: a torn temporary file.
        let orphan = dir.path().join(".session.json.tmp-999999-0");
        let torn = sample("at-new").encode();
        fs::write(&orphan, &torn[..torn.len() / 2]).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample("at-old")));
        // A fresh orphan may belong to a save under way elsewhere: kept.
        store.save(&sample("at-2")).unwrap();
        assert!(orphan.exists());
        let old = SystemTime::now() - 2 * ORPHAN_AGE;
        File::options()
            .write(true)
            .open(&orphan)
            .unwrap()
            .set_modified(old)
            .unwrap();
        store.save(&sample("at-3")).unwrap();
        assert_eq!(names(dir.path()), ["session.json"]);
        assert_eq!(store.load().unwrap(), Some(sample("at-3")));
    }

    /// What a save killed between creating its temporary file and the rename leaves behind: a
    /// whole copy of the tokens, modified `age` ago.
    fn crashed_save(dir: &Path, name: &str, age: Duration) -> PathBuf {
        let temp = dir.join(name);
        fs::write(&temp, &*sample("at-crashed").encode()).unwrap();
        File::options()
            .write(true)
            .open(&temp)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
        temp
    }

    /// Every file in `dir` whose bytes contain `secret`.
    fn files_holding(dir: &Path, secret: &str) -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|name| {
                let bytes = fs::read(dir.join(name)).unwrap_or_default();
                bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
            })
            .collect()
    }

    #[test]
    fn clear_leaves_no_file_holding_a_token_not_even_a_fresh_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        store.save(&sample("at-1")).unwrap();
        crashed_save(dir.path(), ".session.json.tmp-999999-0", Duration::ZERO);
        crashed_save(dir.path(), ".session.json.tmp-999998-7", 2 * ORPHAN_AGE);
        // Another store's files in the same directory are not this store's to remove.
        let other = FileStore::new(dir.path().join("other.json"));
        other.save(&sample("at-other")).unwrap();
        assert_eq!(files_holding(dir.path(), "rt-file-secret").len(), 4);
        store.clear().unwrap();
        assert_eq!(files_holding(dir.path(), "rt-file-secret"), ["other.json"]);
        assert!(store.load().unwrap().is_none());
        assert_eq!(other.load().unwrap(), Some(sample("at-other")));
    }

    #[test]
    fn load_removes_temporary_files_orphaned_by_a_crashed_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        store.save(&sample("at-1")).unwrap();
        let orphan = crashed_save(dir.path(), ".session.json.tmp-999999-0", 2 * ORPHAN_AGE);
        // A fresh one may be a save under way in another process: load leaves it alone.
        let fresh = crashed_save(dir.path(), ".session.json.tmp-999998-0", Duration::ZERO);
        assert_eq!(store.load().unwrap(), Some(sample("at-1")));
        assert!(!orphan.exists(), "the orphan was removed at load");
        assert!(fresh.exists());
        // Also with no session file at all (a crash during the very first save).
        fs::remove_file(store.path()).unwrap();
        let orphan = crashed_save(dir.path(), ".session.json.tmp-999997-0", 2 * ORPHAN_AGE);
        assert!(store.load().unwrap().is_none());
        assert!(!orphan.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_at_the_session_path_is_a_typed_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let store = FileStore::new(&path);
        std::thread::spawn(move || tx.send(store.load()));
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(result) => assert!(
                matches!(result, Err(StoreError::NotRegularFile)),
                "{result:?}"
            ),
            Err(_) => {
                // Unblock the reader (a writer opening the FIFO ends its wait), then fail.
                let _ = OpenOptions::new().write(true).open(&path);
                panic!("load blocked on a FIFO");
            }
        }
    }

    #[test]
    fn a_directory_at_the_session_path_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        fs::create_dir(&path).unwrap();
        let result = FileStore::new(&path).load();
        assert!(
            matches!(result, Err(StoreError::NotRegularFile)),
            "{result:?}"
        );
    }

    /// A snapshot whose encoding is exactly `len` bytes.
    fn sample_of_len(len: usize) -> Snapshot {
        let base = sample("").encode().len();
        sample(&"a".repeat(len - base))
    }

    #[test]
    fn a_session_too_large_to_load_back_is_refused_at_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        store.save(&sample("at-old")).unwrap();
        let huge = sample(&"a".repeat(70 * 1024));
        let error = store.save(&huge).unwrap_err();
        assert!(
            matches!(error, StoreError::TooLarge { len, max }
                if len == huge.encode().len() && max == MAX_SNAPSHOT_LEN),
            "{error:?}"
        );
        assert!(!error.to_string().contains("aaaa"), "{error}");
        // Nothing was written: the old session is still there, and no temporary file.
        assert_eq!(store.load().unwrap(), Some(sample("at-old")));
        assert_eq!(names(dir.path()), ["session.json"]);
        // One limit: the largest session save accepts loads back; one byte more is refused.
        let largest = sample_of_len(MAX_SNAPSHOT_LEN);
        store.save(&largest).unwrap();
        assert_eq!(store.load().unwrap(), Some(largest));
        assert!(matches!(
            store.save(&sample_of_len(MAX_SNAPSHOT_LEN + 1)),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn unreadable_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let store = FileStore::new(&path);
        let full = sample("at-1").encode();
        fs::write(&path, &full[..full.len() / 2]).unwrap();
        assert!(matches!(
            store.load(),
            Err(StoreError::Unreadable(SnapshotError::Truncated))
        ));
        fs::write(&path, br#"{"version":99,"access_token":"x"}"#).unwrap();
        assert!(matches!(
            store.load(),
            Err(StoreError::Unreadable(SnapshotError::UnsupportedVersion {
                found: 99
            }))
        ));
        fs::write(&path, vec![b' '; 100_000]).unwrap();
        assert!(matches!(
            store.load(),
            Err(StoreError::TooLarge {
                len: 100_000,
                max: MAX_SNAPSHOT_LEN
            })
        ));
    }

    #[test]
    fn errors_and_debug_never_show_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        fs::write(
            &path,
            br#"{"version":1,"access_token":"at-leak","bogus":1}"#,
        )
        .unwrap();
        let store = FileStore::new(&path);
        let error = store.load().unwrap_err();
        let shown = format!("{error} {error:?} {store:?}");
        assert!(!shown.contains("at-leak"), "{shown}");
    }
}
