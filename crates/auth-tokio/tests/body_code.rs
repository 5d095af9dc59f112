//! Backends that answer HTTP 200 with `{"code":401}` for a refused token (auth-demo's
//! `/coded/…` routes), over real loopback HTTP: with [`BodyCode`] a storm through an expiry
//! makes exactly one refresh and every request is delivered with its body intact, through both
//! integrations (reqwest and tower); with the default classifier the same 200s are delivered
//! as they are and nothing refreshes. The same stories run in auth-blocking's
//! `tests/body_code.rs`.
//!
//! Every test is bounded in time, fails on any `ERROR` log, and fails if any secret the server
//! issued appears in its `TRACE` logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, Counters, ServerConfig, ServerHandle};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::Config;
use auth_tokio::reqwest::ApiClient;
use auth_tokio::tower::AuthLayer;
use auth_tokio::{BodyCode, RequestOptions, Scope, SessionHandle};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::task::JoinSet;
use tower_layer::Layer;
use tower_service::Service;

/// Upper bound of any one test.
const TEST_LIMIT: Duration = Duration::from_secs(40);

/// Requests in each storm.
const STORM: usize = 32;

/// A fresh demo server, an HTTP client and a session on it.
struct Ctx {
    server: ServerHandle,
    http: reqwest::Client,
    session: SessionHandle,
}

/// Runs `test` against a fresh server on a two-worker runtime whose logs are captured, then
/// checks them.
fn e2e<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(Some(2)).unwrap();
    let secrets = runtime.block_on(async {
        let server = server::spawn(ServerConfig::default()).await.unwrap();
        let admin = server.admin().clone();
        let http = reqwest::Client::builder().build().unwrap();
        let backend = DemoBackend::new(http.clone(), server.base_url()).unwrap();
        let config = Config {
            queue_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let session = SessionHandle::builder(backend).config(config).start().await;
        let ctx = Ctx {
            server,
            http,
            session,
        };
        tokio::time::timeout(TEST_LIMIT, test(ctx))
            .await
            .expect("the test did not finish in time");
        admin.issued_secrets()
    });
    drop(runtime);
    assert!(!secrets.is_empty(), "the server issued no secret");
    if let Err(problem) = logs.check(&secrets) {
        panic!("{problem}\n--- captured logs ---\n{}", logs.text());
    }
}

impl Ctx {
    fn counters(&self) -> Counters {
        self.server.admin().counters()
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn scope(&self) -> Scope {
        Scope::new(self.server.base_url())
            .unwrap()
            .public_path("/public")
    }

    fn api(&self) -> ApiClient {
        ApiClient::new(self.http.clone(), self.session.clone(), self.scope())
    }
}

/// `GET url` through `api`: the status and the JSON body the caller reads.
async fn get(api: &ApiClient, url: &str) -> (u16, Value) {
    let response = api.get(url).await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.url().as_str(), url, "the response keeps its URL");
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// `GET <prefix>/<i>` for `i` in `0..n`, all at once.
async fn storm(api: &ApiClient, prefix: &str, n: usize) -> Vec<(u16, Value)> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let (api, url) = (api.clone(), format!("{prefix}/{i}"));
        set.spawn(async move { get(&api, &url).await });
    }
    let mut answers = Vec::new();
    while let Some(answer) = set.join_next().await {
        answers.push(answer.unwrap());
    }
    answers
}

/// An answer of the demo's `/coded/…` routes with the code `0`: the token was good.
fn delivered_with_token(answer: &(u16, Value), serial: u64) -> bool {
    let (status, body) = answer;
    *status == 200 && body["code"] == 0 && body["data"]["token_serial"] == serial
}

/// Refreshes, logins and the requests each token serial served.
fn one_refresh(counters: &Counters, refreshed_requests: usize) {
    assert_eq!(
        (counters.logins, counters.refresh_calls, counters.refreshes),
        (1, 1, 1),
        "one login, then exactly one refresh"
    );
    assert!(
        counters.coded_refusals >= 1,
        "the expiry was seen as 200 {{\"code\":401}}"
    );
    assert_eq!(
        counters.requests_per_token.get(&2),
        Some(&(refreshed_requests as u64)),
        "every request went out once with the refreshed token"
    );
}

