//! ureq integration (feature `ureq`): [`ApiClient`] sends requests through the session, and
//! [`TokenEndpoint`] talks to an RFC 6749 token endpoint for a [`crate::Backend`].
//!
//! Both call ureq with `http_status_as_error(false)`, whatever the agent's own setting: a 401
//! must come back as a response to be classified, and a token endpoint's 400 as a body to be
//! parsed. (An agent built with `http_status_as_error(false)` saves [`ApiClient`] a copy of the
//! agent's configuration per request.)
//!
//! The driver bounds every backend call (login, refresh, revoke) by the operation's deadline
//! itself, whatever the agent does, so no agent timeout is needed for the session's promises.
//! To end the thread of a call to a hung server too, give the agent timeouts that cost nothing
//! per request: `timeout_connect`, `timeout_per_read` and `timeout_per_write` (set on the
//! socket once per connection). Avoid `timeout_global`, `timeout_per_call` and
//! `timeout_resolve`: with any of them ureq resolves the host on a new thread for every request.
//!
//! Credentials go only where they are configured, whatever the agent's redirect settings:
//! - [`ApiClient`] sends the session's token with `RedirectAuthHeaders::Never` per request, so
//!   ureq follows a redirect without it, also to the same host (ureq's `SameHost` would forward
//!   it to another port or to a public path, which the [`Scope`] excludes).
//! - [`TokenEndpoint`] never follows a redirect (`max_redirects(0)` per request): a 3xx answer is
//!   [`auth_http::TokenEndpointError::Redirect`], so the refresh token, a code or a client
//!   secret never reaches another URL, and another origin's answer is never taken for tokens.

use std::io::Read;
use std::sync::Arc;

use auth_core::{
    parse_token_response, RefreshToken, RequestError, TokenSet, Verdict, MAX_BODY_LEN,
};
use ureq::config::RedirectAuthHeaders;
use ureq::http::header::AUTHORIZATION;
use ureq::http::{HeaderValue, Request, Response};
use ureq::{Agent, AsSendBody, Body};
use zeroize::Zeroizing;

use auth_http::{
    plan, redact_url, PeekedReader, Plan, SharedClassifier, TransportError, TransportKind,
};
pub use auth_http::{
    verdict, BodyCode, BodyCodeError, Classifier, Peeked, RequestOptions, Rfc6750, Scope,
    ScopeError, Target,
};

use crate::backend::RefreshError;
use crate::handle::{Attempt, CallError, SessionHandle};

/// An `ureq::Agent` whose requests to the API go through the session.
///
/// Bearer requests wait for a session, carry the current token, and are sent again once after a
/// refresh. Requests to a public path and to other origins never carry the token and never
/// wait. A body that can only be sent once goes through [`ApiClient::send_once`] and gets its
/// 401 as is.
///
/// Which answers count as a refused token is its [`Classifier`]: RFC 6750's 401s by default,
/// or, with [`ApiClient::with_classifier`], e.g. [`BodyCode`] for a backend that answers 200
/// with `{"code":401}`. A classifier that reads the body reads a bounded start of it once; the
/// caller's response body yields the same bytes all the same.
#[derive(Clone, Debug)]
pub struct ApiClient {
    agent: Agent,
    session: SessionHandle,
    scope: Arc<Scope>,
    classifier: SharedClassifier,
    /// The agent's own configuration already returns statuses as responses and never forwards
    /// credentials across a redirect: a request without a configuration of its own needs none.
    agent_fits: bool,
}

/// The error of [`ApiClient`]: the session's, the transport's, or the caller's wait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session refused or gave up on the request; the [`RequestError`] says what the caller
    /// can do (log in again after `LoggedOut`/`LoginRequired`, retry later after `Timeout`,
    /// `AuthUnavailable`, `CircuitOpen`, `QueueFull`).
    #[error(transparent)]
    Session(RequestError),
    /// The transport failed (or the URL is invalid); the request may or may not have reached
    /// the server. Never retried by the session.
    #[error("transport error: {0}")]
    Transport(#[source] ureq::Error),
    /// The caller's wait for the session ran out; the request was cancelled.
    #[error("gave up waiting for the session; the request was cancelled")]
    TimedOut,
    /// The session's driver has stopped.
    #[error("the session driver has stopped")]
    Stopped,
}

/// An RFC 6749 token endpoint: posts a form, parses the answer with auth-core's
/// [`parse_token_response`].
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    agent: Agent,
    url: String,
}

/// Why a token endpoint call failed: unreachable, or an answer auth-core classifies.
pub type TokenEndpointError = auth_http::TokenEndpointError<ureq::Error>;

impl ApiClient {
    /// Sends requests with `agent`, authenticated by `session`, for the API described by
    /// `scope`.
    pub fn new(agent: Agent, session: SessionHandle, scope: Scope) -> Self {
        let config = agent.config();
        let agent_fits = !config.http_status_as_error()
            && config.redirect_auth_headers() == RedirectAuthHeaders::Never;
        ApiClient {
            agent_fits,
            agent,
            session,
            scope: Arc::new(scope),
            classifier: Arc::new(Rfc6750),
        }
    }

