//! Token types that never reveal their secret.
//!
//! Secrets are shared through an `Arc` so that handing a token to a `Send` command costs a
//! reference count, not an allocation, and are wiped (by `zeroize`) when the last holder drops.
//! `Debug` prints `AccessToken(***)`; `Serialize` writes a stable fingerprint, so traces and
//! snapshots of commands can be compared and committed without leaking anything. `Deserialize`
//! reads a fingerprint back, and fingerprints anything else it is given at once, so no token
//! read through serde ever serializes, fingerprints or exposes the raw text it was read from.

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Prefix of every fingerprint, so a fingerprint is recognisable in a trace.
const FINGERPRINT_PREFIX: &str = "fp:";

#[derive(PartialEq, Eq, Hash, Zeroize, ZeroizeOnDrop)]
struct SecretText {
    text: String,
    /// `true` when this "secret" is a fingerprint read back from a trace: serializing it again
    /// must give the same fingerprint, or a replayed trace would not compare equal.
    placeholder: bool,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Secret(Arc<SecretText>);

impl Secret {
    fn new(text: String) -> Self {
        Secret(Arc::new(SecretText {
            text,
            placeholder: false,
        }))
    }

    fn placeholder(fingerprint: String) -> Self {
        Secret(Arc::new(SecretText {
            text: fingerprint,
            placeholder: true,
        }))
    }

    /// What a trace holds: a fingerprint stays itself; any other text (a raw secret in a
    /// hand-written or hostile trace) is replaced by its fingerprint and wiped.
    fn read_back(text: Zeroizing<String>) -> Self {
        if is_fingerprint(&text) {
            Secret::placeholder(text.to_string())
        } else {
            Secret::placeholder(fingerprint(&text))
        }
    }

    fn fingerprint(&self) -> String {
        if self.0.placeholder {
            return self.0.text.clone();
        }
        fingerprint(&self.0.text)
    }
}

/// A stable, non-reversible short name for a secret: the first 8 bytes of its SHA-256, in hex.
///
/// Two traces of the same run show the same fingerprints, so they diff cleanly.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(FINGERPRINT_PREFIX.len() + 16);
    out.push_str(FINGERPRINT_PREFIX);
    for byte in &digest[..8] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `text` has the shape [`fingerprint`] gives: `fp:` and 16 lowercase hex digits.
fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix(FINGERPRINT_PREFIX)
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|byte| HEX.contains(&byte)))
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(Secret);

        impl $name {
            /// Wraps a secret received from the token endpoint or the store.
            pub fn new(secret: impl Into<String>) -> Self {
                $name(Secret::new(secret.into()))
            }

            /// The secret itself, for the one place that needs it: the HTTP header or request body.
            pub fn expose_secret(&self) -> &str {
                &self.0 .0.text
            }

            /// The stable fingerprint shown in traces and logs instead of the secret.
            pub fn fingerprint(&self) -> String {
                self.0.fingerprint()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(***)"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.fingerprint())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Reads a fingerprint back from a trace. The token holds the fingerprint as its
            /// "secret", which is what a replay needs: equal fingerprints, never real secrets.
            /// Text that is not a fingerprint is fingerprinted as it is read, so the token
            /// never serializes, fingerprints or exposes it.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Zeroizing::new(String::deserialize(deserializer)?);
                Ok($name(Secret::read_back(text)))
            }
        }
    };
}

secret_type!(
    /// The short-lived bearer token sent with API requests.
    AccessToken
);
secret_type!(
    /// The longer-lived token that buys new access tokens (RFC 6749 §1.5).
    RefreshToken
);

/// What a successful login or refresh returns: parsed at the edge (see
/// [`crate::parse_token_response`]) so the core only ever sees well-formed tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenSet {
    /// The new access token.
    pub access_token: AccessToken,
    /// A new refresh token, when the server rotated it. `None` keeps the current one
    /// (RFC 6749 §6: the server MAY issue a new refresh token).
    pub refresh_token: Option<RefreshToken>,
    /// Lifetime of the access token counted from receipt (`expires_in`); `None` when unknown.
    /// Relative on purpose: comparing server timestamps with the local clock breaks under skew.
    pub expires_in: Option<Duration>,
}

impl TokenSet {
    /// A token set with an access token only.
    pub fn new(access_token: AccessToken) -> Self {
        TokenSet {
            access_token,
            refresh_token: None,
            expires_in: None,
        }
    }

    /// Adds a (rotated) refresh token.
    pub fn with_refresh_token(mut self, refresh_token: RefreshToken) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }

    /// Adds the access token's lifetime.
    pub fn with_expires_in(mut self, expires_in: Duration) -> Self {
        self.expires_in = Some(expires_in);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_serialize_never_show_the_secret() {
        let token = AccessToken::new("s3cr3t-value");
        let set = TokenSet::new(token.clone()).with_refresh_token(RefreshToken::new("r3fr3sh"));
        let debug = format!("{set:?}");
        let json = serde_json::to_string(&set).unwrap();
        for shown in [&debug, &json] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(!shown.contains("r3fr3sh"), "{shown}");
        }
        assert!(debug.contains("AccessToken(***)"));
        assert!(json.contains(&fingerprint("s3cr3t-value")));
    }

    #[test]
    fn fingerprint_survives_a_round_trip_through_a_trace() {
        let token = AccessToken::new("abc");
        let json = serde_json::to_string(&token).unwrap();
        let back: AccessToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back.fingerprint(), token.fingerprint());
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn token_set_read_through_serde_never_serializes_or_shows_a_raw_secret() {
        let json = r#"{"access_token":"at-s3cr3t","refresh_token":"rt-s3cr3t","expires_in":null}"#;
        let set: TokenSet = serde_json::from_str(json).unwrap();
        let written = serde_json::to_string(&set).unwrap();
        let refresh = set.refresh_token.as_ref().unwrap();
        for shown in [
            written.clone(),
            format!("{set:?}"),
            set.access_token.fingerprint(),
            refresh.fingerprint(),
            set.access_token.expose_secret().to_owned(),
            refresh.expose_secret().to_owned(),
        ] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        assert_eq!(set.access_token.fingerprint(), fingerprint("at-s3cr3t"));
        assert_eq!(refresh.fingerprint(), fingerprint("rt-s3cr3t"));
        let again: TokenSet = serde_json::from_str(&written).unwrap();
        assert_eq!(again, set, "a fingerprint reads back as itself");
        assert_eq!(serde_json::to_string(&again).unwrap(), written);
    }

    #[test]
    fn only_the_exact_fingerprint_shape_is_read_back_as_is() {
        let real = fingerprint("x");
        assert!(is_fingerprint(&real));
        for text in [
            "fp:0123456789ABCDEF",
            "fp:0123456789abcde",
            "fp:0123456789abcdef0",
            "fp:0123456789abcdeg",
            "0123456789abcdef",
            "",
        ] {
            assert!(!is_fingerprint(text), "{text}");
            let token: AccessToken = serde_json::from_value(text.into()).unwrap();
            assert_eq!(token.fingerprint(), fingerprint(text));
        }
    }

    #[test]
    fn fingerprints_differ_for_different_secrets() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a").len(), 3 + 16);
    }
}
