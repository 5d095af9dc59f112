//! Without `redis-server` on `PATH`, starting a test server fails with a message that says how
//! to get one: the Redis tests never skip silently. (Its own test binary: it empties `PATH`.)

use auth_redis::testing::{RedisServer, ServerError};

#[test]
fn a_missing_redis_server_fails_naming_ci_run() {
    let dir = std::env::temp_dir().join("seamless-no-redis-here");
    std::env::set_var("PATH", &dir);

    let error = RedisServer::start().err();

    assert!(
        matches!(error, Some(ServerError::NotInstalled)),
        "{error:?}"
    );
    let text = format!("{error:?}");
    assert!(
        text.contains(".ci/run") && text.contains("redis-server"),
        "{text}"
    );
}
