//! The Monitor is not vacuous: hand-made bad traces, each breaking one property, are reported
//! with that property; the matching good trace is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_core::{
    AccessToken, Command, Config, Generation, Input, Instant, Monitor, OpId, Outcome, Persist,
    Property, RefreshToken, RequestError, RequestId, RequestSpec, SessionState, Verdict,
};

const T0: Instant = Instant::ZERO;

fn monitor() -> Monitor {
    Monitor::with_config(&Config::default(), None, T0)
}

fn persist(generation: u64) -> Command {
    Command::Persist(Persist {
        generation: Generation(generation),
        access_token: AccessToken::new(format!("a{generation}")),
        refresh_token: Some(RefreshToken::new(format!("r{generation}"))),
        expires_at: None,
    })
}

fn send(id: u64, attempt: u16, generation: Option<u64>) -> Command {
    Command::Send {
        id: RequestId(id),
        attempt,
        token: generation.map(|g| AccessToken::new(format!("a{g}"))),
        generation: generation.map(Generation),
    }
}

fn complete(id: u64) -> Command {
    Command::Complete {
        id: RequestId(id),
        outcome: Outcome::Deliver,
    }
}

fn refresh(op: u64) -> Command {
    Command::Refresh {
        op: OpId(op),
        refresh_token: RefreshToken::new("r"),
    }
}

fn rejected(id: u64, attempt: u16) -> Input {
    Input::Response {
        id: RequestId(id),
        attempt,
        verdict: Verdict::Rejected,
    }
}

/// A monitor that saw a login, persisted generation 1 and request #1 submitted.
fn logged_in_with_request(spec: RequestSpec) -> Monitor {
    let mut m = monitor();
    m.on_submit(RequestId(1), &spec);
    m.on_command(&Command::Login { op: OpId(1) });
    m.on_input(
        &Input::LoginResult {
            op: OpId(1),
            result: Err(auth_core::LoginFailure::Transient),
        },
        T0,
    );
    m.on_command(&persist(1));
    m
}

fn properties(m: &Monitor) -> Vec<Property> {
    m.violations().iter().map(|v| v.property()).collect()
}

#[test]
fn a_good_story_has_no_violations() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&send(1, 1, Some(1)));
    m.on_input(&rejected(1, 1), T0);
    m.on_command(&refresh(2));
    m.on_input(
        &Input::RefreshResult {
            op: OpId(2),
            result: Err(auth_core::RefreshFailure::Transient),
        },
        T0,
    );
    m.on_command(&persist(2));
    m.on_command(&send(1, 2, Some(2)));
    m.on_command(&complete(1));
    m.check_settled(SessionState::Active);
    assert!(m.is_clean(), "{:?}", m.violations());
}

#[test]
fn p1_double_completion_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&complete(1));
    m.on_command(&Command::Complete {
        id: RequestId(1),
        outcome: Outcome::Fail(RequestError::Cancelled),
    });
    assert_eq!(properties(&m), [Property::P1ExactlyOnce]);
}

#[test]
fn p1_send_after_completion_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&complete(1));
    m.on_command(&send(1, 1, Some(1)));
    assert_eq!(properties(&m), [Property::P1ExactlyOnce]);
}

#[test]
fn p1_completion_of_an_unknown_request_is_reported() {
    let mut m = monitor();
    m.on_command(&complete(9));
    assert_eq!(properties(&m), [Property::P1ExactlyOnce]);
}

#[test]
fn p2_second_operation_in_flight_is_reported() {
    let mut m = monitor();
    m.on_command(&Command::Login { op: OpId(1) });
    m.on_command(&refresh(2));
    assert_eq!(properties(&m), [Property::P2SingleFlight]);
}

#[test]
fn p2_allows_a_new_operation_after_the_deadline_of_a_hung_one() {
    let mut m = monitor();
    m.on_command(&Command::Login { op: OpId(1) });
    m.on_input(
        &Input::Timeout,
        T0.saturating_add(Config::default().operation_timeout),
    );
    m.on_command(&Command::Login { op: OpId(2) });
    assert!(m.is_clean(), "{:?}", m.violations());
}

#[test]
fn p3_refresh_login_or_persist_after_logout_is_reported() {
    for command in [refresh(5), Command::Login { op: OpId(5) }, persist(5)] {
        let mut m = logged_in_with_request(RequestSpec::bearer());
        m.on_input(&Input::Logout, T0);
        m.on_command(&command);
        assert_eq!(
            properties(&m),
            [Property::P3NoRefreshAfterLogout],
            "{command:?}"
        );
    }
    // ... and is fine again after the next Login input.
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_input(&Input::Logout, T0);
    m.on_input(&Input::Login, T0);
    m.on_command(&Command::Login { op: OpId(5) });
    assert!(m.is_clean(), "{:?}", m.violations());
}

