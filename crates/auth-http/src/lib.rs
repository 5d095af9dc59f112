//! # auth-http: HTTP glue shared by the Seamless drivers
//!
//! `auth-core` knows nothing about HTTP; the drivers (`auth-tokio`, `auth-blocking`) do, and
//! they must agree on it: which requests belong to the API and may carry the token ([`Scope`]),
//! how a response becomes a [`auth_core::Verdict`] (a [`Classifier`]: [`Rfc6750`] by default,
//! [`BodyCode`] for backends that answer 200 with `{"code":401}`, or the app's own, reading at
//! most a bounded start of the body and handing it back with [`PeekedBody`] /
//! [`PeekedReader`]), and how a backend's failure
//! tells the session what to do next ([`LoginError`], [`RefreshError`]). It lives here once,
//! independent of any runtime or HTTP client: only the `http` crate's types.
//!
//! ```
//! use auth_http::{verdict, RequestOptions, Scope, Target};
//! use http::{HeaderMap, StatusCode};
//!
//! let scope = Scope::new("https://api.example.com").unwrap().public_path("/public");
//! let uri = "https://api.example.com/public/status".parse().unwrap();
//! assert_eq!(scope.target(&uri), Target::Public);
//! let spec = Scope::spec(Target::Bearer, true, RequestOptions::no_retry()).unwrap();
//! assert_eq!(spec, auth_core::RequestSpec::bearer().no_retry());
//! assert_eq!(verdict(StatusCode::UNAUTHORIZED, &HeaderMap::new()), auth_core::Verdict::Rejected);
//! ```
#![warn(missing_docs, unreachable_pub)]

mod backend_error;
mod body_code;
mod classify;
mod peek;
mod scope;
mod verdict;

pub use backend_error::{
    redact_url, BoxError, LoginError, RefreshError, TokenEndpointError, TransportError,
    TransportKind,
};
pub use body_code::{BodyCode, BodyCodeError};
pub use classify::{plan, Classifier, Peeked, Plan, Rfc6750, SharedClassifier};
pub use peek::{PeekedBody, PeekedReader};
pub use scope::{RequestOptions, Scope, ScopeError, Target};
pub use verdict::verdict;
