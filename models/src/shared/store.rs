//! The modelled shared store and auth server of the fleet model.
//!
//! The store carries out the four atomic operations exactly as `auth_core::shared` and
//! `auth_store::shared` document them (acquire sets the spent mark in the same step, publish is a
//! compare-and-swap on the version, release is a compare-and-delete on the owner, logout writes
//! a new tombstone every time). The server rotates refresh tokens and revokes the whole token family when
//! a rotated refresh token is presented again (reuse detection, as Auth0, Okta, Keycloak and Ory
//! Hydra do). Tokens are numbers (`a{n}`, `r{n}`) so states hash and print faithfully.

use auth_core::{
    AccessToken, LeaseResult, Observed, OpId, Process, PublishResult, RefreshToken, StoreVersion,
    Stored, TokenSet,
};

/// A token set as the model names it: the numbers the server issued its tokens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tokens {
    /// Access token number.
    pub access: u64,
    /// Refresh token number.
    pub refresh: Option<u64>,
}

impl Tokens {
    /// The token set a session is fed: `a{n}` / `r{m}`, without expiry (tokens fail only by a
    /// server-side expiry, so time needs no global clock).
    pub fn set(self) -> TokenSet {
        let set = TokenSet::new(AccessToken::new(format!("a{}", self.access)));
        match self.refresh {
            Some(refresh) => set.with_refresh_token(RefreshToken::new(format!("r{refresh}"))),
            None => set,
        }
    }
}

/// What the shared record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Content {
    /// Nothing yet.
    Empty,
    /// A token set.
    Tokens(Tokens),
    /// The tombstone of a logout.
    LoggedOut,
}

/// The record as read at one moment (a watcher's read, fed later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    /// Its version.
    pub version: u64,
    /// Its content.
    pub content: Content,
    /// Its spent mark.
    pub spent: bool,
}

impl Record {
    /// The record as the session is fed it.
    pub fn observed(self) -> Observed {
        Observed {
            version: StoreVersion(self.version),
            content: match self.content {
                Content::Empty => Stored::Empty,
                Content::Tokens(tokens) => Stored::Tokens(tokens.set()),
                Content::LoggedOut => Stored::LoggedOut,
            },
            spent: self.spent,
        }
    }
}

/// Who holds the lease. A restarted process is a new owner (its operation ids start again),
/// as the drivers' owners carry a random process id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The process.
    pub process: Process,
    /// How many times it restarted before taking the lease.
    pub incarnation: u8,
    /// The operation that asked.
    pub op: OpId,
}

/// The shared store: one record (version, content, spent mark) and one lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Store {
    /// Bumped by every write; 0 for a store never written.
    pub version: u64,
    /// What the record holds.
    pub content: Content,
    /// A lease holder may have presented this version's refresh token.
    pub spent: bool,
    /// The live lease. It ends by a release from its owner or by expiring (an action of the
    /// environment, at any moment: the model trusts no clock).
    pub lease: Option<Owner>,
    /// A lease expired and none was granted since: the next grant is a takeover.
    pub after_expiry: bool,
    /// `false` plants the store without compare-and-swap: a publish always writes.
    pub compare_and_swap: bool,
}

impl Store {
    /// A store never written.
    pub fn new(compare_and_swap: bool) -> Self {
        Store {
            version: 0,
            content: Content::Empty,
            spent: false,
            lease: None,
            after_expiry: false,
            compare_and_swap,
        }
    }

    /// The record as it is now.
    pub fn record(&self) -> Record {
        Record {
            version: self.version,
            content: self.content,
            spent: self.spent,
        }
    }

    /// What a watcher compares to notice a change: version and content (a change of the mark
    /// alone changes nothing a session reads outside a lease answer).
    pub fn seen(&self) -> (u64, Content) {
        (self.version, self.content)
    }

    /// The record as a driver reads it.
    pub fn observed(&self) -> Observed {
        self.record().observed()
    }

    /// `Acquire`: if no lease is live, `owner` takes it and the mark is set in the same step;
    /// the answer holds the record from before.
    pub fn acquire(&mut self, owner: Owner) -> LeaseResult {
        let before = self.observed();
        if self.lease.is_some() {
            return LeaseResult::Busy(before);
        }
        self.lease = Some(owner);
        self.spent = true;
        self.after_expiry = false;
        LeaseResult::Granted(before)
    }

    /// `Publish`: write `tokens` as `expected + 1` if the record is at `expected`, clearing the
    /// mark. Without compare-and-swap it writes as the next version whatever it holds.
    pub fn publish(&mut self, expected: u64, tokens: Tokens) -> PublishResult {
        if self.compare_and_swap && self.version != expected {
            return PublishResult::Conflict(self.observed());
        }
        self.version += 1;
        self.content = Content::Tokens(tokens);
        self.spent = false;
        PublishResult::Written
    }

