//! Writes the hand-made seed inputs of every target, from which the fuzzer starts:
//!
//! ```sh
//! cargo run -p auth-fuzz --example seeds -- /tmp/seeds   # writes /tmp/seeds/<target>/seed-*
//! ```
//!
//! `fuzz/run.sh` merges them into the corpus before fuzzing. They are RFC examples and edge cases
//! for the parsers, real recordings of the simulator for `trace`, real store contents for
//! `snapshot`, and for `session` (whose bytes only mean something to `arbitrary`) deterministic
//! pseudo-random bytes plus one input found by decoding for each corner of the configuration
//! space.

use core::time::Duration;
use std::path::Path;
use std::process::ExitCode;

use auth_core::sim::{Fault, NetFault, Op, Sim};
use auth_core::{
    fingerprint, AccessToken, Command, Config, RefreshToken, RequestSpec, Snapshot, UnixTime,
};

fn main() -> ExitCode {
    let Some(root) = std::env::args().nth(1) else {
        eprintln!("usage: seeds DIR");
        return ExitCode::FAILURE;
    };
    let root = Path::new(&root);
    let sets: [(&str, Vec<Vec<u8>>); 6] = [
        ("session", session()),
        ("token_response", token_response()),
        ("www_authenticate", www_authenticate()),
        ("snapshot", snapshot()),
        ("trace", trace()),
        ("fleet", fleet()),
    ];
    for (target, seeds) in sets {
        let dir = root.join(target);
        if let Err(error) = std::fs::create_dir_all(&dir) {
            eprintln!("{}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
        for seed in &seeds {
            let name = format!("seed-{}", &fingerprint(&hex(seed))[3..]);
            if let Err(error) = std::fs::write(dir.join(name), seed) {
                eprintln!("{}: {error}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    ExitCode::SUCCESS
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fixed xorshift byte stream, so the seeds never change.
fn xorshift(mut state: u64) -> impl FnMut() -> u8 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    }
}

/// Pseudo-random byte strings of several lengths, then one input for each corner of the
/// configuration space (see [`session_corners`]).
fn session() -> Vec<Vec<u8>> {
    let mut next = xorshift(0x5ea_4e55_f022);
    let mut seeds: Vec<Vec<u8>> = [16usize, 32, 64, 128, 256, 512, 1024]
        .iter()
        .flat_map(|&len| [len, len + 7])
        .map(|len| (0..len).map(|_| next()).collect())
        .collect();
    seeds.extend(session_corners());
    seeds
}

/// For each corner of the configuration space, the first pseudo-random input (of 256 bytes,
/// from a fixed stream) whose scenario sits on it and submits an authenticated request. The
/// session target's bytes only mean something to `arbitrary`, so the inputs are found by
/// decoding rather than written by hand; they follow any change of the scenario's layout.
fn session_corners() -> Vec<Vec<u8>> {
    use auth_fuzz::session::{FuzzOp, Scenario, Span, SpecKind, Whole};

    type Corner = (&'static str, fn(&Scenario) -> bool);
    fn timers(s: &Scenario, all: fn(Span) -> bool) -> bool {
        s.config.timers.is_some_and(|t| {
            [
                t.queue_timeout,
                t.operation_timeout,
                t.refresh_margin,
                t.backoff_base,
                t.backoff_max,
                t.breaker_cooldown,
            ]
            .into_iter()
            .all(all)
        })
    }
    fn rejecting(s: &Scenario) -> bool {
        s.ops.contains(&FuzzOp::RejectEveryCall(true))
    }
    /// Whether the scenario, run on the real core, sends some request `sends` times: the
    /// witness that it spends a budget of `sends - 1` retries, which a counter saturating at
    /// 255 never did. Only default timers, so a candidate never spins.
    fn sends_a_request(s: &Scenario, sends: u16) -> bool {
        if s.config.timers.is_some() || !rejecting(s) {
            return false;
        }
        let mut sim = s.sim();
        for op in s.ops.iter().take(auth_fuzz::session::MAX_OPS) {
            op.apply(&mut sim);
        }
        sim.settle(auth_fuzz::session::SETTLE_STEPS);
        sim.commands()
            .iter()
            .any(|c| matches!(c, Command::Send { attempt, .. } if *attempt == sends))
    }
    let corners: [Corner; 12] = [
        ("max_retries 255, a request sent 256 times", |s| {
            s.config.max_retries == Whole::Max && sends_a_request(s, 256)
        }),
        ("max_retries 254, a request sent 255 times", |s| {
            s.config.max_retries == Whole::BelowMax && sends_a_request(s, 255)
        }),
        ("max_retries 0, API rejecting every call", |s| {
            s.config.max_retries == Whole::Zero && rejecting(s)
        }),
        ("max_queued 0", |s| s.config.max_queued == Whole::Zero),
        ("max_queued usize::MAX", |s| {
            s.config.max_queued == Whole::Max
        }),
        // Breaker after one failure: with every duration zero and the breaker off the session
        // may retry billions of times at one instant (a corpus input doing that costs a second).
        ("every duration zero", |s| {
            timers(s, |t| t == Span::Zero) && s.config.max_refresh_failures == Whole::One
        }),
        ("every duration Duration::MAX", |s| {
            timers(s, |t| t == Span::Max)
        }),
        ("breaker off, operation retries u32::MAX", |s| {
            s.config.max_refresh_failures == Whole::Zero
                && s.config.max_operation_retries == Whole::Max
        }),
        ("breaker after u32::MAX failures, no operation retry", |s| {
            s.config.max_refresh_failures == Whole::Max
                && s.config.max_operation_retries == Whole::Zero
        }),
        ("eager login and revoke on logout", |s| {
            s.config.eager_login && s.config.revoke_on_logout
        }),
        ("jitter seed 0", |s| s.config.jitter_seed == Whole::Zero),
        ("jitter seed u64::MAX", |s| {
            s.config.jitter_seed == Whole::Max
        }),
    ];
    let mut next = xorshift(0xc0_4e55);
    let mut found = Vec::new();
    for (corner, sits_on) in corners {
        let seed = (0..20_000_000)
            .map(|_| (0..256).map(|_| next()).collect::<Vec<u8>>())
            .find(|bytes| {
                Scenario::decode(bytes).is_some_and(|s| {
                    sits_on(&s) && s.ops.contains(&FuzzOp::Submit(SpecKind::Bearer))
                })
            });
        match seed {
            Some(bytes) => found.push(bytes),
            None => eprintln!("no seed found for the corner \"{corner}\""),
        }
    }
    found
}

/// Pseudo-random byte strings of several lengths, then one input for each fleet fault (see
/// [`fleet_faults`]).
fn fleet() -> Vec<Vec<u8>> {
    let mut next = xorshift(0xf1ee_75ea);
    let mut seeds: Vec<Vec<u8>> = [32usize, 64, 128, 256, 512, 1024]
        .iter()
        .flat_map(|&len| [len, len + 5])
        .map(|len| (0..len).map(|_| next()).collect())
        .collect();
    seeds.extend(fleet_faults());
    seeds
}

/// For each fault of the fleet, the first pseudo-random input (of 512 bytes, from a fixed
/// stream) whose scenario has it after a storm, with every process's default timers: a
/// starting point from which the fuzzer reaches each fault's story. Found by decoding, as
/// [`session_corners`] are.
fn fleet_faults() -> Vec<Vec<u8>> {
    use auth_fuzz::fleet::{FleetFuzzOp, FleetScenario};

    type Fault = (&'static str, fn(&FleetFuzzOp) -> bool);
    let faults: [Fault; 7] = [
        ("a crash and restart", |op| {
            matches!(op, FleetFuzzOp::Restart(_))
        }),
        ("a paused holder", |op| matches!(op, FleetFuzzOp::Pause(..))),
        ("a lost answer", |op| *op == FleetFuzzOp::LoseNextAnswer),
        ("a store outage", |op| {
            matches!(op, FleetFuzzOp::StoreOutage(_))
        }),
        ("a lease running out mid-operation", |op| {
            *op == FleetFuzzOp::ExpireLease
        }),
        ("a logout", |op| matches!(op, FleetFuzzOp::Logout(_))),
        ("expired access tokens", |op| {
            *op == FleetFuzzOp::ExpireAccessTokens
        }),
    ];
    let mut next = xorshift(0x0f1e_e7fa);
    let mut found = Vec::new();
    for (fault, is_it) in faults {
        let seed = (0..20_000_000)
            .map(|_| (0..512).map(|_| next()).collect::<Vec<u8>>())
            .find(|bytes| {
                FleetScenario::decode(bytes).is_some_and(|s| {
                    let storm = s
                        .ops
                        .iter()
                        .position(|op| matches!(op, FleetFuzzOp::Storm(_)));
                    s.config.timers.is_none()
                        && storm.is_some_and(|at| s.ops[at..].iter().any(is_it))
                })
            });
        match seed {
            Some(bytes) => found.push(bytes),
            None => eprintln!("no seed found for the fleet fault \"{fault}\""),
        }
    }
    found
}

/// The first byte picks the status: 0 = 200, 1 = 201, 4 = 400, 5 = 401, 10 = 429, 11 = 500,
/// 13 = 302 (see the target's table).
fn token_response() -> Vec<Vec<u8>> {
    let cases: &[(u8, &str)] = &[
        (
            0,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#,
        ),
        (
            0,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600}"#,
        ),
        (
            1,
            r#"{"access_token":"a","expires_in":"3600","scope":"read write"}"#,
        ),
        (
            0,
            r#"{"access_token":"a","token_type":"bearer","expires_in":1e3,"refresh_token":null}"#,
        ),
        (0, r#"{"access_token":"a","expires_in":3600.5}"#),
        (0, r#"{"access_token":"a","expires_in":-1}"#),
        (0, r#"{"access_token":"a","expires_in":0}"#),
        (
            0,
            r#"{"access_token":"a","expires_in":"99999999999999999999999"}"#,
        ),
        (0, r#"{"access_token":"a","expires_in":true}"#),
        (0, r#"{"access_token":"","token_type":""}"#),
        (0, r#"{"access_token":7,"refresh_token":""}"#),
        (0, r#"{"error":"invalid_grant"}"#),
        (0, r#"{"access_token":null,"error":"server_error"}"#),
        (0, r#"{"access_token":"a","access_token":"b"}"#),
        (0, r#"[1,2,3]"#),
        (0, r#"{"access_token":"#),
        (0, "<html><body>502 Bad Gateway</body></html>"),
        (0, ""),
        (
            4,
            r#"{"error":"invalid_grant","error_description":"The refresh token has expired","error_uri":"https://example.com/e"}"#,
        ),
        (4, r#"{"error":"temporarily_unavailable"}"#),
        (
            4,
            r#"{"error":"INVALID_CLIENT","error_description":"line\nbreak\u001b[31m"}"#,
        ),
        (5, r#"{"error":"custom_code_from_a_vendor"}"#),
        (4, r#"{"error":""}"#),
        (4, "{}"),
        (10, r#"{"error":"slow_down"}"#),
        (11, "Internal Server Error"),
        (13, ""),
    ];
    cases
        .iter()
        .map(|(selector, body)| {
            let mut bytes = vec![*selector];
            bytes.extend_from_slice(body.as_bytes());
            bytes
        })
        .collect()
}

fn www_authenticate() -> Vec<Vec<u8>> {
    [
        r#"Bearer realm="example""#,
        r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        r#"Bearer error="insufficient_scope", scope="admin read""#,
        r#"Bearer error="invalid_request""#,
        r#"Basic realm="simple", Newauth realm="apps", type=1, title="Login to \"apps\"""#,
        "Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg==",
        "Bearer",
        "bearer ERROR = invalid_token ,, realm=x",
        ", ,",
        r#"realm="x""#,
        r#"Bearer realm="unterminated"#,
        "Bearer realm=\"tab\there\", x=\"\\\u{e9}\"",
        "Bearer realm=\"caf\u{e9}\"",
        "Basic realm=\"a\"\nBearer error=\"invalid_token\"",
        "Negotiate abc==\nBasic",
        "Bearer a b",
    ]
    .iter()
    .map(|value| value.as_bytes().to_vec())
    .collect()
}

fn snapshot() -> Vec<Vec<u8>> {
    let full = Snapshot {
        access_token: AccessToken::new("access-1"),
        refresh_token: Some(RefreshToken::new("refresh-1")),
        expires_at: Some(UnixTime::from_millis(1_700_000_360_000)),
    };
    let mut seeds: Vec<Vec<u8>> = vec![
        full.encode().to_vec(),
        Snapshot {
            refresh_token: None,
            expires_at: None,
            ..full.clone()
        }
        .encode()
        .to_vec(),
        Snapshot {
            expires_at: Some(UnixTime::from_millis(0)),
            ..full.clone()
        }
        .encode()
        .to_vec(),
        Snapshot {
            expires_at: Some(UnixTime::from_millis(u64::MAX)),
            ..full.clone()
        }
        .encode()
        .to_vec(),
    ];
    for text in [
        r#"{"version":2,"access_token":"x"}"#,
        r#"{"version":1,"access_token":"x","bogus":1}"#,
        r#"{"version":1,"access_token":"","refresh_token":""}"#,
        r#"{"version":1,"access_token":"x","expires_at_unix_ms":-5}"#,
        r#"{"version":1,"access_tok"#,
        "   ",
    ] {
        seeds.push(text.as_bytes().to_vec());
    }
    seeds
}

/// Recordings of the simulator: the traces a driver or a fuzz finding would produce.
fn trace() -> Vec<Vec<u8>> {
    let stories: [&[Op]; 5] = [
        &[Op::Submit(RequestSpec::bearer()), Op::Step(8)],
        &[
            Op::Submit(RequestSpec::bearer()),
            Op::Step(8),
            Op::ExpireAccessTokens,
            Op::Submit(RequestSpec::bearer()),
            Op::Submit(RequestSpec::public()),
            Op::FailNextRefresh(Fault::ServerError),
            Op::Advance(Duration::from_secs(2)),
        ],
        &[
            Op::Submit(RequestSpec::bearer().no_retry()),
            Op::FaultNextResponse(NetFault::Duplicate),
            Op::Step(3),
            Op::Logout,
            Op::Step(8),
            Op::Login,
            Op::Cancel(0),
        ],
        &[
            Op::FailNextLogin(Fault::Hang),
            Op::Submit(RequestSpec::bearer()),
            Op::Advance(Duration::from_secs(31)),
        ],
        &[
            Op::Submit(RequestSpec::bearer()),
            Op::Step(8),
            Op::Restart,
            Op::RevokeRefreshToken,
            Op::ExpireAccessTokens,
            Op::Submit(RequestSpec::bearer().not_replayable()),
            Op::Step(16),
        ],
    ];
    stories
        .iter()
        .map(|ops| {
            let mut sim = Sim::new(Config {
                revoke_on_logout: true,
                ..Config::default()
            });
            for op in ops.iter() {
                sim.apply(*op);
            }
            sim.settle(10_000);
            sim.trace().to_json().into_bytes()
        })
        .collect()
}
