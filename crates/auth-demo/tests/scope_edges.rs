//! Scope edge cases over real loopback HTTP: a protocol-relative target (`//host/x`) is another
//! origin, so it triggers no silent login and never carries the bearer, even through a service
//! that resolves relative URIs the way URL libraries do; and what the docs say about redirects
//! (reqwest keeps the bearer on a same-origin redirect, drops it across origins) holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, ServerConfig, ServerHandle};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::Config;
use auth_tokio::reqwest::ApiClient;
use auth_tokio::tower::AuthLayer;
use auth_tokio::{Error, MemoryStore, Scope, SessionHandle};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_layer::Layer;
use tower_service::Service;

const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Runs `test` against two fresh demo servers (the API, and another origin) with every log
/// captured; fails on an `ERROR` log or on any secret either server issued in the logs.
fn two_servers<F, Fut>(test: F)
where
    F: FnOnce(ServerHandle, ServerHandle) -> Fut,
    Fut: Future<Output = ()>,
{
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(None).unwrap();
    let secrets = runtime.block_on(async {
        let api = server::spawn(ServerConfig::default()).await.unwrap();
        let other = server::spawn(ServerConfig::default()).await.unwrap();
        let (api_admin, other_admin) = (api.admin().clone(), other.admin().clone());
        tokio::time::timeout(TEST_LIMIT, test(api, other))
            .await
            .expect("the test did not finish in time");
        let mut secrets = api_admin.issued_secrets();
        secrets.extend(other_admin.issued_secrets());
        secrets
    });
    drop(runtime);
    if let Err(problem) = logs.check(&secrets) {
        panic!("{problem}\n--- captured logs ---\n{}", logs.text());
    }
}

async fn session(api: &ServerHandle, http: &reqwest::Client) -> SessionHandle {
    let config = Config {
        queue_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    SessionHandle::builder(DemoBackend::new(http.clone(), api.base_url()).unwrap())
        .config(config)
        .store(MemoryStore::new())
        .start()
        .await
}

fn scope(api: &ServerHandle) -> Scope {
    Scope::new(api.base_url()).unwrap().public_path("/public")
}

type Hyper = Client<HttpConnector, Full<Bytes>>;
type HyperRequest = http::Request<Full<Bytes>>;

/// The service under the auth layer: resolves a relative URI against the API's base URL, as a
/// URL library does (RFC 3986 §5; WHATWG for `\`), then sends it with hyper. So
/// `//other:port/x` goes to `other:port`, which is why the scope must call it foreign.
#[derive(Clone)]
struct ResolveAgainst {
    base: reqwest::Url,
    inner: Hyper,
}

impl Service<HyperRequest> for ResolveAgainst {
    type Response = <Hyper as Service<HyperRequest>>::Response;
    type Error = <Hyper as Service<HyperRequest>>::Error;
    type Future = <Hyper as Service<HyperRequest>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<HyperRequest>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: HyperRequest) -> Self::Future {
        if request.uri().scheme().is_none() {
            let resolved = self.base.join(&request.uri().to_string()).unwrap();
            *request.uri_mut() = resolved.as_str().parse().unwrap();
        }
        self.inner.call(request)
    }
}

async fn call<S, B>(service: &mut S, uri: &str) -> u16
where
    S: Service<HyperRequest, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
{
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    let request = http::Request::get(uri).body(Full::default()).unwrap();
    service.call(request).await.unwrap().status().as_u16()
}

#[test]
fn protocol_relative_target_is_foreign_so_it_triggers_no_login_and_carries_no_bearer() {
    two_servers(|api, other| async move {
        let http = reqwest::Client::new();
        let session = session(&api, &http).await;
        let hyper: Hyper = Client::builder(TokioExecutor::new()).build_http();
        let resolve = ResolveAgainst {
            base: reqwest::Url::parse(api.base_url()).unwrap(),
            inner: hyper,
        };
        let mut service = AuthLayer::new(session.clone(), scope(&api)).layer(resolve);
        let elsewhere = format!("//{}/api/collect", other.addr());
        let elsewhere_backslash = format!("/\\{}/api/collect", other.addr());

        // Before any session: a foreign request starts no login and goes out without a token
        // (the other origin answers 401 for want of one, delivered as is).
        assert_eq!(call(&mut service, &elsewhere).await, 401);
        assert_eq!(call(&mut service, &elsewhere_backslash).await, 401);
        let home = api.admin().counters();
        assert_eq!((home.codes_issued, home.logins), (0, 0), "no silent login");

        // The same service does authenticate a relative path of the API's own.
        assert_eq!(call(&mut service, "/api/relative").await, 200);
        // With a session held, the other origin still gets no token.
        assert_eq!(call(&mut service, &elsewhere).await, 401);

        let home = api.admin().counters();
        assert_eq!((home.logins, home.refresh_calls), (1, 0));
        assert_eq!(home.requests_per_path.get("/api/relative"), Some(&1));
        let away = other.admin().counters();
        assert_eq!(away.requests_per_path.get("/api/collect"), Some(&3));
        assert_eq!(
            away.requests_with_bearer, 0,
            "no token reached the other origin"
        );

        // reqwest cannot express a protocol-relative URL at all: it fails before the session
        // sees it.
        let client = ApiClient::new(http, session, scope(&api));
        let refused = client.get(&elsewhere).await;
        assert!(matches!(refused, Err(Error::Transport(_))), "{refused:?}");
        assert_eq!(api.admin().counters().logins, 1);
    });
}

#[test]
fn same_origin_redirect_keeps_the_bearer_as_documented_and_another_origin_never_gets_it() {
    two_servers(|api, other| async move {
        let http = reqwest::Client::new();
        let client = ApiClient::new(http.clone(), session(&api, &http).await, scope(&api));

        // Same origin: reqwest follows with `Authorization` kept, public path or not (the
        // origin already had the token; docs/integration.md says so).
        let same = api.url("/api/redirect?to=/public/landing");
        assert_eq!(client.get(&same).await.unwrap().status(), 200);
        let home = api.admin().counters();
        assert_eq!(home.public_requests, 1);
        assert_eq!(home.bearer_on_public, 1);

        // Another origin: the bearer stays behind.
        let away = api.url(&format!(
            "/api/redirect?to={}",
            other.url("/public/landing")
        ));
        assert_eq!(client.get(&away).await.unwrap().status(), 200);
        let counters = other.admin().counters();
        assert_eq!(counters.public_requests, 1);
        assert_eq!(counters.requests_with_bearer, 0);
    });
}
