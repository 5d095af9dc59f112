//! The server's books: issued codes and tokens, injected faults, and counters.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{Duration, Instant};

use super::ServerConfig;

/// What the server has seen, for tests and the demo's summary. Tokens are named by their serial
/// number (1 for the first access token issued, ...), never by their secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// One-time codes handed out by `POST /platform/code`.
    pub codes_issued: u64,
    /// Successful silent logins (`POST /login`).
    pub logins: u64,
    /// Logins refused for good (400 `access_denied`, injected).
    pub logins_refused: u64,
    /// Logins answered with an injected server error.
    pub login_failures: u64,
    /// Every `POST /refresh`, whatever its answer.
    pub refresh_calls: u64,
    /// Successful refreshes (tokens rotated).
    pub refreshes: u64,
    /// Refreshes answered 400 `invalid_grant` (spent, revoked or unknown refresh token).
    pub invalid_grant: u64,
    /// Refreshes that presented a refresh token already spent by a rotation (each is also an
    /// `invalid_grant`); with `ServerConfig::revoke_family_on_reuse` each revoked the token's
    /// whole family. A client that shares one session correctly never causes one.
    pub reuse_detected: u64,
    /// Refreshes answered with an injected server error.
    pub refresh_failures: u64,
    /// `POST /revoke` calls (RFC 7009).
    pub revocations: u64,
    /// Requests to `/api/…`.
    pub api_requests: u64,
    /// `/api/…` requests answered 401.
    pub api_unauthorized: u64,
    /// `/coded/…` requests whose token was refused, answered HTTP 200 `{"code":401}`.
    pub coded_refusals: u64,
    /// Requests to `/public/…`.
    pub public_requests: u64,
    /// Requests to `/public/…` that carried an `Authorization` header (must stay 0).
    pub bearer_on_public: u64,
    /// Requests to any path that carried an `Authorization` header.
    pub requests_with_bearer: u64,
    /// `/api/…` requests per access-token serial (only requests with a known token).
    pub requests_per_token: BTreeMap<u64, u64>,
    /// Requests per path (`/api/…` and `/public/…`), as received.
    pub requests_per_path: BTreeMap<String, u64>,
}

/// A fault injected into the next login or refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Wait, then answer normally (a long wait is a hung endpoint).
    Delay(Duration),
    /// Carry the request out at once, then wait before answering (a refresh: the token is
    /// rotated even if the client gives up or dies before the answer).
    DelayAnswer(Duration),
    /// Answer with this HTTP status and `temporarily_unavailable`.
    Fail(u16),
    /// Refuse the login for good: 400 `access_denied`.
    Refuse,
}

/// A token family: the tokens of one login and of every rotation that followed from it. Reuse
/// detection revokes a family as a whole.
type Family = u64;

#[derive(Debug)]
struct AccessEntry {
    serial: u64,
    family: Family,
    expires_at: Instant,
}

#[derive(Debug)]
struct RefreshEntry {
    family: Family,
    state: RefreshState,
}

/// Where a refresh token is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefreshState {
    /// Never presented: the next presentation rotates it.
    Live,
    /// Presented once and rotated: presenting it again is reuse.
    Rotated,
    /// Revoked without being presented (RFC 7009 revocation, or the admin knob).
    Revoked,
}

/// Why a bearer token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Missing,
    Unknown,
    Expired,
    /// Its family was revoked after a refresh token reuse.
    Revoked,
}

/// Why a refresh was refused (each is 400 `invalid_grant` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshRefusal {
    /// Never issued here.
    Unknown,
    /// Revoked, or of a family revoked after a reuse.
    Revoked,
    /// Already rotated: a second presentation. Its family is now revoked.
    Reused,
}

/// A freshly issued token set, as the token endpoint answers it.
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
    pub(crate) serial: u64,
}

pub(crate) struct Books {
    config: ServerConfig,
    random: RandomState,
    next_secret: u64,
    next_serial: u64,
    next_family: Family,
    codes: HashSet<String>,
    access: HashMap<String, AccessEntry>,
    refresh: HashMap<String, RefreshEntry>,
    /// Families revoked after a refresh token reuse.
    revoked_families: HashSet<Family>,
    /// Every secret handed out, so tests can check none leaks into logs.
    issued: Vec<String>,
    pub(crate) login_faults: VecDeque<Fault>,
    pub(crate) refresh_faults: VecDeque<Fault>,
    pub(crate) counters: Counters,
}

