//! The demo auth server: an axum app on an ephemeral loopback port that behaves like a real
//! backend, with admin knobs and counters for tests.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `POST /platform/code` | stand-in for the platform's `login()`: a one-time code (`{"code": …}`) |
//! | `POST /login` | form `code=…`: exchanges the code for tokens (RFC 6749 §5.1); a spent or unknown code is 400 `invalid_grant` |
//! | `POST /refresh` | form `grant_type=refresh_token&refresh_token=…`: rotates; a revoked or unknown refresh token is 400 `invalid_grant`; a refresh token presented a second time is 400 `invalid_grant`, counted in [`Counters::reuse_detected`], and with [`ServerConfig::revoke_family_on_reuse`] revokes its whole family (every later refresh of the family is `invalid_grant`, its access tokens 401) |
//! | `POST /revoke` | form `token=…` (RFC 7009): revokes, always 200 |
//! | `ANY /api/…` | protected: 401 `WWW-Authenticate: Bearer error="invalid_token"` for an expired or unknown token, `Bearer realm=…` without a token; `/api/forbidden` is 403 `insufficient_scope`; `/api/redirect?to=URL` is a 302 |
//! | `ANY /public/…` | public: never needs a token (and counts the ones that arrive) |
//! | `ANY /coded/…` | protected the mini-program way: always HTTP 200, `{"code":401,"msg":…}` for a missing, expired or unknown token, `{"code":0,"data":{…}}` otherwise (counted in [`Counters::coded_refusals`]) |
//!
//! [`spawn`] runs it on the current tokio runtime; [`spawn_in_thread`] on its own thread (for a
//! blocking driver's tests). Both hand back the base URL and an [`Admin`] for knobs and
//! [`Counters`].

mod routes;
mod state;

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

pub use state::Counters;
use state::{Books, Fault};

/// How long a "hung" endpoint waits before answering anyway (longer than any test).
pub const HANG: Duration = Duration::from_secs(120);

/// How the server behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Lifetime of access tokens (`expires_in`, whole seconds, at least 1).
    pub access_token_lifetime: Duration,
    /// On a refresh token reuse, also revoke its whole family (every refresh token rotated from
    /// the same login, and their access tokens), as Ory Hydra, Auth0, Okta and Keycloak do. A
    /// reuse is refused and counted either way. Off by default: the single-process stories and
    /// the storm of processes on one plain file store (`tests/multiprocess.rs`) count on the
    /// rotation's winner keeping its tokens; the fleet demo and its fault tests turn it on,
    /// where a reuse must cost what it costs in production.
    pub revoke_family_on_reuse: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            access_token_lifetime: Duration::from_secs(300),
            revoke_family_on_reuse: false,
        }
    }
}

impl ServerConfig {
    /// The same config with another access-token lifetime.
    pub fn with_access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// The same config with family revocation on reuse turned on or off.
    pub fn with_family_revocation(mut self, revoke: bool) -> Self {
        self.revoke_family_on_reuse = revoke;
        self
    }
}

/// The state shared by the handlers and the admin knobs.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Mutex<Books>>);

impl Shared {
    fn new(config: ServerConfig) -> Self {
        Shared(Arc::new(Mutex::new(Books::new(config))))
    }

    pub(crate) fn books(&self) -> MutexGuard<'_, Books> {
        // Handlers never panic while holding the lock; if one did, the books are still whole
        // (every update is a single statement), so keep serving.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Admin knobs and counters of one server. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    shared: Shared,
}

/// A server running on the current tokio runtime; stops accepting when dropped.
pub struct ServerHandle {
    addr: SocketAddr,
    base_url: String,
    admin: Admin,
    task: tokio::task::AbortHandle,
}

/// A server running on its own thread and runtime; stops when dropped.
pub struct ThreadedServer {
    addr: SocketAddr,
    base_url: String,
    admin: Admin,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// How many connections may wait to be accepted. A fleet opens hundreds at the same instant
/// (each of its processes one per concurrent request); with the usual 128 the kernel drops the
/// rest and their clients retry only a second later, which a storm would measure.
const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `127.0.0.1` at an ephemeral port, registered with the current runtime.
fn listen() -> io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Starts a server on `127.0.0.1` at an ephemeral port, on the current tokio runtime.
pub async fn spawn(config: ServerConfig) -> io::Result<ServerHandle> {
    let listener = listen()?;
    let addr = listener.local_addr()?;
    let shared = Shared::new(config);
    let app = routes::router(shared.clone());
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "demo server stopped");
        }
    });
    tracing::info!(%addr, "demo auth server listening");
    Ok(ServerHandle {
        addr,
        base_url: format!("http://{addr}"),
        admin: Admin { shared },
        task: task.abort_handle(),
    })
}

