//! A real `redis-server` for tests (cargo feature `testing`): started on loopback with an
//! ephemeral port and no persistence, stopped when dropped.
//!
//! Tests of a Redis backend are only worth something against the real server: its expiry, its
//! script semantics, its restarts. [`RedisServer::start`] launches `redis-server` from `PATH` on
//! `127.0.0.1` (a port picked by the kernel, retried on a collision), with `--save ""` and
//! `--appendonly no` (a restart loses everything, like a production Redis without persistence)
//! and its own temporary directory, and returns once the server answers `PING`. The faults a
//! fleet meets are methods: [`RedisServer::restart`] (same port, data lost),
//! [`RedisServer::stop`], [`RedisServer::kill`] (`SIGKILL`) and [`RedisServer::pause`] /
//! [`RedisServer::resume`] (`SIGSTOP`/`SIGCONT`: the port still accepts connections but nothing
//! answers, the hung server that timeouts exist for).
//!
//! A machine without `redis-server` gets it installed from the distribution's packages the first
//! time a test needs it (`apt-get install -y redis-server`, as root or through `sudo -n`, once
//! per test process), so `cargo test --workspace` passes on a fresh machine as `.ci/run` does.
//! Where that is not possible the start fails with [`ServerError::NotInstalled`], whose text
//! names `.ci/run`: a test never skips silently.
//!
//! ```no_run
//! use auth_redis::testing::RedisServer;
//!
//! let mut server = RedisServer::start()?;
//! let url = server.url(); // redis://127.0.0.1:<port>/
//! // ... use `url` ...
//! server.restart()?; // same port, empty
//! # Ok::<(), auth_redis::testing::ServerError>(())
//! ```

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a started server has to answer `PING` (a loaded CI machine starts it in well under
/// a second).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`RedisServer::stop`] waits for a graceful exit before it kills.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Ports tried by [`RedisServer::start`] when another process takes the picked one first.
const START_ATTEMPTS: usize = 5;
/// Pause between two probes of a starting (or exiting) server.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// Why a test server could not be started or controlled. `Debug` shows the message too: a test
/// that returns this error prints its `Debug`, and it must name the fix.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `redis-server` is not on `PATH` and could not be installed with `apt-get`: install it
    /// (`.ci/run` does).
    #[error(
        "redis-server is not on PATH and apt-get could not install it: the Redis tests need a \
         real server; install it as .ci/run does (apt-get install redis-server)"
    )]
    NotInstalled,
    /// The process could not be spawned, signalled or waited for.
    #[error("redis-server could not be run: {0}")]
    Io(#[from] io::Error),
    /// The server exited or did not answer `PING` in time (its log is in the message: a test
    /// server's log holds no secret).
    #[error("redis-server did not start: {reason}; its log:\n{log}")]
    NotStarted {
        /// What went wrong.
        reason: String,
        /// The server's own log.
        log: String,
    },
}

impl std::fmt::Debug for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerError({self})")
    }
}

/// A `redis-server` child process on `127.0.0.1`, without persistence, killed on drop.
pub struct RedisServer {
    /// The running server, `None` after [`RedisServer::stop`] or [`RedisServer::kill`].
    child: Option<Child>,
    port: u16,
    /// Its working directory and log; removed on drop.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server on a free ephemeral port and waits until it answers `PING`.
    ///
    /// The port is picked by binding port 0 and releasing it; if another process takes it
    /// before the server binds, the server exits and a new port is tried (a few times).
    pub fn start() -> Result<RedisServer, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("seamless-redis-")
            .tempdir()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match launch(dir.path(), port) {
                Ok(child) => {
                    return Ok(RedisServer {
                        child: Some(child),
                        port,
                        dir,
                    })
                }
                Err(error @ ServerError::NotStarted { .. }) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(ServerError::NotStarted {
            reason: "no attempt was made".to_owned(),
            log: String::new(),
        }))
    }

    /// Kills the server (`SIGKILL`) if it runs and starts a new one on the same port: everything
    /// stored is lost, as in a Redis restart without persistence. Also starts a stopped server.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill()?;
        // The old socket is closed with the process; redis-server binds with SO_REUSEADDR, so
        // only another process taking the port in between can make this fail: retry briefly.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match launch(self.dir.path(), self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(ServerError::NotStarted { .. }) if Instant::now() < deadline => {
                    thread::sleep(PROBE_INTERVAL * 10);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Stops the server gracefully (`SIGTERM`, nothing saved) and waits for it to exit (killed
    /// after a few seconds). Clients then get "connection refused".
    pub fn stop(&mut self) -> Result<(), ServerError> {
        if let Some(mut child) = self.child.take() {
            self.resume_child(&child)?;
            signal(&child, rustix::process::Signal::TERM)?;
            let deadline = Instant::now() + STOP_TIMEOUT;
            while child.try_wait()?.is_none() {
                if Instant::now() >= deadline {
                    child.kill()?;
                    child.wait()?;
                    break;
                }
                thread::sleep(PROBE_INTERVAL);
            }
        }
        Ok(())
    }

    /// Kills the server with `SIGKILL` (a crash: no shutdown of any kind) and reaps it.
    pub fn kill(&mut self) -> Result<(), ServerError> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Freezes the server (`SIGSTOP`): connections are still accepted by the kernel but no
    /// command is answered until [`RedisServer::resume`], the hung server of timeout tests.
    pub fn pause(&mut self) -> Result<(), ServerError> {
        match &self.child {
            Some(child) => signal(child, rustix::process::Signal::STOP),
            None => Ok(()),
        }
    }

    /// Lets a paused server run again (`SIGCONT`).
    pub fn resume(&mut self) -> Result<(), ServerError> {
        match &self.child {
            Some(child) => self.resume_child(child),
            None => Ok(()),
        }
    }

    /// The URL clients connect with: `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port (kept across [`RedisServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, `None` while it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn resume_child(&self, child: &Child) -> Result<(), ServerError> {
        signal(child, rustix::process::Signal::CONT)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            tracing::warn!(%error, "the test redis-server could not be killed");
        }
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .finish()
    }
}

