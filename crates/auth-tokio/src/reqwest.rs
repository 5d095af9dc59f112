//! reqwest integration: [`ApiClient`] sends `reqwest` requests through the session, and
//! [`TokenEndpoint`] talks to an RFC 6749 token endpoint for a [`crate::Backend`].

use std::sync::Arc;

use auth_core::{parse_token_response, RefreshToken, TokenSet, Verdict, MAX_BODY_LEN};
use auth_http::{
    plan, Classifier, PeekedBody, Plan, SharedClassifier, TransportError, TransportKind,
};
use reqwest::ResponseBuilderExt;
use tracing::Instrument;

use crate::backend::RefreshError;
use crate::call::Next;
use crate::handle::SessionHandle;
use crate::http::{Error, RequestOptions, Rfc6750, Scope, Target};

/// A `reqwest::Client` whose requests to the API go through the session.
///
/// Bearer requests wait for a session, carry the current token, and are retried once after a
/// refresh; a request whose body is a stream (`try_clone()` is `None`) is marked not
/// replayable and gets its 401 as is. Public paths and other origins never carry the token.
///
/// reqwest drops `Authorization` when a redirect leaves the origin, and keeps it on a redirect
/// within the origin, public paths included (that origin already had the token); a client that
/// must never follow redirects with a token can be built with `redirect::Policy::none()`.
///
/// Which answers count as a refused token is its [`Classifier`]: RFC 6750's 401s by default,
/// or, with [`ApiClient::with_classifier`], e.g. [`auth_http::BodyCode`] for a backend that
/// answers 200 with `{"code":401}`. A classifier that reads the body reads a bounded start of
/// it once; the caller's [`reqwest::Response`] yields the same bytes all the same.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    session: SessionHandle,
    scope: Arc<Scope>,
    classifier: SharedClassifier,
}

/// An RFC 6749 token endpoint: posts a form, parses the answer with auth-core's
/// [`parse_token_response`].
///
/// It calls the endpoint with a `reqwest::Client` of its own, built with
/// `redirect::Policy::none()`: a redirect is [`TokenEndpointError::Redirect`], never followed,
/// so the refresh token, a login code or a client secret in the form reaches the configured
/// URL only (a followed 307/308 would post the same form to wherever `Location` points).
/// reqwest sets the redirect policy per client, not per request, so the app's own client is
/// never used; pass its settings with [`TokenEndpoint::with_client_builder`].
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    http: reqwest::Client,
    url: reqwest::Url,
}

/// Why a token endpoint call failed: unreachable, or an answer auth-core classifies.
pub type TokenEndpointError = auth_http::TokenEndpointError<reqwest::Error>;

impl ApiClient {
    /// Sends requests with `http`, authenticated by `session`, for the API described by `scope`.
    pub fn new(http: reqwest::Client, session: SessionHandle, scope: Scope) -> Self {
        ApiClient {
            http,
            session,
            scope: Arc::new(scope),
            classifier: Arc::new(Rfc6750),
        }
    }

    /// The same client, deciding with `classifier` which of the API's answers mean the token
    /// was refused (and are retried after a refresh, like a 401). The default is
    /// [`Rfc6750`]. Requests outside the API (public paths, other origins) are never
    /// classified.
    ///
    /// ```
    /// # fn doc(api: auth_tokio::reqwest::ApiClient) {
    /// use auth_tokio::BodyCode;
    /// // A mini-program backend: HTTP 200 with {"code":401} when the token expired.
    /// let api = api.with_classifier(BodyCode::new());
    /// # }
    /// ```
    pub fn with_classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// The underlying client, to build requests (`api.http().get(url)`) for [`ApiClient::send`].
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The session this client sends through.
    pub fn session(&self) -> &SessionHandle {
        &self.session
    }

    /// `GET url`, through the session.
    pub async fn get(&self, url: &str) -> Result<reqwest::Response, Error<reqwest::Error>> {
        self.send(self.http.get(url)).await
    }

