//! Which requests belong to the API ([`Scope`]), what the session should know of each one
//! ([`Scope::spec`]), and per-request options.

use std::net::{IpAddr, Ipv6Addr};

use auth_core::RequestSpec;
use http::Uri;

/// Which requests belong to the API the session authenticates, and which of its paths are
/// public.
///
/// - A request to another origin (scheme, host, port) is passed through untouched: it never
///   waits for the session and never carries the token.
/// - A request to the API's origin whose path is under a public prefix is a public request: it
///   never waits and never carries the token (auth-core guarantees it).
/// - Every other request to the API's origin carries the bearer token.
///
/// A URI with no scheme and authority (relative, as in-process services see them) belongs to
/// the API's origin, unless its path starts with two slashes (`//evil.example/x`, or `/\` which
/// URL parsers read the same way): that is a protocol-relative reference to another host, so it
/// is foreign.
///
/// The API's origin must be `https`, or plain `http` on a loopback host (`localhost`,
/// `127.0.0.0/8`, `[::1]`): [`Scope::new`] refuses anything else, because every bearer request
/// would put the token on the network in clear text. [`Scope::allow_insecure_http`] opts in by
/// name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    scheme: String,
    host: String,
    port: u16,
    public: Vec<String>,
}

/// Where a request goes, by [`Scope::target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The API, with a bearer token.
    Bearer,
    /// One of the API's public paths: no token, no waiting.
    Public,
    /// Another origin: not the session's business.
    Foreign,
}

/// Why a [`Scope`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The API's base URL is not an absolute `http` or `https` URL with a host.
    #[error("the API origin must be an absolute http(s) URL with a host: {0}")]
    InvalidOrigin(String),
    /// The API's origin is plain `http` on a host that is not loopback: every bearer request
    /// would send the token over the network in clear text. Use `https`, or build the scope with
    /// [`Scope::allow_insecure_http`] if the network path is trusted.
    #[error(
        "the API origin http://{host} is neither https nor loopback: tokens would travel in clear \
         text (use https, or Scope::allow_insecure_http to opt in)"
    )]
    InsecureHttp {
        /// The origin's host (lowercase).
        host: String,
    },
}

/// Options a request can carry (in its `http::Request` extensions for tower, per call for the
/// client wrappers).
/// New fields always come with a default, so `RequestOptions { no_retry: true,
/// ..RequestOptions::default() }` keeps compiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Deliver a 401 as is instead of refreshing and sending again.
    pub no_retry: bool,
}

impl RequestOptions {
    /// Options that opt the request out of the retry: a 401 is delivered as is.
    pub fn no_retry() -> Self {
        RequestOptions { no_retry: true }
    }
}

impl Scope {
    /// The API at `origin` (`https://api.example.com`, `http://127.0.0.1:8080`); a path in it is
    /// ignored. A plain `http` origin must be loopback ([`ScopeError::InsecureHttp`] otherwise).
    pub fn new(origin: &str) -> Result<Self, ScopeError> {
        let scope = Scope::allow_insecure_http(origin)?;
        if scope.scheme == "http" && !is_loopback(&scope.host) {
            return Err(ScopeError::InsecureHttp { host: scope.host });
        }
        Ok(scope)
    }

    /// Like [`Scope::new`], but also accepts a plain `http` origin that is not loopback
    /// (`http://api.intranet:8080`). The bearer token then crosses the network unencrypted:
    /// only for a network path you trust (a lab, a sidecar that adds TLS).
    pub fn allow_insecure_http(origin: &str) -> Result<Self, ScopeError> {
        let invalid = || ScopeError::InvalidOrigin(origin.to_owned());
        let uri: Uri = origin.parse().map_err(|_| invalid())?;
        let scheme = uri.scheme_str().ok_or_else(invalid)?.to_ascii_lowercase();
        let host = uri.host().ok_or_else(invalid)?.to_ascii_lowercase();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .ok_or_else(invalid)?;
        if host.is_empty() || default_port(&scheme).is_none() {
            return Err(invalid());
        }
        Ok(Scope {
            scheme,
            host,
            port,
            public: Vec::new(),
        })
    }

    /// Marks every path under `prefix` as public (`/public` covers `/public` and `/public/x`,
    /// not `/publicity`).
    pub fn public_path(mut self, prefix: &str) -> Self {
        let trimmed = prefix.trim_end_matches('/');
        self.public.push(if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        });
        self
    }

    /// Where a request to `uri` goes.
    pub fn target(&self, uri: &Uri) -> Target {
        match (uri.scheme_str(), uri.host()) {
            // `//host/x` has no scheme, so `http::Uri` sees a path, but every URL resolver reads
            // it as another host: never the API's.
            (None, None) if is_protocol_relative(uri.path()) => Target::Foreign,
            (None, None) => self.path_target(uri.path()),
            (Some(scheme), Some(host)) => {
                let scheme = scheme.to_ascii_lowercase();
                let port = uri.port_u16().or_else(|| default_port(&scheme));
                self.target_of(&scheme, host, port, uri.path())
            }
            _ => Target::Foreign,
        }
    }

    /// Where a request goes, from the parts of its URL (for clients with their own URL type).
    pub fn target_of(&self, scheme: &str, host: &str, port: Option<u16>, path: &str) -> Target {
        let same_origin = scheme.eq_ignore_ascii_case(&self.scheme)
            && host.eq_ignore_ascii_case(&self.host)
            && port == Some(self.port);
        if same_origin {
            self.path_target(path)
        } else {
            Target::Foreign
        }
    }

    /// The core's description of a request to `target` (`None` for a foreign one).
    pub fn spec(target: Target, replayable: bool, options: RequestOptions) -> Option<RequestSpec> {
        let spec = match target {
            Target::Bearer => RequestSpec::bearer(),
            Target::Public => RequestSpec::public(),
            Target::Foreign => return None,
        };
        let spec = if replayable {
            spec
        } else {
            spec.not_replayable()
        };
        Some(if options.no_retry {
            spec.no_retry()
        } else {
            spec
        })
    }

    fn path_target(&self, path: &str) -> Target {
        let public = self.public.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        if public {
            Target::Public
        } else {
            Target::Bearer
        }
    }
}

