//! Connections to Redis with one deadline per call, a few kept idle, and errors reduced to their
//! kind.
//!
//! Every call of the store gets a deadline (`now + timeout`). Connecting is bounded by what is
//! left of it, and before each command the socket's read and write timeouts are set to what is
//! left, so a call returns by its deadline whatever the server or the network does (one DNS
//! lookup of a host name excepted: the system resolver has no timeout here).
//!
//! The handshake is ours too: the client connects with no credentials, no database and no
//! `CLIENT SETINFO` (the `redis` crate's own handshake reads every reply of its setup pipeline
//! with the full timeout, even after one timed out), and `AUTH` and `SELECT` follow as commands
//! under the call's deadline.
//!
//! Each call takes its own connection (an idle one, or a new one), so a call stuck on a hung
//! server never holds up another. After a call a connection goes back to the idle list unless
//! it failed below the server's error replies (I/O, timeout, a reply that did not parse): a
//! reply that arrives after its timeout would be read as the next command's answer, so such a
//! connection is dropped and the next call reconnects.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, ErrorKind, RedisError, ServerErrorKind};
use zeroize::Zeroizing;

use crate::scripts::{LuaScript, CORRUPT_CODE};

/// Idle connections kept for later calls; more are closed after use. One process rarely has
/// more than a poll and an operation in flight at once.
const MAX_IDLE: usize = 4;

/// The shortest socket timeout set (`std` refuses a zero one).
const MIN_SOCKET_TIMEOUT: Duration = Duration::from_millis(1);

/// Whether a failed call may be sent again on a fresh connection when the connection it used
/// turned out to be dead (the server restarted, a proxy closed it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Sending it twice answers as sending it once (read, release, logout): retried once.
    Idempotent,
    /// Not safe to repeat (acquire, publish): a reused connection is checked with `PING`
    /// first instead, so a dead one is replaced before the command is sent.
    CheckFirst,
}