#[test]
fn p4_token_on_a_public_request_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::public());
    m.on_command(&send(1, 1, Some(1)));
    assert_eq!(properties(&m), [Property::P4CurrentToken]);
}

#[test]
fn p4_authenticated_request_without_a_token_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&send(1, 1, None));
    assert_eq!(properties(&m), [Property::P4CurrentToken]);
}

#[test]
fn p4_older_generation_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&persist(2));
    m.on_command(&send(1, 1, Some(1)));
    assert_eq!(properties(&m), [Property::P4CurrentToken]);
}

#[test]
fn p5_too_many_sends_are_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&send(1, 1, Some(1)));
    m.on_command(&send(1, 2, Some(1)));
    assert!(m.is_clean());
    m.on_command(&send(1, 3, Some(1)));
    assert_eq!(properties(&m), [Property::P5BoundedRetries]);
    assert!(!m.is_clean());
}

/// The budget is counted past 255 sends: with the largest budgets the 256th and 257th sends are
/// judged like the 3rd is with the default one (a `u8` counter saturated and never told them
/// apart).
#[test]
fn p5_is_judged_at_the_largest_retry_budgets() {
    for max_retries in [254u8, 255] {
        let config = Config {
            max_retries,
            ..Config::default()
        };
        let mut m = Monitor::with_config(&config, Some(Generation(1)), T0);
        m.on_submit(RequestId(1), &RequestSpec::bearer());
        let allowed = u16::from(max_retries) + 1;
        for attempt in 1..=allowed {
            m.on_command(&send(1, attempt, Some(1)));
        }
        assert!(m.is_clean(), "{max_retries}: {:?}", m.violations());
        m.on_command(&send(1, allowed + 1, Some(1)));
        assert_eq!(
            m.violations(),
            [auth_core::Violation::TooManySends {
                id: RequestId(1),
                sends: allowed + 1
            }],
            "max_retries {max_retries}"
        );
    }
}

#[test]
fn p6_refresh_started_by_a_late_401_for_an_old_generation_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&send(1, 1, Some(1)));
    m.on_command(&persist(2));
    m.on_input(&rejected(1, 1), T0);
    m.on_command(&refresh(3));
    assert_eq!(properties(&m), [Property::P6NoWastedRefresh]);
}

/// One broken property does not hide another: a 401 for a generation that was never persisted
/// (already a P7 violation) does not make the newest generation suspect, so a later refresh
/// started by a 401 for an older generation is still reported as wasted.
#[test]
fn p6_is_still_judged_after_a_rejection_for_an_unpersisted_generation() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_submit(RequestId(2), &RequestSpec::bearer());
    m.on_submit(RequestId(3), &RequestSpec::bearer());
    m.on_command(&send(3, 1, Some(1)));
    m.on_command(&persist(2));
    // Request 2 goes out with generation 3, which was never persisted.
    m.on_command(&send(2, 1, Some(3)));
    assert_eq!(properties(&m), [Property::P7DurabilityOrder]);
    m.on_input(&rejected(2, 1), T0);
    // Request 3's 401 is for generation 1, older than the newest (2): no reason to refresh.
    m.on_input(&rejected(3, 1), T0);
    m.on_command(&refresh(4));
    assert_eq!(
        properties(&m),
        [Property::P7DurabilityOrder, Property::P6NoWastedRefresh]
    );
}

#[test]
fn p7_send_before_persist_is_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&send(1, 1, Some(2)));
    assert_eq!(properties(&m), [Property::P7DurabilityOrder]);
}

#[test]
fn p8_lost_request_and_unsettled_session_are_reported() {
    let mut m = logged_in_with_request(RequestSpec::bearer());
    m.on_command(&send(1, 1, Some(1)));
    m.check_settled(SessionState::Refreshing);
    assert_eq!(properties(&m), [Property::P8Progress, Property::P8Progress]);
}

#[test]
fn violations_read_well_and_hold_no_secrets() {
    let mut m = logged_in_with_request(RequestSpec::public());
    m.on_command(&send(1, 1, Some(1)));
    let text = m.violations()[0].to_string();
    assert!(text.starts_with("P4:"), "{text}");
    assert!(!text.contains("a1"), "{text}");
}
