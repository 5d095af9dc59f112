//! The bytes of a [`super::SharedFileStore`]'s file: the record and the lease as one versioned
//! JSON document (the format is documented on [`super::SharedFileStore`]).
//!
//! Secrets: the tokens are written as [`Snapshot::encode`] writes them, into a buffer wiped on
//! drop, and read back by [`Snapshot::decode`] from the file's own bytes (borrowed, never
//! copied into another string). Errors are fixed text: a file may hold anything, and what it
//! holds never reaches an error message.

use std::io::Write;

use auth_core::{Snapshot, SnapshotError, StoreVersion};
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::state::{Lease, State};
use super::{LeaseOwner, Record, RecordContent};
use crate::MAX_SNAPSHOT_LEN;

/// The format version this release writes, and the only one it reads.
pub(crate) const FORMAT: u32 = 1;

/// The longest lease owner the file keeps, in bytes (the drivers' owners are a process id and
/// an operation id, a few dozen bytes).
pub(crate) const MAX_OWNER_LEN: usize = 512;

/// The largest file the store writes and reads: a snapshot of [`MAX_SNAPSHOT_LEN`], an owner of
/// [`MAX_OWNER_LEN`] with every byte escaped (6 bytes each), and the fields around them.
pub(crate) const MAX_FILE_LEN: usize = MAX_SNAPSHOT_LEN + 6 * MAX_OWNER_LEN + 1024;

/// What a shared file holds: the record, and the lease with its wall-clock end in milliseconds
/// since the Unix epoch.
pub(crate) type FileState = State<u64>;

