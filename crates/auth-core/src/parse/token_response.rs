//! Token endpoint responses: RFC 6749 §5.1 (success) and §5.2 (error), parsed into a
//! [`TokenSet`] or a typed [`TokenResponseError`].
//!
//! The body is untrusted: any byte string gives a result, never a panic, and no error shows the
//! body, a token or any other text the server chose, so errors are safe to log. Known error codes
//! are shown by name; anything else the server wrote is a [`ServerText`], which the caller reads as
//! data and `Debug` shows as a fingerprint.

use core::fmt;
use core::time::Duration;

use serde_json::{Map, Number, Value};

use super::server_text::{Named, ServerText};
use crate::input::{LoginFailure, RefreshFailure};
use crate::token::{AccessToken, RefreshToken, TokenSet};

/// Longest access-token lifetime kept: a larger `expires_in` is clamped to it (365 days).
///
/// No real access token lives that long, and a bounded lifetime keeps every deadline computed
/// from it far away from overflow. Clamping (rather than refusing) keeps a server that means
/// "practically forever" usable.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Largest body parsed (1 MiB); a longer one is [`MalformedReason::TooLarge`].
///
/// Token responses are a few kilobytes at most, even with an ID token inside.
pub const MAX_BODY_LEN: usize = 1 << 20;

/// Longest error code kept in [`OAuthError::Unrecognised`], in characters.
const MAX_CODE_CHARS: usize = 64;
/// Longest `error_description` or `error_uri` kept, in characters.
const MAX_TEXT_CHARS: usize = 512;
/// Longest unsupported `token_type` kept, in characters.
const MAX_TOKEN_TYPE_CHARS: usize = 32;

/// Parses the answer of the token endpoint to a login or refresh.
///
/// - 2xx: an RFC 6749 §5.1 success. `access_token` is required and non-empty; `token_type`, when
///   present, must be `Bearer` (any case); `expires_in` may be a positive whole number or a string
///   of one (`"3600"`), and is clamped to [`MAX_EXPIRES_IN`]; `refresh_token` is optional but not
///   empty; `scope` and unknown fields are ignored; a JSON `null` counts as absent. A 2xx body that
///   has no `access_token` but an RFC 6749 §5.2 `error` (some servers answer errors with 200) is
///   an [`TokenResponseError::OAuth`].
/// - 429 and 5xx: [`TokenResponseError::Server`], whatever the body.
/// - Other 4xx: an RFC 6749 §5.2 error body, [`TokenResponseError::OAuth`], or
///   [`TokenResponseError::Malformed`] when the body is not one.
/// - Anything else (1xx, 3xx, nonsense): [`TokenResponseError::UnexpectedStatus`].
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenSet, TokenResponseError> {
    match status {
        200..=299 => parse_success(status, body),
        429 | 500..=599 => Err(TokenResponseError::Server { status }),
        400..=499 => Err(parse_error(status, body)),
        _ => Err(TokenResponseError::UnexpectedStatus { status }),
    }
}

/// Why a token endpoint response is not a token set. `Display` and `Debug` never show the body,
/// a token or text the server chose (see [`ServerText`]): they are safe to log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TokenResponseError {
    /// The server refused with an RFC 6749 §5.2 error (`invalid_grant`, `invalid_client`...).
    #[error("token endpoint refused the request (HTTP {status}): {error}")]
    OAuth {
        /// The HTTP status (usually 400 or 401; 2xx for servers that answer errors with 200).
        status: u16,
        /// The `error` code.
        error: OAuthError,
        /// The server's `error_description`, control characters removed and cut to 512
        /// characters; also [`TokenResponseError::error_description`].
        description: Option<ServerText>,
        /// The server's `error_uri`, control characters removed and cut to 512 characters;
        /// also [`TokenResponseError::error_uri`].
        uri: Option<ServerText>,
    },
    /// The server is overloaded or failing (429 or 5xx): worth retrying later.
    #[error("token endpoint unavailable (HTTP {status})")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// A status the token endpoint should never answer with (1xx, 3xx, out of range).
    #[error("unexpected HTTP status {status} from the token endpoint")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The body is not the JSON object RFC 6749 asks for.
    #[error("malformed token endpoint response (HTTP {status}): {reason}")]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What is wrong with the body.
        reason: MalformedReason,
    },
    /// A field of a success response is missing, empty or not a string.
    #[error("`{field}` in the token response {problem}")]
    InvalidField {
        /// The field's name (`access_token`, `refresh_token`, `token_type`).
        field: &'static str,
        /// What is wrong with it.
        problem: FieldError,
    },
    /// `token_type` is present but not `Bearer`: the core only sends bearer tokens (RFC 6750).
    /// `Display` names a registered type (`DPoP`, `N_A`, `PoP`, `MAC`); any other is shown as
    /// `unrecognised` and a fingerprint.
    #[error("token type {} is not Bearer", Named::new(token_type.as_str(), TOKEN_TYPES))]
    UnsupportedTokenType {
        /// The token type received, control characters removed and cut to 32 characters.
        token_type: ServerText,
    },
    /// `expires_in` is present but not a positive whole number of seconds.
    #[error("invalid `expires_in`: {0}")]
    InvalidExpiresIn(ExpiresInError),
}

