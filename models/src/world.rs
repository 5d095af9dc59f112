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
    /// The API answers every authenticated call 401, whatever the token (logins and refreshes
    /// still succeed): only the retry budget ends a request. Adds the `sometimes` property
    /// "retry budget spent".
    pub reject_every_call: bool,
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
            reject_every_call: false,
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

/// A world at the edges of the configuration space (DESIGN.md §5: configuration is input too).
/// Exhausting every `Config` is impossible, so each edge of each field is checked at least once,
/// in a world small enough to explore completely in CI.
#[derive(Clone, Debug)]
pub struct Corner {
    /// Its name on the command line (`check --corner NAME`).
    pub name: &'static str,
    /// The edges it sits on.
    pub edges: &'static str,
    /// The world.
    pub world: World,
    /// The `sometimes` properties this world cannot reach, each with the reason: every other
    /// one must be reached, so a corner cannot pass vacuously.
    pub unreachable: &'static [(&'static str, &'static str)],
}

impl Corner {
    /// Every corner world. Together they put every `Config` field at its minimum and its
    /// maximum at least once (and `max_retries` also at 1 against an API that always says 401).
    pub fn all() -> Vec<Corner> {
        use crate::model::names;

        let huge = Duration::MAX;
        let zero = Duration::ZERO;
        let default = World::default;
        // The default world without the cancel, and without the explicit login: the corners
        // whose timers or retries multiply the states stay exhaustive within CI time (the
        // login alone multiplies them by 3 to 7).
        let no_cancel = Budget {
            cancels: 0,
            ..Budget::with_requests(2)
        };
        let lean = Budget {
            logins: 0,
            ..no_cancel
        };
        vec![
            Corner {
                name: "minimum",
                edges: "max_retries 0, max_queued 1, every duration 0 (queue and operation \
                        timeouts, refresh margin, backoff, breaker cool-down), \
                        max_operation_retries 0, jitter seed 0, breaker after 1 failure, eager \
                        login, revoke on logout; tokens expire at once; no cancel",
                world: World {
                    config: Config {
                        max_retries: 0,
                        max_queued: 1,
                        queue_timeout: zero,
                        operation_timeout: zero,
                        refresh_margin: zero,
                        max_operation_retries: 0,
                        backoff_base: zero,
                        backoff_max: zero,
                        jitter_seed: 0,
                        max_refresh_failures: 1,
                        breaker_cooldown: zero,
                        eager_login: true,
                        revoke_on_logout: true,
                    },
                    token_lifetime: Some(zero),
                    budget: no_cancel,
                    ..default()
                },
                unreachable: &[
                    (names::RETRIED, "max_retries 0: nothing is sent twice"),
                    (names::LATE_401, "max_retries 0: nothing is sent twice"),
                    (
                        names::QUEUE_TIMEOUT,
                        "the zero operation deadline is due with every zero queue deadline and \
                         fails the queue first (CircuitOpen, breaker after 1 failure)",
                    ),
                ],
            },
            Corner {
                name: "maximum",
                edges: "max_retries 255, max_queued usize::MAX, every duration Duration::MAX, \
                        max_operation_retries u32::MAX, breaker after u32::MAX failures, \
                        jitter seed u64::MAX, eager login, revoke on logout; tokens live \
                        Duration::MAX; no explicit login, no cancel",
                world: World {
                    config: Config {
                        max_retries: u8::MAX,
                        max_queued: usize::MAX,
                        queue_timeout: huge,
                        operation_timeout: huge,
                        refresh_margin: huge,
                        max_operation_retries: u32::MAX,
                        backoff_base: huge,
                        backoff_max: huge,
                        jitter_seed: u64::MAX,
                        max_refresh_failures: u32::MAX,
                        breaker_cooldown: huge,
                        eager_login: true,
                        revoke_on_logout: true,
                    },
                    token_lifetime: Some(huge),
                    budget: lean,
                    ..default()
                },
                unreachable: &[],
            },
            Corner {
                name: "no-queue-no-breaker",
                edges: "max_queued 0 (nothing waits), breaker off (0), default durations",
                world: World {
                    config: Config {
                        max_queued: 0,
                        max_refresh_failures: 0,
                        ..World::session_config()
                    },
                    ..default()
                },
                unreachable: &[(names::QUEUE_TIMEOUT, "nothing waits")],
            },
            Corner {
                name: "always-401-retries-0",
                edges: "max_retries 0 against an API that answers every call 401",
                world: World {
                    config: Config {
                        max_retries: 0,
                        ..World::session_config()
                    },
                    reject_every_call: true,
                    ..default()
                },
                unreachable: &[
                    (names::RETRIED, "nothing is sent twice"),
                    (names::LATE_401, "nothing is sent twice"),
                    (
                        names::INVALID_GRANT,
                        "a 401 is delivered at once, so nothing ever refreshes",
                    ),
                    (
                        names::LOGOUT_REFRESH,
                        "a 401 is delivered at once, so nothing ever refreshes",
                    ),
                ],
            },
            Corner {
                name: "always-401-retries-1",
                edges: "max_retries 1 (the default) against an API that answers every call 401; \
                        no explicit login, no cancel",
                world: World {
                    reject_every_call: true,
                    budget: lean,
                    ..default()
                },
                unreachable: &[(names::RETRIED, "no call is ever accepted")],
            },
            Corner {
                name: "always-401-retries-255",
                edges: "max_retries 255 against an API that answers every call 401: one \
                        request sent 256 times (the u8 saturation of issue 10); one bearer \
                        request, one fault, one logout",
                world: World {
                    config: Config {
                        max_retries: u8::MAX,
                        ..World::session_config()
                    },
                    budget: Budget {
                        requests: 1,
                        faults: 1,
                        expiries: 0,
                        logouts: 1,
                        logins: 0,
                        cancels: 0,
                        crashes: 0,
                    },
                    kinds: vec![Kind::Bearer],
                    reject_every_call: true,
                    ..default()
                },
                unreachable: &[
                    (names::RETRIED, "no call is ever accepted"),
                    (names::LATE_401, "needs a second request"),
                    (
                        names::RESTORED,
                        "no crash: with 256 sends a crash at every step costs 6x the states",
                    ),
                ],
            },
        ]
    }

    /// The corner called `name`.
    pub fn named(name: &str) -> Option<Corner> {
        Corner::all().into_iter().find(|c| c.name == name)
    }

    /// Whether `report` is what this corner must give: a complete search, every `always`
    /// property holding, and every `sometimes` property reached except the ones listed as
    /// unreachable (which must indeed stay unreached, or the list is stale).
    pub fn judge(&self, report: &crate::Report) -> Result<(), String> {
        crate::check::judge(self.name, self.unreachable, report)
    }
}
