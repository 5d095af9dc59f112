//! Logout is durable or says it is not (auth-tokio): `logout()` answers only after its clear of
//! the store, `Ok` means no restart from the store comes back signed in, and a store that
//! cannot be cleared is `CallError::LogoutNotDurable` while the session is logged out in memory
//! all the same; `logout()` again retries the clear.
//!
//! Real `FileStore` files, the demo server on loopback, every log line captured: a test fails on
//! an `ERROR` event or on any secret the server issued appearing in the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, ServerConfig, ServerHandle};
use auth_demo::testing::LogCapture;
use auth_tokio::auth_core::{Config, RequestError, SessionState};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{CallError, Error, FileStore, Scope, SessionHandle, StoreError};

const TEST_LIMIT: Duration = Duration::from_secs(30);

fn config() -> Config {
    Config {
        queue_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Runs `test` against a fresh demo server with every log captured, then checks the logs.
fn with_server<F, Fut>(test: F)
where
    F: FnOnce(ServerHandle) -> Fut,
    Fut: Future<Output = ()>,
{
    let logs = LogCapture::new();
    let _guard = logs.install();
    let runtime = logs.runtime(None).unwrap();
    let secrets = runtime.block_on(async {
        let server = server::spawn(ServerConfig::default()).await.unwrap();
        let admin = server.admin().clone();
        tokio::time::timeout(TEST_LIMIT, test(server))
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

/// A session over the file at `path`, and an API client for the demo server's `/api`.
async fn start(server: &ServerHandle, path: &Path) -> ApiClient {
    let http = reqwest::Client::new();
    let backend = DemoBackend::new(http.clone(), server.base_url()).unwrap();
    let session = SessionHandle::builder(backend)
        .config(config())
        .store(FileStore::new(path))
        .start()
        .await;
    let scope = Scope::new(server.base_url())
        .unwrap()
        .public_path("/public");
    ApiClient::new(http, session, scope)
}

async fn get(
    api: &ApiClient,
    server: &ServerHandle,
    path: &str,
) -> Result<u16, Error<reqwest::Error>> {
    let response = api.get(&server.url(path)).await?;
    Ok(response.status().as_u16())
}

#[test]
fn logout_that_cannot_clear_the_store_says_so_and_a_second_logout_clears_it() {
    with_server(|server| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let api = start(&server, &path).await;
        assert_eq!(get(&api, &server, "/api/me").await.unwrap(), 200);
        let saved = std::fs::read(&path).expect("the login was persisted");

        // The session file cannot be removed: a non-empty directory stands in its place (a
        // failure that holds for root too, unlike permission bits).
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("pinned"), b"x").unwrap();

        let refused = api.session().logout().await;
        match &refused {
            Err(CallError::LogoutNotDurable(StoreError::Io(_))) => {}
            other => panic!("expected LogoutNotDurable, got {other:?}"),
        }
        // Logged out in memory either way: nothing is sent, nothing logs in.
        assert_eq!(api.session().state(), SessionState::LoggedOut);
        let after = get(&api, &server, "/api/after-logout").await;
        assert_eq!(after.unwrap_err().session(), Some(RequestError::LoggedOut));
        assert_eq!(server.admin().counters().logins, 1);

        // What a failed clear leaves behind: the session is still on disk, and a restart now
        // would sign the user back in with it.
        std::fs::remove_dir_all(&path).unwrap();
        std::fs::write(&path, &saved).unwrap();
        assert!(FileStore::new(&path).load().unwrap().is_some());

        // Logging out again retries the clear; `Ok` now means it is gone for good.
        api.session().logout().await.unwrap();
        assert!(
            !path.exists(),
            "the retried logout removed the stored session"
        );
        assert_eq!(api.session().state(), SessionState::LoggedOut);

        let restarted = start(&server, &path).await;
        assert_eq!(
            restarted.session().state(),
            SessionState::Anonymous,
            "a restart after a durable logout does not come back signed in"
        );
        assert_eq!(get(&restarted, &server, "/api/me").await.unwrap(), 200);
        assert_eq!(
            server.admin().counters().logins,
            2,
            "the restarted app had to log in again"
        );
    });
}

#[test]
fn logout_that_reports_success_is_not_undone_by_a_restart() {
    with_server(|server| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        let api = start(&server, &path).await;
        assert_eq!(get(&api, &server, "/api/me").await.unwrap(), 200);
        assert!(FileStore::new(&path).load().unwrap().is_some());

        api.session().logout().await.unwrap();
        assert!(FileStore::new(&path).load().unwrap().is_none());
        // Logging out twice is fine: the store is already clear.
        api.session().logout().await.unwrap();

        let restarted = start(&server, &path).await;
        assert_eq!(restarted.session().state(), SessionState::Anonymous);
        assert_eq!(get(&restarted, &server, "/api/me").await.unwrap(), 200);
        let counters = server.admin().counters();
        assert_eq!(counters.logins, 2, "signed in again only by a new login");
        assert_eq!(counters.refresh_calls, 0);
    });
}
