//! Walks the seed's story through the deterministic simulator and prints the command trace:
//! silent login on first use, a burst of calls, access-token expiry with a storm of 401s and one
//! refresh, a dead refresh token and one silent login, a logout during a refresh, and a call after
//! the logout. Exits non-zero if any expectation or property fails.
//!
//! Run with `cargo run -p auth-core --example walkthrough`.

use core::time::Duration;
use std::process::ExitCode;

use auth_core::sim::{Fault, Sim};
use auth_core::{Config, Input, Outcome, RequestError, RequestSpec};

fn main() -> ExitCode {
    let mut sim = Sim::new(Config::default());
    let mut failures = Vec::new();
    let mut expect = |what: &str, ok: bool| {
        println!("{} {what}", if ok { "  ok  " } else { " FAIL " });
        if !ok {
            failures.push(what.to_owned());
        }
    };

    println!("== 1. first use: silent login, then a burst of 10 calls");
    let first = sim.submit(RequestSpec::bearer());
    sim.drive();
    let burst: Vec<_> = (0..10).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.drive();
    expect(
        "first call delivered after one silent login",
        sim.outcome(first) == Some(Outcome::Deliver) && sim.server.logins == 1,
    );
    expect(
        "burst delivered",
        burst
            .iter()
            .all(|id| sim.outcome(*id) == Some(Outcome::Deliver)),
    );

    println!("== 2. access tokens expire: a storm of 20 calls, one refresh");
    sim.server.expire_access_tokens(sim.now());
    let storm: Vec<_> = (0..20).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.drive();
    expect(
        "storm delivered",
        storm
            .iter()
            .all(|id| sim.outcome(*id) == Some(Outcome::Deliver)),
    );
    expect("exactly one refresh", sim.server.refreshes == 1);

    println!("== 3. the refresh token dies: one silent login");
    sim.server.expire_access_tokens(sim.now());
    sim.server.revoke_refresh_token();
    let calls: Vec<_> = (0..5).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.drive();
    expect(
        "calls delivered",
        calls
            .iter()
            .all(|id| sim.outcome(*id) == Some(Outcome::Deliver)),
    );
    expect(
        "one invalid_grant, one more login",
        sim.server.invalid_grants == 1 && sim.server.logins == 2,
    );

    println!("== 4. logout while a refresh is in flight");
    sim.server.expire_access_tokens(sim.now());
    sim.server
        .fail_next_refresh(Fault::Delay(Duration::from_millis(200)));
    let waiting: Vec<_> = (0..3).map(|_| sim.submit(RequestSpec::bearer())).collect();
    sim.advance(Duration::from_millis(50));
    sim.input(Input::Logout);
    let refreshes_at_logout = sim.server.refreshes;
    sim.drive();
    expect(
        "waiting calls failed with LoggedOut",
        waiting
            .iter()
            .all(|id| sim.outcome(*id) == Some(Outcome::Fail(RequestError::LoggedOut))),
    );
    expect(
        "store cleared and not rewritten by the late refresh",
        sim.store.is_none(),
    );

    println!("== 5. a call after logout");
    let after = sim.submit(RequestSpec::bearer());
    sim.drive();
    expect(
        "fails at once with LoggedOut",
        sim.outcome(after) == Some(Outcome::Fail(RequestError::LoggedOut)),
    );
    expect(
        "no refresh after logout",
        sim.server.refreshes == refreshes_at_logout,
    );

    let violations = sim.check_settled().to_vec();
    expect("monitor: P1–P8 hold", violations.is_empty());

    println!(
        "\n== command trace (tokens shown as fingerprints)\n{}",
        sim.transcript()
    );
    println!(
        "summary: logins {}, refreshes {}, invalid_grant {}, 401s {}, virtual time {} ms",
        sim.server.logins,
        sim.server.refreshes,
        sim.server.invalid_grants,
        sim.server.rejections,
        sim.now().as_millis()
    );
    if failures.is_empty() && violations.is_empty() {
        println!("all expectations met");
        ExitCode::SUCCESS
    } else {
        eprintln!("failed: {failures:?} {violations:?}");
        ExitCode::FAILURE
    }
}