    /// The same client, deciding with `classifier` which of the API's answers mean the token
    /// was refused (and are sent again after a refresh, like a 401). The default is
    /// [`Rfc6750`]. Requests outside the API (public paths, other origins) are never
    /// classified.
    ///
    /// ```
    /// # fn doc(api: auth_blocking::ureq::ApiClient) {
    /// use auth_blocking::ureq::BodyCode;
    /// // A mini-program backend: HTTP 200 with {"code":401} when the token expired.
    /// let api = api.with_classifier(BodyCode::new());
    /// # }
    /// ```
    pub fn with_classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// `GET url`, through the session.
    pub fn get(&self, url: &str) -> Result<Response<Body>, Error> {
        let request = Request::get(url)
            .body(Vec::new())
            .map_err(|error| Error::Transport(error.into()))?;
        self.send(request)
    }

    /// Sends `request` through the session. The body is kept to send it again after a refresh.
    pub fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Body>, Error> {
        self.send_with(request, RequestOptions::default())
    }

    /// Sends `request` through the session with per-request options (e.g. no retry).
    pub fn send_with(
        &self,
        request: Request<Vec<u8>>,
        options: RequestOptions,
    ) -> Result<Response<Body>, Error> {
        let Some(spec) = Scope::spec(self.scope.target(request.uri()), true, options) else {
            return self.run(request, false).map_err(Error::Transport);
        };
        let (parts, body) = request.into_parts();
        let result = self.session.request(spec, |attempt| {
            let mut request = Request::new(body.clone());
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            self.attempt(request, attempt)
        })?;
        result.map_err(Error::Transport)
    }

    /// Sends a request whose body can be sent only once (a stream) through the session: it is
    /// marked not replayable, so a 401 is delivered as is instead of being retried.
    pub fn send_once<B: AsSendBody>(
        &self,
        request: Request<B>,
        options: RequestOptions,
    ) -> Result<Response<Body>, Error> {
        let Some(spec) = Scope::spec(self.scope.target(request.uri()), false, options) else {
            return self.run(request, false).map_err(Error::Transport);
        };
        let mut request = Some(request);
        let result = self.session.request(spec, |attempt| match request.take() {
            Some(request) => self.attempt(request, attempt),
            // auth-core never sends a request marked not replayable twice (rule 12).
            None => (
                Err(ureq::Error::Other("the body was already sent".into())),
                Verdict::Accepted,
            ),
        })?;
        result.map_err(Error::Transport)
    }

    /// The underlying agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The session this client sends through.
    pub fn session(&self) -> &SessionHandle {
        &self.session
    }

    /// One send with the attempt's token, classified.
    fn attempt<B: AsSendBody>(
        &self,
        mut request: Request<B>,
        attempt: &Attempt,
    ) -> (Result<Response<Body>, ureq::Error>, Verdict) {
        if let Some(value) = attempt
            .bearer()
            .and_then(|bearer| HeaderValue::from_str(&bearer).ok())
        {
            let mut value = value;
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        match self.run(request, attempt.token().is_some()) {
            Ok(response) => {
                let (response, verdict) = classify(&*self.classifier, response);
                (Ok(response), verdict)
            }
            Err(error) => (Err(error), Verdict::Accepted),
        }
    }

    /// Sends `request` with `http_status_as_error(false)`. One that carries the session's token
    /// never forwards it across a redirect, whatever the agent's `redirect_auth_headers`.
    fn run<B: AsSendBody>(
        &self,
        request: Request<B>,
        carries_token: bool,
    ) -> Result<Response<Body>, ureq::Error> {
        // A request without extensions carries no request-level configuration of its own
        // that could say otherwise.
        if self.agent_fits && request.extensions().is_empty() {
            return self.agent.run(request);
        }
        let mut config = self
            .agent
            .configure_request(request)
            .http_status_as_error(false);
        if carries_token {
            config = config.redirect_auth_headers(RedirectAuthHeaders::Never);
        }
        self.agent.run(config.build())
    }
}

/// Classifies an API response with `classifier`. When it needs the body, reads a bounded start
/// of it and hands back a response whose body yields those bytes and then the rest, so the
/// caller reads what it would have read.
///
/// The body is read through ureq's `into_reader` (transfer decoding done; with ureq's
/// `charset` feature, text already decoded to UTF-8), so the new body keeps the MIME type but
/// no charset, and is not decoded twice.
fn classify(classifier: &dyn Classifier, response: Response<Body>) -> (Response<Body>, Verdict) {
    let limit = match plan(classifier, response.status(), response.headers()) {
        Plan::Decided(verdict) => return (response, verdict),
        Plan::Read(limit) => limit,
    };
    let (parts, body) = response.into_parts();
    let mut builder = Body::builder();
    if let Some(mime) = body.mime_type() {
        builder = builder.mime_type(mime);
    }
    let peeked = PeekedReader::read(body.into_reader(), limit);
    let verdict = classifier.classify(parts.status, &parts.headers, peeked.peeked());
    let body = match peeked.into_whole() {
        Ok(bytes) => builder.data(bytes),
        Err(peeked) => builder.reader(peeked),
    };
    (Response::from_parts(parts, body), verdict)
}

impl From<CallError> for Error {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Session(error) => Error::Session(error),
            CallError::TimedOut => Error::TimedOut,
            // `LogoutNotDurable` comes from `logout` only, never from a request.
            CallError::Stopped | CallError::ResponseMissing | CallError::LogoutNotDurable(_) => {
                Error::Stopped
            }
        }
    }
}

