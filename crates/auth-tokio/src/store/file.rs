//! The file store: one file holding auth-core's versioned snapshot.
//!
//! # Format and guarantees (shared with the blocking driver)
//!
//! - Content: exactly the bytes of [`Snapshot::encode`] (versioned JSON; see
//!   `auth_core::SNAPSHOT_VERSION`). Any reader decodes with [`Snapshot::decode`]; an unreadable
//!   file counts as an empty store.
//! - Writing is atomic: the bytes go to a temporary file created next to the target
//!   (`.<name>.tmp-<pid>-<n>`, created exclusively, mode `0600`), which is flushed with `fsync`,
//!   renamed over the target, and the directory is `fsync`ed so the rename survives a crash.
//!   A reader therefore sees the old session or the new one, never a torn file.
//! - Permissions: the file is created `0600` (owner read/write only) and a missing parent
//!   directory is created `0700`, on Unix.
//! - Clearing removes the file (and `fsync`s the directory); a missing file is already clear.
//!
//! The `*_blocking` methods are plain `std` code with no runtime, so a blocking driver can call
//! them directly; the [`TokenStore`] impl runs them on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use auth_core::Snapshot;
use zeroize::Zeroizing;

use super::{StoreError, TokenStore};

/// Counter that makes temporary file names unique within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Largest file read back (64 KiB): a snapshot is a few hundred bytes, so anything larger is not
/// one, and reading it whole would be a waste.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// A [`TokenStore`] in one file; see the module documentation for the format and guarantees.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path`. Nothing is touched until the first load or save.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// Where the session is stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the stored session: `Ok(None)` when the file does not exist.
    pub fn load_blocking(&self) -> Result<Option<Snapshot>, StoreError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(StoreError::Unreadable(auth_core::SnapshotError::Corrupt(
                "the file is too large to be a stored session".into(),
            )));
        }
        Ok(Some(Snapshot::decode(&bytes)?))
    }

    /// Replaces the stored session atomically (temporary file, `fsync`, rename, directory
    /// `fsync`), creating the file `0600`.
    pub fn save_blocking(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let dir = self.directory();
        create_private_dir(&dir)?;
        let temp = self.temp_path(&dir);
        let written = write_new_private(&temp, &snapshot.encode())
            .and_then(|()| fs::rename(&temp, &self.path));
        if let Err(error) = written {
            // Best effort: do not leave a temporary copy of the tokens behind.
            let _ = fs::remove_file(&temp);
            return Err(error.into());
        }
        sync_dir(&dir)?;
        Ok(())
    }

    /// Removes the stored session; a missing file is already clear.
    pub fn clear_blocking(&self) -> Result<(), StoreError> {
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        sync_dir(&self.directory())?;
        Ok(())
    }

    fn directory(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn temp_path(&self, dir: &Path) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "session".to_owned());
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()))
    }
}

impl TokenStore for FileStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let store = self.clone();
        blocking(move || store.load_blocking()).await
    }

    async fn save(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let store = self.clone();
        blocking(move || store.save_blocking(&snapshot)).await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let store = self.clone();
        blocking(move || store.clear_blocking()).await
    }
}

/// Runs file I/O on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(StoreError::Io(io::Error::other(join.to_string()))),
    }
}

/// Creates `path` exclusively with owner-only permissions, writes `bytes` and flushes them to disk.
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

fn create_private_dir(dir: &Path) -> io::Result<()> {
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

/// Makes a rename or removal in `dir` durable. Directories cannot be opened for syncing on every
/// platform; there the rename is as durable as the platform makes it.
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

    fn sample() -> Snapshot {
        Snapshot {
            access_token: AccessToken::new("at-file-secret"),
            refresh_token: Some(RefreshToken::new("rt-file-secret")),
            expires_at: Some(UnixTime::from_millis(1_800_000_000_000)),
        }
    }

    #[test]
    fn saves_loads_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("nested/session.json"));
        assert!(store.load_blocking().unwrap().is_none());
        store.save_blocking(&sample()).unwrap();
        assert_eq!(store.load_blocking().unwrap(), Some(sample()));
        store.clear_blocking().unwrap();
        assert!(store.load_blocking().unwrap().is_none());
        store.clear_blocking().unwrap();
    }

    #[test]
    fn file_holds_exactly_the_core_encoding_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let store = FileStore::new(&path);
        store.save_blocking(&sample()).unwrap();
        let replaced = Snapshot {
            access_token: AccessToken::new("at-second"),
            ..sample()
        };
        store.save_blocking(&replaced).unwrap();
        assert_eq!(fs::read(&path).unwrap(), *replaced.encode());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the session file remains");
    }

    #[cfg(unix)]
    #[test]
    fn file_and_new_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("private/session.json"));
        store.save_blocking(&sample()).unwrap();
        let file_mode = fs::metadata(store.path()).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path().join("private"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn unreadable_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let store = FileStore::new(&path);
        let full = sample().encode();
        fs::write(&path, &full[..full.len() / 2]).unwrap();
        assert!(matches!(
            store.load_blocking(),
            Err(StoreError::Unreadable(SnapshotError::Truncated))
        ));
        fs::write(&path, br#"{"version":99,"access_token":"x"}"#).unwrap();
        assert!(matches!(
            store.load_blocking(),
            Err(StoreError::Unreadable(SnapshotError::UnsupportedVersion {
                found: 99
            }))
        ));
        fs::write(&path, vec![b' '; 100_000]).unwrap();
        assert!(matches!(
            store.load_blocking(),
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
        let error = FileStore::new(&path).load_blocking().unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("at-leak"), "{shown}");
    }
}
