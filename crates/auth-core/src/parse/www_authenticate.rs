//! `WWW-Authenticate` headers (RFC 7235 §4.1, RFC 6750 §3) and the verdict they give a response.
//!
//! The grammar, from RFC 7235 §2.1 and §4.1 (`#` is a comma list whose empty elements are
//! ignored, `OWS`/`BWS` optional spaces and tabs):
//!
//! ```text
//! WWW-Authenticate = 1#challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! Commas separate both challenges and the parameters of one challenge, so after a comma a
//! `name=` starts another parameter and anything else starts the next challenge.
//!
//! Every string in a challenge is the server's. The accessors hand it to the caller as data;
//! `Debug` and `Display` show registered names (schemes, RFC 6750 parameters and codes) and
//! fingerprint everything else, so a parsed header is safe to log.

use core::fmt;

use super::server_text::{Named, ServerText};
use crate::input::Verdict;
use crate::token::fingerprint;

/// Authentication schemes shown by name in `Debug` (the IANA "HTTP Authentication Scheme"
/// registry).
const SCHEMES: &[&str] = &[
    "Basic",
    "Bearer",
    "Concealed",
    "Digest",
    "DPoP",
    "GNAP",
    "HOBA",
    "Mutual",
    "Negotiate",
    "OAuth",
    "PrivateToken",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "vapid",
];

/// Parameter names shown by name in `Debug` (RFC 7235, RFC 6750 §3, RFC 7617).
const PARAMS: &[&str] = &[
    "realm",
    "scope",
    "error",
    "error_description",
    "error_uri",
    "charset",
];

/// Parses a `WWW-Authenticate` header value into its challenges, in order.
///
/// Scheme names keep their spelling (compare them with [`Challenge::is_scheme`]); parameter names
/// are lowercased; quoted-string values are unescaped. Servers that send several
/// `WWW-Authenticate` headers can be parsed one by one, or joined with `", "` first.
pub fn parse_www_authenticate(value: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut cursor = Cursor {
        text: value,
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_separators();
        if cursor.peek().is_none() {
            break;
        }
        challenges.push(cursor.challenge()?);
    }
    if challenges.is_empty() {
        return Err(ChallengeError::Empty);
    }
    Ok(challenges)
}

impl Verdict {
    /// Classifies an API response from its status and `WWW-Authenticate` header.
    ///
    /// Only a 401 can be [`Verdict::Rejected`], and only when refreshing the token can help
    /// (RFC 6750 §3.1):
    ///
    /// - 401 with a Bearer challenge whose `error` is `invalid_token`, absent, or a code we do not
    ///   know: rejected. The server said "your token is not good"; one refresh is the cure, and the
    ///   retry budget stops it from looping.
    /// - 401 with no header, an unparsable one, or no Bearer challenge at all: rejected. Lenient on
    ///   purpose: most APIs send bare 401s, and the worst case is one refresh before the 401 is
    ///   delivered.
    /// - 401 whose Bearer `error` is `invalid_request` or `insufficient_scope`: accepted. The
    ///   request or the grant is wrong, not the token; a new token would be refused the same way.
    /// - 403 (including `insufficient_scope`) and every other status: accepted.
    ///
    /// With several challenges in the header, the first Bearer one decides.
    pub fn classify(status: u16, www_authenticate: Option<&str>) -> Verdict {
        if status != 401 {
            return Verdict::Accepted;
        }
        let bearer = www_authenticate
            .and_then(|value| parse_www_authenticate(value).ok())
            .and_then(|challenges| challenges.iter().find_map(Challenge::bearer));
        match bearer.and_then(|challenge| challenge.error) {
            Some(BearerError::InvalidRequest | BearerError::InsufficientScope) => Verdict::Accepted,
            _ => Verdict::Rejected,
        }
    }
}

/// One challenge of a `WWW-Authenticate` header: a scheme and either auth-params or a token68.
///
/// `Debug` names a registered scheme and parameter and fingerprints every other string (see the
/// module doc); the accessors return the server's text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The auth-scheme as received (`Bearer`, `basic`...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether this challenge's scheme is `scheme`, ignoring ASCII case (RFC 7235 §2.1).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token68 form (`Negotiate abc==`), when the challenge has one instead of parameters.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The auth-params in order, names lowercased, values unescaped.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of the first parameter called `name` (any ASCII case). RFC 7235 forbids
    /// repeating a name; when a server does, the first one counts.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The RFC 6750 view of this challenge, if its scheme is `Bearer`.
    pub fn bearer(&self) -> Option<BearerChallenge> {
        if !self.is_scheme("Bearer") {
            return None;
        }
        let text = |name| {
            self.param(name)
                .map(|value| ServerText::new(value.to_owned()))
        };
        Some(BearerChallenge {
            realm: text("realm"),
            scope: text("scope"),
            error: self
                .param("error")
                .filter(|code| !code.is_empty())
                .map(BearerError::from_code),
            error_description: text("error_description"),
            error_uri: text("error_uri"),
        })
    }
}

