//! The persisted session: what a token store writes and what a restart restores.
//!
//! The encoding is versioned JSON so a newer release can read an older store, and an unknown
//! version is refused with a typed error instead of being misread. Expiry is wall-clock time,
//! because the driver's monotonic clock starts again at every process start.
//!
//! A stored file is input like any other: [`Snapshot::decode`] reads it field by field into
//! typed values, and its errors say which field is wrong and how, never what the file holds.

use core::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::time::UnixTime;
use crate::token::{AccessToken, RefreshToken};

/// The store format version this release writes (and the only one it reads).
pub const SNAPSHOT_VERSION: u32 = 1;

/// A stored session. `Debug` never shows the tokens; [`Snapshot::encode`] is the one place the
/// secrets leave, for the store.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token, if the server issued one.
    pub refresh_token: Option<RefreshToken>,
    /// Wall-clock expiry of the access token; `None` when unknown.
    pub expires_at: Option<UnixTime>,
}

/// Why a stored snapshot could not be read. In every case the store should be treated as empty
/// (the session starts anonymous and logs in silently).
///
/// `Display` and `Debug` say what is wrong and where, never a value from the store: the file
/// holds the secrets, and may hold anything else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The store held no bytes.
    #[error("the stored session is empty")]
    Empty,
    /// The bytes end in the middle of the document (an interrupted write).
    #[error("the stored session is truncated")]
    Truncated,
    /// The bytes are not a snapshot document (not JSON, not a JSON object, too large for a
    /// session...). The reason is fixed text written by this library or a store, never the
    /// bytes' content: `'static`, it cannot be built from what was read.
    #[error("the stored session is corrupt: {0}")]
    Corrupt(&'static str),
    /// A field of the document is missing, empty, of the wrong type or out of range.
    #[error("the stored session's `{field}` {problem}")]
    InvalidField {
        /// The field's name (`version`, `access_token`, `refresh_token`, `expires_at_unix_ms`).
        field: &'static str,
        /// What is wrong with it.
        problem: SnapshotFieldError,
    },
    /// The document has a field this release does not know. Its name is not kept: it is the
    /// file's text.
    #[error("the stored session has a field this release does not know")]
    UnknownField,
    /// Written by a release that uses another format version.
    #[error(
        "the stored session has version {found}, this release reads version {SNAPSHOT_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found in the store.
        found: u32,
    },
}

/// What is wrong with a field of a stored snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotFieldError {
    /// The field is required but absent (or `null`).
    #[error("is missing")]
    Missing,
    /// A token is the empty string.
    #[error("is empty")]
    Empty,
    /// A token is not a string.
    #[error("is not a string")]
    NotAString,
    /// A number field holds something else (a string, a boolean...).
    #[error("is not a number")]
    NotANumber,
    /// A number field is negative, fractional or too large for it.
    #[error("is out of range")]
    OutOfRange,
}

#[derive(Serialize)]
struct Encoded {
    version: u32,
    access_token: String,
    refresh_token: Option<String>,
    expires_at_unix_ms: Option<u64>,
}

