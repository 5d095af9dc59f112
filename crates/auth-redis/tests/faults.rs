//! What a fleet meets in Redis itself: a restart that loses the record, a server stopped or
//! hung, a lease holder that disappears, records another program wrote, the version at its
//! limit, and the ACL the crate docs advise.

mod common;

use std::time::{Duration, Instant};

use auth_core::StoreVersion;
use auth_redis::RedisStore;
use auth_store::shared::conformance::sample_snapshot;
use auth_store::shared::{
    Acquired, LeaseOwner, Published, Record, RecordContent, SharedStore, SharedStoreError,
};

const LONG: Duration = Duration::from_secs(60);

fn owner(name: &str) -> LeaseOwner {
    LeaseOwner(name.to_owned())
}

fn ok<T>(operation: &str, result: Result<T, SharedStoreError>) -> T {
    result.unwrap_or_else(|error| panic!("{operation} failed: {error}"))
}

#[test]
fn a_restart_loses_the_record_and_every_call_answers_right_after_it() {
    let mut server = common::server();
    let store = common::store(&server);
    assert!(matches!(
        ok("acquire", store.acquire(&owner("before"), LONG)),
        Acquired::Granted(_)
    ));
    ok(
        "publish",
        store.publish(StoreVersion(0), &sample_snapshot(1)),
    );
    // Idle connections of every kind of call are now in the store's pool.
    ok("read", store.read());

    server.restart().unwrap_or_else(|error| panic!("{error}"));

    // No call fails because its pooled connection died with the old server.
    assert_eq!(ok("read", store.read()), Record::empty());
    ok(
        "release",
        store.release(&owner("before"), StoreVersion(1), false),
    );
    assert_eq!(
        ok("acquire", store.acquire(&owner("after"), LONG)),
        Acquired::Granted(Record::empty()),
        "the lease was lost with the data: the next acquire is granted on the empty record"
    );
    assert_eq!(
        ok(
            "publish",
            store.publish(StoreVersion(0), &sample_snapshot(2))
        ),
        Published::Written
    );
    assert_eq!(
        ok("read", store.read()),
        Record {
            version: StoreVersion(1),
            content: RecordContent::Tokens(sample_snapshot(2)),
            spent: false,
        }
    );
}

#[test]
fn a_publish_after_a_restart_is_sent_once_on_a_live_connection() {
    let mut server = common::server();
    let store = common::store(&server);
    ok(
        "publish",
        store.publish(StoreVersion(0), &sample_snapshot(1)),
    );
    server.restart().unwrap_or_else(|error| panic!("{error}"));

    // The pooled connection is dead; the publish must still be answered (not Unavailable) and
    // be a compare-and-swap against the new, empty record.
    assert_eq!(
        ok(
            "publish",
            store.publish(StoreVersion(1), &sample_snapshot(2))
        ),
        Published::Conflict(Record::empty())
    );
}

#[test]
fn a_stopped_redis_makes_every_call_unavailable_until_it_is_back() {
    let mut server = common::server();
    let timeout = Duration::from_millis(300);
    let store = common::store_with(&server, timeout);
    ok(
        "publish",
        store.publish(StoreVersion(0), &sample_snapshot(1)),
    );

    server.stop().unwrap_or_else(|error| panic!("{error}"));
    for common::Answer {
        operation, result, ..
    } in common::every_call(&store)
    {
        assert!(
            matches!(result, Err(SharedStoreError::Unavailable(_))),
            "{operation} against a stopped Redis: {result:?}"
        );
    }

    server.restart().unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(ok("read", store.read()), Record::empty());
}

#[test]
fn a_hung_redis_makes_every_call_unavailable_within_the_timeout() {
    let mut server = common::server();
    let timeout = Duration::from_millis(300);
    let store = common::store_with(&server, timeout);
    ok("read", store.read());

    server.pause().unwrap_or_else(|error| panic!("{error}"));
    for common::Answer {
        operation,
        result,
        took,
    } in common::every_call(&store)
    {
        assert!(
            matches!(result, Err(SharedStoreError::Unavailable(_))),
            "{operation} against a hung Redis: {result:?}"
        );
        // Bounded, not tight: the deadline plus generous scheduling noise on a busy machine.
        assert!(
            took < timeout + Duration::from_secs(2),
            "{operation} took {took:?} with a timeout of {timeout:?}"
        );
    }
    server.resume().unwrap_or_else(|error| panic!("{error}"));
    ok("read", store.read());
}

