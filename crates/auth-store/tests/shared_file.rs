//! The shared file store: the conformance suite, real processes contending for its lease and
//! dying with it, files it cannot read, directories it cannot write, and no token in anything it
//! shows.
//!
//! The multi-process tests run this test binary again as their children, with the child's part
//! in [`CHILD_ENV`] (the child runs the same test, which sees the variable and plays the part).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{AccessToken, RefreshToken, Snapshot, SnapshotError, StoreVersion};
use auth_store::shared::conformance::{self, sample_snapshot, SAMPLE_SECRET};
use auth_store::shared::{
    Acquired, LeaseOwner, Published, Record, RecordContent, SharedFileStore, SharedStore,
    SharedStoreError,
};
use auth_store::MAX_SNAPSHOT_LEN;

/// A child's part: `<test name>\n<part>\n<store path>`.
const CHILD_ENV: &str = "SEAMLESS_SHARED_FILE_CHILD";
/// Bound of every wait on a child.
const LIMIT: Duration = Duration::from_secs(60);
/// Acquires each contending child makes.
const ATTEMPTS: usize = 300;
/// The killed holder's lease.
const HOLDER_TTL: Duration = Duration::from_secs(2);

#[test]
fn the_file_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    conformance::run_all(|| {
        let name = format!("shared-{}.json", n.fetch_add(1, Ordering::Relaxed));
        SharedFileStore::new(dir.path().join(name))
    });
}