impl Snapshot {
    /// The store's bytes. They hold the secrets; the buffer is wiped on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let encoded = Zeroizing::new(Encoded {
            version: SNAPSHOT_VERSION,
            access_token: self.access_token.expose_secret().to_owned(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            expires_at_unix_ms: self.expires_at.map(UnixTime::as_millis),
        });
        // Serializing strings and integers to a Vec cannot fail.
        Zeroizing::new(serde_json::to_vec(&*encoded).unwrap_or_default())
    }

    /// Reads what [`Snapshot::encode`] wrote. Never panics, whatever the bytes.
    ///
    /// `version` is read first, so a document of another version is
    /// [`SnapshotError::UnsupportedVersion`] whatever else it holds. `refresh_token` and
    /// `expires_at_unix_ms` may be absent or `null`; no other field may be present.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(SnapshotError::Empty);
        }
        let mut fields = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(SnapshotError::Corrupt("not a JSON object")),
            Err(error) if error.is_eof() => return Err(SnapshotError::Truncated),
            Err(_) => return Err(SnapshotError::Corrupt("not JSON")),
        };
        let found = match number(&mut fields, "version")? {
            Some(version) => u32::try_from(version).map_err(|_| SnapshotError::InvalidField {
                field: "version",
                problem: SnapshotFieldError::OutOfRange,
            })?,
            None => return Err(missing("version")),
        };
        if found != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { found });
        }
        let access_token = token(&mut fields, "access_token")?.ok_or(missing("access_token"))?;
        let refresh_token = token(&mut fields, "refresh_token")?;
        let expires_at = number(&mut fields, "expires_at_unix_ms")?;
        if !fields.is_empty() {
            return Err(SnapshotError::UnknownField);
        }
        Ok(Snapshot {
            access_token: AccessToken::new(access_token),
            refresh_token: refresh_token.map(RefreshToken::new),
            expires_at: expires_at.map(UnixTime::from_millis),
        })
    }
}

impl zeroize::Zeroize for Encoded {
    fn zeroize(&mut self) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
    }
}

fn missing(field: &'static str) -> SnapshotError {
    SnapshotError::InvalidField {
        field,
        problem: SnapshotFieldError::Missing,
    }
}