/// Starts a server on `127.0.0.1` at an ephemeral port, on a thread of its own with a
/// single-threaded tokio runtime: for callers without a runtime (the blocking driver).
pub fn spawn_in_thread(config: ServerConfig) -> io::Result<ThreadedServer> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered with the server's runtime, which the thread below runs.
    let listener = {
        let _runtime = runtime.enter();
        listen()?
    };
    let addr = listener.local_addr()?;
    let shared = Shared::new(config);
    let app = routes::router(shared.clone());
    let (shutdown, stop) = oneshot::channel::<()>();
    let thread = thread::Builder::new()
        .name("demo-auth-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    result = axum::serve(listener, app).into_future() => {
                        if let Err(error) = result {
                            tracing::warn!(%error, "demo server stopped");
                        }
                    }
                    _ = stop => {}
                }
            });
        })?;
    Ok(ThreadedServer {
        addr,
        base_url: format!("http://{addr}"),
        admin: Admin { shared },
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

impl ServerHandle {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL joined with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Knobs and counters.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ThreadedServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL joined with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Knobs and counters.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }
}

impl Drop for ThreadedServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Admin {
    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.books().counters.clone()
    }

    /// Zeroes the counters (tokens and faults are kept).
    pub fn reset_counters(&self) {
        self.shared.books().counters = Counters::default();
    }

    /// Every access token issued so far expires now: the next API call with one gets 401
    /// `invalid_token`.
    pub fn expire_access_tokens(&self) {
        self.shared.books().expire_access_tokens();
    }

    /// Every refresh token issued so far is dead: the next refresh gets 400 `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.books().revoke_refresh_tokens();
    }

    /// The next `n` refreshes wait `delay` before answering.
    pub fn delay_refreshes(&self, n: usize, delay: Duration) {
        self.push_refresh(n, Fault::Delay(delay));
    }

    /// The next `n` refreshes are carried out at once (the refresh token is rotated, spent) but
    /// answered only after `delay`: a client that gives up or dies meanwhile leaves a spent
    /// refresh token behind, which must never be presented again.
    pub fn delay_refresh_answers(&self, n: usize, delay: Duration) {
        self.push_refresh(n, Fault::DelayAnswer(delay));
    }

    /// The next `n` refreshes hang (answer only after [`HANG`]).
    pub fn hang_refreshes(&self, n: usize) {
        self.push_refresh(n, Fault::Delay(HANG));
    }

    /// The next `n` refreshes answer `status` (e.g. 503) with `temporarily_unavailable`.
    pub fn fail_refreshes(&self, n: usize, status: u16) {
        self.push_refresh(n, Fault::Fail(status));
    }

    /// The next `n` logins wait `delay` before answering.
    pub fn delay_logins(&self, n: usize, delay: Duration) {
        self.push_login(n, Fault::Delay(delay));
    }

    /// The next `n` logins answer `status` with `temporarily_unavailable`.
    pub fn fail_logins(&self, n: usize, status: u16) {
        self.push_login(n, Fault::Fail(status));
    }

    /// The next `n` logins are refused for good (400 `access_denied`: the user must act).
    pub fn refuse_logins(&self, n: usize) {
        self.push_login(n, Fault::Refuse);
    }

    /// Every secret the server handed out (codes, access and refresh tokens), so a test can
    /// check that none appears in its logs.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.books().issued_secrets()
    }

    fn push_refresh(&self, n: usize, fault: Fault) {
        let mut books = self.shared.books();
        books.refresh_faults.extend(std::iter::repeat_n(fault, n));
    }

    fn push_login(&self, n: usize, fault: Fault) {
        let mut books = self.shared.books();
        books.login_faults.extend(std::iter::repeat_n(fault, n));
    }
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ThreadedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}
