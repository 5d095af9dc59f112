//! Fleets: several real processes sharing one session through a shared store, against the demo
//! auth server on loopback (issue 12's demo and fault tests).
//!
//! - [`Fleet`]: what a fleet runs against, started and stopped together: the demo server (on a
//!   thread of this process, its [`crate::server::Admin`] at hand), the store (a temporary
//!   directory for the file store, or a real `redis-server` on loopback with a key prefix of
//!   its own), and the `auth-demo` binary its children run. Dropping it stops all of it.
//! - [`ChildProcess`]: one child (`auth-demo fleet-child <spec>`), a tokio-driver session on the
//!   shared store that storms, logs out or reports its state when told to
//!   ([`protocol::Order`]), answering with one JSON line each ([`protocol::Reply`]). A child
//!   still running when its handle drops is killed.
//! - [`demo::run`]: `auth-demo fleet --processes P --store file|redis [--requests R]`.
//!
//! The children are separate processes for the same reason the fleet exists: a lease, a spent
//! mark or a logout tombstone is only tested if nothing but the store carries it between them.

mod child;
pub mod demo;
mod interrupt;
mod process;
pub mod protocol;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use auth_redis::testing::{RedisServer, ServerError};
use auth_tokio::auth_core::Config;

pub use child::{main as child_main, ChildError};
pub use interrupt::install as catch_interrupts;
pub use process::{storm, ChildProcess, CAPTURED_LOG_LEVELS, CHILD_SUBCOMMAND, LOG_ENV};
use protocol::{ChildSpec, StoreSpec};

use crate::server::{self, ServerConfig, ThreadedServer};

/// Which shared store a fleet uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// One file in a temporary directory (processes of one host).
    File,
    /// A real `redis-server` on loopback (a fleet of hosts).
    Redis,
}

impl StoreKind {
    /// Both, for tests that run against each.
    pub const ALL: [StoreKind; 2] = [StoreKind::File, StoreKind::Redis];

    /// `file` or `redis`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::File => "file",
            StoreKind::Redis => "redis",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A store name that is neither `file` nor `redis`.
#[derive(Debug, thiserror::Error)]
#[error("unknown store {0:?}: use file or redis")]
pub struct UnknownStore(String);

impl FromStr for StoreKind {
    type Err = UnknownStore;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "file" => Ok(StoreKind::File),
            "redis" => Ok(StoreKind::Redis),
            other => Err(UnknownStore(other.to_owned())),
        }
    }
}

