//! [`BodyCode`]: the "status or body code" classifier of backends that answer HTTP 200 with
//! `{"code":401}`.

use std::collections::BTreeSet;
use std::fmt;

use auth_core::Verdict;
use http::header::{HeaderMap, CONTENT_TYPE};
use http::StatusCode;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::classify::{Classifier, Peeked, Rfc6750};

/// Rejects a response whose status RFC 6750 rejects ([`Rfc6750`]) **or** whose JSON body has a
/// top-level code field (`"code"` by default) holding one of the configured codes (`401` by
/// default), whatever the HTTP status.
///
/// This is the check of apps written as `[response.status, response.data.code].includes(401)`:
/// many mini-program backends answer an expired token with HTTP 200 and `{"code":401,...}`, and
/// only the body says the token was refused. The code may be a JSON number (`401`, `401.0`) or
/// a string holding one (`"401"`); when the field appears twice, the last one counts, as in
/// `JSON.parse`. A body that is not JSON, not an object, has no such field, or is longer than
/// [`BodyCode::max_body`] is not a rejection: the response is delivered as is.
///
/// Only bodies that can be JSON are read: no `Content-Type`, a JSON one (`application/json`,
/// `…+json`) or a text one; an image or a download is never touched.
///
/// ```
/// use auth_core::Verdict;
/// use auth_http::{BodyCode, Classifier, Peeked};
/// use http::{HeaderMap, StatusCode};
///
/// // WeChat-style codes: 40001 (invalid credential) and 42001 (expired), in `errcode`.
/// let classifier = BodyCode::with_codes([40001, 42001]).field("errcode");
/// let body = Peeked::Whole(br#"{"errcode":42001,"errmsg":"access_token expired"}"#);
/// assert_eq!(classifier.classify(StatusCode::OK, &HeaderMap::new(), body), Verdict::Rejected);
///
/// let seed = BodyCode::new();
/// let body = Peeked::Whole(br#"{"code":"401"}"#);
/// assert_eq!(seed.classify(StatusCode::OK, &HeaderMap::new(), body), Verdict::Rejected);
/// let body = Peeked::Whole(br#"{"code":0,"data":[]}"#);
/// assert_eq!(seed.classify(StatusCode::OK, &HeaderMap::new(), body), Verdict::Accepted);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyCode {
    codes: BTreeSet<i64>,
    field: String,
    max_body: usize,
}

/// Why a body holds no usable code. Carries no text of the body: a server's body may hold
/// personal data or tokens, and serde's messages quote the values they reject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyCodeError {
    /// The body is not a JSON object (not JSON at all, or another JSON value, or cut short).
    #[error("the body is not a JSON object (line {line}, column {column})")]
    NotAnObject {
        /// Line of the first error (1-based; 0 when unknown).
        line: usize,
        /// Column of the first error (1-based; 0 when unknown).
        column: usize,
    },
    /// The code field holds something other than an integer or a string of one.
    #[error("the code field is not an integer")]
    NotAnInteger,
}

impl BodyCode {
    /// How much of a body [`BodyCode`] reads by default: 64 KiB, far more than an error
    /// envelope, small enough to hold per request.
    pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

    /// The seed's check: code `401` in the field `"code"`, bodies up to
    /// [`BodyCode::DEFAULT_MAX_BODY`].
    pub fn new() -> Self {
        BodyCode::with_codes([401])
    }

    /// Rejects on any of `codes` (e.g. `[401, 40301]` for a backend that also answers 403
    /// with an expiry code) in the field `"code"`.
    pub fn with_codes(codes: impl IntoIterator<Item = i64>) -> Self {
        BodyCode {
            codes: codes.into_iter().collect(),
            field: String::from("code"),
            max_body: BodyCode::DEFAULT_MAX_BODY,
        }
    }

