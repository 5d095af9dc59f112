//! The bounded world the model explores: the session's configuration, the kinds of request the
//! app issues, and the budgets that keep every path finite (so the state graph is acyclic and
//! every path ends in a terminal state).

use core::fmt;
use core::time::Duration;

use auth_core::{Config, RequestSpec};

/// A kind of app request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Authenticated, retryable, replayable: the common case.
    Bearer,
    /// A public endpoint: never waits, never carries a token.
    Public,
    /// Authenticated, opted out of the retry.
    NoRetry,
    /// Authenticated, with a body that cannot be sent twice.
    NotReplayable,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 4] = [
        Kind::Bearer,
        Kind::Public,
        Kind::NoRetry,
        Kind::NotReplayable,
    ];

    /// The request spec the app submits.
    pub fn spec(self) -> RequestSpec {
        match self {
            Kind::Bearer => RequestSpec::bearer(),
            Kind::Public => RequestSpec::public(),
            Kind::NoRetry => RequestSpec::bearer().no_retry(),
            Kind::NotReplayable => RequestSpec::bearer().not_replayable(),
        }
    }

    /// The name used on the command line and in traces.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bearer => "bearer",
            Kind::Public => "public",
            Kind::NoRetry => "no-retry",
            Kind::NotReplayable => "not-replayable",
        }
    }

    /// Parses [`Kind::name`].
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many times the environment may do each bounded thing. Every action that is not a
/// consequence of an earlier one spends a budget, which keeps the model acyclic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Budget {
    /// App requests to submit.
    pub requests: u8,
    /// Faults: a transient or fatal login failure, a transient refresh failure, an
    /// `invalid_grant` for a live refresh token (revoked server-side), a login/refresh that hangs
    /// until its deadline, a duplicated API response.
    pub faults: u8,
    /// Server-side expiries of every access token issued so far (the cause of 401s).
    pub expiries: u8,
    /// User logouts.
    pub logouts: u8,
    /// Explicit logins by the app.
    pub logins: u8,
    /// Cancellations by the app.
    pub cancels: u8,
    /// Process crashes (restart from the token store).
    pub crashes: u8,
}

impl Budget {
    /// The default world's budgets for `requests` requests.
    pub const fn with_requests(requests: u8) -> Self {
        Budget {
            requests,
            faults: 1,
            expiries: 1,
            logouts: 1,
            logins: 1,
            cancels: 1,
            crashes: 1,
        }
    }
}

/// The world: what the session is configured with and what the environment may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    /// The session's configuration (see [`World::session_config`] for the model's default).
    pub config: Config,
    /// The environment's budgets.
    pub budget: Budget,
    /// The kinds of request the app may submit (each submit picks one).
    pub kinds: Vec<Kind>,
    /// `expires_in` of every token the auth server issues; `None` issues tokens without expiry
    /// (then only the server-side expiry action makes them fail).
    pub token_lifetime: Option<Duration>,
}

impl World {
    /// The default world with `requests` requests: every kind of request, one of each fault and
    /// app action. `check` runs it with 2 requests.
    pub fn with_requests(requests: u8) -> Self {
        World {
            config: World::session_config(),
            budget: Budget::with_requests(requests),
            kinds: vec![Kind::Bearer, Kind::Public, Kind::NoRetry],
            token_lifetime: None,
        }
    }

    /// The session configuration the model uses by default: `Config::default()` with timers
    /// scaled so that the interesting paths need few faults. Time passes in the model only when
    /// a timer fires, so only the order of the deadlines matters: one hung operation (10 s) plus
    /// a backoff reaches the queue deadline (15 s); one retry after a transient failure, then the
    /// waiting requests fail.
    pub fn session_config() -> Config {
        Config {
            queue_timeout: Duration::from_secs(15),
            operation_timeout: Duration::from_secs(10),
            max_operation_retries: 1,
            max_refresh_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
            ..Config::default()
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::with_requests(2)
    }
}
