//! ureq integration (feature `ureq`): [`ApiClient`] sends requests through the session, and
//! [`TokenEndpoint`] talks to an RFC 6749 token endpoint for a [`crate::Backend`].
//!
//! Both call ureq with `http_status_as_error(false)` per request, whatever the agent's own
//! setting: a 401 must come back as a response to be classified, and a token endpoint's 400 as a
//! body to be parsed. Give the agent a `timeout_global` of about `Config::operation_timeout` so
//! a hung server cannot keep a login or refresh thread around.
//!
//! ureq never forwards `Authorization` across a redirect (its default `RedirectAuthHeaders::Never`),
//! so the token cannot follow a redirect to another origin.

use std::io::Read;
use std::sync::Arc;

use auth_core::{
    parse_token_response, RefreshToken, RequestError, RequestSpec, TokenResponseError, TokenSet,
    Verdict, MAX_BODY_LEN,
};
use ureq::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use ureq::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use ureq::{Agent, AsSendBody, Body};
use zeroize::Zeroizing;

use crate::backend::{LoginError, RefreshError};
use crate::handle::{Attempt, CallError, SessionHandle};

/// An `ureq::Agent` whose requests to the API go through the session.
///
/// Bearer requests wait for a session, carry the current token, and are sent again once after a
/// refresh. Requests to a public path and to other origins never carry the token and never
/// wait. A body that can only be sent once goes through [`ApiClient::send_once`] and gets its
/// 401 as is.
#[derive(Clone, Debug)]
pub struct ApiClient {
    agent: Agent,
    session: SessionHandle,
    scope: Arc<Scope>,
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

/// Options of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Deliver a 401 as is instead of refreshing and sending again.
    pub no_retry: bool,
}

/// Which requests belong to the API the session authenticates, and which of its paths are
/// public.
///
/// - A request to another origin (scheme, host, port) is passed through untouched: it never
///   waits for the session and never carries the token.
/// - A request to the API's origin whose path is under a public prefix is a public request: it
///   never waits and never carries the token (auth-core guarantees it).
/// - Every other request to the API's origin carries the bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    scheme: String,
    host: String,
    port: u16,
    public: Vec<String>,
}

/// Where a request goes, by [`Scope::target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The API, with a bearer token.
    Bearer,
    /// One of the API's public paths: no token, no waiting.
    Public,
    /// Another origin (or a relative URL): not the session's business.
    Foreign,
}

/// Why a [`Scope`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The API's base URL is not an absolute `http` or `https` URL with a host.
    #[error("the API origin must be an absolute http(s) URL with a host: {0}")]
    InvalidOrigin(String),
}

/// An RFC 6749 token endpoint: posts a form, parses the answer with auth-core's
/// [`parse_token_response`].
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    agent: Agent,
    url: String,
}