impl Books {
    pub(crate) fn new(config: ServerConfig) -> Self {
        Books {
            config,
            random: RandomState::new(),
            next_secret: 0,
            next_serial: 1,
            next_family: 1,
            codes: HashSet::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            revoked_families: HashSet::new(),
            issued: Vec::new(),
            login_faults: VecDeque::new(),
            refresh_faults: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// A one-time platform code.
    pub(crate) fn issue_code(&mut self) -> String {
        self.counters.codes_issued += 1;
        let code = self.secret("code");
        self.codes.insert(code.clone());
        code
    }

    /// Spends a one-time code; `true` when it was valid.
    pub(crate) fn spend_code(&mut self, code: &str) -> bool {
        self.codes.remove(code)
    }

    /// Tokens of a new family (a login).
    pub(crate) fn issue_tokens(&mut self) -> Issued {
        let family = self.next_family;
        self.next_family += 1;
        self.issue_in(family)
    }

    fn issue_in(&mut self, family: Family) -> Issued {
        let serial = self.next_serial;
        self.next_serial += 1;
        let access_token = self.secret("at");
        let refresh_token = self.secret("rt");
        let lifetime = self.config.access_token_lifetime;
        self.access.insert(
            access_token.clone(),
            AccessEntry {
                serial,
                family,
                expires_at: Instant::now() + lifetime,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshEntry {
                family,
                state: RefreshState::Live,
            },
        );
        Issued {
            access_token,
            refresh_token,
            expires_in: lifetime.as_secs().max(1),
            serial,
        }
    }

    /// Rotates a refresh token into the next tokens of its family. A token presented a second
    /// time is refused as a reuse and, if so configured, revokes its whole family: whoever holds
    /// the family's newest tokens may be an attacker who replayed a stolen one, so none of them
    /// is trusted any more.
    pub(crate) fn rotate(&mut self, refresh_token: &str) -> Result<Issued, RefreshRefusal> {
        let entry = self
            .refresh
            .get_mut(refresh_token)
            .ok_or(RefreshRefusal::Unknown)?;
        let family = entry.family;
        match entry.state {
            RefreshState::Rotated => {
                if self.config.revoke_family_on_reuse {
                    self.revoked_families.insert(family);
                }
                Err(RefreshRefusal::Reused)
            }
            RefreshState::Revoked => Err(RefreshRefusal::Revoked),
            RefreshState::Live if self.revoked_families.contains(&family) => {
                Err(RefreshRefusal::Revoked)
            }
            RefreshState::Live => {
                entry.state = RefreshState::Rotated;
                Ok(self.issue_in(family))
            }
        }
    }

    /// RFC 7009: revokes this token (a refresh token already rotated stays rotated, so a later
    /// presentation is still seen as reuse).
    pub(crate) fn revoke(&mut self, token: &str) {
        if let Some(entry) = self.refresh.get_mut(token) {
            if entry.state == RefreshState::Live {
                entry.state = RefreshState::Revoked;
            }
        }
        self.access.remove(token);
    }

    /// The serial of a valid access token from an `Authorization` header value.
    pub(crate) fn check_bearer(&self, authorization: Option<&str>) -> Result<u64, Refusal> {
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(Refusal::Missing)?;
        let entry = self.access.get(token.trim()).ok_or(Refusal::Unknown)?;
        if self.revoked_families.contains(&entry.family) {
            return Err(Refusal::Revoked);
        }
        if Instant::now() >= entry.expires_at {
            return Err(Refusal::Expired);
        }
        Ok(entry.serial)
    }

    pub(crate) fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for entry in self.access.values_mut() {
            entry.expires_at = now;
        }
    }

    pub(crate) fn revoke_refresh_tokens(&mut self) {
        for entry in self.refresh.values_mut() {
            if entry.state == RefreshState::Live {
                entry.state = RefreshState::Revoked;
            }
        }
    }

    pub(crate) fn issued_secrets(&self) -> Vec<String> {
        self.issued.clone()
    }

    /// An unguessable-enough secret for a demo: 128 bits from the process's random hasher keys.
    /// (A real server uses a CSPRNG.)
    fn secret(&mut self, prefix: &str) -> String {
        let mut words = [0u64; 2];
        for word in &mut words {
            self.next_secret += 1;
            let mut hasher = self.random.build_hasher();
            hasher.write_u64(self.next_secret);
            *word = hasher.finish();
        }
        let secret = format!("{prefix}_{:016x}{:016x}", words[0], words[1]);
        self.issued.push(secret.clone());
        secret
    }
}
