//! Runs fuzz inputs through their target, for turning a finding into a report or a test:
//!
//! ```sh
//! cargo run -p auth-fuzz --example replay -- fuzz/artifacts/session/crash-...
//! cargo run -p auth-fuzz --example replay -- --target session some/file
//! ```
//!
//! The target is the `--target` given, else the name of the file's folder (as in
//! `fuzz/corpus/<target>/`, `fuzz/artifacts/<target>/`). For `session` inputs it first prints the
//! decoded scenario, the simulator's transcript and the trace of the last session; for `fleet`
//! inputs the decoded scenario, the fleet's setup and the verdict (with the transcript when it
//! fails).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut named = None;
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--target" {
            named = args.next();
        } else {
            files.push(arg);
        }
    }
    if files.is_empty() {
        eprintln!("usage: replay [--target NAME] FILE...");
        return ExitCode::FAILURE;
    }
    for file in files {
        let path = Path::new(&file);
        let name = named.clone().or_else(|| {
            path.parent()
                .and_then(Path::file_name)
                .and_then(|name| name.to_str())
                .map(str::to_owned)
        });
        let Some((name, target)) = name.and_then(|n| auth_fuzz::target(&n).map(|t| (n, t))) else {
            eprintln!("{file}: no target; pass --target NAME");
            return ExitCode::FAILURE;
        };
        let data = match std::fs::read(path) {
            Ok(data) => data,
            Err(error) => {
                eprintln!("{file}: {error}");
                return ExitCode::FAILURE;
            }
        };
        if name == "session" {
            println!("{}", auth_fuzz::session::describe(&data));
        }
        if name == "fleet" {
            println!("{}", auth_fuzz::fleet::describe(&data));
        }
        println!("{file}: running the {name} target");
        target(&data);
        println!("{file}: ok");
    }
    ExitCode::SUCCESS
}
