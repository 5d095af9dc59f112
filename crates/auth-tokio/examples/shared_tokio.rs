//! One session shared by two processes through a store, played by two `SessionHandle`s of this
//! process on one `MemorySharedStore` (processes of one host would each open a
//! `SharedFileStore` on the same path; a fleet would use auth-redis): one silent login serves
//! both, tokens refreshed by one are adopted by the other instead of a second refresh, and a
//! logout in one ends the other within its watch interval. The API and the auth server are a
//! few lines in memory, so the example runs anywhere; it exits non-zero if a step goes wrong.
//!
//! Run with `cargo run -p auth-tokio --example shared_tokio`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use auth_core::{
    AccessToken, RefreshToken, RequestError, RequestSpec, SessionState, TokenSet, Verdict,
};
use auth_store::shared::MemorySharedStore;
use auth_tokio::{Backend, CallError, LoginError, Next, RefreshError, SessionHandle};

/// The auth server and the API in one: it issues `access-N` tokens and accepts only the last.
#[derive(Clone, Default)]
struct Server {
    valid: Arc<Mutex<Option<String>>>,
    issued: Arc<AtomicUsize>,
    logins: Arc<AtomicUsize>,
    refreshes: Arc<AtomicUsize>,
}

impl Server {
    fn issue(&self) -> TokenSet {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let access = format!("access-{n}");
        *self.valid.lock().unwrap_or_else(PoisonError::into_inner) = Some(access.clone());
        TokenSet::new(AccessToken::new(access))
            .with_refresh_token(RefreshToken::new(format!("refresh-{n}")))
    }

    /// The API: 200 for the current token, 401 for any other.
    fn answer(&self, token: Option<&AccessToken>) -> (&'static str, Verdict) {
        let valid = self.valid.lock().unwrap_or_else(PoisonError::into_inner);
        match (token, valid.as_deref()) {
            (Some(token), Some(valid)) if token.expose_secret() == valid => {
                ("200 OK", Verdict::Accepted)
            }
            _ => ("401", Verdict::Rejected),
        }
    }

    /// Every access token expires.
    fn expire(&self) {
        *self.valid.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Backend for Server {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        self.logins.fetch_add(1, Ordering::SeqCst);
        Ok(self.issue())
    }

    async fn refresh(&self, _refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        Ok(self.issue())
    }
}

/// One API request through `session`.
async fn request(session: &SessionHandle, server: &Server) -> Result<&'static str, CallError> {
    let mut call = session.call(RequestSpec::bearer());
    loop {
        match call.next_step().await? {
            Next::Send(attempt) => {
                let (body, verdict) = server.answer(attempt.token());
                call.respond(body, verdict);
            }
            Next::Deliver(body) => return Ok(body),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let server = Server::default();
    let store = MemorySharedStore::new();
    let start = || {
        SessionHandle::builder(server.clone())
            .shared_store(store.clone())
            .watch_interval(Duration::from_millis(100))
            .start()
    };
    let (a, b) = (start().await, start().await);
    let mut failures = 0;
    let mut expect = |what: &str, ok: bool| {
        println!("{} {what}", if ok { "  ok  " } else { " FAIL " });
        failures += usize::from(!ok);
    };

    let first = (request(&a, &server).await, request(&b, &server).await);
    expect(
        "both sessions signed in with one silent login",
        matches!(first, (Ok("200 OK"), Ok("200 OK"))) && server.logins.load(Ordering::SeqCst) == 1,
    );

    server.expire();
    let after = (request(&b, &server).await, request(&a, &server).await);
    expect(
        "after the expiry, one refresh: the other session adopted its tokens",
        matches!(after, (Ok("200 OK"), Ok("200 OK")))
            && server.refreshes.load(Ordering::SeqCst) == 1,
    );

    expect(
        "a logout in one session is durable",
        a.logout().await.is_ok(),
    );
    let mut events = b.events();
    let followed = tokio::time::timeout(
        Duration::from_secs(5),
        events.wait_for(|state| *state == SessionState::LoggedOut),
    )
    .await;
    expect(
        "the other session follows it",
        matches!(followed, Ok(Ok(_))),
    );
    expect(
        "and fails its requests with LoggedOut",
        matches!(
            request(&b, &server).await,
            Err(CallError::Session(RequestError::LoggedOut))
        ),
    );

    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