#[test]
fn a_call_that_timed_out_leaves_no_late_answer_behind() {
    let mut server = common::server();
    let store = common::store_with(&server, Duration::from_millis(200));
    // One idle connection in the pool, which the logout below takes.
    ok("read", store.read());
    server.pause().unwrap_or_else(|error| panic!("{error}"));
    assert!(matches!(
        store.logout(),
        Err(SharedStoreError::Unavailable(_))
    ));
    server.resume().unwrap_or_else(|error| panic!("{error}"));

    // The logout's answer arrives late. Had its connection gone back to the pool, each call
    // below would read the answer of the call before it. The logout itself may have run once
    // the server woke up: the record is read first.
    let record = ok("read", store.read());
    ok(
        "release",
        store.release(&owner("nobody"), record.version, false),
    );
    assert_eq!(ok("read", store.read()), record);
    assert_eq!(
        ok(
            "publish",
            store.publish(record.version, &sample_snapshot(3))
        ),
        Published::Written
    );
    assert_eq!(
        ok("read", store.read()),
        Record {
            version: record.version.next(),
            content: RecordContent::Tokens(sample_snapshot(3)),
            spent: false,
        }
    );
}

#[test]
fn the_lease_of_a_process_that_vanished_passes_on_after_its_ttl_with_the_mark() {
    let server = common::server();
    let survivor = common::store(&server);
    let prefix_of = |store: &RedisStore| store.record_key().trim_end_matches(":record").to_owned();
    let prefix = prefix_of(&survivor);
    let ttl = Duration::from_millis(200);
    ok(
        "publish",
        survivor.publish(StoreVersion(0), &sample_snapshot(1)),
    );
    {
        // Another process, with its own connections: takes the lease, presents the token
        // (say), and is gone without a release.
        let vanished =
            RedisStore::open(&server.url(), &prefix).unwrap_or_else(|error| panic!("{error}"));
        assert!(matches!(
            ok("acquire", vanished.acquire(&owner("vanished"), ttl)),
            Acquired::Granted(_)
        ));
    }
    let start = Instant::now();
    let early = ok("acquire", survivor.acquire(&owner("survivor"), LONG));
    if start.elapsed() < ttl / 2 {
        assert!(matches!(early, Acquired::Busy(_)), "{early:?}");
    }
    std::thread::sleep(ttl + Duration::from_millis(150));

    assert_eq!(
        ok("acquire", survivor.acquire(&owner("survivor"), LONG)),
        Acquired::Granted(Record {
            version: StoreVersion(1),
            content: RecordContent::Tokens(sample_snapshot(1)),
            spent: true,
        }),
        "the vanished holder's lease ends at its ttl; its mark stays, so the survivor logs in"
    );
}

#[test]
fn the_version_wraps_at_its_limit_as_store_version_next_does() {
    let server = common::server();
    let store = common::store(&server);
    let mut raw = common::raw(&server);
    let max = u64::MAX.to_string();
    redis::cmd("HSET")
        .arg(store.record_key())
        .arg(&["version", max.as_str(), "content", "empty", "spent", "0"][..])
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(ok("read", store.read()).version, StoreVersion(u64::MAX));
    assert_eq!(
        ok("logout", store.logout()).version,
        StoreVersion(u64::MAX).next()
    );
    assert_eq!(
        ok(
            "publish",
            store.publish(StoreVersion(0), &sample_snapshot(1))
        ),
        Published::Written
    );
    assert_eq!(ok("read", store.read()).version, StoreVersion(1));
    // And the decimal increment carries across digits.
    redis::cmd("HSET")
        .arg(store.record_key())
        .arg(&["version", "1999", "content", "empty"][..])
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(ok("logout", store.logout()).version, StoreVersion(2000));
}

