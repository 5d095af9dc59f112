//! `cargo run --release -p auth-demo`: starts the demo auth server on a loopback port, plays the
//! story through auth-tokio, prints a summary, and exits non-zero if any expectation failed.
//!
//! `cargo run --release -p auth-demo -- fleet --processes P --store file|redis [--requests R]`:
//! P processes share one session through the store and storm the demo server through an
//! access-token expiry; prints a summary and, last, one JSON line of the counts
//! ([`auth_demo::fleet::demo`]). Exits non-zero if an expectation failed.
//!
//! Logs go to stderr at `warn` by default; `SEAMLESS_LOG=auth_tokio=debug,info` shows more.

use std::io::IsTerminal;
use std::process::ExitCode;

use auth_demo::fleet::demo::{self as fleet_demo, FleetOptions};
use auth_demo::fleet::{self, StoreKind};
use auth_demo::story::{self, StoryOptions};
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The Seamless demo: the story over real HTTP on loopback (no command), or a fleet of
/// processes sharing one session (`fleet`).
#[derive(Parser)]
#[command(name = "auth-demo")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// P processes share one session through a file or Redis store and storm the demo server
    /// through an access-token expiry: one refresh for all, no refresh token presented twice.
    Fleet {
        /// How many processes share the session.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        processes: u16,
        /// The shared store: `file` (one host) or `redis` (a real redis-server on loopback).
        #[arg(long)]
        store: StoreKind,
        /// Requests per process, half before the expiry and half after.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=100_000))]
        requests: u32,
    },
    /// One process of a fleet (started by `fleet` and by the fleet tests; its argument is the
    /// JSON of `auth_demo::fleet::protocol::ChildSpec`).
    #[command(name = "fleet-child", hide = true)]
    FleetChild {
        /// The child's spec, JSON.
        spec: String,
    },
}

fn main() -> ExitCode {
    let filter: Targets = std::env::var("SEAMLESS_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    match Cli::parse().command {
        None => play_story(),
        Some(Command::Fleet {
            processes,
            store,
            requests,
        }) => run_fleet(usize::from(processes), store, requests),
        Some(Command::FleetChild { spec }) => match fleet::child_main(&spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("fleet child: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Colours for a terminal, plain text otherwise.
fn painter() -> impl Fn(&str, &str) -> String {
    let color = std::io::stdout().is_terminal();
    move |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn play_story() -> ExitCode {
    let paint = painter();
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

fn run_fleet(processes: usize, store: StoreKind, requests: u32) -> ExitCode {
    let paint = painter();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("cannot find this program to start its children: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("Seamless fleet: {processes} processes share one session through the {store} store\n");
    if let Err(error) = fleet::catch_interrupts() {
        // Without the handler Ctrl-C still stops everything but leaves temporary directories.
        tracing::warn!(%error, "Ctrl-C will not clean up");
    }
    let options = FleetOptions::new(processes, store, requests, exe);
    let mut progress = |line: &str| println!("{line}");
    let report = match fleet_demo::run(&options, &mut progress) {
        Ok(report) => report,
        Err(error) => {
            eprintln!(
                "{}",
                paint(&format!("the fleet could not run: {error}"), "31")
            );
            return ExitCode::FAILURE;
        }
    };
    println!();
    let code = if report.passed() { "32" } else { "31" };
    println!("{}", paint(&report.summary(), code));
    println!("{}", report.json());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