/// Why a token endpoint call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenEndpointError {
    /// The request did not get an answer (connection refused, reset, timeout): transient.
    #[error("token endpoint unreachable: {0}")]
    Transport(#[source] ureq::Error),
    /// The endpoint answered with something other than tokens; classified by auth-core.
    #[error(transparent)]
    Response(#[from] TokenResponseError),
}

impl ApiClient {
    /// Sends requests with `agent`, authenticated by `session`, for the API described by
    /// `scope`.
    pub fn new(agent: Agent, session: SessionHandle, scope: Scope) -> Self {
        ApiClient {
            agent,
            session,
            scope: Arc::new(scope),
        }
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
        let Some(spec) = spec(self.scope.target(request.uri()), true, options) else {
            return self.run(request).map_err(Error::Transport);
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
        let Some(spec) = spec(self.scope.target(request.uri()), false, options) else {
            return self.run(request).map_err(Error::Transport);
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
        let result = self.run(request);
        let verdict = match &result {
            Ok(response) => verdict(response.status(), response.headers()),
            Err(_) => Verdict::Accepted,
        };
        (result, verdict)
    }

    fn run<B: AsSendBody>(&self, request: Request<B>) -> Result<Response<Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .http_status_as_error(false)
            .build();
        self.agent.run(request)
    }
}

impl From<CallError> for Error {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Session(error) => Error::Session(error),
            CallError::TimedOut => Error::TimedOut,
            CallError::Stopped | CallError::ResponseMissing => Error::Stopped,
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

impl RequestOptions {
    /// Options that opt the request out of the retry: a 401 is delivered as is.
    pub fn no_retry() -> Self {
        RequestOptions { no_retry: true }
    }
}

impl Scope {
    /// The API at `origin` (`http://127.0.0.1:8080`, `https://api.example.com`); a path in it is
    /// ignored.
    pub fn new(origin: &str) -> Result<Self, ScopeError> {
        let invalid = || ScopeError::InvalidOrigin(origin.to_owned());
        let uri: Uri = origin.parse().map_err(|_| invalid())?;
        let scheme = uri.scheme_str().ok_or_else(invalid)?.to_ascii_lowercase();
        let host = uri.host().ok_or_else(invalid)?.to_ascii_lowercase();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .ok_or_else(invalid)?;
        if host.is_empty() || default_port(&scheme).is_none() {
            return Err(invalid());
        }
        Ok(Scope {
            scheme,
            host,
            port,
            public: Vec::new(),
        })
    }

    /// Marks every path under `prefix` as public (`/public` covers `/public` and `/public/x`,
    /// not `/publicity`).
    pub fn public_path(mut self, prefix: &str) -> Self {
        let trimmed = prefix.trim_end_matches('/');
        self.public.push(if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        });
        self
    }

    /// Where a request to `uri` goes. ureq only sends absolute URLs, so a relative one is
    /// foreign.
    pub fn target(&self, uri: &Uri) -> Target {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return Target::Foreign;
        };
        let scheme = scheme.to_ascii_lowercase();
        let port = uri.port_u16().or_else(|| default_port(&scheme));
        let same_origin = scheme == self.scheme
            && host.eq_ignore_ascii_case(&self.host)
            && port == Some(self.port);
        if !same_origin {
            return Target::Foreign;
        }
        let path = uri.path();
        let public = self.public.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        if public {
            Target::Public
        } else {
            Target::Bearer
        }
    }
}

/// The core's description of a request to `target` (`None` for a foreign one).
fn spec(target: Target, replayable: bool, options: RequestOptions) -> Option<RequestSpec> {
    let spec = match target {
        Target::Bearer => RequestSpec::bearer(),
        Target::Public => RequestSpec::public(),
        Target::Foreign => return None,
    };
    let spec = if replayable {
        spec
    } else {
        spec.not_replayable()
    };
    Some(if options.no_retry {
        spec.no_retry()
    } else {
        spec
    })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

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

impl TokenEndpoint {
    /// The token endpoint at `url`, called with `agent`.
    pub fn new(agent: Agent, url: impl Into<String>) -> Self {
        TokenEndpoint {
            agent,
            url: url.into(),
        }
    }

    /// Posts `form` (`application/x-www-form-urlencoded`) and parses the answer.
    pub fn post_form(&self, form: &[(&str, &str)]) -> Result<TokenSet, TokenEndpointError> {
        let mut response = self
            .agent
            .post(&self.url)
            .config()
            .http_status_as_error(false)
            .build()
            .send_form(form.iter().copied())
            .map_err(TokenEndpointError::Transport)?;
        let status = response.status().as_u16();
        // One byte more than auth-core parses, so a huge body is refused as too large without
        // being held whole.
        let mut body = Zeroizing::new(Vec::new());
        response
            .body_mut()
            .as_reader()
            .take(MAX_BODY_LEN as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|error| TokenEndpointError::Transport(error.into()))?;
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
}

impl From<TokenEndpointError> for LoginError {
    /// Unreachable is transient; an answer is classified by auth-core.
    fn from(error: TokenEndpointError) -> Self {
        match error {
            TokenEndpointError::Response(error) => error.into(),
            transport => LoginError::Transient(Box::new(transport)),
        }
    }
}

impl From<TokenEndpointError> for RefreshError {
    /// Unreachable is transient; an answer is classified by auth-core.
    fn from(error: TokenEndpointError) -> Self {
        match error {
            TokenEndpointError::Response(error) => error.into(),
            transport => RefreshError::Transient(Box::new(transport)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn target(uri: &str) -> Target {
        Scope::new("http://127.0.0.1:8080")
            .unwrap()
            .public_path("/public")
            .public_path("health/")
            .target(&uri.parse().unwrap())
    }

    #[test]
    fn same_origin_paths_are_bearer_unless_public() {
        assert_eq!(target("http://127.0.0.1:8080/api/me"), Target::Bearer);
        assert_eq!(target("HTTP://127.0.0.1:8080/api/me?x=1"), Target::Bearer);
        assert_eq!(target("http://127.0.0.1:8080/public"), Target::Public);
        assert_eq!(target("http://127.0.0.1:8080/public/x"), Target::Public);
        assert_eq!(target("http://127.0.0.1:8080/publicity"), Target::Bearer);
        assert_eq!(target("http://127.0.0.1:8080/health"), Target::Public);
    }

    #[test]
    fn other_origins_and_relative_urls_are_foreign() {
        for uri in [
            "http://127.0.0.1:8081/api/me",
            "https://127.0.0.1:8080/api/me",
            "http://localhost:8080/api/me",
            "http://127.0.0.1/api/me",
            "http://evil.example/127.0.0.1:8080",
            "http://127.0.0.1:8080@evil.example/api",
            "/api/me",
        ] {
            assert_eq!(target(uri), Target::Foreign, "{uri}");
        }
    }

    #[test]
    fn bad_origins_are_refused() {
        for origin in ["", "/api", "ftp://x", "127.0.0.1:8080", "http://"] {
            assert!(Scope::new(origin).is_err(), "{origin}");
        }
    }

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

    #[test]
    fn spec_follows_target_and_options() {
        let spec_of = |target, replayable, options| spec(target, replayable, options);
        assert_eq!(
            spec_of(Target::Bearer, false, RequestOptions::no_retry()),
            Some(RequestSpec::bearer().not_replayable().no_retry())
        );
        assert_eq!(
            spec_of(Target::Public, true, RequestOptions::default()),
            Some(RequestSpec::public())
        );
        assert_eq!(
            spec_of(Target::Foreign, true, RequestOptions::default()),
            None
        );
    }
}
