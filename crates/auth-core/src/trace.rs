//! Traces: the inputs of a session with their times, which replay it bit for bit.
//!
//! One format for every source: a recording from a driver, a model-checker counterexample, a
//! fuzz finding. Secrets appear only as fingerprints (see [`crate::AccessToken`]'s `Serialize`),
//! so traces can be committed and attached to bug reports.

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::config::Config;
use crate::input::Input;
use crate::monitor::{Checked, Violation};
use crate::session::Session;
use crate::snapshot::Snapshot;
use crate::time::{Instant, UnixTime};

/// The trace format version this release writes and reads.
pub const TRACE_VERSION: u32 = 1;

/// How the traced session began.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// [`Session::new`] at `at`.
    New {
        /// The monotonic time of creation.
        at: Instant,
    },
    /// [`Session::restore`] from a stored snapshot.
    Restore {
        /// The monotonic time of the restore.
        at: Instant,
        /// The wall-clock time read together with `at`.
        wall: UnixTime,
        /// The snapshot (fingerprinted).
        snapshot: Snapshot,
    },
}

/// One input and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The time passed with the input.
    pub at: Instant,
    /// The input.
    pub input: Input,
}

/// A replayable recording of one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// Format version, [`TRACE_VERSION`].
    pub version: u32,
    /// The session's configuration.
    pub config: Config,
    /// How the session began.
    pub start: Start,
    /// Every input, in order.
    pub steps: Vec<Step>,
}

/// Why a trace could not be read. It says where the document is wrong, never what it holds:
/// a trace file may hold anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Not a trace document.
    #[error("not a valid trace: {problem} at line {line}, column {column}")]
    Invalid {
        /// What kind of problem.
        problem: TraceProblem,
        /// The line of the document where it was found (1-based).
        line: usize,
        /// The column in that line (1-based).
        column: usize,
    },
    /// Written in another format version.
    #[error("trace version {found} is not supported (this release reads {TRACE_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
}

/// What kind of problem makes a document not a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TraceProblem {
    /// The document is not JSON.
    #[error("not JSON")]
    NotJson,
    /// The document ends in the middle of a JSON value.
    #[error("truncated")]
    Truncated,
    /// The document is JSON but does not have the trace's shape (a missing field, a wrong type,
    /// an unknown variant...).
    #[error("not the trace format")]
    WrongShape,
}

impl From<serde_json::Error> for TraceError {
    /// The position and the kind of `error`; its message, which may quote the document, is
    /// dropped.
    fn from(error: serde_json::Error) -> Self {
        let problem = match error.classify() {
            serde_json::error::Category::Eof => TraceProblem::Truncated,
            serde_json::error::Category::Data => TraceProblem::WrongShape,
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                TraceProblem::NotJson
            }
        };
        TraceError::Invalid {
            problem,
            line: error.line(),
            column: error.column(),
        }
    }
}

/// What replaying a trace produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// Every command, after the step that caused it (`None` for the constructor).
    pub commands: Vec<(Option<usize>, Command)>,
    /// What the monitor found.
    pub violations: Vec<Violation>,
}

impl Trace {
    /// An empty trace of a session created with [`Session::new`].
    pub fn new(config: Config, at: Instant) -> Self {
        Trace {
            version: TRACE_VERSION,
            config,
            start: Start::New { at },
            steps: Vec::new(),
        }
    }

    /// An empty trace of a session created with [`Session::restore`].
    pub fn restored(config: Config, snapshot: Snapshot, at: Instant, wall: UnixTime) -> Self {
        Trace {
            version: TRACE_VERSION,
            config,
            start: Start::Restore { at, wall, snapshot },
            steps: Vec::new(),
        }
    }

    /// Appends an input.
    pub fn push(&mut self, at: Instant, input: Input) {
        self.steps.push(Step { at, input });
    }

    /// The session as the trace starts it.
    pub fn session(&self) -> Session {
        match &self.start {
            Start::New { at } => Session::new(self.config, *at),
            Start::Restore { at, wall, snapshot } => {
                Session::restore(self.config, snapshot.clone(), *at, *wall)
            }
        }
    }

    /// Runs every step through a fresh session with its monitor.
    pub fn replay(&self) -> Replay {
        let mut out = Vec::new();
        let mut checked = Checked::new(self.session(), &mut out);
        let mut commands: Vec<_> = out.drain(..).map(|c| (None, c)).collect();
        for (index, step) in self.steps.iter().enumerate() {
            checked.handle(step.input.clone(), step.at, &mut out);
            commands.extend(out.drain(..).map(|c| (Some(index), c)));
        }
        Replay {
            commands,
            violations: checked.monitor.violations().to_vec(),
        }
    }

    /// The trace as JSON (secrets fingerprinted).
    pub fn to_json(&self) -> String {
        // A trace holds only strings, integers and enums: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a trace written by [`Trace::to_json`]. Never panics, whatever the bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Trace, TraceError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let version: VersionOnly = serde_json::from_slice(bytes)?;
        if version.version != TRACE_VERSION {
            return Err(TraceError::UnsupportedVersion {
                found: version.version,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_errors_say_where_never_what() {
        const SECRET: &str = "rt-s3cr3t";
        let valid = Trace::new(Config::default(), Instant::from_millis(0)).to_json();
        let documents = [
            format!(r#"{{"version":1,"{SECRET}":1}}"#),
            format!(r#"{{"version":"{SECRET}"}}"#),
            valid.replacen("\"New\"", &format!("\"{SECRET}\""), 1),
            valid.replacen("\"steps\": []", &format!("\"steps\": [\"{SECRET}\"]"), 1),
            SECRET.to_owned(),
            format!(r#"{{"version":1,"config":"{SECRET}"#),
        ];
        for document in &documents {
            let error = Trace::from_json(document.as_bytes()).unwrap_err();
            for shown in [error.to_string(), format!("{error:?}")] {
                assert!(!shown.contains(SECRET), "{document}: {shown}");
            }
            assert!(matches!(error, TraceError::Invalid { .. }), "{error}");
        }
        assert_eq!(
            Trace::from_json(b"{\n  \"version\": 1,\n  \"x").unwrap_err(),
            TraceError::Invalid {
                problem: TraceProblem::Truncated,
                line: 3,
                column: 4
            }
        );
        assert_eq!(
            Trace::from_json(br#"{"version":1} x"#)
                .unwrap_err()
                .to_string(),
            "not a valid trace: not JSON at line 1, column 15"
        );
    }
}
