//! Text a server chose: kept as data for the caller, never shown.
//!
//! A hostile or buggy server can put anything in an `error_description`, an unknown error code or
//! a `WWW-Authenticate` parameter, including the refresh token it was just sent. Such text is
//! wrapped in [`ServerText`] where it is parsed, so no `Debug` or `Display` of the types that hold
//! it (and no log line built from them) ever repeats it: they show a fingerprint instead.

use core::fmt;

use crate::token::fingerprint;

/// Text a server chose (an `error_description`, an `error_uri`, an unrecognised code...).
///
/// The caller reads it as data with [`ServerText::as_str`]; `Debug` shows only its
/// [fingerprint](ServerText::fingerprint), so errors and challenges holding it are safe to log.
/// It has no `Display`: to show the text, a caller must ask for it by name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerText(String);

impl ServerText {
    /// Wraps text that came from a server.
    pub(crate) fn new(text: String) -> Self {
        ServerText(text)
    }

    /// The text as the server sent it (after the cleaning its parser documents). Server-chosen:
    /// treat it as data, not as something to log or show to users verbatim.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stable fingerprint (`fp:` and 16 hex digits) shown in place of the text; equal to
    /// [`crate::fingerprint`] of [`ServerText::as_str`], so it can be matched against a known
    /// value without revealing it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

impl fmt::Debug for ServerText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerText({})", self.fingerprint())
    }
}

/// Server text shown the one safe way: by name when it is one of `known` (in any ASCII case,
/// written as in `known`), otherwise as `unrecognised` plus its fingerprint.
pub(crate) struct Named<'a> {
    text: &'a str,
    known: &'static [&'static str],
}

impl<'a> Named<'a> {
    pub(crate) fn new(text: &'a str, known: &'static [&'static str]) -> Self {
        Named { text, known }
    }
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self
            .known
            .iter()
            .find(|name| name.eq_ignore_ascii_case(self.text))
        {
            Some(name) => f.write_str(name),
            None => write!(f, "unrecognised {}", fingerprint(self.text)),
        }
    }
}

impl fmt::Debug for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_data_for_the_caller_and_a_fingerprint_in_debug() {
        let text = ServerText::new("rt-s3cr3t".to_owned());
        assert_eq!(text.as_str(), "rt-s3cr3t");
        assert_eq!(text.fingerprint(), fingerprint("rt-s3cr3t"));
        let shown = format!("{text:?} {:?}", Some(&text));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains(&fingerprint("rt-s3cr3t")), "{shown}");
    }

    #[test]
    fn named_shows_known_names_and_fingerprints_the_rest() {
        const KNOWN: &[&str] = &["Bearer", "DPoP"];
        assert_eq!(Named::new("bearer", KNOWN).to_string(), "Bearer");
        assert_eq!(Named::new("DPOP", KNOWN).to_string(), "DPoP");
        let other = Named::new("rt-s3cr3t", KNOWN).to_string();
        assert_eq!(other, format!("unrecognised {}", fingerprint("rt-s3cr3t")));
        assert_eq!(format!("{:?}", Named::new("rt-s3cr3t", KNOWN)), other);
    }
}