/// Token types shown by name in [`TokenResponseError::UnsupportedTokenType`]: the IANA "OAuth
/// Access Token Types" registry, and `MAC` (a draft many servers still send).
const TOKEN_TYPES: &[&str] = &["DPoP", "N_A", "PoP", "MAC"];

impl TokenResponseError {
    /// The `error` code, for an RFC 6749 §5.2 refusal.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            TokenResponseError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The server's `error_description`, for an RFC 6749 §5.2 refusal that has one.
    ///
    /// Server-chosen text (it may even repeat a token the server was sent): data for the app
    /// to inspect, left out of this error's `Display` and `Debug`.
    pub fn error_description(&self) -> Option<&str> {
        match self {
            TokenResponseError::OAuth { description, .. } => {
                description.as_ref().map(ServerText::as_str)
            }
            _ => None,
        }
    }

    /// The server's `error_uri`, for an RFC 6749 §5.2 refusal that has one. Server-chosen text,
    /// like [`TokenResponseError::error_description`].
    pub fn error_uri(&self) -> Option<&str> {
        match self {
            TokenResponseError::OAuth { uri, .. } => uri.as_ref().map(ServerText::as_str),
            _ => None,
        }
    }

    /// What this failure means for a refresh.
    ///
    /// A definitive OAuth error (`invalid_grant`, but also `invalid_client`, `invalid_scope`,
    /// unknown codes...) means this refresh token will never work again, so the session falls back
    /// to silent login ([`RefreshFailure::InvalidGrant`]): a fresh login is the only thing that can
    /// still help, and if the client itself is refused the login fails `Fatal` in turn, so nothing
    /// loops. Everything else (429, 5xx, a code that says "later" such as `server_error` or
    /// `slow_down`, see [`OAuthError::is_transient`], a malformed or unexpected answer, perhaps
    /// from a proxy) says nothing about the refresh token, so it is
    /// [`RefreshFailure::Transient`]: retried with backoff, bounded by the circuit breaker.
    pub fn refresh_failure(&self) -> RefreshFailure {
        if self.is_definitive() {
            RefreshFailure::InvalidGrant
        } else {
            RefreshFailure::Transient
        }
    }

    /// What this failure means for a silent login.
    ///
    /// A definitive OAuth error is the backend refusing this login for good, so retrying is
    /// pointless: [`LoginFailure::Fatal`] (the session then waits for an explicit login).
    /// Everything else (429, 5xx, a code that says "later" such as `temporarily_unavailable` or
    /// `authorization_pending`, a malformed or unexpected answer) may pass:
    /// [`LoginFailure::Transient`], retried with backoff. A 2xx
    /// whose tokens do not parse is transient too: it is a server or proxy fault the user cannot
    /// fix, and `LoginRequired` would ask the user for an action that cannot help.
    pub fn login_failure(&self) -> LoginFailure {
        if self.is_definitive() {
            LoginFailure::Fatal
        } else {
            LoginFailure::Transient
        }
    }

    /// An OAuth error that does not say "try again later".
    fn is_definitive(&self) -> bool {
        matches!(self, TokenResponseError::OAuth { error, .. } if !error.is_transient())
    }
}