#[test]
fn two_processes_contending_for_the_lease_get_exactly_one_grant() {
    const TEST: &str = "two_processes_contending_for_the_lease_get_exactly_one_grant";
    if let Some((part, path)) = child_part(TEST) {
        return contend(&part, &path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let mut children: Vec<Process> = (0..2)
        .map(|_| Process::start(TEST, "contend", &path))
        .collect();
    for child in &mut children {
        child.expect("ready");
    }
    for child in &mut children {
        child.go();
    }
    let grants: usize = children
        .iter_mut()
        .map(|child| {
            let said = child.expect_prefix("grants ");
            child.finish();
            said.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(
        grants, 1,
        "two processes made {ATTEMPTS} acquires each of a lease nobody released"
    );
    assert!(SharedFileStore::new(&path).read().unwrap().spent);
}

/// The contending child: waits for `go`, then acquires as fast as it can, and says how many
/// times it was granted.
fn contend(part: &str, path: &Path) {
    assert_eq!(part, "contend");
    let store = SharedFileStore::new(path).with_lock_wait(LIMIT);
    println!("child: ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    let owner = LeaseOwner(format!("process-{}", std::process::id()));
    let grants = (0..ATTEMPTS)
        .filter(|_| {
            matches!(
                store.acquire(&owner, Duration::from_secs(600)).unwrap(),
                Acquired::Granted(_)
            )
        })
        .count();
    println!("child: grants {grants}");
}

#[test]
fn a_holder_killed_with_sigkill_loses_its_lease_at_its_ttl_and_leaves_the_mark() {
    const TEST: &str =
        "a_holder_killed_with_sigkill_loses_its_lease_at_its_ttl_and_leaves_the_mark";
    if let Some((part, path)) = child_part(TEST) {
        return hold(&part, &path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let mut holder = Process::start(TEST, "hold", &path);
    // The lease cannot end before then: the child read this time before it was granted.
    let earliest_end = unix_ms(&holder.expect_prefix("holding since ")) + millis(HOLDER_TTL);
    let latest_end = unix_now_ms() + millis(HOLDER_TTL);
    holder.child.kill().unwrap(); // SIGKILL on Unix
    holder.child.wait().unwrap();

    let store = SharedFileStore::new(&path);
    let me = LeaseOwner("survivor".to_owned());
    let granted = loop {
        let now = unix_now_ms();
        let answer = store.acquire(&me, Duration::from_secs(60)).unwrap();
        let after = unix_now_ms();
        match answer {
            Acquired::Granted(record) => {
                assert!(
                    after >= earliest_end,
                    "granted {} ms before the dead holder's lease could end",
                    earliest_end - after
                );
                break record;
            }
            Acquired::Busy(_) => assert!(
                now < latest_end + 5_000,
                "the dead holder's lease outlived its ttl by {} ms",
                now - latest_end
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        granted,
        Record {
            version: StoreVersion(1),
            content: RecordContent::Tokens(sample_snapshot(1)),
            spent: true,
        },
        "the taker sees the tokens and the spent mark the dead holder left"
    );
}

/// The holding child: publishes tokens, takes the lease for [`HOLDER_TTL`], says so, and waits
/// to be killed.
fn hold(part: &str, path: &Path) {
    assert_eq!(part, "hold");
    let store = SharedFileStore::new(path);
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    let since = unix_now_ms();
    let owner = LeaseOwner(format!("process-{}", std::process::id()));
    assert!(matches!(
        store.acquire(&owner, HOLDER_TTL).unwrap(),
        Acquired::Granted(_)
    ));
    println!("child: holding since {since}");
    std::thread::sleep(LIMIT);
    panic!("the holder was not killed");
}

#[test]
fn a_corrupt_file_is_unreadable_to_every_operation_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let store = SharedFileStore::new(&path);
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    let whole = fs::read(&path).unwrap();
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("torn", whole[..whole.len() / 2].to_vec()),
        ("garbage", b"\x00\xff garbage".to_vec()),
        ("empty", Vec::new()),
        ("too large", vec![b' '; 200_000]),
        (
            "another format",
            br#"{"format":2,"version":1,"records":[]}"#.to_vec(),
        ),
        (
            "broken tokens",
            br#"{"format":1,"version":1,"content":{"tokens":{"version":1}},"spent":false,"lease":null}"#
                .to_vec(),
        ),
    ];
    for (what, bytes) in corruptions {
        fs::write(&path, &bytes).unwrap();
        assert_unreadable_everywhere(&store, what);
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{what}: the file was left alone"
        );
        store.reset().unwrap();
        assert_eq!(
            store.read().unwrap(),
            Record::empty(),
            "{what}: reset empties the store"
        );
    }
    fs::create_dir(&path).unwrap();
    assert_unreadable_everywhere(&store, "a directory at the path");
}

#[test]
fn a_torn_temporary_file_beside_the_record_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let store = SharedFileStore::new(&path);
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    let before = store.read().unwrap();
    // What a process killed in the middle of a write leaves: half a new file, never renamed.
    let whole = fs::read(&path).unwrap();
    fs::write(
        dir.path().join(".shared.json.tmp-999999-0"),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    assert_eq!(store.read().unwrap(), before);
    assert_eq!(
        store.publish(StoreVersion(1), &sample_snapshot(2)).unwrap(),
        Published::Written
    );
}

fn assert_unreadable_everywhere(store: &SharedFileStore, what: &str) {
    let owner = LeaseOwner("o".to_owned());
    let answers = [
        ("read", store.read().map(drop)),
        (
            "acquire",
            store.acquire(&owner, Duration::from_secs(1)).map(drop),
        ),
        (
            "publish",
            store
                .publish(StoreVersion(1), &sample_snapshot(2))
                .map(drop),
        ),
        ("release", store.release(&owner, StoreVersion(1), false)),
        ("logout", store.logout().map(drop)),
    ];
    for (operation, answer) in answers {
        assert!(
            matches!(answer, Err(SharedStoreError::Unreadable(_))),
            "{what}: {operation} answered {answer:?}"
        );
    }
}

#[test]
fn an_unwritable_place_is_unavailable_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // The store's directory is a regular file: nothing can be created in it.
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    assert_unavailable_everywhere(&SharedFileStore::new(file.join("shared.json")), true);
    // The lock file cannot be opened: every operation but read needs it.
    let path = dir.path().join("shared.json");
    fs::create_dir(dir.path().join("shared.json.lock")).unwrap();
    assert_unavailable_everywhere(&SharedFileStore::new(&path), false);
    // A read-only directory (only where permissions bind: not for root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let read_only = dir.path().join("read-only");
        fs::create_dir(&read_only).unwrap();
        fs::set_permissions(&read_only, fs::Permissions::from_mode(0o500)).unwrap();
        if fs::write(read_only.join("probe"), b"").is_err() {
            assert_unavailable_everywhere(
                &SharedFileStore::new(read_only.join("shared.json")),
                false,
            );
        }
        fs::set_permissions(&read_only, fs::Permissions::from_mode(0o700)).unwrap();
    }
}

fn assert_unavailable_everywhere(store: &SharedFileStore, read_too: bool) {
    let owner = LeaseOwner("o".to_owned());
    let mut answers = vec![
        (
            "acquire",
            store.acquire(&owner, Duration::from_secs(1)).map(drop),
        ),
        (
            "publish",
            store
                .publish(StoreVersion::EMPTY, &sample_snapshot(1))
                .map(drop),
        ),
        ("release", store.release(&owner, StoreVersion::EMPTY, false)),
        ("logout", store.logout().map(drop)),
        ("reset", store.reset()),
    ];
    if read_too {
        answers.push(("read", store.read().map(drop)));
    } else {
        assert_eq!(store.read().unwrap(), Record::empty());
    }
    for (operation, answer) in answers {
        assert!(
            matches!(answer, Err(SharedStoreError::Unavailable(_))),
            "{operation} answered {answer:?}"
        );
    }
}

#[test]
fn an_operation_waits_for_the_lock_no_longer_than_the_store_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let wait = Duration::from_millis(100);
    let store = SharedFileStore::new(&path).with_lock_wait(wait);
    // Another holder of the same lock (a process stuck inside an operation).
    let held = fs::File::create(store.lock_path()).unwrap();
    assert!(fs4::fs_std::FileExt::try_lock_exclusive(&held).unwrap());
    let start = std::time::Instant::now();
    let answer = store.acquire(&LeaseOwner("o".to_owned()), Duration::from_secs(1));
    let waited = start.elapsed();
    assert!(
        matches!(&answer, Err(SharedStoreError::Unavailable(text)) if text.contains("locked")),
        "{answer:?}"
    );
    assert!(waited >= wait, "gave up after {waited:?}");
    assert!(waited < wait + Duration::from_secs(5), "waited {waited:?}");
    drop(held);
    assert!(matches!(
        store
            .acquire(&LeaseOwner("o".to_owned()), Duration::from_secs(1))
            .unwrap(),
        Acquired::Granted(_)
    ));
}

#[test]
fn what_the_store_cannot_keep_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let store = SharedFileStore::new(&path);
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    let before = fs::read(&path).unwrap();
    let huge = Snapshot {
        access_token: AccessToken::new(format!("{SAMPLE_SECRET}{}", "a".repeat(MAX_SNAPSHOT_LEN))),
        ..sample_snapshot(2)
    };
    let refused = store.publish(StoreVersion(1), &huge).unwrap_err();
    assert!(
        matches!(refused, SharedStoreError::Unavailable(_)),
        "{refused:?}"
    );
    let long_owner = LeaseOwner("o".repeat(10_000));
    let refused_owner = store
        .acquire(&long_owner, Duration::from_secs(1))
        .unwrap_err();
    assert!(
        matches!(refused_owner, SharedStoreError::Unavailable(_)),
        "{refused_owner:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), before, "nothing was written");
    let shown = format!("{refused} {refused:?}");
    assert!(!shown.contains(SAMPLE_SECRET), "{shown}");
}

#[cfg(unix)]
#[test]
fn the_file_its_lock_and_a_new_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = SharedFileStore::new(dir.path().join("private/shared.json"));
    assert!(matches!(
        store
            .acquire(&LeaseOwner("o".to_owned()), Duration::from_secs(1))
            .unwrap(),
        Acquired::Granted(_)
    ));
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(mode(store.lock_path()), 0o600);
    assert_eq!(mode(&dir.path().join("private")), 0o700);
}

#[test]
fn the_file_holds_the_snapshot_as_the_core_encodes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let store = SharedFileStore::new(&path);
    store
        .publish(StoreVersion::EMPTY, &sample_snapshot(1))
        .unwrap();
    let file = fs::read(&path).unwrap();
    let encoded = sample_snapshot(1).encode();
    assert!(file
        .windows(encoded.len())
        .any(|window| window == &encoded[..]));
    assert!(file.starts_with(br#"{"format":1,"version":1,"content":{"tokens":"#));
}

#[test]
fn nothing_the_store_shows_holds_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let store = SharedFileStore::new(&path);
    let secret = Snapshot {
        access_token: AccessToken::new(format!("at-{SAMPLE_SECRET}")),
        refresh_token: Some(RefreshToken::new(format!("rt-{SAMPLE_SECRET}"))),
        expires_at: None,
    };
    store.publish(StoreVersion::EMPTY, &secret).unwrap();
    let mut shown = format!(
        "{store:?} {:?} {:?} {:?} {:?}",
        store.read(),
        store.acquire(&LeaseOwner("o".to_owned()), Duration::from_secs(1)),
        store.publish(StoreVersion::EMPTY, &secret),
        store.logout(),
    );
    // Errors from files that hold the secret where a field, a variant or a token belongs.
    for bytes in [
        format!(
            r#"{{"format":1,"version":1,"content":"{SAMPLE_SECRET}","spent":false,"lease":null}}"#
        ),
        format!(
            r#"{{"format":1,"version":1,"content":"empty","spent":false,"lease":null,"{SAMPLE_SECRET}":1}}"#
        ),
        format!(
            r#"{{"format":1,"version":1,"content":{{"tokens":{{"version":1,"access_token":"{SAMPLE_SECRET}","{SAMPLE_SECRET}":1}}}},"spent":false,"lease":null}}"#
        ),
        format!(r#"{{"format":1,"version":"{SAMPLE_SECRET}"}}"#),
        format!(
            r#"{{"format":1,"version":1,"content":{{"tokens":{{"version":1,"access_token":"{SAMPLE_SECRET}""#
        ),
    ] {
        fs::write(&path, bytes).unwrap();
        let error = store.read().unwrap_err();
        assert!(
            matches!(error, SharedStoreError::Unreadable(_)),
            "{error:?}"
        );
        shown.push_str(&format!(" {error} {error:?}"));
        let error = store.logout().unwrap_err();
        shown.push_str(&format!(" {error} {error:?}"));
    }
    assert!(!shown.contains(SAMPLE_SECRET), "{shown}");
    assert!(
        shown.contains("unreadable"),
        "the errors were shown: {shown}"
    );
}

#[test]
fn an_unreadable_error_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    fs::write(&path, br#"{"format":1,"version":1,"con"#).unwrap();
    let error = SharedFileStore::new(&path).read().unwrap_err();
    assert!(
        matches!(
            error,
            SharedStoreError::Unreadable(SnapshotError::Truncated)
        ),
        "{error:?}"
    );
}

/// This process's part, when it was started as a child of `test`.
fn child_part(test: &str) -> Option<(String, PathBuf)> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    let mut lines = spec.lines();
    assert_eq!(lines.next(), Some(test), "a child runs its parent's test");
    let part = lines.next().unwrap().to_owned();
    Some((part, PathBuf::from(lines.next().unwrap())))
}

/// A child process: this test binary running `test` with a part to play.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    said: Vec<String>,
}

impl Process {
    fn start(test: &str, part: &str, path: &Path) -> Process {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{test}\n{part}\n{}", path.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Process {
            stdin: child.stdin.take(),
            child,
            lines,
            said: Vec::new(),
        }
    }

    /// Waits for the line `child: {what}`.
    fn expect(&mut self, what: &str) {
        assert_eq!(self.expect_prefix(what), "");
    }

    /// Waits for a line `child: {prefix}…` and returns the rest.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        let wanted = format!("child: {prefix}");
        loop {
            let line = self
                .lines
                .recv_timeout(LIMIT)
                .unwrap_or_else(|_| panic!("no {wanted:?} from the child: {:#?}", self.said));
            self.said.push(line.clone());
            // The harness's `test … ... ` may precede it on the line.
            if let Some(at) = line.find(&wanted) {
                return line[at + wanted.len()..].to_owned();
            }
        }
    }

    fn go(&mut self) {
        self.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }

    /// Waits for the child to exit, and insists it succeeded.
    fn finish(&mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {:#?}", self.said);
    }
}

impl Drop for Process {
    /// A child never outlives a failed test.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now_ms() -> u64 {
    millis(SystemTime::now().duration_since(UNIX_EPOCH).unwrap())
}

fn unix_ms(text: &str) -> u64 {
    text.parse().unwrap()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap()
}
