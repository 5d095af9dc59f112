//! Shared helpers of auth-blocking's end-to-end tests: the demo server on a thread, the demo
//! backend, a fast config, and the probe child process.
#![allow(dead_code)] // each test file uses its own subset

#[path = "../support/demo.rs"]
pub(crate) mod demo;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{Config, SessionState};
use auth_demo::server::{spawn_in_thread, ServerConfig, ThreadedServer};

pub(crate) use demo::DemoBackend;

/// How long any single wait of a test may take before the test fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// The demo auth server on its own thread and loopback port.
pub(crate) fn server() -> ThreadedServer {
    spawn_in_thread(ServerConfig::default()).expect("demo server")
}

/// Short timeouts and backoff so failure paths finish in milliseconds.
pub(crate) fn fast_config() -> Config {
    Config {
        operation_timeout: Duration::from_secs(3),
        queue_timeout: Duration::from_secs(8),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..Config::default()
    }
}

/// The demo backend for `server`, every call bounded by 5 s.
pub(crate) fn backend(server: &ThreadedServer) -> DemoBackend {
    DemoBackend::new(server.base_url(), Duration::from_secs(5))
}

/// Waits on a session's event stream until it reports `state`.
pub(crate) fn wait_for_event(events: &Receiver<SessionState>, state: SessionState) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(seen) if seen == state => return,
            Ok(_) => {}
            Err(error) => panic!("no {state:?} event: {error:?}"),
        }
    }
}

/// A line of a probe's stdout, or its end.
type Line = Option<String>;

/// A `seamless-probe` child process: lines of its stdout arrive on a channel (read by a thread),
/// so every wait is bounded. Dropping it kills the process if it still runs.
pub(crate) struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    /// Every line read so far.
    seen: Vec<String>,
    closed: bool,
}

impl Probe {
    /// Starts the probe against `server` with the store at `store` and extra `args`.
    pub(crate) fn start(server: &ThreadedServer, store: &Path, args: &[&str]) -> Probe {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seamless-probe"))
            .arg("--server")
            .arg(server.base_url())
            .arg("--store")
            .arg(store)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the probe");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        if tx.send(Some(line)).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(None);
        });
        Probe {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            closed: false,
        }
    }

    /// Reads lines until one equals `line` (within [`PATIENCE`]).
    pub(crate) fn expect(&mut self, line: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.read(deadline) {
                Some(seen) if seen == line => return,
                Some(_) => {}
                None => panic!("the probe ended before {line:?}; it said {:#?}", self.seen),
            }
        }
    }

    /// Lets a probe started with `--wait-go` run its next wave.
    pub(crate) fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("write to the probe");
        stdin.flush().expect("flush");
    }

    /// SIGKILLs the probe and reaps it.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the probe");
        let status = self.child.wait().expect("reap the probe");
        assert!(!status.success(), "a killed probe cannot succeed");
    }

    /// Waits for the probe to exit on its own (its stdout closes first), within [`PATIENCE`].
    pub(crate) fn finish(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        while self.read(deadline).is_some() {}
        self.child.wait().expect("reap the probe")
    }

    /// Paths the probe reported delivered 2xx.
    pub(crate) fn delivered(&self) -> BTreeSet<String> {
        self.seen
            .iter()
            .filter_map(|line| line.strip_prefix("ok "))
            .map(str::to_owned)
            .collect()
    }

    /// Requests the probe reported failed.
    pub(crate) fn failures(&self) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|line| line.starts_with("fail "))
            .map(String::as_str)
            .collect()
    }

    /// Everything the probe said.
    pub(crate) fn said(&self) -> &[String] {
        &self.seen
    }

    /// The next line, `None` at the end of stdout; panics (killing the probe on drop) when
    /// nothing comes by `deadline`.
    fn read(&mut self, deadline: Instant) -> Option<String> {
        if self.closed {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                self.closed = true;
                None
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "the probe said nothing for {PATIENCE:?}; so far {:#?}",
                    self.seen
                )
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