/// The `error` code of an RFC 6749 §5.2 error response.
///
/// `Display` shows a known code by name and anything else as `unrecognised` plus the fingerprint
/// of what the server sent: a server cannot put text of its choosing into a log line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthError {
    /// `invalid_request`: a parameter is missing, repeated or malformed.
    InvalidRequest,
    /// `invalid_client`: the client failed to authenticate.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired, revoked or already used.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support this grant type.
    UnsupportedGrantType,
    /// `invalid_scope`: the requested scope is invalid or exceeds the granted one.
    InvalidScope,
    /// `access_denied`: the resource owner or the server denied the request.
    AccessDenied,
    /// `server_error`: the server failed (RFC 6749 §4.1.2.1); transient.
    ServerError,
    /// `temporarily_unavailable`: the server is overloaded or in maintenance; transient.
    TemporarilyUnavailable,
    /// `authorization_pending` (RFC 8628 §3.5): the user has not approved the device yet;
    /// transient, ask again later.
    AuthorizationPending,
    /// `slow_down` (RFC 8628 §3.5): asked too often; transient, ask again later.
    SlowDown,
    /// `expired_token` (RFC 8628 §3.5): the device code expired.
    ExpiredToken,
    /// `invalid_token` (RFC 6750 §3.1): the token presented is expired, revoked or malformed.
    InvalidToken,
    /// `insufficient_scope` (RFC 6750 §3.1): the token lacks a scope.
    InsufficientScope,
    /// `unsupported_token_type` (RFC 7009 §2.2.1): the server cannot revoke this token type.
    UnsupportedTokenType,
    /// Any other code, control characters removed and cut to 64 characters: the server's text,
    /// readable with [`ServerText::as_str`], shown as its fingerprint.
    Unrecognised(ServerText),
}

/// Every known code with its wire name.
const KNOWN_CODES: [(&str, OAuthError); 15] = [
    ("invalid_request", OAuthError::InvalidRequest),
    ("invalid_client", OAuthError::InvalidClient),
    ("invalid_grant", OAuthError::InvalidGrant),
    ("unauthorized_client", OAuthError::UnauthorizedClient),
    ("unsupported_grant_type", OAuthError::UnsupportedGrantType),
    ("invalid_scope", OAuthError::InvalidScope),
    ("access_denied", OAuthError::AccessDenied),
    ("server_error", OAuthError::ServerError),
    (
        "temporarily_unavailable",
        OAuthError::TemporarilyUnavailable,
    ),
    ("authorization_pending", OAuthError::AuthorizationPending),
    ("slow_down", OAuthError::SlowDown),
    ("expired_token", OAuthError::ExpiredToken),
    ("invalid_token", OAuthError::InvalidToken),
    ("insufficient_scope", OAuthError::InsufficientScope),
    ("unsupported_token_type", OAuthError::UnsupportedTokenType),
];

impl OAuthError {
    /// The typed code for `code`; known codes match in any ASCII case.
    pub fn from_code(code: &str) -> Self {
        KNOWN_CODES
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(code))
            .map_or_else(
                || OAuthError::Unrecognised(ServerText::new(sanitize(code, MAX_CODE_CHARS))),
                |(_, error)| error,
            )
    }

    /// The code as sent on the wire. For [`OAuthError::Unrecognised`] that is the server's text:
    /// data to compare, not to log.
    pub fn as_str(&self) -> &str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::AuthorizationPending => "authorization_pending",
            OAuthError::SlowDown => "slow_down",
            OAuthError::ExpiredToken => "expired_token",
            OAuthError::InvalidToken => "invalid_token",
            OAuthError::InsufficientScope => "insufficient_scope",
            OAuthError::UnsupportedTokenType => "unsupported_token_type",
            OAuthError::Unrecognised(code) => code.as_str(),
        }
    }

    /// Whether the code says the failure is temporary: `server_error`,
    /// `temporarily_unavailable`, and the device flow's `authorization_pending` and `slow_down`.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OAuthError::ServerError
                | OAuthError::TemporarilyUnavailable
                | OAuthError::AuthorizationPending
                | OAuthError::SlowDown
        )
    }
}

impl fmt::Display for OAuthError {
    /// A known code by name; an unrecognised one as `unrecognised` and its fingerprint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OAuthError::Unrecognised(code) => write!(f, "unrecognised {}", code.fingerprint()),
            known => f.write_str(known.as_str()),
        }
    }
}

/// What is wrong with a body that is not the JSON object RFC 6749 asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// The body is longer than [`MAX_BODY_LEN`].
    #[error("body too large")]
    TooLarge,
    /// The body ends in the middle of a JSON value (or is empty).
    #[error("body truncated")]
    Truncated,
    /// The body is not JSON (an HTML error page, invalid UTF-8...).
    #[error("body is not JSON")]
    NotJson,
    /// The body is JSON but not an object.
    #[error("body is not a JSON object")]
    NotAnObject,
    /// A 4xx body is a JSON object without a non-empty string `error`.
    #[error("error response without an `error` code")]
    MissingErrorCode,
}

/// What is wrong with a string field of a success response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The field is required but absent (or `null`).
    #[error("is missing")]
    Missing,
    /// The field is the empty string.
    #[error("is empty")]
    Empty,
    /// The field is a number, boolean, array or object.
    #[error("is not a string")]
    NotAString,
}