/// The parameters RFC 6750 §3 defines for a `Bearer` challenge (see [`Challenge::bearer`]).
///
/// The texts are the server's: read them with [`ServerText::as_str`]; `Debug` shows only their
/// fingerprints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BearerChallenge {
    /// `realm`: the protection space.
    pub realm: Option<ServerText>,
    /// `scope`: the space-separated scopes the resource needs.
    pub scope: Option<ServerText>,
    /// `error`: why the request was refused; `None` when absent or empty.
    pub error: Option<BearerError>,
    /// `error_description`: human-readable text for developers.
    pub error_description: Option<ServerText>,
    /// `error_uri`: a page explaining the error.
    pub error_uri: Option<ServerText>,
}

/// The `error` code of a Bearer challenge (RFC 6750 §3.1).
///
/// `Display` shows a known code by name and any other as `unrecognised` plus its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BearerError {
    /// `invalid_request`: the request is malformed; a new token will not fix it.
    InvalidRequest,
    /// `invalid_token`: the token is expired, revoked or malformed; a refresh may fix it.
    InvalidToken,
    /// `insufficient_scope`: the token lacks a scope; a refresh gives the same scopes.
    InsufficientScope,
    /// Any other code: the server's text, readable with [`ServerText::as_str`], shown as its
    /// fingerprint.
    Unrecognised(ServerText),
}

impl BearerError {
    /// The typed code for `code`; known codes match in any ASCII case.
    pub fn from_code(code: &str) -> Self {
        if code.eq_ignore_ascii_case("invalid_request") {
            BearerError::InvalidRequest
        } else if code.eq_ignore_ascii_case("invalid_token") {
            BearerError::InvalidToken
        } else if code.eq_ignore_ascii_case("insufficient_scope") {
            BearerError::InsufficientScope
        } else {
            BearerError::Unrecognised(ServerText::new(code.to_owned()))
        }
    }

    /// The code as sent on the wire. For [`BearerError::Unrecognised`] that is the server's
    /// text: data to compare, not to log.
    pub fn as_str(&self) -> &str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
            BearerError::Unrecognised(code) => code.as_str(),
        }
    }
}

impl fmt::Display for BearerError {
    /// A known code by name; an unrecognised one as `unrecognised` and its fingerprint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BearerError::Unrecognised(code) => write!(f, "unrecognised {}", code.fingerprint()),
            known => f.write_str(known.as_str()),
        }
    }
}

impl fmt::Debug for Challenge {
    /// Registered schemes and parameter names by name, every value and anything else as a
    /// fingerprint: `Challenge { scheme: Bearer, token68: None, params: {realm: fp:…} }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("scheme", &Named::new(&self.scheme, SCHEMES))
            .field("token68", &self.token68.as_deref().map(Fingerprinted))
            .field("params", &Params(&self.params))
            .finish()
    }
}

/// A server's value in `Debug`: only its fingerprint.
struct Fingerprinted<'a>(&'a str);

impl fmt::Debug for Fingerprinted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fingerprint(self.0))
    }
}

/// A challenge's parameters in `Debug`: registered names by name, values fingerprinted.
struct Params<'a>(&'a [(String, String)]);

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, value)| (Named::new(name, PARAMS), Fingerprinted(value))),
            )
            .finish()
    }
}

/// Why a `WWW-Authenticate` value does not parse. Positions are byte offsets into the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The value holds no challenge (empty, or only spaces and commas).
    #[error("no challenge in the WWW-Authenticate value")]
    Empty,
    /// A challenge does not start with an auth-scheme (e.g. a bare `realm="x"`).
    #[error("challenge without an auth-scheme at byte {at}")]
    MissingScheme {
        /// Where the scheme was expected.
        at: usize,
    },
    /// A quoted-string is not closed before the end of the value.
    #[error("quoted string opened at byte {at} is not closed")]
    UnterminatedQuotedString {
        /// The opening quote.
        at: usize,
    },
    /// Anything else that breaks the grammar (a stray character, a control character...).
    #[error("invalid WWW-Authenticate syntax at byte {at}")]
    BadSyntax {
        /// The offending byte.
        at: usize,
    },
}