/// Why a call failed, by what the store answers.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The server could not be reached or did not answer in time; the reduced description.
    Unavailable(&'static str),
    /// The record is not a hash or holds a version the scripts refuse.
    Corrupt(&'static str),
}

/// What a new connection says before its first command: the ACL user and the database.
pub(crate) struct Handshake {
    /// The ACL user; `None` for the default user (or a password-only `requirepass`).
    pub(crate) username: Option<String>,
    /// The password; wiped on drop.
    pub(crate) password: Option<Zeroizing<String>>,
    /// The database, 0 by default (`SELECT` only for another).
    pub(crate) db: i64,
}

/// The client (address only), the handshake and the idle connections. No `Debug`: it holds the
/// password.
pub(crate) struct Pool {
    client: redis::Client,
    handshake: Handshake,
    timeout: Duration,
    idle: Mutex<Vec<redis::Connection>>,
}

impl Pool {
    /// Connections to `info`'s address; its credentials and database are said by this pool's
    /// handshake, not by the `redis` crate's.
    pub(crate) fn new(info: redis::ConnectionInfo, timeout: Duration) -> redis::RedisResult<Pool> {
        let settings = info.redis_settings();
        let handshake = Handshake {
            username: settings.username().map(str::to_owned),
            password: settings.password().map(|p| Zeroizing::new(p.to_owned())),
            db: settings.db(),
        };
        let bare = redis::RedisConnectionInfo::default()
            .set_protocol(redis::ProtocolVersion::RESP2)
            .set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(bare))?;
        Ok(Pool {
            client,
            handshake,
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `script` with `keys` and `args` within one deadline and returns its raw reply.
    pub(crate) fn eval(
        &self,
        script: &LuaScript,
        keys: &[&str],
        args: &[&[u8]],
        retry: Retry,
    ) -> Result<redis::Value, CallError> {
        let deadline = Instant::now() + self.timeout;
        let (mut connection, reused) = self.connection(deadline)?;
        if reused && retry == Retry::CheckFirst {
            if let Err(error) = ping(&mut connection, deadline) {
                if !is_dead_connection(&error) {
                    return Err(reduce(&error));
                }
                self.drop_idle();
                connection = self.connect(deadline)?;
            }
        }
        match eval(&mut connection, script, keys, args, deadline) {
            Ok(reply) => {
                self.put_back(connection);
                Ok(reply)
            }
            Err(error) if reused && retry == Retry::Idempotent && is_dead_connection(&error) => {
                tracing::debug!(
                    "redis connection found dead (server restarted?); retrying on a new one"
                );
                self.drop_idle();
                let mut connection = self.connect(deadline)?;
                let reply = eval(&mut connection, script, keys, args, deadline);
                self.finish(connection, reply)
            }
            Err(error) => self.finish(connection, Err(error)),
        }
    }

    /// An idle connection (`true`: it was used before) or a new one.
    fn connection(&self, deadline: Instant) -> Result<(redis::Connection, bool), CallError> {
        match self.idle().pop() {
            Some(connection) => Ok((connection, true)),
            None => Ok((self.connect(deadline)?, false)),
        }
    }

    /// A new connection, handshake done, by the deadline.
    fn connect(&self, deadline: Instant) -> Result<redis::Connection, CallError> {
        let remaining = remaining(deadline)?;
        let mut connection = self
            .client
            .get_connection_with_timeout(remaining)
            .map_err(|error| reduce(&error))?;
        self.say_hello(&mut connection, deadline)
            .map_err(|error| reduce(&error))?;
        Ok(connection)
    }

    fn say_hello(
        &self,
        connection: &mut redis::Connection,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        let Handshake {
            username,
            password,
            db,
        } = &self.handshake;
        if let Some(password) = password {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = username {
                auth.arg(username.as_str());
            }
            auth.arg(password.as_str());
            set_timeouts(connection, deadline)?;
            auth.query::<redis::Value>(connection)?;
        }
        if *db != 0 {
            set_timeouts(connection, deadline)?;
            redis::cmd("SELECT")
                .arg(*db)
                .query::<redis::Value>(connection)?;
        }
        Ok(())
    }

    /// Keeps the connection if the reply (or error reply) left it in step, and answers.
    fn finish(
        &self,
        connection: redis::Connection,
        reply: Result<redis::Value, RedisError>,
    ) -> Result<redis::Value, CallError> {
        match reply {
            Ok(reply) => {
                self.put_back(connection);
                Ok(reply)
            }
            Err(error) => {
                if is_error_reply(&error) {
                    self.put_back(connection);
                }
                Err(reduce(&error))
            }
        }
    }

    fn put_back(&self, connection: redis::Connection) {
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE && connection.is_open() {
            idle.push(connection);
        }
    }

    /// Closes every idle connection: one was found dead, so the others (as old) likely are too.
    fn drop_idle(&self) {
        self.idle().clear();
    }

    /// The idle list, whatever a panicking thread left: connections are only pushed and
    /// popped whole.
    fn idle(&self) -> MutexGuard<'_, Vec<redis::Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `EVALSHA` (the script by its hash); `EVAL` with the source when the server does not know it
/// (a new or restarted server). Each command gets what is left of the deadline.
fn eval(
    connection: &mut redis::Connection,
    script: &LuaScript,
    keys: &[&str],
    args: &[&[u8]],
    deadline: Instant,
) -> Result<redis::Value, RedisError> {
    let command = |name: &str, script_text: &str| {
        let mut command = redis::cmd(name);
        command.arg(script_text).arg(keys.len()).arg(keys);
        for arg in args {
            command.arg(*arg);
        }
        command
    };
    set_timeouts(connection, deadline)?;
    match command("EVALSHA", &script.hash).query(connection) {
        Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            set_timeouts(connection, deadline)?;
            command("EVAL", &script.source).query(connection)
        }
        reply => reply,
    }
}

fn ping(connection: &mut redis::Connection, deadline: Instant) -> Result<(), RedisError> {
    set_timeouts(connection, deadline)?;
    redis::cmd("PING").query::<redis::Value>(connection)?;
    Ok(())
}

/// Sets both socket timeouts to what is left of the deadline.
fn set_timeouts(connection: &redis::Connection, deadline: Instant) -> Result<(), RedisError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(MIN_SOCKET_TIMEOUT);
    connection.set_read_timeout(Some(left))?;
    connection.set_write_timeout(Some(left))
}

fn remaining(deadline: Instant) -> Result<Duration, CallError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < MIN_SOCKET_TIMEOUT {
        return Err(CallError::Unavailable("timed out"));
    }
    Ok(left)
}

/// The connection died under the command (reset, closed): the server restarted or a proxy
/// dropped an idle connection. A timeout is not that: the server may be alive and slow.
fn is_dead_connection(error: &RedisError) -> bool {
    !error.is_timeout() && error.is_connection_dropped()
}

/// The server answered with an error reply: the connection is still in step.
fn is_error_reply(error: &RedisError) -> bool {
    matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension) && error.code().is_some()
}