/// Why `expires_in` is not a usable lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiresInError {
    /// Zero seconds: the token would be expired on arrival.
    #[error("zero")]
    Zero,
    /// A negative number of seconds.
    #[error("negative")]
    Negative,
    /// A number of seconds with a fractional part (`expires_in` is a whole number).
    #[error("fractional")]
    Fractional,
    /// Not a number, nor a string holding one.
    #[error("not a number")]
    NotANumber,
}

/// A 2xx body: RFC 6749 §5.1.
fn parse_success(status: u16, body: &[u8]) -> Result<TokenSet, TokenResponseError> {
    let mut fields = parse_object(status, body)?;
    let access_token = match fields.remove("access_token") {
        None | Some(Value::Null) => {
            return Err(
                oauth_error(status, &fields).unwrap_or(TokenResponseError::InvalidField {
                    field: "access_token",
                    problem: FieldError::Missing,
                }),
            )
        }
        Some(value) => AccessToken::new(required_string("access_token", value)?),
    };
    match fields.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(kind)) if kind.is_empty() => {
            return Err(TokenResponseError::InvalidField {
                field: "token_type",
                problem: FieldError::Empty,
            })
        }
        Some(Value::String(kind)) => {
            return Err(TokenResponseError::UnsupportedTokenType {
                token_type: ServerText::new(sanitize(kind, MAX_TOKEN_TYPE_CHARS)),
            })
        }
        Some(_) => {
            return Err(TokenResponseError::InvalidField {
                field: "token_type",
                problem: FieldError::NotAString,
            })
        }
    }
    let expires_in = match fields.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(value) => Some(expires_in(value).map_err(TokenResponseError::InvalidExpiresIn)?),
    };
    let refresh_token = match fields.remove("refresh_token") {
        None | Some(Value::Null) => None,
        Some(value) => Some(RefreshToken::new(required_string("refresh_token", value)?)),
    };
    Ok(TokenSet {
        access_token,
        refresh_token,
        expires_in,
    })
}

/// A 4xx body: RFC 6749 §5.2.
fn parse_error(status: u16, body: &[u8]) -> TokenResponseError {
    match parse_object(status, body) {
        Ok(fields) => oauth_error(status, &fields).unwrap_or(TokenResponseError::Malformed {
            status,
            reason: MalformedReason::MissingErrorCode,
        }),
        Err(error) => error,
    }
}

/// The body as a JSON object. The parse error itself is dropped: it is not needed, and keeping
/// nothing of the body is the simplest way to never leak it.
fn parse_object(status: u16, body: &[u8]) -> Result<Map<String, Value>, TokenResponseError> {
    let malformed = |reason| TokenResponseError::Malformed { status, reason };
    if body.len() > MAX_BODY_LEN {
        return Err(malformed(MalformedReason::TooLarge));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(malformed(MalformedReason::NotAnObject)),
        Err(error) if error.is_eof() => Err(malformed(MalformedReason::Truncated)),
        Err(_) => Err(malformed(MalformedReason::NotJson)),
    }
}

/// The §5.2 error in `fields`, if it has a non-empty string `error`.
fn oauth_error(status: u16, fields: &Map<String, Value>) -> Option<TokenResponseError> {
    let code = match fields.get("error") {
        Some(Value::String(code)) if !code.trim().is_empty() => code,
        _ => return None,
    };
    let text = |field| match fields.get(field) {
        Some(Value::String(text)) => Some(ServerText::new(sanitize(text, MAX_TEXT_CHARS))),
        _ => None,
    };
    Some(TokenResponseError::OAuth {
        status,
        error: OAuthError::from_code(code),
        description: text("error_description"),
        uri: text("error_uri"),
    })
}

/// A present string field that must not be empty. The string is moved, never copied, so the
/// secret exists once (in the token that wipes it on drop).
fn required_string(field: &'static str, value: Value) -> Result<String, TokenResponseError> {
    match value {
        Value::String(text) if !text.is_empty() => Ok(text),
        Value::String(_) => Err(TokenResponseError::InvalidField {
            field,
            problem: FieldError::Empty,
        }),
        _ => Err(TokenResponseError::InvalidField {
            field,
            problem: FieldError::NotAString,
        }),
    }
}

/// `expires_in` as a lifetime: a positive whole number of seconds, or a string holding one.
fn expires_in(value: &Value) -> Result<Duration, ExpiresInError> {
    match value {
        Value::Number(number) => seconds_of_number(number),
        Value::String(text) => seconds_of_text(text),
        _ => Err(ExpiresInError::NotANumber),
    }
}