/// Why a fleet could not run. Nothing here holds a secret: children report counts and error
/// kinds only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The demo auth server did not start.
    #[error("could not start the demo auth server: {0}")]
    Server(#[source] std::io::Error),
    /// `redis-server` did not start or could not be controlled.
    #[error("redis-server: {0}")]
    Redis(#[from] ServerError),
    /// The file store's temporary directory could not be made.
    #[error("could not create the file store's directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// A child process could not be started.
    #[error("could not start child {tag}: {source}")]
    Spawn {
        /// The child.
        tag: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A child's pipe failed.
    #[error("could not talk to child {tag}: {source}")]
    Pipe {
        /// The child.
        tag: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A child did not answer in time.
    #[error("child {tag} said nothing for {waited:?} (last lines: {last})")]
    Silent {
        /// The child.
        tag: String,
        /// How long the parent waited.
        waited: Duration,
        /// What it said last.
        last: String,
    },
    /// A child exited before answering.
    #[error("child {tag} exited ({status}) (last lines: {last})")]
    Exited {
        /// The child.
        tag: String,
        /// Its exit status.
        status: String,
        /// What it said last.
        last: String,
    },
    /// The parent got Ctrl-C or `SIGTERM` ([`catch_interrupts`]): the run stopped early, and
    /// everything it started is stopped.
    #[error("interrupted")]
    Interrupted,
    /// A child answered something else than what the parent waited for.
    #[error("child {tag} answered {got} where {wanted} was expected")]
    Unexpected {
        /// The child.
        tag: String,
        /// The reply the parent waited for.
        wanted: &'static str,
        /// What came.
        got: String,
    },
}

/// Where a fleet's session is stored; removed or stopped when dropped.
enum StoreHome {
    File(tempfile::TempDir),
    Redis { server: RedisServer, prefix: String },
}

/// What a fleet runs against: the demo server, the shared store and the binary of its
/// children. Dropping it stops the server and Redis and removes the temporary directory
/// (children are dropped, and so killed, by whoever holds them).
pub struct Fleet {
    server: ThreadedServer,
    store: StoreHome,
    exe: PathBuf,
    /// Where the children's logs go once [`Fleet::capture_child_logs`] was called.
    logs: Option<tempfile::TempDir>,
}

impl Fleet {
    /// Starts the demo server with `server_config` and the store of `kind` (for Redis a real
    /// server on loopback; its keys get a prefix unique to this run). `exe` is the `auth-demo`
    /// binary the children run.
    pub fn start(
        kind: StoreKind,
        server_config: ServerConfig,
        exe: &Path,
    ) -> Result<Fleet, FleetError> {
        let store = match kind {
            StoreKind::File => StoreHome::File(
                tempfile::Builder::new()
                    .prefix("seamless-fleet-")
                    .tempdir()
                    .map_err(FleetError::TempDir)?,
            ),
            StoreKind::Redis => StoreHome::Redis {
                server: RedisServer::start()?,
                prefix: run_prefix(),
            },
        };
        let server = server::spawn_in_thread(server_config).map_err(FleetError::Server)?;
        Ok(Fleet {
            server,
            store,
            exe: exe.to_owned(),
            logs: None,
        })
    }

    /// Starts a child named `tag` with the session configuration `config`. It is not ready yet:
    /// wait for [`ChildProcess::ready`].
    pub fn spawn(&self, tag: &str, config: Config) -> Result<ChildProcess, FleetError> {
        let spec = ChildSpec {
            tag: tag.to_owned(),
            server: self.server.base_url().to_owned(),
            store: self.store_spec(),
            config,
        };
        let log_file = self
            .logs
            .as_ref()
            .map(|dir| dir.path().join(format!("{tag}.log")));
        ChildProcess::spawn(&self.exe, &spec, log_file.as_deref())
    }

    /// Children started from now on log to files of their own, down to `TRACE` for this
    /// project's crates, instead of to stderr: for tests that check what a fleet logs
    /// ([`Fleet::child_logs`]).
    pub fn capture_child_logs(&mut self) -> Result<(), FleetError> {
        if self.logs.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("seamless-fleet-logs-")
                .tempdir()
                .map_err(FleetError::TempDir)?;
            self.logs = Some(dir);
        }
        Ok(())
    }

    /// The captured logs of every child started since [`Fleet::capture_child_logs`], by tag
    /// (a child still running may not have written its last lines yet).
    pub fn child_logs(&self) -> Vec<(String, String)> {
        let Some(dir) = &self.logs else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir.path()) else {
            return Vec::new();
        };
        let mut logs: Vec<(String, String)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let path = entry.path();
                let tag = path.file_stem()?.to_string_lossy().into_owned();
                let text = std::fs::read(&path).ok()?;
                Some((tag, String::from_utf8_lossy(&text).into_owned()))
            })
            .collect();
        logs.sort();
        logs
    }

    /// The demo server (its admin knobs and counters).
    pub fn server(&self) -> &ThreadedServer {
        &self.server
    }

    /// Which store this fleet shares.
    pub fn kind(&self) -> StoreKind {
        match self.store {
            StoreHome::File(_) => StoreKind::File,
            StoreHome::Redis { .. } => StoreKind::Redis,
        }
    }

    /// The Redis server, for a fleet on Redis (to stop, restart or pause it).
    pub fn redis(&mut self) -> Option<&mut RedisServer> {
        match &mut self.store {
            StoreHome::Redis { server, .. } => Some(server),
            StoreHome::File(_) => None,
        }
    }

    /// Where the children find the session.
    pub fn store_spec(&self) -> StoreSpec {
        match &self.store {
            StoreHome::File(dir) => StoreSpec::File {
                path: dir.path().join("session.json"),
            },
            StoreHome::Redis { server, prefix } => StoreSpec::Redis {
                url: server.url(),
                prefix: prefix.clone(),
            },
        }
    }

    /// Where the store is, for a progress line: the Redis URL, or the file's directory.
    pub fn store_location(&self) -> String {
        match &self.store {
            StoreHome::File(dir) => dir.path().display().to_string(),
            StoreHome::Redis { server, prefix } => format!("{} (keys {prefix}:*)", server.url()),
        }
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("server", &self.server.base_url())
            .field("store", &self.store_location())
            .finish_non_exhaustive()
    }
}

/// A key prefix no other run shares: the process id and the time, so two runs against one
/// Redis (a developer's own, say) never see each other's sessions.
fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    format!("seamless-fleet:{}-{nanos:x}", std::process::id())
}
