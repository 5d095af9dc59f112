//! The parent's handle on one child process of a fleet: starts `auth-demo fleet-child <spec>`,
//! sends it [`Order`]s, reads its [`Reply`]s with a time limit, and kills it (`SIGKILL`) when
//! told to or when dropped, so no child outlives its parent's run, whatever ended it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use auth_tokio::auth_core::SessionState;

use super::protocol::{ChildSpec, Order, Reply, Tally};
use super::{interrupt, FleetError};

/// The hidden subcommand that makes the binary a fleet child.
pub const CHILD_SUBCOMMAND: &str = "fleet-child";

/// The environment variable of the binary's log filter.
pub const LOG_ENV: &str = "SEAMLESS_LOG";

/// What a child whose logs are captured logs: everything of this project's crates, down to
/// `TRACE` (where a leaked secret would most likely be), and the `INFO` of the rest.
pub const CAPTURED_LOG_LEVELS: &str =
    "auth_tokio=trace,auth_driver=trace,auth_core=trace,auth_store=trace,auth_redis=trace,auth_http=trace,auth_demo=trace,info";

/// How many of a child's last lines an error shows.
const SHOWN_LINES: usize = 5;

/// One child process.
pub struct ChildProcess {
    tag: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line it printed, protocol or not, for error messages.
    said: Vec<String>,
}

