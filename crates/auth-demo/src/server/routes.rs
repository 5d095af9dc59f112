//! The HTTP endpoints, RFC 6749 / 6750 / 7009 shaped.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Form, State};
use axum::http::header::{AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::json;
use tracing::{debug, info, warn};

use super::state::{Fault, Issued, RefreshRefusal, Refusal};
use super::Shared;

const REALM: &str = "seamless-demo";

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/platform/code", post(platform_code))
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/revoke", post(revoke))
        .route("/api/{*rest}", any(api))
        .route("/public/{*rest}", any(public))
        .route("/coded/{*rest}", any(coded))
        .fallback(fallback)
        .with_state(shared)
}

/// Stand-in for the mini-program platform's `login()`: a one-time code.
async fn platform_code(State(shared): State<Shared>) -> Response {
    let code = shared.books().issue_code();
    Json(json!({ "code": code })).into_response()
}

/// Exchanges a one-time code for tokens.
async fn login(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let fault = shared.books().login_faults.pop_front();
    match fault {
        Some(Fault::Delay(delay) | Fault::DelayAnswer(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Fail(status)) => {
            shared.books().counters.login_failures += 1;
            info!(status, "login: injected failure");
            return oauth_error(status, "temporarily_unavailable");
        }
        Some(Fault::Refuse) => {
            shared.books().counters.logins_refused += 1;
            info!("login: refused (the user must bind a phone number)");
            return oauth_error(400, "access_denied");
        }
        None => {}
    }
    let mut books = shared.books();
    let valid = form.get("code").is_some_and(|code| books.spend_code(code));
    if !valid {
        info!("login: unknown or spent code");
        return oauth_error(400, "invalid_grant");
    }
    books.counters.logins += 1;
    let issued = books.issue_tokens();
    info!(serial = issued.serial, "login: tokens issued");
    token_response(&issued)
}

/// The refresh-token grant, rotating: a refresh token works once.
async fn refresh(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let fault = {
        let mut books = shared.books();
        books.counters.refresh_calls += 1;
        books.refresh_faults.pop_front()
    };
    let mut answer_delay = None;
    match fault {
        Some(Fault::Delay(delay)) => {
            debug!(?delay, "refresh: injected delay");
            tokio::time::sleep(delay).await;
        }
        Some(Fault::DelayAnswer(delay)) => answer_delay = Some(delay),
        Some(Fault::Fail(status)) => {
            shared.books().counters.refresh_failures += 1;
            info!(status, "refresh: injected failure");
            return oauth_error(status, "temporarily_unavailable");
        }
        Some(Fault::Refuse) => {
            shared.books().counters.invalid_grant += 1;
            info!("refresh: refused (injected invalid_grant)");
            return oauth_error(400, "invalid_grant");
        }
        None => {}
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return oauth_error(400, "unsupported_grant_type");
    }
    let response = rotate(&shared, &form);
    if let Some(delay) = answer_delay {
        debug!(?delay, "refresh: carried out, answer held back");
        tokio::time::sleep(delay).await;
    }
    response
}

/// The refresh grant proper: rotates the presented token, or refuses it.
fn rotate(shared: &Shared, form: &HashMap<String, String>) -> Response {
    let mut books = shared.books();
    let rotated = match form.get("refresh_token") {
        Some(token) => books.rotate(token),
        None => Err(RefreshRefusal::Unknown),
    };
    match rotated {
        Ok(issued) => {
            books.counters.refreshes += 1;
            info!(serial = issued.serial, "refresh: rotated");
            token_response(&issued)
        }
        Err(refusal) => {
            books.counters.invalid_grant += 1;
            if refusal == RefreshRefusal::Reused {
                books.counters.reuse_detected += 1;
                warn!("refresh: a rotated refresh token was presented again (reuse)");
            } else {
                info!(?refusal, "refresh: invalid_grant");
            }
            oauth_error(400, "invalid_grant")
        }
    }
}

/// RFC 7009 revocation: always 200.
async fn revoke(
    State(shared): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut books = shared.books();
    books.counters.revocations += 1;
    if let Some(token) = form.get("token") {
        books.revoke(token);
    }
    StatusCode::OK.into_response()
}

/// The protected API. `/api/forbidden` answers 403 `insufficient_scope`; `/api/redirect?to=URL`
/// answers 302 to `URL`; every other path echoes itself.
async fn api(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let mut books = shared.books();
    books.counters.api_requests += 1;
    *books
        .counters
        .requests_per_path
        .entry(path.clone())
        .or_default() += 1;
    if authorization.is_some() {
        books.counters.requests_with_bearer += 1;
    }
    let serial = match books.check_bearer(authorization) {
        Ok(serial) => serial,
        Err(refusal) => {
            books.counters.api_unauthorized += 1;
            debug!(%path, ?refusal, "api: 401");
            return unauthorized(refusal);
        }
    };
    *books.counters.requests_per_token.entry(serial).or_default() += 1;
    drop(books);
    debug!(%path, serial, "api: ok");
    match path.as_str() {
        "/api/forbidden" => forbidden(),
        "/api/redirect" => redirect(&uri),
        _ => Json(json!({
            "method": method.as_str(),
            "path": path,
            "token_serial": serial,
            "body_bytes": body.len(),
        }))
        .into_response(),
    }
}

/// The protected API of a backend that answers everything with HTTP 200 and says in the body
/// whether the token was good, as many mini-program backends do: `{"code":401,"msg":…}` for a
/// missing, expired or unknown token, `{"code":0,"data":{…}}` otherwise.
async fn coded(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let mut books = shared.books();
    *books
        .counters
        .requests_per_path
        .entry(path.clone())
        .or_default() += 1;
    if authorization.is_some() {
        books.counters.requests_with_bearer += 1;
    }
    match books.check_bearer(authorization) {
        Ok(serial) => {
            *books.counters.requests_per_token.entry(serial).or_default() += 1;
            Json(json!({ "code": 0, "data": { "path": path, "token_serial": serial } }))
                .into_response()
        }
        Err(refusal) => {
            books.counters.coded_refusals += 1;
            debug!(%path, ?refusal, "coded: 200 with code 401");
            Json(json!({ "code": 401, "msg": "login expired" })).into_response()
        }
    }
}

/// Public endpoints: never need a token, and count the ones that arrive anyway.
async fn public(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut books = shared.books();
    books.counters.public_requests += 1;
    *books
        .counters
        .requests_per_path
        .entry(uri.path().to_owned())
        .or_default() += 1;
    if headers.contains_key(AUTHORIZATION) {
        books.counters.bearer_on_public += 1;
        books.counters.requests_with_bearer += 1;
    }
    Json(json!({ "status": "ok", "path": uri.path() })).into_response()
}

async fn fallback(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if headers.contains_key(AUTHORIZATION) {
        shared.books().counters.requests_with_bearer += 1;
    }
    StatusCode::NOT_FOUND.into_response()
}

fn token_response(issued: &Issued) -> Response {
    let body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
    });
    (
        [(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )],
        Json(body),
    )
        .into_response()
}

fn oauth_error(status: u16, error: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "error": error }))).into_response()
}

fn unauthorized(refusal: Refusal) -> Response {
    let challenge = match refusal {
        // RFC 6750 §3.1: no error code when the request had no credentials.
        Refusal::Missing => format!("Bearer realm=\"{REALM}\""),
        Refusal::Unknown => format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"unknown access token\""
        ),
        Refusal::Expired => format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"the access token expired\""
        ),
        Refusal::Revoked => format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"the token family was revoked\""
        ),
    };
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

fn forbidden() -> Response {
    let mut response = StatusCode::FORBIDDEN.into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"seamless-demo\", error=\"insufficient_scope\", scope=\"admin\"",
        ),
    );
    response
}

fn redirect(uri: &Uri) -> Response {
    let target = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("to="));
    match target.and_then(|to| HeaderValue::from_str(to).ok()) {
        Some(location) => (StatusCode::FOUND, [(LOCATION, location)]).into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}