    /// Builds and sends a request made with [`ApiClient::http`].
    pub async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error<reqwest::Error>> {
        let request = builder.build().map_err(Error::Transport)?;
        self.execute(request).await
    }

    /// Sends `request` through the session.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, Error<reqwest::Error>> {
        self.execute_with(request, RequestOptions::default()).await
    }

    /// Sends `request` through the session with per-request options (e.g. no retry).
    pub async fn execute_with(
        &self,
        request: reqwest::Request,
        options: RequestOptions,
    ) -> Result<reqwest::Response, Error<reqwest::Error>> {
        let url = request.url();
        let target = self.scope.target_of(
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default(),
            url.path(),
        );
        let span = tracing::debug_span!("api", method = %request.method(), path = url.path());
        self.send_to(target, request, options)
            .instrument(span)
            .await
    }

    async fn send_to(
        &self,
        target: Target,
        request: reqwest::Request,
        options: RequestOptions,
    ) -> Result<reqwest::Response, Error<reqwest::Error>> {
        // A copy kept for retries; `None` (a streaming body) marks the request not replayable.
        let template = request.try_clone();
        let Some(spec) = Scope::spec(target, template.is_some(), options) else {
            return self.http.execute(request).await.map_err(Error::Transport);
        };
        let mut first = Some(request);
        let mut call = self.session.call(spec);
        loop {
            match call.next_step().await? {
                Next::Send(attempt) => {
                    let request = first
                        .take()
                        .or_else(|| template.as_ref().and_then(reqwest::Request::try_clone));
                    // Unreachable: auth-core never sends a request marked not replayable twice
                    // (rule 12), and a replayable one has its template.
                    let Some(mut request) = request else {
                        return Err(Error::Stopped);
                    };
                    attempt.authorize(request.headers_mut());
                    let (result, verdict) = match self.http.execute(request).await {
                        Ok(response) => {
                            let (response, verdict) = classify(&*self.classifier, response).await;
                            (Ok(response), verdict)
                        }
                        Err(error) => (Err(error), Verdict::Accepted),
                    };
                    call.respond(result, verdict);
                }
                Next::Deliver(result) => return result.map_err(Error::Transport),
            }
        }
    }
}

impl TokenEndpoint {
    /// The token endpoint at `url`, called with reqwest's default settings except redirects,
    /// which are never followed. Fails only if reqwest cannot build a client (its TLS backend
    /// does not initialise).
    pub fn new(url: reqwest::Url) -> Result<Self, reqwest::Error> {
        TokenEndpoint::with_client_builder(reqwest::Client::builder(), url)
    }

    /// The token endpoint at `url`, called with a client built from `builder` (your timeouts,
    /// proxy, TLS roots, user agent...). Its redirect policy is replaced by
    /// `redirect::Policy::none()`, whatever `builder` says.
    pub fn with_client_builder(
        builder: reqwest::ClientBuilder,
        url: reqwest::Url,
    ) -> Result<Self, reqwest::Error> {
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(TokenEndpoint { http, url })
    }

    /// Another endpoint of the same server (a login or revocation URL beside the token URL),
    /// called with this one's client: same settings, same connections, no redirects.
    pub fn at(&self, url: reqwest::Url) -> TokenEndpoint {
        TokenEndpoint {
            http: self.http.clone(),
            url,
        }
    }

    /// Posts `form` (`application/x-www-form-urlencoded`) and parses the answer.
    pub async fn post_form(&self, form: &[(&str, &str)]) -> Result<TokenSet, TokenEndpointError> {
        let response = self.send_form(form).await?;
        let status = response.status().as_u16();
        let body = read_limited(response, &self.url).await?;
        Ok(parse_token_response(status, &body)?)
    }