impl ChildProcess {
    /// Starts `exe fleet-child <spec as JSON>` (`exe` is the `auth-demo` binary: the running one
    /// for the demo, `CARGO_BIN_EXE_auth-demo` for tests). Its stderr (logs) is the parent's, or
    /// with `log_file` that file, at [`CAPTURED_LOG_LEVELS`].
    pub fn spawn(
        exe: &Path,
        spec: &ChildSpec,
        log_file: Option<&Path>,
    ) -> Result<ChildProcess, FleetError> {
        let spawn_error = |source| FleetError::Spawn {
            tag: spec.tag.clone(),
            source,
        };
        let json = serde_json::to_string(spec).map_err(|error| FleetError::Spawn {
            tag: spec.tag.clone(),
            source: std::io::Error::other(error),
        })?;
        let mut command = Command::new(exe);
        command
            .args([CHILD_SUBCOMMAND, &json])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        match log_file {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(spawn_error)?;
                command
                    .stderr(Stdio::from(file))
                    .env(LOG_ENV, CAPTURED_LOG_LEVELS);
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(std::io::Error::other("no pipes to the child")));
        };
        let (sender, lines) = mpsc::channel();
        // A reader thread per child, so that a wait for a line can time out. It ends when the
        // child's stdout closes (exit or kill).
        thread::Builder::new()
            .name(format!("fleet-{}-stdout", spec.tag))
            .spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            })
            .map_err(spawn_error)?;
        Ok(ChildProcess {
            tag: spec.tag.clone(),
            child,
            stdin: Some(stdin),
            lines,
            said: Vec::new(),
        })
    }

    /// The child's name.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to say it is ready; the state its session started in.
    pub fn ready(&mut self, limit: Duration) -> Result<SessionState, FleetError> {
        match self.reply(limit)? {
            Reply::Ready { state } => Ok(state),
            other => Err(self.unexpected("ready", &other)),
        }
    }

    /// Sends an order without waiting for its answer.
    pub fn send(&mut self, order: &Order) -> Result<(), FleetError> {
        let mut line = serde_json::to_string(order).map_err(|error| FleetError::Pipe {
            tag: self.tag.clone(),
            source: std::io::Error::other(error),
        })?;
        line.push('\n');
        let stdin = self.stdin.as_mut().ok_or_else(|| FleetError::Pipe {
            tag: self.tag.clone(),
            source: std::io::Error::other("the child's stdin is closed"),
        })?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|source| FleetError::Pipe {
                tag: self.tag.clone(),
                source,
            })
    }

    /// The next reply, waiting at most `limit`. Lines that are not replies are kept for error
    /// messages and skipped.
    pub fn reply(&mut self, limit: Duration) -> Result<Reply, FleetError> {
        let deadline = Instant::now() + limit;
        loop {
            if interrupt::interrupted() {
                return Err(FleetError::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left.min(interrupt::POLL)) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) if !left.is_zero() => continue,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(FleetError::Silent {
                        tag: self.tag.clone(),
                        waited: limit,
                        last: self.last_lines(),
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(FleetError::Exited {
                        tag: self.tag.clone(),
                        status,
                        last: self.last_lines(),
                    });
                }
            };
            let reply = serde_json::from_str::<Reply>(&line).ok();
            self.said.push(line);
            if let Some(reply) = reply {
                return Ok(reply);
            }
        }
    }

    /// Sends an order and waits at most `limit` for its answer.
    pub fn ask(&mut self, order: &Order, limit: Duration) -> Result<Reply, FleetError> {
        self.send(order)?;
        self.reply(limit)
    }

    /// The answer to a storm order sent before ([`ChildProcess::send`]).
    pub fn stormed(&mut self, limit: Duration) -> Result<Tally, FleetError> {
        match self.reply(limit)? {
            Reply::Stormed(tally) => Ok(tally),
            other => Err(self.unexpected("stormed", &other)),
        }
    }

    /// Sends a storm and waits for its tally.
    pub fn storm(
        &mut self,
        requests: u32,
        spread: Duration,
        limit: Duration,
    ) -> Result<Tally, FleetError> {
        self.send(&storm(requests, spread))?;
        self.stormed(limit)
    }

    /// Logs the child's session out; `Ok(None)` when `logout()` reported success.
    pub fn logout(&mut self, limit: Duration) -> Result<Option<String>, FleetError> {
        match self.ask(&Order::Logout, limit)? {
            Reply::LoggedOut { error } => Ok(error),
            other => Err(self.unexpected("logged_out", &other)),
        }
    }

    /// The child's session state.
    pub fn state(&mut self, limit: Duration) -> Result<SessionState, FleetError> {
        match self.ask(&Order::State, limit)? {
            Reply::State { state } => Ok(state),
            other => Err(self.unexpected("state", &other)),
        }
    }

    /// Tells the child to quit, returns its totals and waits for it to exit.
    pub fn quit(mut self, limit: Duration) -> Result<Tally, FleetError> {
        let totals = match self.ask(&Order::Quit, limit)? {
            Reply::Bye(totals) => totals,
            other => return Err(self.unexpected("bye", &other)),
        };
        self.stdin = None;
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(totals),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    return Err(FleetError::Silent {
                        tag: self.tag.clone(),
                        waited: limit,
                        last: self.last_lines(),
                    })
                }
                Err(source) => {
                    return Err(FleetError::Pipe {
                        tag: self.tag.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Kills the child with `SIGKILL` (a crash: nothing of it runs after this) and reaps it.
    pub fn kill(&mut self) -> Result<(), FleetError> {
        self.stdin = None;
        self.child
            .kill()
            .and_then(|()| self.child.wait().map(drop))
            .map_err(|source| FleetError::Pipe {
                tag: self.tag.clone(),
                source,
            })
    }

    /// Everything the child printed so far.
    pub fn said(&self) -> &[String] {
        &self.said
    }

    fn last_lines(&self) -> String {
        let from = self.said.len().saturating_sub(SHOWN_LINES);
        self.said[from..].join(" | ")
    }

    fn unexpected(&self, wanted: &'static str, got: &Reply) -> FleetError {
        FleetError::Unexpected {
            tag: self.tag.clone(),
            wanted,
            got: format!("{got:?}"),
        }
    }
}

/// A storm order: `requests` started evenly over `spread`.
pub fn storm(requests: u32, spread: Duration) -> Order {
    Order::Storm {
        requests,
        spread_ms: u64::try_from(spread.as_millis()).unwrap_or(u64::MAX),
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // A child that already exited makes this a no-op; one still running is killed, so that a
        // failed run leaves nothing behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl std::fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildProcess")
            .field("tag", &self.tag)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}
