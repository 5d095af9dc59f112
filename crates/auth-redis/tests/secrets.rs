//! No secret leaves the store in text: not in its errors (whatever failed, whatever the record
//! or the server held), not in its `Debug`, not in the key names it writes, not the password of
//! its URL.

mod common;

use std::time::Duration;

use auth_core::StoreVersion;
use auth_redis::{Options, RedisStore};
use auth_store::shared::conformance::{sample_snapshot, SAMPLE_SECRET};
use auth_store::shared::{LeaseOwner, SharedStore, SharedStoreError};

/// Every call of `store`, as the text a log or a user would see: the store's `Debug`, the
/// answers' `Debug`, the errors' `Display` and `Debug`.
fn everything_shown(store: &RedisStore) -> String {
    let mut shown = format!("{store:?}\n");
    for answer in common::every_call(store) {
        match answer.result {
            Ok(answer) => shown.push_str(&format!("{answer}\n")),
            Err(error) => shown.push_str(&format!("{error}\n{error:?}\n")),
        }
    }
    shown
}

fn assert_no_secret(shown: &str, secret: &str) {
    assert!(!shown.is_empty());
    assert!(!shown.contains(secret), "a secret is shown:\n{shown}");
}

#[test]
fn tokens_never_show_in_answers_errors_or_key_names() {
    let mut server = common::server();
    let store = common::store_with(&server, Duration::from_millis(300));
    let mut raw = common::raw(&server);
    store
        .publish(StoreVersion(0), &sample_snapshot(1))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_no_secret(&everything_shown(&store), SAMPLE_SECRET);

    // The tokens are stored (the record holds the encoded snapshot) but no key name has them,
    // nor the lease's.
    store
        .acquire(&LeaseOwner("holder".to_owned()), Duration::from_secs(30))
        .unwrap_or_else(|error| panic!("{error}"));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_no_secret(&keys.join(" "), SAMPLE_SECRET);

    // A record whose tokens do not decode (they hold the secret): Unreadable, quoting nothing.
    let unreadable = format!("{{\"version\":1,\"access_token\":\"{SAMPLE_SECRET}\",\"x\":1}}");
    redis::cmd("HSET")
        .arg(store.record_key())
        .arg(&["content", "tokens", "tokens", unreadable.as_str()][..])
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(matches!(store.read(), Err(SharedStoreError::Unreadable(_))));
    assert_no_secret(&everything_shown(&store), SAMPLE_SECRET);

    // A record key of another type holding the secret: Redis's WRONGTYPE, quoting nothing.
    redis::cmd("DEL")
        .arg(store.record_key())
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    redis::cmd("SET")
        .arg(store.record_key())
        .arg(SAMPLE_SECRET)
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_no_secret(&everything_shown(&store), SAMPLE_SECRET);

    // A server gone, then hung, in the middle of it all.
    server.pause().unwrap_or_else(|error| panic!("{error}"));
    assert_no_secret(&everything_shown(&store), SAMPLE_SECRET);
    server.resume().unwrap_or_else(|error| panic!("{error}"));
    server.stop().unwrap_or_else(|error| panic!("{error}"));
    assert_no_secret(&everything_shown(&store), SAMPLE_SECRET);
}

#[test]
fn the_password_of_the_url_never_shows() {
    let server = common::server();
    let password = "url-password-that-must-not-show";
    let url = format!("redis://nobody:{password}@127.0.0.1:{}/", server.port());
    let store = RedisStore::with_options(
        &url,
        "seamless:{secrets}",
        Options::default().timeout(Duration::from_millis(500)),
    )
    .unwrap_or_else(|error| panic!("{error}"));

    // Redis refuses the login: the error says so, without the credentials.
    let shown = everything_shown(&store);
    assert!(shown.contains("authentication"), "{shown}");
    assert_no_secret(&shown, password);

    for url in [
        format!("redis://nobody:{password}@127.0.0.1:not-a-port/"),
        format!("rediss://nobody:{password}@127.0.0.1:6379/"),
        format!("http://nobody:{password}@127.0.0.1/"),
    ] {
        let refused = RedisStore::open(&url, "seamless:{secrets}").err();
        assert!(refused.is_some(), "{url} must be refused");
        assert_no_secret(
            &format!("{refused:?} {:?}", refused.as_ref().map(|e| e.to_string())),
            password,
        );
    }
}
