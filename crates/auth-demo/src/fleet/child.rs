//! A fleet child: `auth-demo fleet-child <spec>` builds a tokio-driver session on the shared
//! store named in its [`ChildSpec`], says [`Reply::Ready`], then carries out the [`Order`]s
//! read from stdin, one at a time, answering each with one JSON line on stdout.
//!
//! Stdout carries the protocol only (logs go to stderr). When stdin closes (the parent is gone,
//! whatever killed it) the child shuts its session down and exits, so no child outlives its
//! fleet.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use auth_redis::RedisStore;
use auth_store::shared::SharedFileStore;
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{Error, FileStore, Scope, SessionHandle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::protocol::{kind_of_session_error, ChildSpec, Order, Reply, StoreSpec, Tally};
use crate::backend::{DemoBackend, DemoBackendError};

/// How long the child's session may take to hand its last operation to the store at exit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Why a child could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// Its argument is not a [`ChildSpec`].
    #[error("the child's spec is not valid JSON of a ChildSpec: {0}")]
    Spec(#[source] serde_json::Error),
    /// The tokio runtime could not start.
    #[error("could not start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The demo server's URL is not usable.
    #[error("the demo server's URL is not usable: {0}")]
    Backend(#[from] DemoBackendError),
    /// The demo server's URL is not a valid API origin.
    #[error("the demo server's URL is not a valid API origin: {0}")]
    Scope(#[from] auth_tokio::ScopeError),
    /// The Redis store could not be set up (its text never shows the URL).
    #[error("could not open the Redis store: {0}")]
    Redis(#[from] auth_redis::ConfigError),
    /// Stdout is gone: the parent cannot hear the child any more.
    #[error("could not write to the parent: {0}")]
    Stdout(#[source] std::io::Error),
}

/// Runs the child with its spec (JSON) until it is told to quit or its stdin closes.
pub fn main(spec: &str) -> Result<(), ChildError> {
    let spec: ChildSpec = serde_json::from_str(spec).map_err(ChildError::Spec)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ChildError::Runtime)?;
    // Every log line of the child names it: the fleet's children share one stderr.
    let span = tracing::info_span!("child", tag = %spec.tag);
    let result = runtime.block_on(run(&spec).instrument(span));
    if let Err(error) = &result {
        // The parent learns why from the protocol too, not only from the exit status.
        let _ = say(&Reply::Failed {
            error: error.to_string(),
        });
    }
    result
}

async fn run(spec: &ChildSpec) -> Result<(), ChildError> {
    let http = reqwest::Client::new();
    let session = start_session(spec, &http).await?;
    let api = ApiClient::new(http, session.clone(), Scope::new(&spec.server)?);
    let mut orders = read_orders();
    say(&Reply::Ready {
        state: session.state(),
    })?;
    let mut totals = Tally::default();
    while let Some(order) = orders.recv().await {
        let reply = match order {
            Order::Storm {
                requests,
                spread_ms,
            } => {
                let spread = Duration::from_millis(spread_ms);
                let tally = storm(&api, &spec.tag, &spec.server, requests, spread).await;
                totals.add(&tally);
                Reply::Stormed(tally)
            }
            Order::Logout => Reply::LoggedOut {
                error: session.logout().await.err().map(|error| error.to_string()),
            },
            Order::State => Reply::State {
                state: session.state(),
            },
            Order::Quit => break,
        };
        say(&reply)?;
    }
    if let Err(error) = session.shutdown(SHUTDOWN_WAIT).await {
        tracing::warn!(%error, "the session did not shut down cleanly");
    }
    say(&Reply::Bye(totals))
}

/// The session on the shared store named in the spec.
async fn start_session(
    spec: &ChildSpec,
    http: &reqwest::Client,
) -> Result<SessionHandle, ChildError> {
    let backend = DemoBackend::new(http.clone(), &spec.server)?;
    let builder = SessionHandle::builder(backend).config(spec.config);
    // Each store call answers within a quarter of the operation timeout, so a store that is
    // down or hung costs a needed refresh a few retries, not its whole deadline.
    let call_limit = (spec.config.operation_timeout / 4).clamp(
        Duration::from_millis(50),
        auth_store::shared::DEFAULT_LOCK_WAIT,
    );
    let builder = match &spec.store {
        StoreSpec::File { path } => {
            builder.shared_store(SharedFileStore::new(path).with_lock_wait(call_limit))
        }
        StoreSpec::Local { path } => return Ok(builder.store(FileStore::new(path)).start().await),
        StoreSpec::Redis { url, prefix } => {
            let options = auth_redis::Options::default().timeout(call_limit);
            let store = RedisStore::with_options(url, prefix, options)?;
            builder.shared_store(store)
        }
    };
    Ok(builder.start().await)
}

/// Sends `requests` GETs to `/api/fleet/<tag>/<n>`, started evenly over `spread`, and counts how
/// they ended.
async fn storm(api: &ApiClient, tag: &str, server: &str, requests: u32, spread: Duration) -> Tally {
    let started = tokio::time::Instant::now();
    let mut calls = JoinSet::new();
    for n in 0..requests {
        let offset = spread.mul_f64(f64::from(n) / f64::from(requests.max(1)));
        let api = api.clone();
        let url = format!("{server}/api/fleet/{tag}/{n}");
        calls.spawn(
            async move {
                tokio::time::sleep_until(started + offset).await;
                let sent = Instant::now();
                let outcome = match api.get(&url).await {
                    Ok(response) if response.status() == 200 => None,
                    Ok(response) => Some(format!("HTTP {}", response.status().as_u16())),
                    Err(Error::Session(error)) => Some(kind_of_session_error(&error)),
                    Err(Error::Transport(_)) => Some("transport".to_owned()),
                    Err(_) => Some("stopped".to_owned()),
                };
                (outcome, sent.elapsed())
            }
            .in_current_span(),
        );
    }
    let mut tally = Tally::default();
    while let Some(joined) = calls.join_next().await {
        let (outcome, took) = match joined {
            Ok(result) => result,
            Err(_) => (Some("panicked".to_owned()), Duration::ZERO),
        };
        let took = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        tally.slowest_ms = tally.slowest_ms.max(took);
        match outcome {
            None => tally.ok += 1,
            Some(kind) => tally.fail(kind),
        }
    }
    tally
}

/// The orders on stdin, read on a thread of their own (a blocking read); the channel closes
/// when stdin does. A line that is not an order is logged and skipped.
fn read_orders() -> mpsc::UnboundedReceiver<Order> {
    let (sender, orders) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("fleet-orders".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                match serde_json::from_str::<Order>(&line) {
                    Ok(order) => {
                        if sender.send(order).is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "not an order; skipped"),
                }
            }
        });
    if let Err(error) = spawned {
        // Without the reader the channel is closed at once: the child quits.
        tracing::warn!(%error, "could not read orders");
    }
    orders
}

/// Writes one reply line on stdout.
fn say(reply: &Reply) -> Result<(), ChildError> {
    let line = serde_json::to_string(reply).map_err(|error| ChildError::Stdout(error.into()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(ChildError::Stdout)
}
