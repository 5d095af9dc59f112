//! The tokio shell over the driver core, without HTTP: the caller's own task settles a request
//! on an `Active` session, shutdown persists a refresh in flight, and a refresh on the file
//! store is saved before the retry goes out with its token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_core::{AccessToken, RefreshToken, RequestSpec, Snapshot, TokenSet, UnixTime, Verdict};
use auth_tokio::{
    Backend, CallError, FileStore, LoginError, MemoryStore, Next, RefreshError, SessionHandle,
};
use tokio::sync::Notify;

/// Counts refreshes; answers with fixed tokens, after `delay`.
#[derive(Clone, Default)]
struct Counting {
    refreshes: Arc<AtomicUsize>,
    started: Arc<Notify>,
    delay: Duration,
}

impl Backend for Counting {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(TokenSet::new(AccessToken::new("at-login")))
    }

    async fn refresh(&self, _: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        tokio::time::sleep(self.delay).await;
        Ok(TokenSet::new(AccessToken::new("at-refreshed"))
            .with_refresh_token(RefreshToken::new("rt-refreshed")))
    }
}

fn stored(access: &str, refresh: &str) -> Snapshot {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Snapshot {
        access_token: AccessToken::new(access),
        refresh_token: Some(RefreshToken::new(refresh)),
        expires_at: Some(UnixTime::from_millis(
            u64::try_from(now.as_millis()).unwrap() + 600_000,
        )),
    }
}

/// Polls `future` once with a waker that does nothing: `Ready` only if it needed no other task.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    pin!(future).poll(&mut cx)
}

/// The token of the `Send` a call is at (awaited), then answered with `verdict`.
async fn send_and_answer(call: &mut auth_tokio::Call<&'static str>, verdict: Verdict) -> String {
    let Next::Send(attempt) = call.next_step().await.unwrap() else {
        panic!("expected a send")
    };
    let token = attempt.token().unwrap().expose_secret().to_owned();
    call.respond("answer", verdict);
    token
}

#[tokio::test]
async fn an_active_session_settles_a_request_on_the_callers_task_without_a_hand_off() {
    let store = MemoryStore::with_snapshot(&stored("at-stored", "rt-stored"));
    let session = SessionHandle::builder(Counting::default())
        .store(store)
        .start()
        .await;
    let mut call = session.call::<&str>(RequestSpec::bearer());
    // No other task runs between these polls: the step comes from the submit itself...
    let Poll::Ready(Ok(Next::Send(attempt))) = poll_once(call.next_step()) else {
        panic!("the send needed another task")
    };
    assert_eq!(attempt.token().unwrap().expose_secret(), "at-stored");
    call.respond("200 OK", Verdict::Accepted);
    // ...and the delivery from the response.
    let Poll::Ready(Ok(Next::Deliver(body))) = poll_once(call.next_step()) else {
        panic!("the delivery needed another task")
    };
    assert_eq!(body, "200 OK");
}

#[tokio::test]
async fn shutdown_persists_the_refresh_in_flight_and_later_use_is_stopped() {
    let store = MemoryStore::with_snapshot(&stored("at-stored", "rt-stored"));
    let backend = Counting {
        delay: Duration::from_millis(100),
        ..Counting::default()
    };
    let session = SessionHandle::builder(backend.clone())
        .store(store.clone())
        .start()
        .await;
    let mut call = session.call::<&str>(RequestSpec::bearer());
    send_and_answer(&mut call, Verdict::Rejected).await;
    backend.started.notified().await;

    session.shutdown(Duration::from_secs(5)).await.unwrap();
    // The request waiting for the refresh hears that the session stopped...
    assert!(matches!(call.next_step().await, Err(CallError::Stopped)));
    // ...and the rotated tokens are in the store.
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.access_token.expose_secret(), "at-refreshed");
    let refresh = snapshot.refresh_token.unwrap();
    assert_eq!(refresh.expose_secret(), "rt-refreshed");

    let mut later = session.call::<()>(RequestSpec::bearer());
    assert!(matches!(later.next_step().await, Err(CallError::Stopped)));
    assert!(matches!(session.login().await, Err(CallError::Stopped)));
    assert!(matches!(session.logout().await, Err(CallError::Stopped)));
    assert_eq!(backend.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refresh_on_the_file_store_is_saved_before_the_retry_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("session.json"));
    store.save(&stored("at-stored", "rt-stored")).unwrap();
    let backend = Counting::default();
    let session = SessionHandle::builder(backend.clone())
        .store(store.clone())
        .start()
        .await;
    let mut call = session.call::<&str>(RequestSpec::bearer());
    send_and_answer(&mut call, Verdict::Rejected).await;
    let Next::Send(retry) = call.next_step().await.unwrap() else {
        panic!("expected the retry")
    };
    assert_eq!(retry.token().unwrap().expose_secret(), "at-refreshed");
    // The retry carries the new token only once the file holds it.
    let saved = store.load().unwrap().unwrap();
    assert_eq!(saved.access_token.expose_secret(), "at-refreshed");
    assert_eq!(saved.refresh_token.unwrap().expose_secret(), "rt-refreshed");
    call.respond("answer", Verdict::Accepted);
    assert!(matches!(
        call.next_step().await,
        Ok(Next::Deliver("answer"))
    ));
    assert_eq!(backend.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_the_last_handle_and_call_ends_the_session() {
    let session = SessionHandle::builder(Counting::default()).start().await;
    let mut events = session.events();
    drop(session);
    // The state's sender lives in the core, which the background task frees when it ends.
    tokio::time::timeout(Duration::from_secs(5), async {
        while events.changed().await.is_ok() {}
    })
    .await
    .unwrap();
}
