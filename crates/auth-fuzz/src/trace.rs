//! The `trace` target: reading and replaying a trace from arbitrary bytes.

use auth_core::{Start, Trace};

/// The `trace` target. The bytes are a trace document (JSON).
///
/// Panics unless: reading never panics; a trace that reads writes back to JSON that reads to the
/// same trace and writes the same JSON again; it replays without panicking, twice to the same
/// commands and violations; and, when its clock never goes backwards (`monotonic`), the replay
/// leaves the Monitor clean (P1–P7).
///
/// A trace read from arbitrary bytes holds inputs a faithful driver never produces: results for
/// operations never started or long finished, responses to requests never sent, duplicated
/// timeouts. The session must shrug all of them off (rule 1: a result whose id is not current is
/// ignored), so they are judged like any other input. Only a clock that goes backwards is outside
/// the drive contract, and for such a trace only the absence of panics is required.
pub fn trace(data: &[u8]) {
    let trace = match Trace::from_json(data) {
        Ok(trace) => trace,
        Err(error) => {
            let _ = (error.to_string(), format!("{error:?}"));
            return;
        }
    };
    let json = trace.to_json();
    let again = match Trace::from_json(json.as_bytes()) {
        Ok(again) => again,
        Err(error) => panic!("a trace written by to_json does not read back: {error}\n{json}"),
    };
    assert_eq!(again, trace, "from_json(to_json(t)) != t");
    assert_eq!(again.to_json(), json, "to_json is not stable");

    let first = trace.replay();
    let second = again.replay();
    assert_eq!(first, second, "a trace replays differently twice");
    if monotonic(&trace) {
        assert!(
            first.violations.is_empty(),
            "a trace with a monotonic clock replays with violations {:?}\n{json}",
            first.violations
        );
    }
}

/// Whether the trace's times never go backwards (from its start through every step), as a
/// driver's monotonic clock guarantees.
fn monotonic(trace: &Trace) -> bool {
    let start = match &trace.start {
        Start::New { at } | Start::Restore { at, .. } => *at,
    };
    let mut last = start;
    trace.steps.iter().all(|step| {
        let ok = step.at >= last;
        last = step.at;
        ok
    })
}
