//! Rejection classifiers: which API responses mean "the access token was refused".
//!
//! The session refreshes on a [`Verdict::Rejected`] and delivers everything else as is. RFC 6750
//! says a refused token is a 401 with `invalid_token` (or no error code): that is [`Rfc6750`],
//! the default of every integration. Many backends (mini-programs' among them) answer HTTP 200
//! with a body like `{"code":401}` instead: [`BodyCode`](crate::BodyCode) reads that. An app
//! with its own convention implements [`Classifier`].
//!
//! A classifier that needs the body says how much of it ([`Classifier::body_limit`]); the
//! integration reads at most that many bytes once, classifies, and hands the response to the
//! caller with those bytes put back in front of the rest ([`crate::PeekedBody`],
//! [`crate::PeekedReader`]), so the caller reads the body it would have read without a
//! classifier.

use std::fmt;
use std::sync::Arc;

use auth_core::Verdict;
use http::header::{HeaderMap, CONTENT_LENGTH};
use http::StatusCode;

use crate::verdict::verdict;

/// Decides whether an API response means the access token was refused.
///
/// [`Verdict::Rejected`] makes the session refresh (or log in again) and send the request once
/// more, exactly as for a 401; [`Verdict::Accepted`] delivers the response to the caller.
/// Both drivers' integrations take one (`with_classifier`); the default is [`Rfc6750`].
///
/// Implementations see untrusted server input: they must not panic on any status, header or
/// body, and must not log the body (it may hold personal data or tokens).
///
/// ```
/// use auth_core::Verdict;
/// use auth_http::{Classifier, Peeked, Rfc6750};
/// use http::{HeaderMap, StatusCode};
///
/// /// A backend that says "expired" with a 419 status.
/// #[derive(Debug)]
/// struct Status419;
///
/// impl Classifier for Status419 {
///     fn classify(&self, status: StatusCode, headers: &HeaderMap, body: Peeked<'_>) -> Verdict {
///         if status.as_u16() == 419 {
///             return Verdict::Rejected;
///         }
///         Rfc6750.classify(status, headers, body)
///     }
/// }
///
/// let status = StatusCode::from_u16(419).unwrap();
/// assert_eq!(Status419.classify(status, &HeaderMap::new(), Peeked::NotRead), Verdict::Rejected);
/// ```
pub trait Classifier: fmt::Debug + Send + Sync + 'static {
    /// How many bytes of this response's body [`Classifier::classify`] needs, or `None` (the
    /// default) to classify on the status and headers alone.
    ///
    /// The integration reads at most this many bytes, plus one to know whether the body is
    /// longer; a body longer than that, or declared longer by `Content-Length`, is classified
    /// as [`Peeked::TooLong`] without reading it. Keep it small: the bytes are held in memory
    /// until the caller reads them.
    fn body_limit(&self, status: StatusCode, headers: &HeaderMap) -> Option<usize> {
        let _ = (status, headers);
        None
    }

    /// The verdict on a response: its status, headers, and as much of its body as
    /// [`Classifier::body_limit`] asked for.
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: Peeked<'_>) -> Verdict;
}

/// What a [`Classifier`] got to see of a response's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peeked<'a> {
    /// The body was not read: the classifier asked for none.
    NotRead,
    /// The whole body, no longer than the classifier's limit.
    Whole(&'a [u8]),
    /// The body is longer than the classifier's limit; it was left for the caller.
    TooLong,
    /// Reading the body failed; the caller gets the same error when it reads it.
    Unreadable,
}

/// The classifier of RFC 6750 §3: only a 401 that a refresh can fix (`invalid_token`, or no
/// error code) is [`Verdict::Rejected`]; a 403 `insufficient_scope` is accepted, as refreshing
/// cannot fix it. The default of every integration. Never reads the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rfc6750;

impl Classifier for Rfc6750 {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, _body: Peeked<'_>) -> Verdict {
        verdict(status, headers)
    }
}

/// A classifier shared by an integration and its clones.
pub type SharedClassifier = Arc<dyn Classifier>;

/// What an integration does with a response, decided before its body is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The verdict is known from the status and headers: deliver the response untouched.
    Decided(Verdict),
    /// Read at most this many bytes of the body (and one more, to see that it is longer),
    /// then call [`Classifier::classify`] with them.
    Read(usize),
}

/// The first step of classifying a response, shared by every integration: asks `classifier`
/// how much body it needs, and decides at once when it needs none or when `Content-Length`
/// already says the body is longer than that (such a body is never read).
///
/// The integrations run it for you; an app with its own transport (the drivers' `Call` loop)
/// runs the same steps:
///
/// ```
/// use std::io::Read;
/// use auth_core::Verdict;
/// use auth_http::{plan, BodyCode, Classifier, PeekedReader, Plan};
/// use http::{HeaderMap, StatusCode};
///
/// /// The verdict, and the body for the caller (the bytes read put back in front).
/// fn classify<R: Read + 'static>(
///     classifier: &dyn Classifier,
///     status: StatusCode,
///     headers: &HeaderMap,
///     body: R,
/// ) -> (Verdict, Box<dyn Read>) {
///     match plan(classifier, status, headers) {
///         Plan::Decided(verdict) => (verdict, Box::new(body)),
///         Plan::Read(limit) => {
///             let body = PeekedReader::read(body, limit);
///             (classifier.classify(status, headers, body.peeked()), Box::new(body))
///         }
///     }
/// }
///
/// let (verdict, mut body) =
///     classify(&BodyCode::new(), StatusCode::OK, &HeaderMap::new(), &br#"{"code":401}"#[..]);
/// assert_eq!(verdict, Verdict::Rejected);
/// let mut text = String::new();
/// body.read_to_string(&mut text).unwrap();
/// assert_eq!(text, r#"{"code":401}"#);
/// ```
pub fn plan(classifier: &dyn Classifier, status: StatusCode, headers: &HeaderMap) -> Plan {
    let Some(limit) = classifier.body_limit(status, headers) else {
        return Plan::Decided(classifier.classify(status, headers, Peeked::NotRead));
    };
    match declared_length(headers) {
        Some(length) if length > limit as u64 => {
            Plan::Decided(classifier.classify(status, headers, Peeked::TooLong))
        }
        _ => Plan::Read(limit),
    }
}

/// The body length `Content-Length` declares, if it declares exactly one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::BodyCode;

    #[test]
    fn rfc6750_is_decided_on_the_head() {
        let headers = HeaderMap::new();
        assert_eq!(
            plan(&Rfc6750, StatusCode::UNAUTHORIZED, &headers),
            Plan::Decided(Verdict::Rejected)
        );
        assert_eq!(
            plan(&Rfc6750, StatusCode::OK, &headers),
            Plan::Decided(Verdict::Accepted)
        );
    }

    #[test]
    fn a_declared_length_over_the_limit_is_never_read() {
        let classifier = BodyCode::new().max_body(10);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, "11".parse().unwrap());
        assert_eq!(
            plan(&classifier, StatusCode::OK, &headers),
            Plan::Decided(Verdict::Accepted)
        );
        headers.insert(CONTENT_LENGTH, "10".parse().unwrap());
        assert_eq!(plan(&classifier, StatusCode::OK, &headers), Plan::Read(10));
        // A length that does not parse is no promise: read, bounded by the limit.
        headers.insert(CONTENT_LENGTH, "lots".parse().unwrap());
        assert_eq!(plan(&classifier, StatusCode::OK, &headers), Plan::Read(10));
    }
}
