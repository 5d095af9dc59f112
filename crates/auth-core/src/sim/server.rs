//! A sans-IO fake auth server and API: what the simulator's session talks to.
//!
//! It behaves like a strict real backend: access tokens expire, refresh tokens rotate and a spent
//! one gets `invalid_grant`, and faults (5xx, hangs, fatal login refusals) can be queued. Like
//! Auth0, Okta, Keycloak or Ory Hydra with rotation, it detects reuse: a refresh token that was
//! already exchanged, presented again, revokes its whole family (the chain of refresh tokens
//! since the login that started it) and is counted in [`FakeServer::reuse_detected`], the figure
//! a fleet sharing one session must keep at zero (DESIGN.md §7, P9).

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use crate::input::{LoginFailure, RefreshFailure, Verdict};
use crate::time::Instant;
use crate::token::{AccessToken, RefreshToken, TokenSet};

/// A fault the next login or refresh suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The endpoint answers 5xx: a transient failure.
    ServerError,
    /// The endpoint never answers.
    Hang,
    /// The endpoint answers after this extra delay.
    Delay(Duration),
    /// Login only: the platform refuses for good (e.g. phone number not bound).
    Fatal,
}

/// An API answer as a driver would see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// The `WWW-Authenticate` header, if any.
    pub www_authenticate: Option<&'static str>,
}

impl ApiResponse {
    /// The verdict a driver feeds to the session.
    pub fn verdict(&self) -> Verdict {
        Verdict::classify(self.status, self.www_authenticate)
    }
}

/// What the server makes of a login or refresh call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    /// The result arrives after the network latency plus `extra`.
    After {
        /// Extra delay beyond the network latency.
        extra: Duration,
        /// The result.
        result: T,
    },
    /// No answer ever comes.
    Never,
}

/// The fake backend: token endpoint plus a protected API.
#[derive(Clone, Debug)]
pub struct FakeServer {
    /// Lifetime of every access token issued (`expires_in`).
    pub access_lifetime: Duration,
    issued: u64,
    /// Live access tokens and when each expires.
    access: BTreeMap<String, Instant>,
    live_refresh: Option<String>,
    /// The family of the live refresh token: bumped by every login, kept by a refresh.
    live_family: u64,
    /// Every refresh token exchanged so far, with its family: presenting one again is reuse.
    exchanged: BTreeMap<String, u64>,
    reject_all: bool,
    scope_denials: u32,
    login_faults: VecDeque<Fault>,
    refresh_faults: VecDeque<Fault>,
    /// Successful logins.
    pub logins: u32,
    /// Refresh calls, whatever their result.
    pub refreshes: u32,
    /// Refresh calls answered with `invalid_grant`.
    pub invalid_grants: u32,
    /// API calls answered 401.
    pub rejections: u32,
    /// Public calls that carried a bearer token (must stay 0).
    pub bearer_on_public: u32,
    /// Refresh tokens revoked by the client.
    pub revocations: u32,
    /// Refresh tokens presented again after they were exchanged (each answered `invalid_grant`
    /// and revoking its family, as rotation with reuse detection does).
    pub reuse_detected: u32,
}

impl Default for FakeServer {
    fn default() -> Self {
        FakeServer::new(Duration::from_secs(3600))
    }
}

impl FakeServer {
    /// A server issuing access tokens valid for `access_lifetime`.
    pub fn new(access_lifetime: Duration) -> Self {
        FakeServer {
            access_lifetime,
            issued: 0,
            access: BTreeMap::new(),
            live_refresh: None,
            live_family: 0,
            exchanged: BTreeMap::new(),
            reject_all: false,
            scope_denials: 0,
            login_faults: VecDeque::new(),
            refresh_faults: VecDeque::new(),
            logins: 0,
            refreshes: 0,
            invalid_grants: 0,
            rejections: 0,
            bearer_on_public: 0,
            revocations: 0,
            reuse_detected: 0,
        }
    }

    /// The next login suffers `fault`.
    pub fn fail_next_login(&mut self, fault: Fault) {
        self.login_faults.push_back(fault);
    }

    /// The next refresh suffers `fault`.
    pub fn fail_next_refresh(&mut self, fault: Fault) {
        self.refresh_faults.push_back(fault);
    }

    /// Drops every queued fault: from now on the server behaves (except that an API set to
    /// [`FakeServer::reject_every_call`] keeps rejecting).
    pub fn clear_faults(&mut self) {
        self.login_faults.clear();
        self.refresh_faults.clear();
        self.scope_denials = 0;
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&mut self, now: Instant) {
        for expiry in self.access.values_mut() {
            *expiry = (*expiry).min(now);
        }
    }

    /// The live refresh token dies (revoked server-side, or rotated by another client).
    pub fn revoke_refresh_token(&mut self) {
        self.live_refresh = None;
    }