    /// The same classifier reading the code from the top-level field `name` (e.g. `errcode`).
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.field = name.into();
        self
    }

    /// The same classifier reading bodies of at most `bytes` bytes; a longer body is delivered
    /// without being classified by its code.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The code in `body`, if it is a JSON object with the code field (the last one, if
    /// repeated); `Ok(None)` when the field is absent or `null`.
    pub fn code(&self, body: &[u8]) -> Result<Option<i64>, BodyCodeError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let found = FindCode { field: &self.field }
            .deserialize(&mut deserializer)
            .and_then(|code| deserializer.end().map(|()| code));
        match found {
            Ok(Some(Code::Integer(code))) => Ok(Some(code)),
            Ok(Some(Code::Other)) => Err(BodyCodeError::NotAnInteger),
            Ok(None) => Ok(None),
            Err(error) => Err(BodyCodeError::NotAnObject {
                line: error.line(),
                column: error.column(),
            }),
        }
    }

    /// Whether `body` holds one of the configured codes.
    fn rejects(&self, body: &[u8]) -> bool {
        matches!(self.code(body), Ok(Some(code)) if self.codes.contains(&code))
    }
}

impl Default for BodyCode {
    fn default() -> Self {
        BodyCode::new()
    }
}

impl Classifier for BodyCode {
    fn body_limit(&self, status: StatusCode, headers: &HeaderMap) -> Option<usize> {
        if Rfc6750.classify(status, headers, Peeked::NotRead) == Verdict::Rejected {
            return None;
        }
        may_be_json(headers).then_some(self.max_body)
    }

    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: Peeked<'_>) -> Verdict {
        match body {
            Peeked::Whole(bytes) if self.rejects(bytes) => Verdict::Rejected,
            _ => Rfc6750.classify(status, headers, body),
        }
    }
}

/// Whether a body with these headers may be JSON: no `Content-Type` (many backends send
/// none), a JSON type, or a text type (some send JSON as `text/plain` or `text/html`).
fn may_be_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json") || media.starts_with("text/")
}

/// A code field's value, typed.
enum Code {
    Integer(i64),
    /// Present, but no integer (a boolean, an array, a non-numeric string...).
    Other,
}

/// Walks the top-level object once, keeping the last value of `field` and skipping the rest
/// without building it.
struct FindCode<'f> {
    field: &'f str,
}

impl<'de> DeserializeSeed<'de> for FindCode<'_> {
    type Value = Option<Code>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindCode<'_> {
    type Value = Option<Code>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut code = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.field {
                code = map.next_value::<CodeValue>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(code)
    }
}

/// A code field's value; `None` for `null`.
struct CodeValue(Option<Code>);

impl<'de> de::Deserialize<'de> for CodeValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CodeVisitor)
    }
}

struct CodeVisitor;

impl CodeVisitor {
    fn other<E>() -> Result<CodeValue, E> {
        Ok(CodeValue(Some(Code::Other)))
    }
}

