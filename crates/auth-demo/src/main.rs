//! `cargo run --release -p auth-demo`: starts the demo auth server on a loopback port, plays the
//! story through auth-tokio, prints a summary, and exits non-zero if any expectation failed.
//!
//! Logs go to stderr at `warn` by default; `SEAMLESS_LOG=auth_tokio=debug,info` shows more.

use std::io::IsTerminal;
use std::process::ExitCode;

use auth_demo::story::{self, StoryOptions};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let filter: Targets = std::env::var("SEAMLESS_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let color = std::io::stdout().is_terminal();
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("could not start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("Seamless demo: auth-tokio against a demo auth server on loopback\n");
    let options = StoryOptions::default();
    let mut progress = |scene: &story::Scene| {
        let text = scene.to_string();
        let code = if scene.passed() { "32" } else { "31" };
        let mut lines = text.lines();
        if let Some(title) = lines.next() {
            println!("{}", paint(title, code));
        }
        for line in lines {
            println!("{line}");
        }
    };
    let report = match runtime.block_on(story::run(&options, &mut progress)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!(
                "{}",
                paint(&format!("the demo could not run: {error}"), "31")
            );
            return ExitCode::FAILURE;
        }
    };
    println!();
    let summary = report.summary();
    let code = if report.passed() { "32" } else { "31" };
    println!("{}", paint(&summary, code));
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
