//! The demo server's refresh-token reuse detection, spoken to in plain HTTP (no driver): a
//! refresh token presented a second time is `invalid_grant`, counted as `reuse_detected`, and
//! (with `revoke_family_on_reuse`, as the fleet runs it) revokes its whole family (the refresh
//! tokens rotated from the same login and their access tokens), while other families keep
//! working. The fleet tests rely on this server to say
//! whether a refresh token was ever presented twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_demo::server::{self, ServerConfig, ServerHandle};
use serde_json::Value;

/// Access and refresh token of one answer of the token endpoint.
struct Tokens {
    access: String,
    refresh: String,
}

async fn login(http: &reqwest::Client, server: &ServerHandle) -> Tokens {
    let code = http
        .post(server.url("/platform/code"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let code: Value = serde_json::from_slice(&code).unwrap();
    let code = code["code"].as_str().unwrap().to_owned();
    let response = http
        .post(server.url("/login"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    tokens(response).await.unwrap()
}

/// The tokens of a 200 answer, or the `error` of a 400.
async fn refresh(
    http: &reqwest::Client,
    server: &ServerHandle,
    token: &str,
) -> Result<Tokens, String> {
    let response = http
        .post(server.url("/refresh"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    tokens(response).await
}

async fn tokens(response: reqwest::Response) -> Result<Tokens, String> {
    let status = response.status();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    if status != 200 {
        assert_eq!(status, 400);
        return Err(body["error"].as_str().unwrap().to_owned());
    }
    Ok(Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    })
}

async fn api_status(http: &reqwest::Client, server: &ServerHandle, access: &str) -> u16 {
    http.get(server.url("/api/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_refresh_token_presented_twice_revokes_its_whole_family_and_only_it() {
    let config = ServerConfig::default().with_family_revocation(true);
    let server = server::spawn(config).await.unwrap();
    let http = reqwest::Client::new();
    let first = login(&http, &server).await;
    let other = login(&http, &server).await;
    let second = refresh(&http, &server, &first.refresh).await.unwrap();
    let third = refresh(&http, &server, &second.refresh).await.unwrap();
    assert_eq!(api_status(&http, &server, &third.access).await, 200);
    assert_eq!(server.admin().counters().reuse_detected, 0);

    // The second presentation of a rotated refresh token (not the newest one).
    let reused = refresh(&http, &server, &first.refresh).await;
    assert_eq!(reused.err().as_deref(), Some("invalid_grant"));
    let counters = server.admin().counters();
    assert_eq!(counters.reuse_detected, 1);
    assert_eq!(counters.invalid_grant, 1);

    // Every token of the family is dead: the newest refresh token (an `invalid_grant` that is
    // not itself a reuse: it was never presented) and every access token.
    let newest = refresh(&http, &server, &third.refresh).await;
    assert_eq!(newest.err().as_deref(), Some("invalid_grant"));
    for access in [&first.access, &second.access, &third.access] {
        assert_eq!(api_status(&http, &server, access).await, 401);
    }
    let counters = server.admin().counters();
    assert_eq!(counters.reuse_detected, 1);
    assert_eq!(counters.invalid_grant, 2);
    assert_eq!(counters.refreshes, 2);

    // Another login's family is untouched, and a new login starts a family that works.
    assert_eq!(api_status(&http, &server, &other.access).await, 200);
    refresh(&http, &server, &other.refresh).await.unwrap();
    let fresh = login(&http, &server).await;
    assert_eq!(api_status(&http, &server, &fresh.access).await, 200);
    refresh(&http, &server, &fresh.refresh).await.unwrap();
    assert_eq!(server.admin().counters().reuse_detected, 1);
}

#[tokio::test]
async fn a_revoked_or_unknown_refresh_token_is_refused_without_counting_a_reuse() {
    let config = ServerConfig::default().with_family_revocation(true);
    let server = server::spawn(config).await.unwrap();
    let http = reqwest::Client::new();
    let tokens = login(&http, &server).await;
    let unknown = refresh(&http, &server, "rt_never_issued").await;
    assert_eq!(unknown.err().as_deref(), Some("invalid_grant"));
    server.admin().revoke_refresh_tokens();
    let revoked = refresh(&http, &server, &tokens.refresh).await;
    assert_eq!(revoked.err().as_deref(), Some("invalid_grant"));
    let counters = server.admin().counters();
    assert_eq!(counters.invalid_grant, 2);
    assert_eq!(counters.reuse_detected, 0);
    // Revoking the refresh token leaves its access token alone (only a reuse kills the family).
    assert_eq!(api_status(&http, &server, &tokens.access).await, 200);
}

#[tokio::test]
async fn without_family_revocation_a_reuse_is_refused_and_counted_but_the_family_lives() {
    let server = server::spawn(ServerConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let first = login(&http, &server).await;
    let second = refresh(&http, &server, &first.refresh).await.unwrap();
    let reused = refresh(&http, &server, &first.refresh).await;
    assert_eq!(reused.err().as_deref(), Some("invalid_grant"));
    assert_eq!(server.admin().counters().reuse_detected, 1);
    assert_eq!(api_status(&http, &server, &second.access).await, 200);
    refresh(&http, &server, &second.refresh).await.unwrap();
}
