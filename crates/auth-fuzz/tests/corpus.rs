//! Replays every committed fuzz input through the same functions the fuzzer runs, on stable:
//! the minimised corpus (`fuzz/corpus/<target>/`) so the targets never rot, and every past
//! finding (`fuzz/regressions/<target>/`) so each stays a regression test.
//!
//! Findings whose fix is still pending live in `fuzz/regressions-pending/<target>/`, which is
//! not replayed here; run them with `cargo run -p auth-fuzz --example replay -- <file>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.') || name.ends_with(".md"))
        })
        .collect();
    files.sort();
    files
}

/// Runs every input of `kind/<target>` through its target; fails listing each input that
/// panicked. Returns how many inputs ran.
fn replay(kind: &str, target: &str) -> usize {
    let run = auth_fuzz::target(target).unwrap();
    let files = inputs(&fuzz_dir().join(kind).join(target));
    let mut failures = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap();
        if let Err(payload) = panic::catch_unwind(|| run(&data)) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}:\n{message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs in {kind}/{target} fail:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    files.len()
}

macro_rules! replays {
    ($($target:ident),* $(,)?) => {
        mod corpus {
            $(
                #[test]
                fn $target() {
                    let count = super::replay("corpus", stringify!($target));
                    assert!(count > 0, "the committed corpus of {} is empty", stringify!($target));
                }
            )*
        }
        mod regressions {
            $(
                #[test]
                fn $target() {
                    super::replay("regressions", stringify!($target));
                }
            )*
        }
    };
}

replays!(
    session,
    token_response,
    www_authenticate,
    snapshot,
    trace,
    fleet
);

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = auth_fuzz::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "session",
            "token_response",
            "www_authenticate",
            "snapshot",
            "trace",
            "fleet"
        ],
        "a target was added: add it to replays! above and to fuzz/"
    );
}