fn seconds_of_number(number: &Number) -> Result<Duration, ExpiresInError> {
    if let Some(seconds) = number.as_u64() {
        return whole_seconds(seconds);
    }
    if number.is_i64() {
        // An integer that is not a u64 is negative.
        return Err(ExpiresInError::Negative);
    }
    number
        .as_f64()
        .map_or(Err(ExpiresInError::NotANumber), float_seconds)
}

fn seconds_of_text(text: &str) -> Result<Duration, ExpiresInError> {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        // Only digits: the one way to fail is overflow, which means "very long".
        return text
            .parse::<u64>()
            .map_or(Ok(MAX_EXPIRES_IN), whole_seconds);
    }
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => float_seconds(seconds),
        _ => Err(ExpiresInError::NotANumber),
    }
}

/// `1e3` and `3600.0` are whole numbers written as floats; `3600.5` is not.
fn float_seconds(seconds: f64) -> Result<Duration, ExpiresInError> {
    if !seconds.is_finite() {
        Err(ExpiresInError::NotANumber)
    } else if seconds < 0.0 {
        Err(ExpiresInError::Negative)
    } else if seconds.fract() != 0.0 {
        Err(ExpiresInError::Fractional)
    } else if seconds >= MAX_EXPIRES_IN.as_secs_f64() {
        Ok(MAX_EXPIRES_IN)
    } else {
        // Non-negative, whole and below the maximum: the cast is exact.
        whole_seconds(seconds as u64)
    }
}

fn whole_seconds(seconds: u64) -> Result<Duration, ExpiresInError> {
    if seconds == 0 {
        Err(ExpiresInError::Zero)
    } else {
        Ok(Duration::from_secs(seconds).min(MAX_EXPIRES_IN))
    }
}