impl Error {
    /// The session's reason, if the session failed the request.
    pub fn session(&self) -> Option<RequestError> {
        match self {
            Error::Session(error) => Some(*error),
            _ => None,
        }
    }
}

impl TokenEndpoint {
    /// The token endpoint at `url`, called with `agent`.
    pub fn new(agent: Agent, url: impl Into<String>) -> Self {
        TokenEndpoint {
            agent,
            url: url.into(),
        }
    }

    /// Posts `form` (`application/x-www-form-urlencoded`) and parses the answer. A redirect is
    /// never followed, whatever the agent says: it is [`auth_http::TokenEndpointError::Redirect`]
    /// (the form holds credentials, and only the configured endpoint's answer is tokens).
    pub fn post_form(&self, form: &[(&str, &str)]) -> Result<TokenSet, TokenEndpointError> {
        let mut response = self
            .agent
            .post(&self.url)
            .config()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .send_form(form.iter().copied())
            .map_err(|error| self.transport(error))?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            return Err(TokenEndpointError::Redirect { status });
        }
        // One byte more than auth-core parses, so a huge body is refused as too large without
        // being held whole.
        let mut body = Zeroizing::new(Vec::new());
        response
            .body_mut()
            .as_reader()
            .take(MAX_BODY_LEN as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|error| self.transport(error.into()))?;
        Ok(parse_token_response(status, &body)?)
    }

    /// The refresh-token grant (RFC 6749 §6).
    pub fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        Ok(self.post_form(&form)?)
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A call that got no answer, safe to log: its kind and the endpoint without its query. The
    /// two ureq errors that quote the URL get the redacted one instead.
    fn transport(&self, error: ureq::Error) -> TokenEndpointError {
        use std::io::ErrorKind;
        use ureq::Error as E;
        let kind = match &error {
            E::Timeout(_) => TransportKind::Timeout,
            E::Io(io) if io.kind() == ErrorKind::TimedOut => TransportKind::Timeout,
            E::BadUri(_) | E::RequireHttpsOnly(_) | E::Http(_) | E::InvalidProxyUrl => {
                TransportKind::InvalidRequest
            }
            E::Io(io) if io.kind() == ErrorKind::ConnectionRefused => TransportKind::Connect,
            E::HostNotFound
            | E::ConnectionFailed
            | E::ConnectProxyFailed(_)
            | E::Tls(_)
            | E::TlsRequired => TransportKind::Connect,
            E::Io(_) | E::Protocol(_) | E::BodyExceedsLimit(_) | E::LargeResponseHeader(..) => {
                TransportKind::Exchange
            }
            _ => TransportKind::Other,
        };
        let error = match error {
            E::BadUri(_) => E::BadUri(redact_url(&self.url)),
            E::RequireHttpsOnly(_) => E::RequireHttpsOnly(redact_url(&self.url)),
            other => other,
        };
        TokenEndpointError::Transport(TransportError::new(kind, &self.url, error))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A response without `Content-Length` whose body comes from a reader, as a chunked one.
    fn response(body: &'static [u8]) -> Response<Body> {
        let body = Body::builder().mime_type("application/json").reader(body);
        Response::builder().status(200).body(body).unwrap()
    }

    #[test]
    fn a_body_code_is_read_once_and_handed_back() {
        let (mut response, verdict) = classify(&BodyCode::new(), response(br#"{"code":401}"#));
        assert_eq!(verdict, Verdict::Rejected);
        assert_eq!(response.body().mime_type(), Some("application/json"));
        assert_eq!(
            response.body_mut().read_to_string().unwrap(),
            r#"{"code":401}"#
        );
    }

    #[test]
    fn a_streamed_body_over_the_limit_is_handed_back_whole() {
        let classifier = BodyCode::new().max_body(4);
        let (mut response, verdict) = classify(&classifier, response(br#"{"code":401}"#));
        assert_eq!(verdict, Verdict::Accepted);
        assert_eq!(
            response.body_mut().read_to_string().unwrap(),
            r#"{"code":401}"#
        );
    }
}
