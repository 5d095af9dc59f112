//! How an API response is classified for the session.

use auth_core::Verdict;
use http::header::{HeaderMap, WWW_AUTHENTICATE};
use http::StatusCode;

/// Classifies an API response with auth-core's RFC 6750 rules: only a 401 that a refresh can fix
/// (`invalid_token`, or no error code) is [`Verdict::Rejected`]. Several `WWW-Authenticate`
/// fields are read as one list (RFC 9110 §5.3).
pub fn verdict(status: StatusCode, headers: &HeaderMap) -> Verdict {
    if status != StatusCode::UNAUTHORIZED {
        return Verdict::Accepted;
    }
    let values: Vec<&str> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    match values.as_slice() {
        [] => Verdict::classify(status.as_u16(), None),
        [one] => Verdict::classify(status.as_u16(), Some(one)),
        many => Verdict::classify(status.as_u16(), Some(&many.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn verdict_reads_www_authenticate() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            verdict(StatusCode::UNAUTHORIZED, &headers),
            Verdict::Rejected
        );
        assert_eq!(verdict(StatusCode::OK, &headers), Verdict::Accepted);
        headers.append(WWW_AUTHENTICATE, "Basic realm=\"x\"".parse().unwrap());
        headers.append(
            WWW_AUTHENTICATE,
            "Bearer error=\"insufficient_scope\"".parse().unwrap(),
        );
        assert_eq!(
            verdict(StatusCode::UNAUTHORIZED, &headers),
            Verdict::Accepted
        );
        assert_eq!(verdict(StatusCode::FORBIDDEN, &headers), Verdict::Accepted);
    }
}
