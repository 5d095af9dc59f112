//! The persisted session: what a token store writes and what a restart restores.
//!
//! The encoding is versioned JSON so a newer release can read an older store, and an unknown
//! version is refused with a typed error instead of being misread. Expiry is wall-clock time,
//! because the driver's monotonic clock starts again at every process start.

use core::fmt;

use serde::{Deserialize, Serialize};
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The store held no bytes.
    #[error("the stored session is empty")]
    Empty,
    /// The bytes end in the middle of the document (an interrupted write).
    #[error("the stored session is truncated")]
    Truncated,
    /// The bytes are not a snapshot (bad JSON, wrong field types, empty token).
    #[error("the stored session is corrupt: {0}")]
    Corrupt(String),
    /// Written by a release that uses another format version.
    #[error(
        "the stored session has version {found}, this release reads version {SNAPSHOT_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found in the store.
        found: u32,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Encoded {
    version: u32,
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_at_unix_ms: Option<u64>,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
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
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(SnapshotError::Empty);
        }
        let version: VersionOnly = serde_json::from_slice(bytes).map_err(classify)?;
        if version.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: version.version,
            });
        }
        let encoded: Zeroizing<Encoded> =
            Zeroizing::new(serde_json::from_slice(bytes).map_err(classify)?);
        if encoded.access_token.is_empty() {
            return Err(SnapshotError::Corrupt("empty access token".into()));
        }
        if encoded.refresh_token.as_deref() == Some("") {
            return Err(SnapshotError::Corrupt("empty refresh token".into()));
        }
        Ok(Snapshot {
            access_token: AccessToken::new(encoded.access_token.clone()),
            refresh_token: encoded.refresh_token.clone().map(RefreshToken::new),
            expires_at: encoded.expires_at_unix_ms.map(UnixTime::from_millis),
        })
    }
}

impl zeroize::Zeroize for Encoded {
    fn zeroize(&mut self) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
    }
}

/// Error text from serde_json names positions and expected types, never the input's content,
/// so it is safe to keep.
fn classify(error: serde_json::Error) -> SnapshotError {
    if error.is_eof() {
        SnapshotError::Truncated
    } else {
        SnapshotError::Corrupt(error.to_string())
    }
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
        type Expectation = fn(&SnapshotError) -> bool;
        let cases: &[(&[u8], Expectation)] = &[
            (b"not json", |e| matches!(e, SnapshotError::Corrupt(_))),
            (b"[1,2]", |e| matches!(e, SnapshotError::Corrupt(_))),
            (br#"{"version":2,"access_token":"x"}"#, |e| {
                matches!(e, SnapshotError::UnsupportedVersion { found: 2 })
            }),
            (br#"{"version":1}"#, |e| {
                matches!(e, SnapshotError::Corrupt(_))
            }),
            (br#"{"version":1,"access_token":""}"#, |e| {
                matches!(e, SnapshotError::Corrupt(_))
            }),
            (br#"{"version":1,"access_token":7}"#, |e| {
                matches!(e, SnapshotError::Corrupt(_))
            }),
            (br#"{"version":"1","access_token":"x"}"#, |e| {
                matches!(e, SnapshotError::Corrupt(_))
            }),
            (
                br#"{"version":1,"access_token":"x","expires_at_unix_ms":-5}"#,
                |e| matches!(e, SnapshotError::Corrupt(_)),
            ),
            (b"   ", |e| matches!(e, SnapshotError::Empty)),
            (&[0xff, 0xfe, 0x00], |e| {
                matches!(e, SnapshotError::Corrupt(_))
            }),
        ];
        for (bytes, expected) in cases {
            let err = Snapshot::decode(bytes).unwrap_err();
            assert!(
                expected(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(bytes)
            );
        }
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
}