/// A port nobody listens on right now (the kernel's pick for port 0).
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Spawns `redis-server` on `port` in `dir` and waits until it answers `PING` as itself (its
/// `INFO` names its own pid, so another server on that port is not mistaken for it).
fn launch(dir: &Path, port: u16) -> Result<Child, ServerError> {
    match spawn(dir, port) {
        Err(ServerError::NotInstalled) if installed_now() => spawn(dir, port),
        spawned => spawned,
    }
}

/// Installs `redis-server` from the distribution's packages, once per process: `true` when it
/// is there afterwards. As root, or through `sudo -n` (never prompting); the package lists are
/// refreshed only if the first attempt fails, and a held dpkg lock is waited for.
fn installed_now() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let apt = |args: &[&str]| {
            let root = rustix::process::geteuid().is_root();
            let mut command = if root {
                Command::new("apt-get")
            } else {
                let mut sudo = Command::new("sudo");
                sudo.args(["-n", "apt-get"]);
                sudo
            };
            command
                .args(["-o", "DPkg::Lock::Timeout=300", "-y", "-q"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        eprintln!("redis-server is missing: installing it with apt-get (as .ci/run does)");
        apt(&["install", "redis-server"]) || (apt(&["update"]) && apt(&["install", "redis-server"]))
    })
}

fn spawn(dir: &Path, port: u16) -> Result<Child, ServerError> {
    let log = dir.join("redis.log");
    let spawned = Command::new("redis-server")
        .arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--save")
        .arg("")
        .arg("--appendonly")
        .arg("no")
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .arg("--daemonize")
        .arg("no")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ServerError::NotInstalled)
        }
        Err(error) => return Err(error.into()),
    };
    let not_started = |reason: String| ServerError::NotStarted {
        reason,
        log: std::fs::read_to_string(&log).unwrap_or_default(),
    };
    let client = match redis::Client::open(format!("redis://127.0.0.1:{port}/")) {
        Ok(client) => client,
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(not_started(format!("bad test URL: {error}")));
        }
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(not_started(format!("it exited ({status})")));
        }
        if answers_as(&client, child.id()) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(not_started(format!(
                "no answer to PING on port {port} within {START_TIMEOUT:?}"
            )));
        }
        thread::sleep(PROBE_INTERVAL);
    }
}

/// Whether the server on the client's port answers `PING` and is the process `pid`.
fn answers_as(client: &redis::Client, pid: u32) -> bool {
    let probe = || -> redis::RedisResult<bool> {
        let mut connection = client.get_connection_with_timeout(Duration::from_millis(200))?;
        connection.set_read_timeout(Some(Duration::from_millis(500)))?;
        connection.set_write_timeout(Some(Duration::from_millis(500)))?;
        redis::cmd("PING").query::<String>(&mut connection)?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut connection)?;
        let own = format!("process_id:{pid}");
        Ok(info.lines().any(|line| line.trim() == own))
    };
    probe().unwrap_or(false)
}

fn signal(child: &Child, signal: rustix::process::Signal) -> Result<(), ServerError> {
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::other("the child's pid is out of range"))?;
    rustix::process::kill_process(pid, signal).map_err(io::Error::from)?;
    Ok(())
}
