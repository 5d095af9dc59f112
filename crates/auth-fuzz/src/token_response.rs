//! The `token_response` target: token endpoint answers (RFC 6749 §5.1 / §5.2).

use auth_core::{
    parse_token_response, AccessToken, RefreshToken, TokenResponseError, TokenSet, MAX_BODY_LEN,
    MAX_EXPIRES_IN,
};
use serde_json::Value;

/// Statuses the first input byte picks from (modulo 16): every class the parser tells apart.
const STATUSES: [u16; 16] = [
    200, 201, 204, 299, 400, 401, 403, 404, 418, 499, 429, 500, 503, 302, 100, 0,
];

/// The `token_response` target. The first byte picks the HTTP status from a table of every
/// class the parser distinguishes; the rest is the body.
///
/// Panics unless: the parser returns (never panics); 429/5xx and statuses outside 2xx/4xx give
/// their typed errors whatever the body; a parsed token set is well formed (non-empty tokens,
/// `0 < expires_in <= MAX_EXPIRES_IN`), its `Debug` does not depend on the secrets, and written
/// back as an RFC 6749 body it parses to the same set; a JSON body parses the same as its
/// canonical re-serialization; and the result never depends on the tokens' text (replacing
/// `access_token`/`refresh_token` by other non-empty strings changes nothing but the tokens),
/// which is what keeps secrets out of errors.
pub fn token_response(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector % 16)];
    let result = parse_token_response(status, body);
    check_status_class(status, &result);
    if let Ok(tokens) = &result {
        check_token_set(tokens);
    }
    if let Err(error) = &result {
        // Formatting and the failure mapping must not panic either.
        let _ = (
            error.to_string(),
            format!("{error:?}"),
            error.refresh_failure(),
            error.login_failure(),
        );
    }
    if body.len() > MAX_BODY_LEN {
        return;
    }
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    check_canonical_form(status, &json, &result);
    check_secret_independence(status, json, &result);
}

fn check_status_class(status: u16, result: &Result<TokenSet, TokenResponseError>) {
    match status {
        429 | 500..=599 => assert_eq!(
            result,
            &Err(TokenResponseError::Server { status }),
            "status {status}"
        ),
        200..=299 | 400..=499 => {}
        _ => assert_eq!(
            result,
            &Err(TokenResponseError::UnexpectedStatus { status }),
            "status {status}"
        ),
    }
}

fn check_token_set(tokens: &TokenSet) {
    assert!(
        !tokens.access_token.expose_secret().is_empty(),
        "empty access token"
    );
    if let Some(refresh) = &tokens.refresh_token {
        assert!(!refresh.expose_secret().is_empty(), "empty refresh token");
    }
    if let Some(lifetime) = tokens.expires_in {
        assert!(
            !lifetime.is_zero() && lifetime <= MAX_EXPIRES_IN,
            "expires_in {lifetime:?} out of range"
        );
        assert_eq!(
            lifetime.subsec_nanos(),
            0,
            "expires_in is not whole seconds"
        );
    }
    let other = with_tokens(tokens, "other-access", "other-refresh");
    assert_eq!(
        format!("{tokens:?}"),
        format!("{other:?}"),
        "Debug of a token set depends on its secrets"
    );
    let body = write_body(tokens);
    assert_eq!(
        parse_token_response(200, body.as_bytes()).as_ref(),
        Ok(tokens),
        "a parsed token set does not round-trip through {body}"
    );
}

/// The RFC 6749 §5.1 body a server would send for `tokens`.
fn write_body(tokens: &TokenSet) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert(
        "access_token".into(),
        tokens.access_token.expose_secret().into(),
    );
    fields.insert("token_type".into(), "Bearer".into());
    if let Some(refresh) = &tokens.refresh_token {
        fields.insert("refresh_token".into(), refresh.expose_secret().into());
    }
    if let Some(lifetime) = tokens.expires_in {
        fields.insert("expires_in".into(), lifetime.as_secs().into());
    }
    Value::Object(fields).to_string()
}

/// Whitespace, key order of distinct keys and number spelling do not matter: the body parses
/// the same as serde_json's own rendering of it. (Duplicate keys do matter, and both the parser
/// and the `Value` keep the last one, so the rendering keeps what the parser saw.)
fn check_canonical_form(status: u16, json: &Value, result: &Result<TokenSet, TokenResponseError>) {
    let canonical = json.to_string();
    if canonical.len() > MAX_BODY_LEN {
        return;
    }
    assert_eq!(
        &parse_token_response(status, canonical.as_bytes()),
        result,
        "the canonical form {canonical} parses differently"
    );
}

/// Replacing the token strings by others changes nothing but the tokens.
fn check_secret_independence(
    status: u16,
    mut json: Value,
    result: &Result<TokenSet, TokenResponseError>,
) {
    let Value::Object(fields) = &mut json else {
        return;
    };
    let mut replaced = false;
    for (field, other) in [
        ("access_token", "other-access"),
        ("refresh_token", "other-refresh"),
    ] {
        if let Some(Value::String(text)) = fields.get_mut(field) {
            if !text.is_empty() {
                *text = other.to_owned();
                replaced = true;
            }
        }
    }
    if !replaced {
        return;
    }
    let body = json.to_string();
    if body.len() > MAX_BODY_LEN {
        return;
    }
    let expected = result
        .as_ref()
        .map(|tokens| with_tokens(tokens, "other-access", "other-refresh"))
        .map_err(Clone::clone);
    assert_eq!(
        parse_token_response(status, body.as_bytes()),
        expected,
        "the result depends on the tokens' text (body with other tokens: {body})"
    );
}

fn with_tokens(tokens: &TokenSet, access: &str, refresh: &str) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|_| RefreshToken::new(refresh)),
        expires_in: tokens.expires_in,
    }
}