/// Server text made safe to keep and log: control characters (newlines, escapes) removed, cut to
/// `max_chars` characters.
fn sanitize(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::fingerprint;
    use proptest::prelude::*;

    const SECRET: &str = "s3cr3t-access";
    const REFRESH: &str = "r3fr3sh-token";

    fn ok(body: &str) -> TokenSet {
        parse_token_response(200, body.as_bytes()).unwrap()
    }

    fn err(status: u16, body: &str) -> TokenResponseError {
        parse_token_response(status, body.as_bytes()).unwrap_err()
    }

    fn expires(value: &str) -> Result<Option<Duration>, TokenResponseError> {
        let body = format!(r#"{{"access_token":"a","expires_in":{value}}}"#);
        parse_token_response(200, body.as_bytes()).map(|set| set.expires_in)
    }

    fn field(field: &'static str, problem: FieldError) -> TokenResponseError {
        TokenResponseError::InvalidField { field, problem }
    }

    fn malformed(status: u16, reason: MalformedReason) -> TokenResponseError {
        TokenResponseError::Malformed { status, reason }
    }

    #[test]
    fn full_success_response_becomes_a_token_set() {
        let set = ok(
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,
            "refresh_token":"rt","scope":"read write","id_token":"x","extra":{"a":[1]}}"#,
        );
        assert_eq!(set.access_token.expose_secret(), "at");
        assert_eq!(
            set.refresh_token.as_ref().map(RefreshToken::expose_secret),
            Some("rt")
        );
        assert_eq!(set.expires_in, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn minimal_success_response_has_no_refresh_token_and_no_expiry() {
        let set = ok(r#"{"access_token":"at"}"#);
        assert_eq!(set, TokenSet::new(AccessToken::new("at")));
        let nulls =
            ok(r#"{"access_token":"at","token_type":null,"expires_in":null,"refresh_token":null}"#);
        assert_eq!(nulls, set);
        assert!(parse_token_response(204, br#"{"access_token":"at"}"#).is_ok());
    }

    #[test]
    fn access_token_must_be_a_non_empty_string() {
        assert_eq!(err(200, "{}"), field("access_token", FieldError::Missing));
        assert_eq!(
            err(200, r#"{"access_token":null}"#),
            field("access_token", FieldError::Missing)
        );
        assert_eq!(
            err(200, r#"{"access_token":""}"#),
            field("access_token", FieldError::Empty)
        );
        assert_eq!(
            err(200, r#"{"access_token":42}"#),
            field("access_token", FieldError::NotAString)
        );
        assert_eq!(
            err(200, r#"{"access_token":["a"]}"#),
            field("access_token", FieldError::NotAString)
        );
    }

    #[test]
    fn token_type_is_bearer_in_any_case_or_a_typed_error() {
        for kind in ["Bearer", "bearer", "BEARER"] {
            ok(&format!(r#"{{"access_token":"a","token_type":"{kind}"}}"#));
        }
        assert_eq!(
            err(200, r#"{"access_token":"a","token_type":"mac"}"#),
            TokenResponseError::UnsupportedTokenType {
                token_type: ServerText::new("mac".into())
            }
        );
        assert_eq!(
            err(200, r#"{"access_token":"a","token_type":""}"#),
            field("token_type", FieldError::Empty)
        );
        assert_eq!(
            err(200, r#"{"access_token":"a","token_type":1}"#),
            field("token_type", FieldError::NotAString)
        );
    }

    #[test]
    fn expires_in_accepts_positive_whole_seconds_and_numeric_strings() {
        let hour = Ok(Some(Duration::from_secs(3600)));
        for value in [
            "3600",
            r#""3600""#,
            "3600.0",
            "3.6e3",
            r#"" 3600 ""#,
            r#""003600""#,
        ] {
            assert_eq!(expires(value), hour, "{value}");
        }
        assert_eq!(expires("1"), Ok(Some(Duration::from_secs(1))));
    }

    #[test]
    fn expires_in_rejects_zero_negative_fractional_and_non_numbers() {
        use ExpiresInError::*;
        let cases = [
            ("0", Zero),
            ("-0", Zero),
            ("0.0", Zero),
            (r#""0""#, Zero),
            (r#""000""#, Zero),
            ("-1", Negative),
            ("-3600.5", Negative),
            (r#""-60""#, Negative),
            ("-1e30", Negative),
            ("1.5", Fractional),
            ("0.001", Fractional),
            (r#""3600.5""#, Fractional),
            (r#""""#, NotANumber),
            (r#""soon""#, NotANumber),
            (r#""NaN""#, NotANumber),
            (r#""inf""#, NotANumber),
            ("true", NotANumber),
            ("[3600]", NotANumber),
            ("{}", NotANumber),
        ];
        for (value, reason) in cases {
            assert_eq!(
                expires(value),
                Err(TokenResponseError::InvalidExpiresIn(reason)),
                "{value}"
            );
        }
    }

    #[test]
    fn huge_expires_in_is_clamped_to_the_maximum_lifetime() {
        let max = Ok(Some(MAX_EXPIRES_IN));
        let just_over = (MAX_EXPIRES_IN.as_secs() + 1).to_string();
        for value in [
            just_over.as_str(),
            "18446744073709551615",
            "1e300",
            r#""99999999999999999999999999""#,
        ] {
            assert_eq!(expires(value), max, "{value}");
        }
        let just_under = MAX_EXPIRES_IN.as_secs() - 1;
        assert_eq!(
            expires(&just_under.to_string()),
            Ok(Some(Duration::from_secs(just_under)))
        );
    }

    #[test]
    fn refresh_token_is_optional_but_never_empty() {
        assert_eq!(
            err(200, r#"{"access_token":"a","refresh_token":""}"#),
            field("refresh_token", FieldError::Empty)
        );
        assert_eq!(
            err(200, r#"{"access_token":"a","refresh_token":7}"#),
            field("refresh_token", FieldError::NotAString)
        );
    }

    #[test]
    fn oauth_error_bodies_become_typed_codes_with_their_description() {
        let cases = [
            ("invalid_grant", OAuthError::InvalidGrant),
            ("invalid_client", OAuthError::InvalidClient),
            ("invalid_request", OAuthError::InvalidRequest),
            ("unauthorized_client", OAuthError::UnauthorizedClient),
            ("unsupported_grant_type", OAuthError::UnsupportedGrantType),
            ("invalid_scope", OAuthError::InvalidScope),
            ("access_denied", OAuthError::AccessDenied),
            ("INVALID_GRANT", OAuthError::InvalidGrant),
            ("slow_down", OAuthError::SlowDown),
            (
                "need_phone_binding",
                OAuthError::Unrecognised(ServerText::new("need_phone_binding".into())),
            ),
        ];
        for (code, error) in cases {
            let body =
                format!(r#"{{"error":"{code}","error_description":"why\nnot","error_uri":"u"}}"#);
            let response = err(400, &body);
            assert_eq!(
                response,
                TokenResponseError::OAuth {
                    status: 400,
                    error: error.clone(),
                    description: Some(ServerText::new("whynot".into())),
                    uri: Some(ServerText::new("u".into())),
                }
            );
            assert_eq!(response.oauth_error(), Some(&error));
            assert_eq!(response.error_description(), Some("whynot"));
            assert_eq!(response.error_uri(), Some("u"));
        }
        let response = err(401, r#"{"error":"invalid_client","error_description":5}"#);
        assert_eq!(
            response,
            TokenResponseError::OAuth {
                status: 401,
                error: OAuthError::InvalidClient,
                description: None,
                uri: None,
            }
        );
        assert_eq!(response.error_description(), None);
        let server = err(503, "");
        assert_eq!(
            (
                server.oauth_error(),
                server.error_description(),
                server.error_uri()
            ),
            (None, None, None)
        );
    }

    #[test]
    fn error_code_in_a_2xx_body_is_an_oauth_error() {
        assert_eq!(
            err(200, r#"{"error":"bad_verification_code"}"#),
            TokenResponseError::OAuth {
                status: 200,
                error: OAuthError::Unrecognised(ServerText::new("bad_verification_code".into())),
                description: None,
                uri: None,
            }
        );
    }

    #[test]
    fn server_statuses_are_server_errors_whatever_the_body() {
        for status in [429, 500, 502, 503, 599] {
            assert_eq!(
                err(status, r#"{"error":"invalid_grant"}"#),
                TokenResponseError::Server { status }
            );
            assert_eq!(err(status, "<html>"), TokenResponseError::Server { status });
        }
        for status in [0, 100, 199, 301, 304, 600, u16::MAX] {
            assert_eq!(
                err(status, "{}"),
                TokenResponseError::UnexpectedStatus { status }
            );
        }
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_malformed() {
        use MalformedReason::*;
        let cases: [(u16, &[u8], MalformedReason); 9] = [
            (200, b"", Truncated),
            (200, br#"{"access_token":"a"#, Truncated),
            (400, br#"{"error":"#, Truncated),
            (200, b"<html>oops</html>", NotJson),
            (200, b"{\"access_token\":\"\xff\"}", NotJson),
            (400, b"Bad Request", NotJson),
            (200, br#"["access_token"]"#, NotAnObject),
            (400, b"null", NotAnObject),
            (400, br#"{"error_description":"no code"}"#, MissingErrorCode),
        ];
        for (status, body, reason) in cases {
            assert_eq!(
                parse_token_response(status, body),
                Err(malformed(status, reason))
            );
        }
        assert_eq!(
            err(400, r#"{"error":""}"#),
            malformed(400, MissingErrorCode)
        );
        assert_eq!(err(400, r#"{"error":3}"#), malformed(400, MissingErrorCode));
        let huge = vec![b' '; MAX_BODY_LEN + 1];
        assert_eq!(
            parse_token_response(200, &huge),
            Err(malformed(200, TooLarge))
        );
        let deep = "[".repeat(100_000);
        assert_eq!(err(200, &deep), malformed(200, NotJson));
    }

    #[test]
    fn errors_never_show_the_body_or_a_token() {
        let bodies = [
            format!(
                r#"{{"access_token":"{SECRET}","token_type":"mac","refresh_token":"{REFRESH}"}}"#
            ),
            format!(r#"{{"access_token":"{SECRET}","expires_in":-1,"refresh_token":"{REFRESH}"}}"#),
            format!(r#"{{"access_token":"{SECRET}","refresh_token":""}}"#),
            format!(r#"{{"access_token":"{SECRET}","refresh_token":"{REFRESH}""#),
            format!(r#"{{"error":"invalid_grant","refresh_token":"{REFRESH}"}}"#),
            format!("<html>{SECRET} {REFRESH}</html>"),
        ];
        for body in &bodies {
            for status in [200, 400] {
                let error = err(status, body);
                for shown in [format!("{error}"), format!("{error:?}")] {
                    assert!(
                        !shown.contains(SECRET) && !shown.contains(REFRESH),
                        "{shown}"
                    );
                }
            }
        }
    }

    #[test]
    fn refresh_failure_falls_back_to_login_only_on_definitive_refusals() {
        let definitive = [
            err(400, r#"{"error":"invalid_grant"}"#),
            err(401, r#"{"error":"invalid_client"}"#),
            err(400, r#"{"error":"something_new"}"#),
        ];
        for error in &definitive {
            assert_eq!(
                error.refresh_failure(),
                RefreshFailure::InvalidGrant,
                "{error}"
            );
            assert_eq!(error.login_failure(), LoginFailure::Fatal, "{error}");
        }
        let transient = [
            err(503, ""),
            err(429, ""),
            err(400, r#"{"error":"temporarily_unavailable"}"#),
            err(400, r#"{"error":"server_error"}"#),
            err(400, r#"{"error":"authorization_pending"}"#),
            err(400, r#"{"error":"slow_down"}"#),
            err(400, "<html>"),
            err(302, ""),
            err(200, r#"{"access_token":"a","expires_in":0}"#),
            err(200, "{"),
        ];
        for error in &transient {
            assert_eq!(
                error.refresh_failure(),
                RefreshFailure::Transient,
                "{error}"
            );
            assert_eq!(error.login_failure(), LoginFailure::Transient, "{error}");
        }
    }

    #[test]
    fn oauth_codes_round_trip_and_other_codes_are_sanitized() {
        for code in [
            "invalid_grant",
            "server_error",
            "temporarily_unavailable",
            "x",
        ] {
            assert_eq!(OAuthError::from_code(code).as_str(), code);
        }
        let long = "a".repeat(1000);
        assert_eq!(OAuthError::from_code(&long).as_str().len(), MAX_CODE_CHARS);
        assert_eq!(OAuthError::from_code("a\r\nb").as_str(), "ab");
    }

    #[test]
    fn known_oauth_codes_are_shown_by_name() {
        for (name, error) in KNOWN_CODES {
            assert_eq!(OAuthError::from_code(name), error);
            assert_eq!(error.to_string(), name);
            assert_eq!(error.as_str(), name);
            let body = format!(r#"{{"error":"{}"}}"#, name.to_ascii_uppercase());
            let shown = err(400, &body).to_string();
            assert_eq!(
                shown,
                format!("token endpoint refused the request (HTTP 400): {name}")
            );
        }
    }

    #[test]
    fn server_echoing_the_refresh_token_in_its_error_never_shows_it() {
        let body = format!(
            r#"{{"error":"{REFRESH}","error_description":"bad token {REFRESH}","error_uri":"https://e.example/why?t={REFRESH}"}}"#
        );
        for status in [200, 400, 401] {
            let error = err(status, &body);
            for shown in [
                error.to_string(),
                format!("{error:?}"),
                format!("{error:#?}"),
            ] {
                assert!(!shown.contains(REFRESH), "{shown}");
            }
            assert_eq!(
                error.to_string(),
                format!(
                    "token endpoint refused the request (HTTP {status}): unrecognised {}",
                    fingerprint(REFRESH)
                )
            );
            let code = error.oauth_error().unwrap();
            assert!(matches!(code, OAuthError::Unrecognised(_)), "{code:?}");
            assert_eq!(code.as_str(), REFRESH);
            assert_eq!(
                error.error_description(),
                Some(format!("bad token {REFRESH}").as_str())
            );
            assert_eq!(
                error.error_uri(),
                Some(format!("https://e.example/why?t={REFRESH}").as_str())
            );
        }
    }

    #[test]
    fn unsupported_token_type_is_named_or_fingerprinted_never_echoed() {
        let named = err(200, r#"{"access_token":"a","token_type":"dpop"}"#);
        assert_eq!(named.to_string(), "token type DPoP is not Bearer");
        let echoed = err(
            200,
            &format!(r#"{{"access_token":"a","token_type":"{REFRESH}"}}"#),
        );
        for shown in [echoed.to_string(), format!("{echoed:?}")] {
            assert!(!shown.contains(REFRESH), "{shown}");
        }
        assert_eq!(
            echoed.to_string(),
            format!(
                "token type unrecognised {} is not Bearer",
                fingerprint(REFRESH)
            )
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(status in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_token_response(status, &body);
        }

        #[test]
        fn json_like_bodies_never_panic(
            status in prop_oneof![Just(200u16), Just(400), any::<u16>()],
            body in r#"\{("(access_token|token_type|expires_in|refresh_token|error|error_description)":(null|true|-?[0-9]{0,25}(\.[0-9]{0,3})?(e-?[0-9]{1,3})?|"[a-zA-Z0-9 .\-]{0,12}"|\[\]|\{\}),?){0,6}\}?"#,
        ) {
            let _ = parse_token_response(status, body.as_bytes());
        }

        #[test]
        fn any_positive_expires_in_parses_within_the_maximum(seconds in 1u64..) {
            let life = expires(&seconds.to_string()).unwrap().unwrap();
            prop_assert!(life <= MAX_EXPIRES_IN && life > Duration::ZERO);
            prop_assert_eq!(expires(&format!("\"{seconds}\"")).unwrap().unwrap(), life);
        }
    }
}