#[test]
fn a_record_another_program_wrote_is_unreadable_not_guessed() {
    let server = common::server();
    let store = common::store(&server);
    let mut raw = common::raw(&server);
    let mut set = |fields: &[&str]| {
        redis::cmd("DEL")
            .arg(store.record_key())
            .exec(&mut raw)
            .and_then(|()| {
                redis::cmd("HSET")
                    .arg(store.record_key())
                    .arg(fields)
                    .exec(&mut raw)
            })
            .unwrap_or_else(|error| panic!("{error}"));
    };

    set(&["version", "seven", "content", "empty", "spent", "0"]);
    assert!(matches!(store.read(), Err(SharedStoreError::Unreadable(_))));
    assert!(
        matches!(store.logout(), Err(SharedStoreError::Unreadable(_))),
        "logout must not invent a version over one it cannot read"
    );
    set(&[
        "version",
        "3",
        "content",
        "tokens",
        "spent",
        "0",
        "tokens",
        "{\"version\":9}",
    ]);
    assert!(matches!(store.read(), Err(SharedStoreError::Unreadable(_))));
    // Logout is how a session clears a record it cannot read: the tombstone goes over it.
    assert_eq!(
        ok("logout", store.logout()),
        Record {
            version: StoreVersion(4),
            content: RecordContent::LoggedOut,
            spent: false,
        }
    );
    redis::cmd("DEL")
        .arg(store.record_key())
        .exec(&mut raw)
        .and_then(|()| {
            redis::cmd("SET")
                .arg(store.record_key())
                .arg("a string")
                .exec(&mut raw)
        })
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(matches!(store.read(), Err(SharedStoreError::Unreadable(_))));
    assert!(matches!(
        store.acquire(&owner("a"), LONG),
        Err(SharedStoreError::Unreadable(_))
    ));
}

#[test]
fn the_documented_acl_is_enough_and_keeps_the_user_to_its_keys() {
    let server = common::server();
    let mut raw = common::raw(&server);
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("seamless")
        .arg(
            &[
                "on",
                ">acl-test-password",
                "~seamless:*",
                "+eval",
                "+evalsha",
                "+ping",
                // What the scripts call: Redis checks them inside scripts too.
                "+get",
                "+set",
                "+del",
                "+exists",
                "+hget",
                "+hmget",
                "+hset",
                "+hdel",
            ][..],
        )
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    redis::cmd("SET")
        .arg("elsewhere")
        .arg("1")
        .exec(&mut raw)
        .unwrap_or_else(|error| panic!("{error}"));
    let url = format!(
        "redis://seamless:acl-test-password@127.0.0.1:{}/",
        server.port()
    );
    let store = RedisStore::open(&url, "seamless:{acl}").unwrap_or_else(|error| panic!("{error}"));

    assert!(matches!(
        ok("acquire", store.acquire(&owner("a"), LONG)),
        Acquired::Granted(_)
    ));
    ok(
        "publish",
        store.publish(StoreVersion(0), &sample_snapshot(1)),
    );
    ok(
        "release",
        store.release(&owner("a"), StoreVersion(1), false),
    );
    ok("read", store.read());
    ok("logout", store.logout());

    let outside = RedisStore::open(&url, "other:{acl}").unwrap_or_else(|error| panic!("{error}"));
    let refused = outside.read();
    assert!(
        matches!(&refused, Err(SharedStoreError::Unavailable(text)) if text.contains("ACL")),
        "{refused:?}"
    );
}

#[test]
fn the_database_of_the_url_is_the_one_written() {
    let server = common::server();
    let url = format!("redis://127.0.0.1:{}/3", server.port());
    let store = RedisStore::open(&url, "seamless:{db}").unwrap_or_else(|error| panic!("{error}"));
    ok(
        "publish",
        store.publish(StoreVersion(0), &sample_snapshot(1)),
    );

    let mut raw = common::raw(&server);
    let in_db = |raw: &mut redis::Connection, db: i64| -> bool {
        redis::cmd("SELECT")
            .arg(db)
            .exec(raw)
            .and_then(|()| redis::cmd("EXISTS").arg(store.record_key()).query(raw))
            .unwrap_or_else(|error| panic!("{error}"))
    };
    assert!(in_db(&mut raw, 3));
    assert!(!in_db(&mut raw, 0));
}