    /// The refresh-token grant (RFC 6749 §6).
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        Ok(self.post_form(&form).await?)
    }

    /// Revokes `refresh_token` at this endpoint (RFC 7009: `token=…` with
    /// `token_type_hint=refresh_token`; build the endpoint for the revocation URL, e.g. with
    /// [`TokenEndpoint::at`]). Any 2xx is success; an error answer is classified by auth-core.
    pub async fn revoke(&self, refresh_token: &RefreshToken) -> Result<(), TokenEndpointError> {
        let form = [
            ("token", refresh_token.expose_secret()),
            ("token_type_hint", "refresh_token"),
        ];
        let response = self.send_form(&form).await?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status().as_u16();
        let body = read_limited(response, &self.url).await?;
        match parse_token_response(status, &body) {
            // Only a 2xx parses as tokens, and a 2xx returned above.
            Ok(_) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Posts `form` and hands back the answer, unless it is a redirect (never followed).
    async fn send_form(
        &self,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, TokenEndpointError> {
        let response = self
            .http
            .post(self.url.clone())
            .form(form)
            .send()
            .await
            .map_err(|error| transport(error, &self.url))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(TokenEndpointError::Redirect {
                status: status.as_u16(),
            });
        }
        Ok(response)
    }
}

/// Classifies an API response with `classifier`. When it needs the body, reads a bounded start
/// of it and hands back a response that yields those bytes and then the rest (its URL, headers
/// and extensions kept), so the caller reads what it would have read.
async fn classify(
    classifier: &dyn Classifier,
    response: reqwest::Response,
) -> (reqwest::Response, Verdict) {
    let limit = match plan(classifier, response.status(), response.headers()) {
        Plan::Decided(verdict) => return (response, verdict),
        Plan::Read(limit) => limit,
    };
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    let body = PeekedBody::read(body, limit).await;
    let verdict = classifier.classify(parts.status, &parts.headers, body.peeked());
    // reqwest keeps the final URL in a private extension that its `http::Response` conversion
    // drops; its builder extension puts it back.
    if let Ok(marker) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(marker.into_parts().0.extensions);
    }
    let response = http::Response::from_parts(parts, reqwest::Body::wrap(body));
    (reqwest::Response::from(response), verdict)
}

/// Reads at most one byte more than auth-core parses, so a huge body is refused as too large
/// without being held whole.
async fn read_limited(
    mut response: reqwest::Response,
    url: &reqwest::Url,
) -> Result<Vec<u8>, TokenEndpointError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| transport(error, url))?
    {
        let room = (MAX_BODY_LEN + 1).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() > MAX_BODY_LEN {
            break;
        }
    }
    Ok(body)
}

/// A token endpoint call that got no answer, safe to log: its kind, the endpoint without its
/// query, and reqwest's error with the URL taken out (reqwest's text names the whole URL).
fn transport(error: reqwest::Error, url: &reqwest::Url) -> TokenEndpointError {
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_connect() {
        TransportKind::Connect
    } else if error.is_builder() {
        TransportKind::InvalidRequest
    } else if error.is_request() || error.is_body() || error.is_decode() {
        TransportKind::Exchange
    } else {
        TransportKind::Other
    };
    TokenEndpointError::Transport(TransportError::new(kind, url.as_str(), error.without_url()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::http::BodyCode;

    /// A response without `Content-Length`, at `url`.
    fn response(body: &'static str) -> reqwest::Response {
        let url = reqwest::Url::parse("http://127.0.0.1:1/coded/x").unwrap();
        let response = http::Response::builder().url(url).body(body).unwrap();
        reqwest::Response::from(response)
    }

    #[tokio::test]
    async fn a_body_code_is_read_once_and_handed_back_with_the_url() {
        let (response, verdict) = classify(&BodyCode::new(), response(r#"{"code":401}"#)).await;
        assert_eq!(verdict, Verdict::Rejected);
        assert_eq!(response.url().path(), "/coded/x");
        assert_eq!(response.text().await.unwrap(), r#"{"code":401}"#);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_handed_back_whole() {
        let classifier = BodyCode::new().max_body(4);
        let (response, verdict) = classify(&classifier, response(r#"{"code":401}"#)).await;
        assert_eq!(verdict, Verdict::Accepted);
        assert_eq!(response.text().await.unwrap(), r#"{"code":401}"#);
    }
}