/// A relative reference that starts with two slashes (either kind: WHATWG URL parsers read `\`
/// as `/` in http(s) URLs) names a host, not a path.
fn is_protocol_relative(path: &str) -> bool {
    let slash = |b: &u8| matches!(b, b'/' | b'\\');
    path.as_bytes()
        .get(..2)
        .is_some_and(|start| start.iter().all(slash))
}

/// `localhost` or a loopback IP literal (`127.0.0.0/8`, `[::1]`, `[::ffff:127.x.y.z]`): traffic
/// that never leaves the machine. Other names are not trusted to resolve to loopback.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    match literal.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || mapped_loopback(ip),
        Err(_) => false,
    }
}

fn mapped_loopback(ip: Ipv6Addr) -> bool {
    ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn scope() -> Scope {
        Scope::new("http://127.0.0.1:8080")
            .unwrap()
            .public_path("/public")
            .public_path("health/")
    }

    fn target(uri: &str) -> Target {
        scope().target(&uri.parse().unwrap())
    }

    #[test]
    fn same_origin_paths_are_bearer_unless_public() {
        assert_eq!(target("http://127.0.0.1:8080/api/me"), Target::Bearer);
        assert_eq!(target("HTTP://127.0.0.1:8080/api/me?x=1"), Target::Bearer);
        assert_eq!(target("http://127.0.0.1:8080/public"), Target::Public);
        assert_eq!(
            target("http://127.0.0.1:8080/public/status"),
            Target::Public
        );
        assert_eq!(target("http://127.0.0.1:8080/publicity"), Target::Bearer);
        assert_eq!(target("http://127.0.0.1:8080/health"), Target::Public);
        assert_eq!(target("/api/me"), Target::Bearer);
        assert_eq!(target("/public/x"), Target::Public);
        assert_eq!(target("/api//me"), Target::Bearer);
    }

    #[test]
    fn protocol_relative_targets_are_foreign() {
        for uri in [
            "//evil.example/x",
            "//127.0.0.1:8080/api/me",
            "///api/me",
            "/\\evil.example/x",
        ] {
            assert_eq!(target(uri), Target::Foreign, "{uri}");
        }
    }

    #[test]
    fn plain_http_origins_must_be_loopback_unless_allowed_by_name() {
        for origin in [
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://localhost:3000",
            "HTTP://LOCALHOST",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
            "https://api.example.com",
            "https://10.0.0.1",
        ] {
            assert!(Scope::new(origin).is_ok(), "{origin}");
        }
        for (origin, host) in [
            ("http://api.example.com", "api.example.com"),
            ("http://10.0.0.1:8080", "10.0.0.1"),
            ("http://[::2]", "[::2]"),
            ("http://localhost.evil.example", "localhost.evil.example"),
            ("http://127.0.0.1.nip.io", "127.0.0.1.nip.io"),
            ("http://0.0.0.0:8080", "0.0.0.0"),
        ] {
            assert_eq!(
                Scope::new(origin),
                Err(ScopeError::InsecureHttp {
                    host: host.to_owned()
                }),
                "{origin}"
            );
            let allowed = Scope::allow_insecure_http(origin).unwrap();
            let uri = format!("{origin}/api/me").parse().unwrap();
            assert_eq!(allowed.target(&uri), Target::Bearer, "{origin}");
        }
        assert!(Scope::allow_insecure_http("ftp://x").is_err());
    }

    #[test]
    fn other_origins_are_foreign() {
        assert_eq!(target("http://127.0.0.1:8081/api/me"), Target::Foreign);
        assert_eq!(target("https://127.0.0.1:8080/api/me"), Target::Foreign);
        assert_eq!(target("http://localhost:8080/api/me"), Target::Foreign);
        assert_eq!(target("http://127.0.0.1/api/me"), Target::Foreign);
        assert_eq!(
            target("http://evil.example/127.0.0.1:8080"),
            Target::Foreign
        );
        assert_eq!(
            target("http://127.0.0.1:8080@evil.example/api"),
            Target::Foreign
        );
        let default_port = Scope::new("https://API.example.com").unwrap();
        let uri = "https://api.example.com:443/x".parse().unwrap();
        assert_eq!(default_port.target(&uri), Target::Bearer);
    }

    #[test]
    fn bad_origins_are_refused() {
        for origin in ["", "/api", "ftp://x", "127.0.0.1:8080", "http://"] {
            assert!(Scope::new(origin).is_err(), "{origin}");
        }
    }

    #[test]
    fn spec_follows_target_and_options() {
        let spec = Scope::spec(Target::Bearer, false, RequestOptions { no_retry: true }).unwrap();
        assert_eq!(spec, RequestSpec::bearer().not_replayable().no_retry());
        assert_eq!(
            Scope::spec(Target::Public, true, RequestOptions::default()),
            Some(RequestSpec::public())
        );
        assert_eq!(
            Scope::spec(Target::Foreign, true, RequestOptions::default()),
            None
        );
    }
}