/// Takes the token `field` out of the document (moved, never copied, so the secret exists once):
/// `None` when absent or `null`, else a non-empty string.
fn token(
    fields: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, SnapshotError> {
    let problem = match fields.remove(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if !text.is_empty() => return Ok(Some(text)),
        Some(Value::String(_)) => SnapshotFieldError::Empty,
        Some(_) => SnapshotFieldError::NotAString,
    };
    Err(SnapshotError::InvalidField { field, problem })
}

/// Takes the whole, non-negative number `field` out of the document: `None` when absent or
/// `null`.
fn number(
    fields: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<u64>, SnapshotError> {
    let problem = match fields.remove(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(value) => return Ok(Some(value)),
            None => SnapshotFieldError::OutOfRange,
        },
        Some(_) => SnapshotFieldError::NotANumber,
    };
    Err(SnapshotError::InvalidField { field, problem })
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl Serialize for Snapshot {
    /// Fingerprints only: this is the form that appears in traces and test snapshots.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Snapshot", 3)?;
        s.serialize_field("access_token", &self.access_token)?;
        s.serialize_field("refresh_token", &self.refresh_token)?;
        s.serialize_field("expires_at", &self.expires_at)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fingerprinted {
            access_token: AccessToken,
            refresh_token: Option<RefreshToken>,
            expires_at: Option<UnixTime>,
        }
        let f = Fingerprinted::deserialize(deserializer)?;
        Ok(Snapshot {
            access_token: f.access_token,
            refresh_token: f.refresh_token,
            expires_at: f.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            access_token: AccessToken::new("at-secret"),
            refresh_token: Some(RefreshToken::new("rt-secret")),
            expires_at: Some(UnixTime::from_millis(1_700_000_000_000)),
        }
    }

    #[test]
    fn round_trips_through_the_store_encoding() {
        let snap = sample();
        let bytes = snap.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), snap);
        let minimal = Snapshot {
            refresh_token: None,
            expires_at: None,
            ..sample()
        };
        assert_eq!(Snapshot::decode(&minimal.encode()).unwrap(), minimal);
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let err = Snapshot::decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(err, SnapshotError::Empty | SnapshotError::Truncated),
                "len {len}: {err:?}"
            );
        }
    }

    #[test]
    fn corrupt_and_unknown_versions_are_typed_errors() {
        use SnapshotFieldError::*;
        let field = |field, problem| SnapshotError::InvalidField { field, problem };
        let cases: &[(&[u8], SnapshotError)] = &[
            (b"not json", SnapshotError::Corrupt("not JSON")),
            (b"{}}", SnapshotError::Corrupt("not JSON")),
            (&[0xff, 0xfe, 0x00], SnapshotError::Corrupt("not JSON")),
            (b"[1,2]", SnapshotError::Corrupt("not a JSON object")),
            (
                br#"{"version":2,"access_token":"x"}"#,
                SnapshotError::UnsupportedVersion { found: 2 },
            ),
            (
                br#"{"version":2,"access_token":7,"bogus":1}"#,
                SnapshotError::UnsupportedVersion { found: 2 },
            ),
            (br#"{"version":1}"#, field("access_token", Missing)),
            (br#"{"access_token":"x"}"#, field("version", Missing)),
            (
                br#"{"version":1,"access_token":""}"#,
                field("access_token", Empty),
            ),
            (
                br#"{"version":1,"access_token":7}"#,
                field("access_token", NotAString),
            ),
            (
                br#"{"version":1,"access_token":"x","refresh_token":""}"#,
                field("refresh_token", Empty),
            ),
            (
                br#"{"version":1,"access_token":"x","refresh_token":[]}"#,
                field("refresh_token", NotAString),
            ),
            (
                br#"{"version":"1","access_token":"x"}"#,
                field("version", NotANumber),
            ),
            (
                br#"{"version":4294967297,"access_token":"x"}"#,
                field("version", OutOfRange),
            ),
            (
                br#"{"version":1,"access_token":"x","expires_at_unix_ms":-5}"#,
                field("expires_at_unix_ms", OutOfRange),
            ),
            (
                br#"{"version":1,"access_token":"x","expires_at_unix_ms":1.5}"#,
                field("expires_at_unix_ms", OutOfRange),
            ),
            (
                br#"{"version":1,"access_token":"x","expires_at_unix_ms":"soon"}"#,
                field("expires_at_unix_ms", NotANumber),
            ),
            (
                br#"{"version":1,"access_token":"x","bogus":1}"#,
                SnapshotError::UnknownField,
            ),
            (b"   ", SnapshotError::Empty),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                Snapshot::decode(bytes).as_ref(),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let nulls =
            br#"{"version":1,"access_token":"x","refresh_token":null,"expires_at_unix_ms":null}"#;
        assert_eq!(
            Snapshot::decode(nulls).unwrap(),
            Snapshot {
                access_token: AccessToken::new("x"),
                refresh_token: None,
                expires_at: None
            }
        );
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let snap = sample();
        assert!(!format!("{snap:?}").contains("secret"));
        let json = serde_json::to_string(&snap).unwrap();
        assert!(!json.contains("secret"));
        let err =
            Snapshot::decode(br#"{"version":1,"access_token":"secret","bogus":1}"#).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn corrupt_snapshot_errors_never_repeat_the_file() {
        const SECRET: &str = "rt-s3cr3t";
        let documents = [
            format!(
                r#"{{"version":1,"access_token":"at","refresh_token":"{SECRET}","{SECRET}":1}}"#
            ),
            format!(r#"{{"version":1,"access_token":"at","{SECRET}":"{SECRET}"}}"#),
            format!(r#"{{"version":1,"access_token":["{SECRET}"]}}"#),
            format!(r#"{{"version":1,"access_token":"at","refresh_token":{{"{SECRET}":1}}}}"#),
            format!(r#"{{"version":"{SECRET}","access_token":"at"}}"#),
            format!(r#"{{"version":1,"access_token":"at","expires_at_unix_ms":"{SECRET}"}}"#),
            format!(r#"{{"version":1,"access_token":"{SECRET}" "#),
            format!(r#"{{"version":1,"access_token":"{SECRET}"}} {SECRET}"#),
            format!(r#"["{SECRET}"]"#),
            SECRET.to_owned(),
        ];
        for document in &documents {
            let error = Snapshot::decode(document.as_bytes()).unwrap_err();
            for shown in [error.to_string(), format!("{error:?}")] {
                assert!(!shown.contains(SECRET), "{document}: {shown}");
            }
        }
        let error = Snapshot::decode(documents[2].as_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the stored session's `access_token` is not a string"
        );
    }
}