/// The file's bytes for `state`. The buffer holds the tokens; it is wiped on drop, and sized up
/// front so no reallocation leaves a copy behind.
pub(crate) fn encode(state: &FileState) -> Zeroizing<Vec<u8>> {
    let tokens = match &state.record.content {
        RecordContent::Tokens(snapshot) => Some(snapshot.encode()),
        RecordContent::Empty | RecordContent::LoggedOut => None,
    };
    let owner_len = state.lease.as_ref().map_or(0, |lease| lease.owner.0.len());
    let capacity = tokens.as_ref().map_or(0, |tokens| tokens.len()) + 6 * owner_len + 256;
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    // Writing to a Vec cannot fail, nor can serializing a string to it.
    let _ = write!(
        out,
        r#"{{"format":{FORMAT},"version":{},"content":"#,
        state.record.version.0
    );
    match (&state.record.content, &tokens) {
        (RecordContent::Tokens(_), Some(tokens)) => {
            out.extend_from_slice(br#"{"tokens":"#);
            out.extend_from_slice(tokens);
            out.push(b'}');
        }
        (RecordContent::LoggedOut, _) => out.extend_from_slice(br#""logged_out""#),
        _ => out.extend_from_slice(br#""empty""#),
    }
    let _ = write!(out, r#","spent":{},"lease":"#, state.record.spent);
    match &state.lease {
        Some(lease) => {
            out.extend_from_slice(br#"{"owner":"#);
            let _ = serde_json::to_writer(&mut *out, &lease.owner.0);
            let _ = write!(out, r#","expires_at_unix_ms":{}}}"#, lease.expires_at);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

/// Reads what [`encode`] wrote. Never panics, whatever the bytes; every error is
/// [`SnapshotError`] with fixed text.
pub(crate) fn decode(bytes: &[u8]) -> Result<FileState, SnapshotError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SnapshotError::Empty);
    }
    // The format first, so a file of another format is named as such whatever else it holds.
    let format = serde_json::from_slice::<FormatOnly>(bytes)
        .map_err(|error| json_error(error, "not a shared record (no numeric `format` field)"))?;
    if format.format != FORMAT {
        return Err(SnapshotError::Corrupt(
            "a shared record of another format version",
        ));
    }
    let file: FileRecord<'_> = serde_json::from_slice(bytes)
        .map_err(|error| json_error(error, "not a shared record of this format"))?;
    let content = match file.content {
        FileContent::Empty => RecordContent::Empty,
        FileContent::LoggedOut => RecordContent::LoggedOut,
        FileContent::Tokens(raw) => RecordContent::Tokens(Snapshot::decode(raw.get().as_bytes())?),
    };
    Ok(State {
        record: Record {
            version: StoreVersion(file.version),
            content,
            spent: file.spent,
        },
        lease: file.lease.map(|lease| Lease {
            owner: LeaseOwner(lease.owner),
            expires_at: lease.expires_at_unix_ms,
        }),
    })
}

/// A JSON error as fixed text: its own message may quote the file.
fn json_error(error: serde_json::Error, otherwise: &'static str) -> SnapshotError {
    match error.classify() {
        serde_json::error::Category::Eof => SnapshotError::Truncated,
        serde_json::error::Category::Syntax => SnapshotError::Corrupt("not JSON"),
        _ => SnapshotError::Corrupt(otherwise),
    }
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecord<'a> {
    #[allow(dead_code)] // checked by `FormatOnly`; named here so it is not an unknown field
    format: u32,
    version: u64,
    #[serde(borrow)]
    content: FileContent<'a>,
    spent: bool,
    lease: Option<FileLease>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FileContent<'a> {
    Empty,
    #[serde(borrow)]
    Tokens(&'a RawValue),
    LoggedOut,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLease {
    owner: String,
    expires_at_unix_ms: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use auth_core::{AccessToken, RefreshToken, UnixTime};

    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            access_token: AccessToken::new("at-format-secret"),
            refresh_token: Some(RefreshToken::new("rt-format-secret")),
            expires_at: Some(UnixTime::from_millis(1_800_000_000_000)),
        }
    }

    fn state(content: RecordContent, lease: Option<(&str, u64)>) -> FileState {
        State {
            record: Record {
                version: StoreVersion(7),
                content,
                spent: true,
            },
            lease: lease.map(|(owner, expires_at)| Lease {
                owner: LeaseOwner(owner.to_owned()),
                expires_at,
            }),
        }
    }

    #[test]
    fn every_record_and_lease_reads_back_as_written() {
        for content in [
            RecordContent::Empty,
            RecordContent::LoggedOut,
            RecordContent::Tokens(snapshot()),
        ] {
            for lease in [None, Some(("host-1/op \"7\"\n\u{1}é", u64::MAX))] {
                let written = state(content.clone(), lease);
                assert_eq!(decode(&encode(&written)).unwrap(), written);
            }
        }
    }

    #[test]
    fn the_file_is_the_documented_json() {
        let bytes = encode(&state(
            RecordContent::Tokens(snapshot()),
            Some(("host-1/op-7", 1_754_000_000_000)),
        ));
        let expected = format!(
            r#"{{"format":1,"version":7,"content":{{"tokens":{}}},"spent":true,"lease":{{"owner":"host-1/op-7","expires_at_unix_ms":1754000000000}}}}"#,
            String::from_utf8(snapshot().encode().to_vec()).unwrap()
        );
        assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), expected);
        let tombstone = encode(&State {
            record: Record {
                version: StoreVersion(8),
                content: RecordContent::LoggedOut,
                spent: false,
            },
            lease: None,
        });
        assert_eq!(
            &tombstone[..],
            br#"{"format":1,"version":8,"content":"logged_out","spent":false,"lease":null}"#
        );
    }

    #[test]
    fn the_largest_record_fits_the_file_limit() {
        let base = Snapshot {
            access_token: AccessToken::new("a"),
            ..snapshot()
        };
        let pad = MAX_SNAPSHOT_LEN - base.encode().len() + 1;
        let largest = Snapshot {
            access_token: AccessToken::new("a".repeat(pad)),
            ..snapshot()
        };
        assert_eq!(largest.encode().len(), MAX_SNAPSHOT_LEN);
        let owner = "\u{1}".repeat(MAX_OWNER_LEN);
        let bytes = encode(&state(
            RecordContent::Tokens(largest),
            Some((&owner, u64::MAX)),
        ));
        assert!(bytes.len() <= MAX_FILE_LEN, "{} bytes", bytes.len());
    }

    #[test]
    fn what_is_not_a_record_of_this_format_is_a_typed_error() {
        let whole = encode(&state(RecordContent::Tokens(snapshot()), Some(("o", 1))));
        let cases: Vec<(Vec<u8>, SnapshotError)> = vec![
            (b"  ".to_vec(), SnapshotError::Empty),
            (whole[..whole.len() / 2].to_vec(), SnapshotError::Truncated),
            (b"not json at-format-secret".to_vec(), SnapshotError::Corrupt("not JSON")),
            (
                br#"{"version":1}"#.to_vec(),
                SnapshotError::Corrupt("not a shared record (no numeric `format` field)"),
            ),
            (
                br#"{"format":2,"whatever":true}"#.to_vec(),
                SnapshotError::Corrupt("a shared record of another format version"),
            ),
            (
                br#"{"format":1,"version":1,"content":"empty","spent":false,"lease":null,"at-format-secret":1}"#.to_vec(),
                SnapshotError::Corrupt("not a shared record of this format"),
            ),
            (
                br#"{"format":1,"version":1,"content":"at-format-secret","spent":false,"lease":null}"#.to_vec(),
                SnapshotError::Corrupt("not a shared record of this format"),
            ),
            (
                br#"{"format":1,"version":-1,"content":"empty","spent":false,"lease":null}"#.to_vec(),
                SnapshotError::Corrupt("not a shared record of this format"),
            ),
            (
                br#"{"format":1,"version":1,"content":{"tokens":{"version":1,"access_token":"at-format-secret","x":1}},"spent":false,"lease":null}"#.to_vec(),
                SnapshotError::UnknownField,
            ),
        ];
        for (bytes, expected) in cases {
            let error = decode(&bytes).unwrap_err();
            assert_eq!(error, expected, "{}", String::from_utf8_lossy(&bytes));
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("at-format-secret"), "{shown}");
        }
    }
}
