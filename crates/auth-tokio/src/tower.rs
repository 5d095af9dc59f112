//! A tower middleware: [`AuthLayer`] wraps any service of `http::Request`s (a hyper client, an
//! in-process router...) so that its requests go through the session.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth_core::Verdict;
use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::call::Next;
use crate::handle::SessionHandle;
use crate::http::{verdict, Error, RequestOptions, Scope, Target};

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

/// Wraps services with [`AuthService`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    session: SessionHandle,
    scope: Arc<Scope>,
}

/// Sends each request through the session: bearer requests wait for a session, carry the
/// current token and are retried once after a refresh; public paths and other origins never
/// carry the token. Per-request options ride in the request's extensions
/// ([`RequestOptions`]).
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    session: SessionHandle,
    scope: Arc<Scope>,
}

impl AuthLayer {
    /// A layer for the API described by `scope`, authenticated by `session`.
    pub fn new(session: SessionHandle, scope: Scope) -> Self {
        AuthLayer {
            session,
            scope: Arc::new(scope),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            session: self.session.clone(),
            scope: Arc::clone(&self.scope),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
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
        // The service that was polled ready takes this request; the clone stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let session = self.session.clone();
        let target = self.scope.target(request.uri());
        let span =
            tracing::debug_span!("api", method = %request.method(), path = request.uri().path());
        Box::pin(send(inner, session, target, request).instrument(span))
    }
}

async fn send<S, ReqBody, ResBody>(
    mut inner: S,
    session: SessionHandle,
    target: Target,
    request: Request<ReqBody>,
) -> Result<Response<ResBody>, Error<S::Error>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: ReplayBody,
{
    let options = request
        .extensions()
        .get::<RequestOptions>()
        .copied()
        .unwrap_or_default();
    // A copy kept for retries; `None` marks the request not replayable.
    let template = request.body().try_replay();
    let Some(spec) = Scope::spec(target, template.is_some(), options) else {
        return inner.call(request).await.map_err(Error::Transport);
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
                let result = inner.call(request).await;
                let verdict = match &result {
                    Ok(response) => verdict(response.status(), response.headers()),
                    Err(_) => Verdict::Accepted,
                };
                call.respond(result, verdict);
            }
            Next::Deliver(result) => return result.map_err(Error::Transport),
        }
    }
}