/// The error as text that holds no value: Redis error replies can quote keys and arguments, and
/// I/O errors the address, so only the kind is kept, in words fixed here.
pub(crate) fn reduce(error: &RedisError) -> CallError {
    let unavailable = CallError::Unavailable;
    if error.code() == Some(CORRUPT_CODE) {
        return CallError::Corrupt("the shared record's version is not a version number");
    }
    if error.code() == Some("WRONGTYPE") {
        return CallError::Corrupt("the shared record's keys hold another Redis type");
    }
    if error.is_timeout() {
        return unavailable("timed out");
    }
    if error.is_connection_refusal() {
        return unavailable("connection refused");
    }
    if error.is_connection_dropped() {
        return unavailable("connection lost");
    }
    unavailable(match error.kind() {
        ErrorKind::Io => "I/O error",
        ErrorKind::AuthenticationFailed => "authentication failed",
        ErrorKind::Server(ServerErrorKind::NoPerm) => "permission denied by an ACL",
        ErrorKind::Server(ServerErrorKind::BusyLoading) => "the server is loading its data",
        ErrorKind::Server(ServerErrorKind::ReadOnly) => "the server is a read-only replica",
        ErrorKind::Server(ServerErrorKind::MasterDown) => "the replica's master is down",
        ErrorKind::Server(ServerErrorKind::TryAgain) => "the server asked to try again",
        ErrorKind::Server(ServerErrorKind::NoScript) => "the script is missing",
        ErrorKind::Server(_) => "the server answered an error",
        ErrorKind::Extension => match error.code() {
            Some("OOM") => "the server is out of memory",
            Some("BUSY") => "the server is busy running a script",
            Some("NOAUTH") => "authentication required",
            Some("WRONGPASS") => "authentication failed",
            Some("MISCONF") => "the server cannot write (persistence error)",
            _ => "the server answered an error",
        },
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => "the server's answer did not parse",
        ErrorKind::InvalidClientConfig => "invalid client configuration",
        ErrorKind::RESP3NotSupported => "the server does not speak RESP3",
        _ => "client error",
    })
}

#[cfg(all(test, feature = "testing", unix))]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    const SECRET: &str = "secret-echoed-by-the-server";

    /// Redis error replies quote whatever a script or command put in them: the reduced error
    /// keeps the kind and drops the text, for every code.
    #[test]
    #[allow(clippy::panic)]
    fn error_replies_that_quote_values_are_reduced_to_their_kind() {
        let server = RedisServer::start().unwrap_or_else(|error| panic!("{error}"));
        let mut connection = redis::Client::open(server.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .unwrap_or_else(|error| panic!("{error}"));
        let echo = "return redis.error_reply(ARGV[1])";
        for reply in [
            "ERR",
            "NOPERM",
            "OOM",
            "BUSY",
            "WRONGTYPE",
            "LOADING",
            "SOMECODE",
        ] {
            let error = redis::cmd("EVAL")
                .arg(echo)
                .arg(0)
                .arg(format!("{reply} {SECRET}"))
                .query::<redis::Value>(&mut connection)
                .err()
                .unwrap_or_else(|| panic!("{reply}: the script must fail"));
            assert!(format!("{error}").contains(SECRET), "the test must echo");
            let reduced = format!("{:?}", reduce(&error));
            assert!(!reduced.contains(SECRET), "{reply}: {reduced}");
        }
        let runtime = redis::cmd("EVAL")
            .arg("error(ARGV[1])")
            .arg(0)
            .arg(SECRET)
            .query::<redis::Value>(&mut connection)
            .err()
            .unwrap_or_else(|| panic!("the script must fail"));
        let reduced = format!("{:?}", reduce(&runtime));
        assert!(!reduced.contains(SECRET), "{reduced}");
    }
}
