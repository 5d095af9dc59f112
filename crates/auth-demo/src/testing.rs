//! Log capture for end-to-end tests: every `tracing` event at every level goes to a buffer, and
//! [`LogCapture::check`] fails on any `ERROR` event or any secret the server issued.
//!
//! Install it on every thread that runs the test's tasks: [`LogCapture::install`] for the test
//! thread (a current-thread runtime runs everything there), [`LogCapture::runtime`] for a
//! multi-thread runtime whose workers install it as they start.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::dispatcher::{self, DefaultGuard, Dispatch};

/// A buffer of formatted log lines, one subscriber writing to it.
#[derive(Clone)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    dispatch: Dispatch,
}

/// What [`LogCapture::check`] found wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogProblem {
    /// An `ERROR` event was logged.
    #[error("{count} ERROR event(s) logged, first: {first}")]
    Error {
        /// How many.
        count: usize,
        /// The first one.
        first: String,
    },
    /// A secret (token or code) appears in the logs. The line is shown with the secret masked.
    #[error("a secret appears in the logs: {line}")]
    Leak {
        /// The offending line, secret masked.
        line: String,
    },
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for BufferWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock(buffer: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    buffer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for LogCapture {
    fn default() -> Self {
        LogCapture::new()
    }
}

impl LogCapture {
    /// A capture of everything down to `TRACE`, without colours or timestamps.
    pub fn new() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .without_time()
            .with_writer(move || BufferWriter(Arc::clone(&writer)))
            .finish();
        LogCapture {
            buffer,
            dispatch: Dispatch::new(subscriber),
        }
    }

    /// Makes this capture the current thread's subscriber until the guard drops.
    pub fn install(&self) -> DefaultGuard {
        dispatcher::set_default(&self.dispatch)
    }

    /// A runtime whose every thread (workers and blocking pool) logs to this capture.
    /// `worker_threads: None` builds a current-thread runtime (call [`LogCapture::install`] on
    /// the calling thread too).
    pub fn runtime(&self, worker_threads: Option<usize>) -> io::Result<tokio::runtime::Runtime> {
        let mut builder = match worker_threads {
            Some(n) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(n);
                builder
            }
            None => tokio::runtime::Builder::new_current_thread(),
        };
        let dispatch = self.dispatch.clone();
        builder
            .enable_all()
            .on_thread_start(move || {
                // Kept for the thread's whole life: the guard is forgotten on purpose.
                std::mem::forget(dispatcher::set_default(&dispatch));
            })
            .build()
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.buffer)).into_owned()
    }

    /// Fails on any `ERROR` event, or on any of `secrets` appearing anywhere in the logs.
    pub fn check(&self, secrets: &[String]) -> Result<(), LogProblem> {
        let text = self.text();
        let errors: Vec<&str> = text
            .lines()
            .filter(|line| line.trim_start().starts_with("ERROR"))
            .collect();
        if let Some(first) = errors.first() {
            return Err(LogProblem::Error {
                count: errors.len(),
                first: (*first).to_owned(),
            });
        }
        for line in text.lines() {
            if let Some(secret) = secrets
                .iter()
                .find(|s| !s.is_empty() && line.contains(s.as_str()))
            {
                return Err(LogProblem::Leak {
                    line: line.replace(secret.as_str(), "<SECRET>"),
                });
            }
        }
        Ok(())
    }

    /// How many lines were captured.
    pub fn lines(&self) -> usize {
        self.text().lines().count()
    }
}

impl std::fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCapture")
            .field("bytes", &lock(&self.buffer).len())
            .finish()
    }
}
