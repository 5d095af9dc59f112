//! [`FileStore`]: load, atomic save and clear of one session file.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use auth_core::{Snapshot, SnapshotError};
use zeroize::Zeroizing;

use crate::lock::StoreLock;
use crate::StoreError;

/// Makes temporary file names unique within the process (the pid makes them unique across).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Largest file read back: a snapshot is a few hundred bytes, so anything larger is not one.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Age after which a temporary file is an orphan of a crashed save (a save takes milliseconds).
const ORPHAN_AGE: Duration = Duration::from_secs(60);

/// A session stored in one file; see the [crate documentation](crate) for the format, the crash
/// guarantees and the lock. Cheap to clone; clones use the same file and lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl FileStore {
    /// A store at `path`, locked through `<path>.lock`. Nothing is touched until the first call.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_name = path.as_os_str().to_owned();
        lock_name.push(".lock");
        FileStore {
            path,
            lock_path: PathBuf::from(lock_name),
        }
    }

    /// Reads the stored session: `Ok(None)` when there is none.
    pub fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(
                SnapshotError::Corrupt("the file is too large to be a session".into()).into(),
            );
        }
        Ok(Some(Snapshot::decode(&bytes)?))
    }

    /// Replaces the stored session atomically: temporary file (`0600`), `fsync`, rename over the
    /// target, `fsync` of the directory. When it returns `Ok`, the new session is durable; when
    /// it fails or the process dies on the way, the old one is still there, whole.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let dir = self.directory();
        create_private_dir(&dir)?;
        let temp = self.temp_path(&dir);
        let written = write_new_private(&temp, &snapshot.encode())
            .and_then(|()| fs::rename(&temp, &self.path));
        if let Err(error) = written {
            // Do not leave a copy of the tokens behind.
            let _ = fs::remove_file(&temp);
            return Err(error.into());
        }
        sync_dir(&dir)?;
        self.remove_orphans(&dir);
        Ok(())
    }

    /// Forgets the stored session (removes the file, `fsync`s the directory). Clearing an empty
    /// store succeeds. The lock file stays.
    pub fn clear(&self) -> Result<(), StoreError> {
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        sync_dir(&self.directory())?;
        Ok(())
    }

    /// Takes the store's exclusive lock, waiting at most `wait` for another holder (in this
    /// process or another) to release it; [`StoreError::LockTimeout`] after that. The lock is
    /// released when the [`StoreLock`] drops, or when the process dies.
    pub fn lock(&self, wait: Duration) -> Result<StoreLock, StoreError> {
        create_private_dir(&self.directory())?;
        StoreLock::acquire(&self.lock_path, wait)
    }

    /// Takes the store's exclusive lock if it is free: `Ok(None)` when someone holds it.
    pub fn try_lock(&self) -> Result<Option<StoreLock>, StoreError> {
        create_private_dir(&self.directory())?;
        StoreLock::try_acquire(&self.lock_path)
    }

    /// Where the session is stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside the store.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn directory(&self) -> PathBuf {
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

    /// Best effort: removes this store's temporary files left by a save that crashed (older than
    /// [`ORPHAN_AGE`], so a save under way in another process is never disturbed).
    fn remove_orphans(&self, dir: &Path) {
        let prefix = self.temp_prefix();
        let Some(prefix) = prefix.to_str() else {
            return;
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|name| name.starts_with(prefix)) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= ORPHAN_AGE);
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
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
    use auth_core::{AccessToken, RefreshToken, UnixTime};

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
    fn file_lock_file_and_new_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("private/session.json"));
        store.save(&sample("at-1")).unwrap();
        drop(store.lock(Duration::from_secs(1)).unwrap());
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(store.lock_path()), 0o600);
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

    #[test]
    fn clear_keeps_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("session.json"));
        store.save(&sample("at-1")).unwrap();
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        store.clear().unwrap();
        drop(lock);
        assert_eq!(names(dir.path()), ["session.json.lock"]);
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
            Err(StoreError::Unreadable(SnapshotError::Corrupt(_)))
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