impl<'de> Visitor<'de> for CodeVisitor {
    type Value = CodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a code")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<CodeValue, E> {
        Ok(CodeValue(Some(Code::Integer(value))))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<CodeValue, E> {
        match i64::try_from(value) {
            Ok(value) => self.visit_i64(value),
            Err(_) => CodeVisitor::other(),
        }
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<CodeValue, E> {
        // JavaScript compares 401.0 equal to 401; only exact integers in range count.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
        if value.is_finite() && value.fract() == 0.0 && (-LIMIT..LIMIT).contains(&value) {
            #[allow(clippy::cast_possible_truncation)]
            return self.visit_i64(value as i64);
        }
        CodeVisitor::other()
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<CodeValue, E> {
        match value.parse::<i64>() {
            Ok(value) => self.visit_i64(value),
            Err(_) => CodeVisitor::other(),
        }
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<CodeValue, E> {
        CodeVisitor::other()
    }

    fn visit_unit<E: de::Error>(self) -> Result<CodeValue, E> {
        Ok(CodeValue(None))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<CodeValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        CodeVisitor::other()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CodeValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        CodeVisitor::other()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn verdict(classifier: &BodyCode, status: u16, body: &[u8]) -> Verdict {
        let status = StatusCode::from_u16(status).unwrap();
        classifier.classify(status, &HeaderMap::new(), Peeked::Whole(body))
    }

    #[test]
    fn the_seed_rejects_a_200_with_code_401() {
        let seed = BodyCode::new();
        for body in [
            &br#"{"code":401}"#[..],
            br#"{"code":"401","msg":"token expired"}"#,
            br#"{"code":401.0}"#,
            br#" { "data" : {"code":0}, "code" : 401 } "#,
            br#"{"code":0,"code":401}"#,
        ] {
            assert_eq!(verdict(&seed, 200, body), Verdict::Rejected, "{body:?}");
        }
    }

    #[test]
    fn other_bodies_are_delivered() {
        let seed = BodyCode::new();
        for body in [
            &br#"{"code":0,"data":{"code":401}}"#[..],
            br#"{"code":401,"code":0}"#,
            br#"{"code":"401 "}"#,
            br#"{"code":401.5}"#,
            br#"{"code":true}"#,
            br#"{"code":[401]}"#,
            br#"{"code":null}"#,
            br#"{"Code":401}"#,
            br#"[{"code":401}]"#,
            br#"401"#,
            br#"{"code":401"#,
            br#"{"code":401} trailing"#,
            b"",
            b"\xff\xfe",
            br#"{"code":1e400}"#,
            br#"{"code":18446744073709551615}"#,
        ] {
            assert_eq!(verdict(&seed, 200, body), Verdict::Accepted, "{body:?}");
        }
    }

    #[test]
    fn the_status_still_counts_as_in_rfc6750() {
        let seed = BodyCode::new();
        let status = StatusCode::UNAUTHORIZED;
        assert_eq!(seed.body_limit(status, &HeaderMap::new()), None);
        assert_eq!(
            seed.classify(status, &HeaderMap::new(), Peeked::NotRead),
            Verdict::Rejected
        );
        assert_eq!(
            seed.classify(StatusCode::OK, &HeaderMap::new(), Peeked::TooLong),
            Verdict::Accepted
        );
    }

    #[test]
    fn a_configured_code_set_and_field() {
        let classifier = BodyCode::with_codes([401, 40301]).field("errcode");
        assert_eq!(
            verdict(&classifier, 403, br#"{"errcode":40301}"#),
            Verdict::Rejected
        );
        assert_eq!(
            verdict(&classifier, 200, br#"{"errcode":401}"#),
            Verdict::Rejected
        );
        assert_eq!(
            verdict(&classifier, 200, br#"{"code":401}"#),
            Verdict::Accepted
        );
    }

    #[test]
    fn only_bodies_that_may_be_json_are_read() {
        let seed = BodyCode::new().max_body(100);
        let mut headers = HeaderMap::new();
        assert_eq!(seed.body_limit(StatusCode::OK, &headers), Some(100));
        for (content_type, read) in [
            ("application/json; charset=utf-8", true),
            ("application/problem+json", true),
            ("text/plain", true),
            ("TEXT/HTML", true),
            ("image/png", false),
            ("application/octet-stream", false),
        ] {
            headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
            assert_eq!(
                seed.body_limit(StatusCode::OK, &headers).is_some(),
                read,
                "{content_type}"
            );
        }
    }

    #[test]
    fn errors_quote_nothing_of_the_body() {
        let seed = BodyCode::new();
        let error = seed.code(br#"{"code":"secret-token-value"}"#).unwrap_err();
        assert_eq!(error, BodyCodeError::NotAnInteger);
        let error = seed.code(br#"{"secret-token-value"#).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("secret"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let seed = BodyCode::new();
        let mut body = br#"{"data":"#.to_vec();
        body.extend(std::iter::repeat_n(b'[', 100_000));
        assert!(matches!(
            seed.code(&body),
            Err(BodyCodeError::NotAnObject { .. })
        ));
    }
}