/// `tchar` (RFC 7230 §3.2.6).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A `token68` character, without the trailing `=` padding.
fn is_token68_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// A byte position in the value. Slices are only taken between positions that sit at ASCII bytes
/// (or the ends), so they never split a UTF-8 character; `get` makes sure of it without panicking.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte_at(&self, pos: usize) -> Option<u8> {
        self.text.as_bytes().get(pos).copied()
    }

    fn peek(&self) -> Option<u8> {
        self.byte_at(self.pos)
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn skip_ows(&mut self) {
        self.skip_while(is_ows);
    }

    /// Skips the spaces and commas between list elements (empty elements are allowed).
    fn skip_separators(&mut self) {
        self.skip_while(|byte| is_ows(byte) || byte == b',');
    }

    fn token(&mut self) -> &'a str {
        self.skip_while(is_tchar)
    }

    /// Whether `BWS "=" BWS ( token / quoted-string )` follows, i.e. the token just read is the
    /// name of an auth-param. Moves nothing.
    fn param_value_ahead(&self) -> bool {
        let mut pos = self.pos;
        while self.byte_at(pos).is_some_and(is_ows) {
            pos += 1;
        }
        if self.byte_at(pos) != Some(b'=') {
            return false;
        }
        pos += 1;
        while self.byte_at(pos).is_some_and(is_ows) {
            pos += 1;
        }
        self.byte_at(pos)
            .is_some_and(|byte| byte == b'"' || is_tchar(byte))
    }

    /// Whether an auth-param starts here. Moves nothing.
    fn param_ahead(&mut self) -> bool {
        let start = self.pos;
        let is_param = !self.token().is_empty() && self.param_value_ahead();
        self.pos = start;
        is_param
    }

    /// One challenge, starting at its scheme; stops before the comma that ends it, if any.
    fn challenge(&mut self) -> Result<Challenge, ChallengeError> {
        let start = self.pos;
        let scheme = self.token();
        if scheme.is_empty() || self.param_value_ahead() {
            return Err(ChallengeError::MissingScheme { at: start });
        }
        let mut challenge = Challenge {
            scheme: scheme.to_owned(),
            token68: None,
            params: Vec::new(),
        };
        match self.peek() {
            None | Some(b',') => return Ok(challenge),
            Some(byte) if is_ows(byte) => self.skip_ows(),
            Some(_) => return Err(ChallengeError::BadSyntax { at: self.pos }),
        }
        if matches!(self.peek(), None | Some(b',')) {
            return Ok(challenge);
        }
        if self.param_ahead() {
            self.params(&mut challenge.params)?;
        } else {
            challenge.token68 = Some(self.token68()?.to_owned());
        }
        Ok(challenge)
    }

    /// `token68`, then the end of the challenge.
    fn token68(&mut self) -> Result<&'a str, ChallengeError> {
        let start = self.pos;
        if self.skip_while(is_token68_char).is_empty() {
            return Err(ChallengeError::BadSyntax { at: self.pos });
        }
        self.skip_while(|byte| byte == b'=');
        let token = self.text.get(start..self.pos).unwrap_or_default();
        self.skip_ows();
        match self.peek() {
            None | Some(b',') => Ok(token),
            Some(_) => Err(ChallengeError::BadSyntax { at: self.pos }),
        }
    }

    /// `#auth-param`, starting at a parameter name; stops before the comma that ends the
    /// challenge, if any.
    fn params(&mut self, params: &mut Vec<(String, String)>) -> Result<(), ChallengeError> {
        loop {
            let name = self.token().to_ascii_lowercase();
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return Err(ChallengeError::BadSyntax { at: self.pos });
            }
            self.pos += 1;
            self.skip_ows();
            let value = match self.peek() {
                Some(b'"') => self.quoted_string()?,
                _ => self.token().to_owned(),
            };
            params.push((name, value));
            self.skip_ows();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => {}
                Some(_) => return Err(ChallengeError::BadSyntax { at: self.pos }),
            }
            // After a comma: another parameter of this challenge, or the next challenge.
            let comma = self.pos;
            self.skip_separators();
            if !self.param_ahead() {
                self.pos = comma;
                return Ok(());
            }
        }
    }

    /// A quoted-string starting at its opening quote, unescaped (RFC 7230 §3.2.6).
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.pos;
        let unterminated = ChallengeError::UnterminatedQuotedString { at: open };
        let mut value = String::new();
        self.pos += 1;
        let mut segment = self.pos;
        loop {
            match self.peek() {
                None => return Err(unterminated),
                Some(b'"') => {
                    value.push_str(self.text.get(segment..self.pos).unwrap_or_default());
                    self.pos += 1;
                    return Ok(value);
                }
                Some(b'\\') => {
                    value.push_str(self.text.get(segment..self.pos).unwrap_or_default());
                    self.pos += 1;
                    segment = self.pos;
                    match self.peek() {
                        None => return Err(unterminated),
                        // quoted-pair: HTAB / SP / VCHAR / obs-text. An escaped non-ASCII
                        // character is copied with the next segment, as a whole.
                        Some(byte) if byte == b'\t' || (b' '..=b'~').contains(&byte) => {
                            self.pos += 1;
                        }
                        Some(byte) if !byte.is_ascii() => {}
                        Some(_) => return Err(ChallengeError::BadSyntax { at: self.pos }),
                    }
                }
                // qdtext: HTAB / SP / VCHAR except `"` and `\` / obs-text.
                Some(byte)
                    if byte == b'\t' || (b' '..=b'~').contains(&byte) || !byte.is_ascii() =>
                {
                    self.pos += 1;
                }
                Some(_) => return Err(ChallengeError::BadSyntax { at: self.pos }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(value: &str) -> Vec<Challenge> {
        parse_www_authenticate(value).unwrap()
    }

    fn text(value: &Option<ServerText>) -> Option<&str> {
        value.as_ref().map(ServerText::as_str)
    }

    fn challenge(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_owned(),
            token68: None,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn token68(scheme: &str, token: &str) -> Challenge {
        Challenge {
            token68: Some(token.to_owned()),
            ..challenge(scheme, &[])
        }
    }

    #[test]
    fn bearer_challenge_with_rfc6750_params() {
        let value = r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#;
        let challenges = parse(value);
        assert_eq!(
            challenges,
            [challenge(
                "Bearer",
                &[
                    ("realm", "example"),
                    ("error", "invalid_token"),
                    ("error_description", "The access token expired")
                ]
            )]
        );
        let bearer = challenges[0].bearer().unwrap();
        assert_eq!(bearer.error, Some(BearerError::InvalidToken));
        assert_eq!(text(&bearer.realm), Some("example"));
        assert_eq!(
            text(&bearer.error_description),
            Some("The access token expired")
        );
        assert_eq!(bearer.scope, None);
    }

    #[test]
    fn several_challenges_in_one_header() {
        let value =
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#;
        assert_eq!(
            parse(value),
            [
                challenge(
                    "Newauth",
                    &[
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", r#"Login to "apps""#)
                    ]
                ),
                challenge("Basic", &[("realm", "simple")]),
            ]
        );
        let value = r#"Basic realm="x", Bearer error="insufficient_scope", scope="a b", DPoP"#;
        let challenges = parse(value);
        assert_eq!(challenges.len(), 3);
        assert_eq!(challenges[1].param("scope"), Some("a b"));
        assert_eq!(challenges[2], challenge("DPoP", &[]));
        assert_eq!(
            parse("Bearer, Basic"),
            [challenge("Bearer", &[]), challenge("Basic", &[])]
        );
    }

    #[test]
    fn quoted_strings_keep_commas_and_unescape_quotes_and_backslashes() {
        let value = r#"Bearer error_description="a, b=\"c\", \\d\e", realm=x"#;
        assert_eq!(
            parse(value),
            [challenge(
                "Bearer",
                &[("error_description", r#"a, b="c", \de"#), ("realm", "x")]
            )]
        );
        assert_eq!(
            parse(r#"Bearer realm="""#),
            [challenge("Bearer", &[("realm", "")])]
        );
        let unicode = parse("Bearer error_description=\"café \\☕\tok\"");
        assert_eq!(unicode[0].param("error_description"), Some("café ☕\tok"));
    }

    #[test]
    fn scheme_and_param_names_are_case_insensitive() {
        let challenges = parse(r#"BEARER Error="invalid_token", SCOPE=read"#);
        assert!(challenges[0].is_scheme("bearer"));
        assert_eq!(challenges[0].scheme(), "BEARER");
        assert_eq!(
            challenges[0].params()[0],
            ("error".to_owned(), "invalid_token".to_owned())
        );
        assert_eq!(challenges[0].param("Scope"), Some("read"));
        let bearer = challenges[0].bearer().unwrap();
        assert_eq!(bearer.error, Some(BearerError::InvalidToken));
        assert_eq!(text(&bearer.scope), Some("read"));
    }

    #[test]
    fn optional_whitespace_and_empty_list_elements_are_skipped() {
        let value = " ,\t Bearer \t realm = \"x\" ,, \t error\t=invalid_token , ,Basic ,";
        assert_eq!(
            parse(value),
            [
                challenge("Bearer", &[("realm", "x"), ("error", "invalid_token")]),
                challenge("Basic", &[])
            ]
        );
    }

    #[test]
    fn token68_challenges() {
        assert_eq!(
            parse("Basic dXNlcjpwYXNz=="),
            [token68("Basic", "dXNlcjpwYXNz==")]
        );
        assert_eq!(
            parse("Negotiate a/b+c.d~e_f-= , Bearer realm=x"),
            [
                token68("Negotiate", "a/b+c.d~e_f-="),
                challenge("Bearer", &[("realm", "x")])
            ]
        );
        assert_eq!(parse("Scheme abc="), [token68("Scheme", "abc=")]);
        assert_eq!(
            parse("Bearer abc")[0].bearer(),
            Some(BearerChallenge::default())
        );
    }

    #[test]
    fn bad_values_give_typed_errors() {
        use ChallengeError::*;
        let cases = [
            ("", Empty),
            (" , ,\t", Empty),
            (r#"realm="x""#, MissingScheme { at: 0 }),
            (r#"Basic realm="x", "y""#, MissingScheme { at: 17 }),
            ("=abc", MissingScheme { at: 0 }),
            ("Basic abc==, x=y", MissingScheme { at: 13 }),
            (r#"Bearer realm="x"#, UnterminatedQuotedString { at: 13 }),
            (r#"Bearer realm="x\"#, UnterminatedQuotedString { at: 13 }),
            (
                r#"Bearer realm="x\", error=y"#,
                UnterminatedQuotedString { at: 13 },
            ),
            (r#"Bearer realm="x" y"#, BadSyntax { at: 17 }),
            ("Bearer realm=x error=y", BadSyntax { at: 15 }),
            (r#"Bearer"x""#, BadSyntax { at: 6 }),
            ("Bearer a b", BadSyntax { at: 9 }),
            ("Bearer \"x\"", BadSyntax { at: 7 }),
            ("Bearer abc= =x", BadSyntax { at: 12 }),
            ("Bearer realm=\"a\u{1}b\"", BadSyntax { at: 15 }),
            ("Bearer realm=\"a\\\u{7f}\"", BadSyntax { at: 16 }),
            ("Bearer é", BadSyntax { at: 7 }),
            ("Bé", BadSyntax { at: 1 }),
        ];
        for (value, error) in cases {
            assert_eq!(parse_www_authenticate(value), Err(error), "{value:?}");
        }
    }

    #[test]
    fn bearer_view_only_for_bearer_and_first_param_wins() {
        assert_eq!(parse(r#"Basic realm="x""#)[0].bearer(), None);
        let bearer =
            parse(r#"Bearer error=invalid_request, error=invalid_token, error_uri="https://e/x""#)
                [0]
            .bearer()
            .unwrap();
        assert_eq!(bearer.error, Some(BearerError::InvalidRequest));
        assert_eq!(text(&bearer.error_uri), Some("https://e/x"));
        assert_eq!(parse(r#"Bearer error="""#)[0].bearer().unwrap().error, None);
        assert_eq!(
            parse("Bearer error=Something_Else")[0]
                .bearer()
                .unwrap()
                .error,
            Some(BearerError::Unrecognised(ServerText::new(
                "Something_Else".into()
            )))
        );
        assert_eq!(
            BearerError::from_code("INSUFFICIENT_SCOPE"),
            BearerError::InsufficientScope
        );
        assert_eq!(
            BearerError::InsufficientScope.to_string(),
            "insufficient_scope"
        );
    }

    #[test]
    fn challenges_echoing_a_token_never_show_it() {
        const TOKEN: &str = "rt-s3cr3t";
        let value = format!(
            r#"Bearer realm="{TOKEN}", error="{TOKEN}", error_description="{TOKEN}", error_uri="https://e/?t={TOKEN}", scope="{TOKEN}", {TOKEN}="{TOKEN}", {TOKEN} {TOKEN}"#
        );
        let challenges = parse(&value);
        let bearer = challenges[0].bearer().unwrap();
        let error = bearer.error.clone().unwrap();
        for shown in [
            format!("{challenges:?}"),
            format!("{challenges:#?}"),
            format!("{bearer:?}"),
            format!("{error:?}"),
            error.to_string(),
        ] {
            assert!(!shown.contains(TOKEN), "{shown}");
        }
        assert_eq!(
            error.to_string(),
            format!("unrecognised {}", fingerprint(TOKEN))
        );
        assert_eq!(error.as_str(), TOKEN);
        assert_eq!(text(&bearer.error_description), Some(TOKEN));
        assert_eq!(challenges[1].token68(), Some(TOKEN));
        assert_eq!(
            format!(
                "{:?}",
                parse(r#"bearer realm="api", error=invalid_token"#)[0]
            ),
            format!(
                "Challenge {{ scheme: Bearer, token68: None, params: {{realm: {}, error: {}}} }}",
                fingerprint("api"),
                fingerprint("invalid_token")
            )
        );
        assert_eq!(
            BearerError::InvalidToken.to_string(),
            "invalid_token",
            "known codes by name"
        );
    }

    #[test]
    fn verdict_rejects_only_401s_that_a_refresh_can_fix() {
        use Verdict::*;
        let cases: [(u16, Option<&str>, Verdict); 17] = [
            (401, Some(r#"Bearer error="invalid_token""#), Rejected),
            (401, Some(r#"Bearer realm="api""#), Rejected),
            (401, Some("Bearer"), Rejected),
            (401, None, Rejected),
            (401, Some(""), Rejected),
            (401, Some(r#"Bearer error="unterminated"#), Rejected),
            (401, Some(r#"Basic realm="x""#), Rejected),
            (401, Some("Bearer error=something_new"), Rejected),
            (401, Some(r#"Bearer error="invalid_request""#), Accepted),
            (
                401,
                Some(r#"Bearer error="insufficient_scope", scope="admin""#),
                Accepted,
            ),
            (
                401,
                Some(r#"Basic realm="x", Bearer error="insufficient_scope""#),
                Accepted,
            ),
            (
                401,
                Some(r#"Basic realm="x", Bearer error="invalid_token""#),
                Rejected,
            ),
            (403, Some(r#"Bearer error="insufficient_scope""#), Accepted),
            (403, Some(r#"Bearer error="invalid_token""#), Accepted),
            (403, None, Accepted),
            (200, None, Accepted),
            (500, Some(r#"Bearer error="invalid_token""#), Accepted),
        ];
        for (status, header, verdict) in cases {
            assert_eq!(
                Verdict::classify(status, header),
                verdict,
                "{status} {header:?}"
            );
        }
    }

    /// Writes challenges back as a header, quoting every value.
    fn render(challenges: &[(String, Vec<(String, String)>)]) -> String {
        let quote = |value: &str| value.replace('\\', "\\\\").replace('"', "\\\"");
        let rendered: Vec<String> = challenges
            .iter()
            .map(|(scheme, params)| {
                let params: Vec<String> = params
                    .iter()
                    .map(|(name, value)| format!("{name}=\"{}\"", quote(value)))
                    .collect();
                format!("{scheme} {}", params.join(", "))
            })
            .collect();
        rendered.join(", ")
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(value in any::<String>()) {
            let _ = parse_www_authenticate(&value);
            let _ = Verdict::classify(401, Some(&value));
        }

        #[test]
        fn header_like_strings_never_panic(value in r#"[A-Za-z=", \\\t\x01é/+~_-]{0,40}"#) {
            if let Ok(challenges) = parse_www_authenticate(&value) {
                prop_assert!(!challenges.is_empty());
                prop_assert!(challenges.iter().all(|c| !c.scheme().is_empty()));
            }
            let _ = Verdict::classify(401, Some(&value));
        }

        #[test]
        fn rendered_challenges_parse_back(
            challenges in proptest::collection::vec(
                ("[A-Za-z][A-Za-z0-9-]{0,8}",
                 proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", r#"[ -~é☕\t]{0,12}"#), 0..4)),
                1..4,
            )
        ) {
            let parsed = parse_www_authenticate(&render(&challenges)).unwrap();
            let expected: Vec<Challenge> = challenges
                .iter()
                .map(|(scheme, params)| Challenge {
                    scheme: scheme.clone(),
                    token68: None,
                    params: params.clone(),
                })
                .collect();
            prop_assert_eq!(parsed, expected);
        }
    }
}
