//! A tower middleware: [`AuthLayer`] wraps any service of `http::Request`s (a hyper client, an
//! in-process router...) so that its requests go through the session.
//!
//! Which answers count as a refused token: RFC 6750's 401s, decided on the status and headers,
//! with the response untouched ([`AuthLayer::new`]); or any [`Classifier`]
//! ([`AuthLayer::with_classifier`], e.g. [`crate::BodyCode`] for a backend that answers 200
//! with `{"code":401}`), which may read a bounded start of the body: the service then answers
//! `Response<PeekedBody<ResBody>>`, a body that yields the bytes read and then the rest.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth_core::Verdict;
use auth_http::{plan, Classifier, Plan, SharedClassifier};
use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::call::Next;
use crate::handle::SessionHandle;
use crate::http::{verdict, Error, RequestOptions, Scope, Target};

pub use auth_http::PeekedBody;

/// A request body that may be copied for a retry. A body that cannot be copied (a stream)
/// answers `None`: its request is marked not replayable, and a 401 for it is delivered as is.
pub trait ReplayBody: Sized {
    /// A copy to send again, or `None` when the body can be read only once.
    fn try_replay(&self) -> Option<Self>;
}

macro_rules! replayable_by_clone {
    ($($ty:ty),* $(,)?) => {$(
        impl ReplayBody for $ty {
            fn try_replay(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

replayable_by_clone!((), String, Vec<u8>, Bytes, &'static str, &'static [u8]);

impl<D: Clone> ReplayBody for http_body_util::Full<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayBody for http_body_util::Empty<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(http_body_util::Empty::new())
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    /// A boxed body may be a stream: never replayed.
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    /// A boxed body may be a stream: never replayed.
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<L: ReplayBody, R: ReplayBody> ReplayBody for http_body_util::Either<L, R> {
    fn try_replay(&self) -> Option<Self> {
        match self {
            http_body_util::Either::Left(body) => {
                body.try_replay().map(http_body_util::Either::Left)
            }
            http_body_util::Either::Right(body) => {
                body.try_replay().map(http_body_util::Either::Right)
            }
        }
    }
}

/// Wraps services with [`AuthService`]. `M` says how responses are classified: [`HeadOnly`]
/// (the default) or [`Classified`].
#[derive(Clone, Debug)]
pub struct AuthLayer<M = HeadOnly> {
    session: SessionHandle,
    scope: Arc<Scope>,
    mode: M,
}

/// Sends each request through the session: bearer requests wait for a session, carry the
/// current token and are retried once after a refresh; public paths and other origins never
/// carry the token. Per-request options ride in the request's extensions
/// ([`RequestOptions`]).
#[derive(Clone, Debug)]
pub struct AuthService<S, M = HeadOnly> {
    inner: S,
    session: SessionHandle,
    scope: Arc<Scope>,
    mode: M,
}

/// The default classification of an [`AuthLayer`]: RFC 6750 ([`crate::verdict`]) on the
/// status and headers; the response reaches the caller untouched, with its own body type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadOnly;

/// Classification by a [`Classifier`] of the app's choice ([`AuthLayer::with_classifier`]).
/// The service's responses carry a [`PeekedBody`]: the start of the body the classifier read
/// (if it read any), then the rest.
#[derive(Clone, Debug)]
pub struct Classified(SharedClassifier);

impl AuthLayer {
    /// A layer for the API described by `scope`, authenticated by `session`.
    pub fn new(session: SessionHandle, scope: Scope) -> Self {
        AuthLayer {
            session,
            scope: Arc::new(scope),
            mode: HeadOnly,
        }
    }

    /// The same layer, deciding with `classifier` which answers mean the token was refused
    /// (retried after a refresh, like a 401). Its services answer
    /// `Response<PeekedBody<ResBody>>` (for `ResBody: http_body::Body + Unpin + Send`, hyper's
    /// `Incoming` among them), since a
    /// classifier may read a bounded start of the body.
    ///
    /// ```
    /// # fn doc(session: auth_tokio::SessionHandle, scope: auth_tokio::Scope) {
    /// use auth_tokio::tower::AuthLayer;
    /// use auth_tokio::BodyCode;
    /// // A mini-program backend: HTTP 200 with {"code":401} when the token expired.
    /// let layer = AuthLayer::new(session, scope).with_classifier(BodyCode::new());
    /// # }
    /// ```
    pub fn with_classifier(self, classifier: impl Classifier) -> AuthLayer<Classified> {
        AuthLayer {
            session: self.session,
            scope: self.scope,
            mode: Classified(Arc::new(classifier)),
        }
    }
}

impl<S, M: Clone> Layer<S> for AuthLayer<M> {
    type Service = AuthService<S, M>;

    fn layer(&self, inner: S) -> AuthService<S, M> {
        AuthService {
            inner,
            session: self.session.clone(),
            scope: Arc::clone(&self.scope),
            mode: self.mode.clone(),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, HeadOnly>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    ReqBody: ReplayBody + Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Error<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Transport)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (inner, session, target, span) = self.begin(&request);
        Box::pin(send(inner, session, target, request, HeadOnly).instrument(span))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, Classified>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    ReqBody: ReplayBody + Send + 'static,
    ResBody: http_body::Body + Unpin + Send + 'static,
    ResBody::Error: Send,
{
    type Response = Response<PeekedBody<ResBody>>;
    type Error = Error<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Transport)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (inner, session, target, span) = self.begin(&request);
        let mode = self.mode.clone();
        Box::pin(send(inner, session, target, request, mode).instrument(span))
    }
}

impl<S: Clone, M> AuthService<S, M> {
    /// What a call needs: the service that was polled ready (the clone stays for the next
    /// request), the session, the request's target and its span.
    fn begin<B>(&mut self, request: &Request<B>) -> (S, SessionHandle, Target, tracing::Span) {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let target = self.scope.target(request.uri());
        let span =
            tracing::debug_span!("api", method = %request.method(), path = request.uri().path());
        (inner, self.session.clone(), target, span)
    }
}

/// How a mode turns the inner service's responses into the caller's, and classifies them.
trait Classify<B> {
    /// The response the caller gets.
    type Out;

    /// A response that is not classified (a public or foreign request), as the caller gets it.
    fn pass(&self, response: Response<B>) -> Self::Out;

    /// An API response with its verdict.
    fn classify(&self, response: Response<B>) -> impl Future<Output = (Self::Out, Verdict)> + Send;
}

impl<B: Send> Classify<B> for HeadOnly {
    type Out = Response<B>;

    fn pass(&self, response: Response<B>) -> Response<B> {
        response
    }

    async fn classify(&self, response: Response<B>) -> (Response<B>, Verdict) {
        let verdict = verdict(response.status(), response.headers());
        (response, verdict)
    }
}

impl<B> Classify<B> for Classified
where
    B: http_body::Body + Unpin + Send,
    B::Error: Send,
{
    type Out = Response<PeekedBody<B>>;

    fn pass(&self, response: Response<B>) -> Self::Out {
        response.map(PeekedBody::untouched)
    }

    async fn classify(&self, response: Response<B>) -> (Self::Out, Verdict) {
        let classifier = &*self.0;
        let (parts, body) = response.into_parts();
        let (verdict, body) = match plan(classifier, parts.status, &parts.headers) {
            Plan::Decided(verdict) => (verdict, PeekedBody::untouched(body)),
            Plan::Read(limit) => {
                let body = PeekedBody::read(body, limit).await;
                let verdict = classifier.classify(parts.status, &parts.headers, body.peeked());
                (verdict, body)
            }
        };
        (Response::from_parts(parts, body), verdict)
    }
}

async fn send<S, ReqBody, ResBody, M>(
    mut inner: S,
    session: SessionHandle,
    target: Target,
    request: Request<ReqBody>,
    mode: M,
) -> Result<M::Out, Error<S::Error>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: ReplayBody,
    M: Classify<ResBody>,
{
    let options = request
        .extensions()
        .get::<RequestOptions>()
        .copied()
        .unwrap_or_default();
    // A copy kept for retries; `None` marks the request not replayable.
    let template = request.body().try_replay();
    let Some(spec) = Scope::spec(target, template.is_some(), options) else {
        return match inner.call(request).await {
            Ok(response) => Ok(mode.pass(response)),
            Err(error) => Err(Error::Transport(error)),
        };
    };
    let (parts, body) = request.into_parts();
    let mut first = Some(body);
    let mut call = session.call(spec);
    // `inner` was polled ready for the first send; later sends poll it again.
    let mut ready = true;
    loop {
        match call.next_step().await? {
            Next::Send(attempt) => {
                let body = first
                    .take()
                    .or_else(|| template.as_ref().and_then(ReplayBody::try_replay));
                // Unreachable: auth-core never sends a request marked not replayable twice
                // (rule 12), and a replayable one has its template.
                let Some(body) = body else {
                    return Err(Error::Stopped);
                };
                let mut request = Request::from_parts(parts.clone(), body);
                attempt.authorize(request.headers_mut());
                if !ready {
                    if let Err(error) = poll_fn(|cx| inner.poll_ready(cx)).await {
                        call.respond(Err(error), Verdict::Accepted);
                        continue;
                    }
                }
                ready = false;
                let (result, verdict) = match inner.call(request).await {
                    Ok(response) => {
                        let (response, verdict) = mode.classify(response).await;
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
