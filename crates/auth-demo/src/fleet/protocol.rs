//! What a fleet parent and its child processes say to each other: one JSON object per line, the
//! parent's [`Order`]s on the child's stdin, the child's [`Reply`]s on its stdout.
//!
//! Nothing here carries a secret: a child reports counts and error kinds, never a token or a
//! server's text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use auth_tokio::auth_core::{Config, RequestError, SessionState};
use serde::{Deserialize, Serialize};

/// Everything a child needs to join the fleet, given as its one argument (JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildSpec {
    /// A name for its logs and the parent's messages (`p3`).
    pub tag: String,
    /// The demo server's base URL (`http://127.0.0.1:<port>`).
    pub server: String,
    /// The shared store the session lives in.
    pub store: StoreSpec,
    /// The session's configuration.
    pub config: Config,
}

/// Where the shared session is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreSpec {
    /// A file store (one host): the session file's path.
    File {
        /// The session file.
        path: PathBuf,
    },
    /// The single-process file store (`auth_tokio::FileStore`), not a shared one: children on
    /// one such file share nothing but its content, so each refreshes on its own (what the
    /// `multiprocess` test shows, and why shared stores exist).
    Local {
        /// The session file.
        path: PathBuf,
    },
    /// A Redis store (a fleet): the server and the key prefix of this run's session.
    Redis {
        /// `redis://127.0.0.1:<port>/`.
        url: String,
        /// The keys' prefix, unique per run so runs never see each other's sessions.
        prefix: String,
    },
}

/// What the parent tells a child to do. The child answers every order with one [`Reply`], in
/// order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Send `requests` authenticated `GET`s to `/api/fleet/<tag>/<n>`, started evenly over
    /// `spread_ms` (0: all at once), and answer [`Reply::Stormed`] once every one has ended.
    Storm {
        /// How many requests.
        requests: u32,
        /// Over how many milliseconds their starts are spread.
        spread_ms: u64,
    },
    /// Log out ([`Reply::LoggedOut`] once `logout()` returned).
    Logout,
    /// Say the session's state ([`Reply::State`]).
    State,
    /// Shut the session down, answer [`Reply::Bye`] with the totals, and exit.
    Quit,
}

/// What a child says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The session is built on the shared store; the child waits for orders.
    Ready {
        /// The state the session started in (`LoggedOut` after a logout anywhere).
        state: SessionState,
    },
    /// A storm ended.
    Stormed(Tally),
    /// `logout()` returned: `None` when it reported success, else its error's text.
    LoggedOut {
        /// The error, if the logout was not durable.
        error: Option<String>,
    },
    /// The session's state.
    State {
        /// The state.
        state: SessionState,
    },
    /// The child's totals over all its storms; it exits after this line.
    Bye(Tally),
    /// The child could not carry on (it exits after this line).
    Failed {
        /// Why.
        error: String,
    },
}

/// The outcome of a child's requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests that ended any other way.
    pub errors: u64,
    /// The errors by kind ([`kind_of_session_error`], `HTTP <status>`, `transport`, `stopped`).
    pub failures: BTreeMap<String, u64>,
    /// The longest any one request took, in milliseconds.
    pub slowest_ms: u64,
}

impl Tally {
    /// Adds another tally to this one.
    pub fn add(&mut self, other: &Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        for (kind, n) in &other.failures {
            *self.failures.entry(kind.clone()).or_default() += n;
        }
        self.slowest_ms = self.slowest_ms.max(other.slowest_ms);
    }

    /// Counts one failed request of `kind`.
    pub fn fail(&mut self, kind: impl Into<String>) {
        self.errors += 1;
        *self.failures.entry(kind.into()).or_default() += 1;
    }

    /// How many requests failed with `kind`.
    pub fn failed(&self, kind: &str) -> u64 {
        self.failures.get(kind).copied().unwrap_or_default()
    }

    /// Every request of the tally.
    pub fn requests(&self) -> u64 {
        self.ok + self.errors
    }
}

/// The name of a session's refusal in a [`Tally`]: the variant's name, without its fields
/// (`StoreUnavailable`, `LoggedOut`, `Timeout`...).
pub fn kind_of_session_error(error: &RequestError) -> String {
    let text = format!("{error:?}");
    match text.find([' ', '{', '(']) {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_error_is_named_by_its_variant() {
        assert_eq!(
            kind_of_session_error(&RequestError::StoreUnavailable { attempts: 3 }),
            "StoreUnavailable"
        );
        assert_eq!(kind_of_session_error(&RequestError::LoggedOut), "LoggedOut");
    }

    #[test]
    fn orders_and_replies_are_one_line_of_json_each() {
        let order = Order::Storm {
            requests: 5,
            spread_ms: 0,
        };
        let line = serde_json::to_string(&order).unwrap();
        assert_eq!(line, r#"{"storm":{"requests":5,"spread_ms":0}}"#);
        assert_eq!(serde_json::from_str::<Order>(&line).unwrap(), order);
        let quit = serde_json::to_string(&Order::Quit).unwrap();
        assert_eq!(quit, r#""quit""#);
        let mut tally = Tally::default();
        tally.fail("Timeout");
        let reply = serde_json::to_string(&Reply::Bye(tally.clone())).unwrap();
        assert!(!reply.contains('\n'));
        assert_eq!(
            serde_json::from_str::<Reply>(&reply).unwrap(),
            Reply::Bye(tally)
        );
    }
}
