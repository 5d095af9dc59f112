//! The test server itself (`auth_redis::testing`): it starts, answers, loses its data on a
//! restart on the same port, refuses connections once stopped or killed, and hangs when paused.

use std::time::Duration;

use auth_redis::testing::RedisServer;

fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let connection =
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(1))?;
    connection.set_read_timeout(Some(Duration::from_millis(300)))?;
    Ok(connection)
}

#[test]
fn restart_keeps_the_port_and_loses_the_data() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = RedisServer::start()?;
    let url = server.url();
    let first_pid = server.pid();
    let mut connection = connect(&url)?;
    redis::cmd("SET").arg("k").arg("v").exec(&mut connection)?;

    server.restart()?;

    assert_eq!(server.url(), url);
    assert_ne!(server.pid(), first_pid);
    let mut connection = connect(&url)?;
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut connection)?;
    assert_eq!(
        value, None,
        "a restart without persistence loses everything"
    );
    Ok(())
}

#[test]
fn a_stopped_or_killed_server_refuses_connections() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = RedisServer::start()?;
    let url = server.url();
    server.stop()?;
    assert!(server.pid().is_none());
    assert!(connect(&url).is_err());

    server.restart()?;
    connect(&url)?;
    server.kill()?;
    assert!(connect(&url).is_err());
    Ok(())
}

#[test]
fn a_paused_server_accepts_but_does_not_answer() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = RedisServer::start()?;
    let mut connection = connect(&server.url())?;
    server.pause()?;
    let hung = redis::cmd("PING").query::<String>(&mut connection);
    assert!(hung.is_err_and(|error| error.is_timeout()));

    server.resume()?;
    let mut connection = connect(&server.url())?;
    assert_eq!(redis::cmd("PING").query::<String>(&mut connection)?, "PONG");
    Ok(())
}