#[test]
fn reqwest_storm_through_an_expiry_on_a_body_code_backend_makes_one_refresh() {
    e2e(|ctx| async move {
        let api = ctx.api().with_classifier(BodyCode::new());
        assert!(delivered_with_token(
            &get(&api, &ctx.url("/coded/warmup")).await,
            1
        ));
        ctx.server.admin().expire_access_tokens();
        let answers = storm(&api, &ctx.url("/coded/storm"), STORM).await;
        assert_eq!(answers.len(), STORM);
        for answer in &answers {
            assert!(delivered_with_token(answer, 2), "{answer:?}");
        }
        one_refresh(&ctx.counters(), STORM);
    });
}

#[test]
fn reqwest_default_classifier_delivers_the_body_code_as_is() {
    e2e(|ctx| async move {
        let api = ctx.api();
        assert!(delivered_with_token(
            &get(&api, &ctx.url("/coded/warmup")).await,
            1
        ));
        ctx.server.admin().expire_access_tokens();
        let answers = storm(&api, &ctx.url("/coded/storm"), 4).await;
        for (status, body) in &answers {
            assert_eq!((*status, &body["code"]), (200, &Value::from(401)));
        }
        let counters = ctx.counters();
        assert_eq!(counters.refresh_calls, 0, "RFC 6750 sees only 200s");
        assert_eq!(counters.coded_refusals, 4);
        // The same session, asked through a body-code client, refreshes once and goes on.
        let api = api.with_classifier(BodyCode::new());
        assert!(delivered_with_token(
            &get(&api, &ctx.url("/coded/after")).await,
            2
        ));
        assert_eq!(ctx.counters().refresh_calls, 1);
    });
}

#[test]
fn a_body_longer_than_the_limit_is_delivered_unread() {
    e2e(|ctx| async move {
        let api = ctx.api().with_classifier(BodyCode::new().max_body(8));
        get(&api, &ctx.url("/coded/warmup")).await;
        ctx.server.admin().expire_access_tokens();
        let (status, body) = get(&api, &ctx.url("/coded/long")).await;
        assert_eq!((status, &body["code"]), (200, &Value::from(401)));
        assert_eq!(ctx.counters().refresh_calls, 0);
    });
}

#[test]
fn a_rejection_that_is_not_retried_is_delivered_with_its_body() {
    e2e(|ctx| async move {
        let api = ctx.api().with_classifier(BodyCode::new());
        get(&api, &ctx.url("/coded/warmup")).await;
        ctx.server.admin().expire_access_tokens();
        let url = ctx.url("/coded/once");
        let request = api.http().get(&url).build().unwrap();
        let response = api
            .execute_with(request, RequestOptions::no_retry())
            .await
            .unwrap();
        assert_eq!(response.url().as_str(), url);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(
            body["code"], 401,
            "the refused answer, read once, reaches the caller whole"
        );
        assert_eq!(body["msg"], "login expired");
        assert_eq!(
            ctx.counters().requests_per_path.get("/coded/once"),
            Some(&1)
        );
    });
}

/// A tower service over reqwest, standing for any `http` client (a hyper client...).
#[derive(Clone)]
struct Reqwest(reqwest::Client);

impl Service<http::Request<String>> for Reqwest {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<String>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            Ok(client.execute(request).await?.into())
        })
    }
}

#[test]
fn tower_storm_through_an_expiry_on_a_body_code_backend_makes_one_refresh() {
    e2e(|ctx| async move {
        let layer =
            AuthLayer::new(ctx.session.clone(), ctx.scope()).with_classifier(BodyCode::new());
        let service = layer.layer(Reqwest(ctx.http.clone()));
        let get = |url: String| {
            let mut service = service.clone();
            async move {
                let request = http::Request::get(url).body(String::new()).unwrap();
                let response = service.call(request).await.unwrap();
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice::<Value>(&body).unwrap())
            }
        };
        assert!(delivered_with_token(
            &get(ctx.url("/coded/warmup")).await,
            1
        ));
        ctx.server.admin().expire_access_tokens();
        let mut set = JoinSet::new();
        for i in 0..STORM {
            set.spawn(get(ctx.url(&format!("/coded/tower/{i}"))));
        }
        let mut delivered = 0;
        while let Some(answer) = set.join_next().await {
            let answer = answer.unwrap();
            assert!(delivered_with_token(&answer, 2), "{answer:?}");
            delivered += 1;
        }
        assert_eq!(delivered, STORM);
        one_refresh(&ctx.counters(), STORM);
    });
}