    /// `Release`: only the owner of the live lease drops it; with `spent: false` and the
    /// version unchanged, the mark is cleared too.
    pub fn release(&mut self, owner: Owner, version: u64, spent: bool) {
        if self.lease != Some(owner) {
            return;
        }
        self.lease = None;
        if !spent && self.version == version {
            self.spent = false;
        }
    }

    /// `ClearStore`: the tombstone as the next version with its mark clear, every time (over a
    /// tombstone too, so a login granted on the earlier one loses its compare-and-swap); the
    /// lease is untouched. Answers with the record.
    pub fn logout(&mut self) -> Observed {
        self.version += 1;
        self.content = Content::LoggedOut;
        self.spent = false;
        self.observed()
    }

    /// The store loses everything (a restart without persistence): empty at version 0, no mark,
    /// no lease. A lease that was live is lost, so the next grant counts as a takeover.
    ///
    /// Neither this nor [`Store::expire_lease`] returns whether a lease was live: rustc 1.95
    /// (and nightly 1.97) miscompiles `if store.method() { .. }` in release builds when the
    /// inlined method stores the bool it returns (the MIR pass `SimplifyComparisonIntegral` loses
    /// the store). Callers read `lease` first.
    pub fn lose(&mut self) {
        let after_expiry = self.lease.is_some();
        *self = Store {
            after_expiry,
            ..Store::new(self.compare_and_swap)
        };
    }

    /// The lease ends without a release (its ttl ran out).
    pub fn expire_lease(&mut self) {
        if self.lease.take().is_some() {
            self.after_expiry = true;
        }
    }
}

/// One token set the server issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Issued {
    /// The family: the number of the login that started the rotation chain.
    pub family: u64,
    /// Its refresh token was exchanged already.
    pub rotated: bool,
    /// Its family was revoked (reuse detected, or revoked at logout).
    pub revoked: bool,
}

/// The auth server: logins start a token family, refreshes rotate within it, and a refresh
/// token presented a second time revokes the whole family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Server {
    /// Token set `n` is `issued[n - 1]`.
    pub issued: Vec<Issued>,
    /// Access tokens numbered below this were expired server-side.
    pub valid_from: u64,
    /// A refresh token was presented twice: the server revoked its family and every process
    /// sharing the session is signed out. What P9 exists to prevent.
    pub reuse_detected: bool,
}

impl Server {
    /// A server that issued nothing yet.
    pub fn new() -> Self {
        Server {
            valid_from: 1,
            ..Server::default()
        }
    }

    /// A silent login: a new family.
    pub fn login(&mut self) -> Tokens {
        let n = self.issue(None);
        Tokens {
            access: n,
            refresh: Some(n),
        }
    }

    /// A refresh with `r{token}`: rotated when it is the live token of a live family;
    /// `invalid_grant` (`None`) when revoked or unknown; a rotated token presented again is
    /// reuse: its family is revoked.
    pub fn refresh(&mut self, token: u64) -> Option<Tokens> {
        let index = usize::try_from(token.checked_sub(1)?).ok()?;
        let issued = *self.issued.get(index)?;
        if issued.revoked {
            return None;
        }
        if issued.rotated {
            self.reuse_detected = true;
            self.revoke(token);
            return None;
        }
        self.issued[index].rotated = true;
        let n = self.issue(Some(issued.family));
        Some(Tokens {
            access: n,
            refresh: Some(n),
        })
    }

    /// Revokes the family of `r{token}` (RFC 7009 at logout, or reuse detection).
    pub fn revoke(&mut self, token: u64) {
        let family = token
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.issued.get(i))
            .map(|issued| issued.family);
        for issued in &mut self.issued {
            if Some(issued.family) == family {
                issued.revoked = true;
            }
        }
    }

    /// Whether the API accepts `a{token}`: issued since the last server-side expiry.
    pub fn accepts(&self, token: u64) -> bool {
        token >= self.valid_from && token <= self.issued()
    }

    /// Expires every access token issued so far.
    pub fn expire(&mut self) {
        self.valid_from = self.issued() + 1;
    }

    /// How many token sets were issued.
    pub fn issued(&self) -> u64 {
        self.issued.len() as u64
    }

    fn issue(&mut self, family: Option<u64>) -> u64 {
        let n = self.issued() + 1;
        self.issued.push(Issued {
            family: family.unwrap_or(n),
            rotated: false,
            revoked: false,
        });
        n
    }
}
