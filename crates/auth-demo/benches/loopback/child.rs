//! The demo servers in a child process: this bench binary again, started with
//! `SEAMLESS_BENCH_ROLE=server`, driven over its stdin/stdout with one line per command.
//!
//! A storm of N concurrent HTTP/1.1 requests holds N client sockets and N server sockets; in one
//! process N = 10 000 would need 20 000 descriptors, at or above many hard limits. Split in two
//! processes, each holds at most N (plus a few dozen).
//!
//! Protocol: the child prints `ready URL…` (one URL per server, in the order of the lifetimes it
//! was given), then answers `expire I` with `ok` and `counters I` with the server's counters as
//! numbers. End of input stops it.

use std::error::Error;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use auth_demo::server::{self, ServerConfig};

use crate::load::raise_fd_limit;

/// The environment variable that makes this binary a server.
const ROLE: &str = "SEAMLESS_BENCH_ROLE";
/// The access-token lifetimes (whole seconds, comma-separated), one server each.
const LIFETIMES: &str = "SEAMLESS_BENCH_LIFETIMES";

/// The part of the server's counters the benchmarks read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// `POST /refresh` calls.
    pub(crate) refresh_calls: u64,
    /// Silent logins.
    pub(crate) logins: u64,
    /// Requests to `/api/…`.
    pub(crate) api_requests: u64,
    /// `/api/…` requests answered 401.
    pub(crate) api_unauthorized: u64,
}

/// The running child, killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Base URL of each server, in the order of the lifetimes.
    pub(crate) urls: Vec<String>,
}

/// `true` when this process was started as the server child.
pub(crate) fn is_server() -> bool {
    std::env::var_os(ROLE).is_some_and(|role| role == "server")
}

/// The child's `main`: starts the servers, then answers commands until end of input.
pub(crate) fn serve() -> Result<(), Box<dyn Error>> {
    raise_fd_limit();
    let lifetimes = std::env::var(LIFETIMES)?
        .split(',')
        .map(|secs| secs.parse().map(Duration::from_secs))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The servers' tasks keep running on the runtime's workers after `block_on` returns.
    let servers = runtime.block_on(async {
        let mut servers = Vec::new();
        for lifetime in lifetimes {
            let config = ServerConfig::default().with_access_token_lifetime(lifetime);
            servers.push(server::spawn(config).await?);
        }
        io::Result::Ok(servers)
    })?;
    let mut out = io::stdout().lock();
    let urls: Vec<&str> = servers.iter().map(|s| s.base_url()).collect();
    writeln!(out, "ready {}", urls.join(" "))?;
    out.flush()?;
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let (Some(command), Some(index)) = (words.next(), words.next()) else {
            return Err(format!("bad command {line:?}").into());
        };
        let admin = servers
            .get(index.parse::<usize>()?)
            .ok_or("no such server")?
            .admin();
        match command {
            "expire" => {
                admin.expire_access_tokens();
                writeln!(out, "ok")?;
            }
            "counters" => {
                let c = admin.counters();
                writeln!(
                    out,
                    "{} {} {} {}",
                    c.refresh_calls, c.logins, c.api_requests, c.api_unauthorized
                )?;
            }
            other => return Err(format!("unknown command {other:?}").into()),
        }
        out.flush()?;
    }
    drop(servers);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

impl ServerProcess {
    /// Starts one demo server per access-token lifetime in a child process.
    pub(crate) fn start(lifetimes: &[Duration]) -> Result<Self, Box<dyn Error>> {
        let lifetimes: Vec<String> = lifetimes.iter().map(|l| l.as_secs().to_string()).collect();
        let mut child = Command::new(std::env::current_exe()?)
            .env(ROLE, "server")
            .env(LIFETIMES, lifetimes.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("the server child has no pipes".into());
        };
        let mut process = ServerProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            urls: Vec::new(),
        };
        let ready = process.read_line()?;
        let urls = ready
            .strip_prefix("ready ")
            .ok_or_else(|| format!("the server child said {ready:?}"))?;
        process.urls = urls.split_whitespace().map(str::to_owned).collect();
        Ok(process)
    }

    /// Every access token server `index` issued so far expires now.
    pub(crate) fn expire(&mut self, index: usize) -> Result<(), Box<dyn Error>> {
        writeln!(self.stdin, "expire {index}")?;
        self.stdin.flush()?;
        match self.read_line()?.as_str() {
            "ok" => Ok(()),
            other => Err(format!("expire: the server child said {other:?}").into()),
        }
    }

    /// A snapshot of server `index`'s counters.
    pub(crate) fn counters(&mut self, index: usize) -> Result<Counts, Box<dyn Error>> {
        writeln!(self.stdin, "counters {index}")?;
        self.stdin.flush()?;
        let line = self.read_line()?;
        let numbers = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<u64>, _>>()?;
        let [refresh_calls, logins, api_requests, api_unauthorized] = numbers[..] else {
            return Err(format!("counters: the server child said {line:?}").into());
        };
        Ok(Counts {
            refresh_calls,
            logins,
            api_requests,
            api_unauthorized,
        })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn read_line(&mut self) -> Result<String, Box<dyn Error>> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err("the server child exited".into());
        }
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Counts {
    /// What happened between `before` and `self`.
    pub(crate) fn since(self, before: Counts) -> Counts {
        Counts {
            refresh_calls: self.refresh_calls - before.refresh_calls,
            logins: self.logins - before.logins,
            api_requests: self.api_requests - before.api_requests,
            api_unauthorized: self.api_unauthorized - before.api_unauthorized,
        }
    }
}
