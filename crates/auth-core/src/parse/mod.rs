//! Parsers of untrusted input: token endpoint responses and `WWW-Authenticate` headers.
//!
//! Everything here reads bytes or text that came from the network, so the rules are:
//!
//! - **Parse, don't validate.** A token response becomes a [`TokenSet`](crate::TokenSet) or a
//!   typed [`TokenResponseError`]; a header becomes [`Challenge`]s or a typed [`ChallengeError`],
//!   and [`Verdict::classify`](crate::Verdict::classify) turns a status and header into the
//!   verdict the session needs.
//! - **Never panic.** No input, however broken, truncated or hostile, panics these functions
//!   (a proptest in each module feeds them random input).
//! - **Never leak.** Errors name what was wrong, never the body or a token: their `Display` and
//!   `Debug` are safe to log. Text the server chose (an `error_description`, an unknown code, a
//!   challenge's parameters) is a [`ServerText`] or stays behind an accessor: the caller reads
//!   it as data, `Debug` and `Display` show known names and fingerprints only.

mod server_text;
mod token_response;
mod www_authenticate;

pub use server_text::ServerText;
pub use token_response::{
    parse_token_response, ExpiresInError, FieldError, MalformedReason, OAuthError,
    TokenResponseError, MAX_BODY_LEN, MAX_EXPIRES_IN,
};
pub use www_authenticate::{
    parse_www_authenticate, BearerChallenge, BearerError, Challenge, ChallengeError,
};