    /// From now on (`true`) or no longer (`false`) the API answers every protected call 401
    /// `invalid_token`, whatever the token: a misconfigured API, or a validator whose keys never
    /// match. Logins and refreshes still succeed, so only the retry budget ends a request.
    /// [`FakeServer::clear_faults`] leaves it as it is: a session must settle against such an
    /// API too.
    pub fn reject_every_call(&mut self, reject: bool) {
        self.reject_all = reject;
    }

    /// Exchanges a one-time platform code for tokens.
    pub fn login(&mut self, now: Instant) -> Answer<Result<TokenSet, LoginFailure>> {
        match self.login_faults.pop_front() {
            Some(Fault::Hang) => Answer::Never,
            Some(Fault::ServerError) => Answer::After {
                extra: Duration::ZERO,
                result: Err(LoginFailure::Transient),
            },
            Some(Fault::Fatal) => Answer::After {
                extra: Duration::ZERO,
                result: Err(LoginFailure::Fatal),
            },
            Some(Fault::Delay(extra)) => {
                self.logins += 1;
                self.live_family += 1;
                Answer::After {
                    extra,
                    result: Ok(self.issue(now)),
                }
            }
            None => {
                self.logins += 1;
                self.live_family += 1;
                Answer::After {
                    extra: Duration::ZERO,
                    result: Ok(self.issue(now)),
                }
            }
        }
    }

    /// Exchanges a refresh token, rotating it. A token exchanged before is reuse: counted, and
    /// its family is revoked (the live refresh token dies if it descends from it).
    pub fn refresh(
        &mut self,
        token: &RefreshToken,
        now: Instant,
    ) -> Answer<Result<TokenSet, RefreshFailure>> {
        self.refreshes += 1;
        let extra = match self.refresh_faults.pop_front() {
            Some(Fault::Hang) => return Answer::Never,
            Some(Fault::ServerError) | Some(Fault::Fatal) => {
                return Answer::After {
                    extra: Duration::ZERO,
                    result: Err(RefreshFailure::Transient),
                }
            }
            Some(Fault::Delay(extra)) => extra,
            None => Duration::ZERO,
        };
        if self.live_refresh.as_deref() != Some(token.expose_secret()) {
            self.invalid_grants += 1;
            if let Some(&family) = self.exchanged.get(token.expose_secret()) {
                self.reuse_detected += 1;
                if family == self.live_family {
                    self.live_refresh = None;
                }
            }
            return Answer::After {
                extra,
                result: Err(RefreshFailure::InvalidGrant),
            };
        }
        self.exchanged
            .insert(token.expose_secret().to_owned(), self.live_family);
        Answer::After {
            extra,
            result: Ok(self.issue(now)),
        }
    }

    /// Revokes a refresh token (RFC 7009).
    pub fn revoke(&mut self, token: &RefreshToken) {
        if self.live_refresh.as_deref() == Some(token.expose_secret()) {
            self.live_refresh = None;
            self.revocations += 1;
        }
    }

    /// The next `count` valid API calls are refused with 403 `insufficient_scope`.
    pub fn deny_scope_next(&mut self, count: u32) {
        self.scope_denials += count;
    }

    /// Answers a protected API call with a status and `WWW-Authenticate` header, which the
    /// simulator classifies with [`Verdict::classify`] as a driver would.
    pub fn api(&mut self, token: Option<&AccessToken>, now: Instant) -> ApiResponse {
        let valid = !self.reject_all
            && token
                .and_then(|t| self.access.get(t.expose_secret()))
                .is_some_and(|expiry| now < *expiry);
        if !valid {
            self.rejections += 1;
            return ApiResponse {
                status: 401,
                www_authenticate: Some(r#"Bearer realm="api", error="invalid_token""#),
            };
        }
        if self.scope_denials > 0 {
            self.scope_denials -= 1;
            return ApiResponse {
                status: 403,
                www_authenticate: Some(
                    r#"Bearer realm="api", error="insufficient_scope", scope="admin""#,
                ),
            };
        }
        ApiResponse {
            status: 200,
            www_authenticate: None,
        }
    }

    /// Answers a public API call.
    pub fn public(&mut self, token: Option<&AccessToken>) -> ApiResponse {
        if token.is_some() {
            self.bearer_on_public += 1;
        }
        ApiResponse {
            status: 200,
            www_authenticate: None,
        }
    }

    fn issue(&mut self, now: Instant) -> TokenSet {
        self.issued += 1;
        let access = format!("access-{}", self.issued);
        let refresh = format!("refresh-{}", self.issued);
        self.access
            .insert(access.clone(), now.saturating_add(self.access_lifetime));
        self.live_refresh = Some(refresh.clone());
        TokenSet::new(AccessToken::new(access))
            .with_refresh_token(RefreshToken::new(refresh))
            .with_expires_in(self.access_lifetime)
    }
}
