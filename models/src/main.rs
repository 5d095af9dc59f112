//! `auth-model`: model-check the real auth-core session (`check`) or step through it in
//! stateright's Explorer (`explore`).
//!
//! ```text
//! cargo run --release -p auth-model -- check [--requests N] [--threads T] [--faults F] ...
//! cargo run --release -p auth-model -- explore --port 3000
//! cargo run --release -p auth-model -- fleet [--processes P] [--requests N] [--crashes C] ...
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use auth_core::Session;
use auth_model::check::{run_model, Outcome, Search, Settings};
use auth_model::shared::{FleetBudget, FleetCheck, FleetModel, FleetWorld};
use auth_model::{AuthModel, Corner, Kind, World};
use clap::{Args, Parser, Subcommand, ValueEnum};
use stateright::Model;

#[derive(Parser)]
#[command(
    name = "auth-model",
    about = "Model-check the real auth-core session with stateright"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explore every interleaving of the bounded world and check P1-P8 plus the `sometimes`
    /// properties. Exits non-zero on a violation, an unreached path or an incomplete search.
    Check(CheckArgs),
    /// Serve stateright's Explorer on 127.0.0.1 to step through the machine in a browser.
    Explore(ExploreArgs),
    /// Explore every interleaving of a fleet of shared sessions (one store, one auth server with
    /// reuse detection) and check P1-P11 plus the fleet's `sometimes` properties. Exits non-zero
    /// on a violation, an unreached path or an incomplete search.
    Fleet(FleetArgs),
}

#[derive(Args)]
struct WorldArgs {
    /// App requests the environment may submit.
    #[arg(long, default_value_t = 2)]
    requests: u8,
    /// Faults: transient/fatal login, transient refresh, revoked refresh token, hung operation,
    /// duplicated response.
    #[arg(long, default_value_t = 1)]
    faults: u8,
    /// Server-side expiries of the access tokens.
    #[arg(long, default_value_t = 1)]
    expiries: u8,
    /// User logouts.
    #[arg(long, default_value_t = 1)]
    logouts: u8,
    /// Explicit logins.
    #[arg(long, default_value_t = 1)]
    logins: u8,
    /// Cancellations.
    #[arg(long, default_value_t = 1)]
    cancels: u8,
    /// Crashes with restart from the token store.
    #[arg(long, default_value_t = 1)]
    crashes: u8,
    /// Request kinds the app submits (bearer, public, no-retry, not-replayable).
    #[arg(long, value_delimiter = ',', default_value = "bearer,public,no-retry")]
    kinds: Vec<String>,
    /// `expires_in` of issued tokens in milliseconds (enables proactive refresh); none by default.
    #[arg(long)]
    token_lifetime_ms: Option<u64>,
    /// The session's `max_queued`.
    #[arg(long)]
    max_queued: Option<usize>,
    /// Plant one of auth-core's deliberate bugs (needs `--features broken-variants`):
    /// no-generation-check, no-operation-id-check, second-refresh-in-flight,
    /// release-before-persist, retry-without-budget, saturating-send-counter (no-lease and
    /// ignore-spent-mark act only in `fleet`: a local session takes no lease).
    #[arg(long)]
    bug: Option<String>,
    /// Check a corner world of the configuration space instead (the other world flags are
    /// ignored): minimum, maximum, no-queue-no-breaker, always-401-retries-0,
    /// always-401-retries-1, always-401-retries-255. `check` then passes when the corner's
    /// unreachable `sometimes` properties, and only those, stay unreached.
    #[arg(long)]
    corner: Option<String>,
}

/// The fleet world. The defaults are the "takeover" CI world plus a hang, a logout and a store
/// fault (see docs/verification.md for its size).
#[derive(Args)]
struct FleetWorldArgs {
    /// Processes sharing the session.
    #[arg(long, default_value_t = 2)]
    processes: usize,
    /// Bearer requests, in any process.
    #[arg(long, default_value_t = 2)]
    requests: u8,
    /// Server-side expiries of the access tokens.
    #[arg(long, default_value_t = 1)]
    expiries: u8,
    /// Hung logins, refreshes or store calls (the operation deadline fires first).
    #[arg(long, default_value_t = 1)]
    hangs: u8,
    /// Leases that expire while held.
    #[arg(long, default_value_t = 1)]
    lease_expiries: u8,
    /// Crashes, each with a restart that reads the store.
    #[arg(long, default_value_t = 1)]
    crashes: u8,
    /// Logouts, in any process.
    #[arg(long, default_value_t = 1)]
    logouts: u8,
    /// Explicit logins, in any process.
    #[arg(long, default_value_t = 0)]
    logins: u8,
    /// Store unreachable for a lease request or a publish (before or after it acted).
    #[arg(long, default_value_t = 1)]
    store_faults: u8,
    /// Transient login or refresh failures at the auth server (before or after it acted).
    #[arg(long, default_value_t = 0)]
    server_faults: u8,
    /// Pauses: a process frozen past its next timer, then fed an answer before the timer fires.
    #[arg(long, default_value_t = 0)]
    pauses: u8,
    /// Store data losses (a restart without persistence) while it holds tokens.
    #[arg(long, default_value_t = 0)]
    store_losses: u8,
    /// Store answers that travel back slowly (the store acted; leases may expire meanwhile).
    #[arg(long, default_value_t = 0)]
    delays: u8,
    /// No `StoreChanged` notifications: processes learn of changes from lease answers only.
    #[arg(long)]
    no_notifications: bool,
    /// Plant the broken store: publish writes without compare-and-swap.
    #[arg(long)]
    no_cas: bool,
    /// Check one of the CI worlds instead (the budget and notification flags are ignored;
    /// `--no-cas` and `--bug` still apply): takeover, logout, login-after-logout, hung-holder,
    /// store-down, paused, store-lost, delayed-answer, server-5xx. `fleet` then passes when the
    /// world's unreachable `sometimes` properties, and only those, stay unreached.
    #[arg(long)]
    world: Option<String>,
    /// Plant one of auth-core's deliberate bugs in every process (needs `--features
    /// broken-variants`): no-lease, ignore-spent-mark, or any bug `check --bug` takes.
    #[arg(long)]
    bug: Option<String>,
}

#[derive(Args)]
struct FleetArgs {
    #[command(flatten)]
    world: FleetWorldArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum SearchArg {
    Dfs,
    Bfs,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    world: WorldArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Where counterexample traces are written.
    #[arg(long, default_value = "target/auth-model")]
    trace_dir: PathBuf,
}

/// How to run the checker: shared by `check` and `fleet`.
#[derive(Args)]
struct RunArgs {
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Depth-first (honours symmetry) or breadth-first (shortest counterexamples, no symmetry).
    #[arg(long, value_enum, default_value = "dfs")]
    search: SearchArg,
    /// Symmetry reduction over request ids (DFS only; see docs/verification.md for what it
    /// buys). The fleet model has none.
    #[arg(long)]
    symmetry: bool,
    /// Stop at the first counterexample instead of exhausting the space (the run then fails
    /// as incomplete, or as violated).
    #[arg(long)]
    stop_at_first: bool,
    /// Cut the search off at this depth (the run then fails as incomplete).
    #[arg(long)]
    max_depth: Option<usize>,
    /// Stop after about this many states (the run then fails as incomplete).
    #[arg(long)]
    max_states: Option<usize>,
    /// Stop after this many seconds (the run then fails as incomplete).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

impl RunArgs {
    /// The checker settings; `always` names the model's `always` properties (for
    /// `--stop-at-first`).
    fn settings(&self, always: Vec<&'static str>) -> Settings {
        Settings {
            threads: self.threads,
            symmetry: self.symmetry,
            search: match self.search {
                SearchArg::Dfs => Search::Dfs,
                SearchArg::Bfs => Search::Bfs,
            },
            max_depth: self.max_depth,
            max_states: self.max_states,
            timeout: self.timeout_secs.map(core::time::Duration::from_secs),
            progress: !self.quiet,
            stop_at: if self.stop_at_first {
                always
            } else {
                Vec::new()
            },
        }
    }
}

#[derive(Args)]
struct ExploreArgs {
    #[command(flatten)]
    world: WorldArgs,
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(args) => check(args),
        Command::Explore(args) => explore(args),
        Command::Fleet(args) => fleet(args),
    }
}

fn model(args: &WorldArgs) -> Result<AuthModel, String> {
    let model = match &args.corner {
        Some(name) => AuthModel::new(
            Corner::named(name)
                .ok_or_else(|| format!("unknown corner {name:?}"))?
                .world,
        ),
        None => AuthModel::new(world(args)?),
    };
    match &args.bug {
        None => Ok(model),
        Some(name) => Ok(model.with_plant(plant(name)?)),
    }
}

fn world(args: &WorldArgs) -> Result<World, String> {
    let mut world = World::with_requests(args.requests);
    world.budget.faults = args.faults;
    world.budget.expiries = args.expiries;
    world.budget.logouts = args.logouts;
    world.budget.logins = args.logins;
    world.budget.cancels = args.cancels;
    world.budget.crashes = args.crashes;
    world.kinds = args
        .kinds
        .iter()
        .map(|k| Kind::parse(k).ok_or_else(|| format!("unknown request kind {k:?}")))
        .collect::<Result<_, _>>()?;
    world.token_lifetime = args
        .token_lifetime_ms
        .map(core::time::Duration::from_millis);
    if let Some(max_queued) = args.max_queued {
        world.config.max_queued = max_queued;
    }
    Ok(world)
}

#[cfg(feature = "broken-variants")]
fn plant(name: &str) -> Result<fn(Session) -> Session, String> {
    use auth_core::broken::Bug;
    let plant: fn(Session) -> Session = match name {
        "no-generation-check" => |s| s.with_bug(Bug::NoGenerationCheck),
        "no-operation-id-check" => |s| s.with_bug(Bug::NoOperationIdCheck),
        "second-refresh-in-flight" => |s| s.with_bug(Bug::SecondRefreshInFlight),
        "release-before-persist" => |s| s.with_bug(Bug::ReleaseBeforePersist),
        "retry-without-budget" => |s| s.with_bug(Bug::RetryWithoutBudget),
        "saturating-send-counter" => |s| s.with_bug(Bug::SaturatingSendCounter),
        "no-lease" => |s| s.with_bug(Bug::NoLease),
        "ignore-spent-mark" => |s| s.with_bug(Bug::IgnoreSpentMark),
        other => return Err(format!("unknown bug {other:?}")),
    };
    Ok(plant)
}

#[cfg(not(feature = "broken-variants"))]
fn plant(_name: &str) -> Result<fn(Session) -> Session, String> {
    Err("--bug needs a build with `--features broken-variants`".into())
}

fn check(args: CheckArgs) -> ExitCode {
    let model = match model(&args.world) {
        Ok(model) => model,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let settings = args.run.settings(always_names(&model));
    if args.run.search.is_bfs() && args.run.symmetry {
        eprintln!("note: stateright's BFS ignores symmetry; running without it");
    }
    let world = &model.world;
    println!(
        "world: {} requests ({}), {} faults, {} expiries, {} logouts, {} logins, {} cancels, {} crashes",
        world.budget.requests,
        world.kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join("/"),
        world.budget.faults,
        world.budget.expiries,
        world.budget.logouts,
        world.budget.logins,
        world.budget.cancels,
        world.budget.crashes
    );
    let renderer = model.clone();
    let report = auth_model::run(model, &settings);
    for property in &report.properties {
        let (Outcome::Violated, Some(path)) = (property.outcome, &property.path) else {
            continue;
        };
        let rendered = renderer.render(path);
        println!(
            "\ncounterexample for \"{}\":\n{}",
            property.name, rendered.text
        );
        let file = args
            .trace_dir
            .join(format!("counterexample-{}.json", slug(property.name)));
        let written = std::fs::create_dir_all(&args.trace_dir)
            .and_then(|()| std::fs::write(&file, rendered.trace.to_json()));
        match written {
            Ok(()) => println!("trace written to {}", file.display()),
            Err(error) => eprintln!("could not write {}: {error}", file.display()),
        }
    }
    println!("\n{}", report.table());
    let verdict = match args.world.corner.as_deref().and_then(Corner::named) {
        Some(corner) => {
            println!("corner {}: {}", corner.name, corner.edges);
            for (name, why) in corner.unreachable {
                println!("  unreachable here: \"{name}\" ({why})");
            }
            corner.judge(&report)
        }
        None if report.passed() => Ok(()),
        None => Err("FAIL".into()),
    };
    match verdict {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            println!("{why}");
            ExitCode::FAILURE
        }
    }
}

fn fleet(args: FleetArgs) -> ExitCode {
    let w = &args.world;
    let named = match w
        .world
        .as_deref()
        .map(|name| (name, FleetCheck::named(name)))
    {
        None => None,
        Some((_, Some(check))) => Some(check),
        Some((name, None)) => {
            eprintln!("error: unknown fleet world {name:?}");
            return ExitCode::from(2);
        }
    };
    let world = match &named {
        Some(check) => FleetWorld {
            compare_and_swap: !w.no_cas,
            ..check.world
        },
        None => {
            let mut world = FleetWorld::new(
                w.processes,
                FleetBudget {
                    requests: w.requests,
                    expiries: w.expiries,
                    hangs: w.hangs,
                    lease_expiries: w.lease_expiries,
                    crashes: w.crashes,
                    logouts: w.logouts,
                    logins: w.logins,
                    store_faults: w.store_faults,
                    server_faults: w.server_faults,
                    pauses: w.pauses,
                    store_losses: w.store_losses,
                    delays: w.delays,
                },
            );
            world.notifications = !w.no_notifications;
            world.compare_and_swap = !w.no_cas;
            world
        }
    };
    let mut model = FleetModel::new(world);
    if let Some(name) = &w.bug {
        match plant(name) {
            Ok(plant) => model = model.with_plant(plant),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let settings = args.run.settings(always_names(&model));
    println!("fleet world: {}", model.world.describe());
    let renderer = model.clone();
    let report = run_model(model, &settings, None);
    for property in &report.properties {
        if let (Outcome::Violated, Some(path)) = (property.outcome, &property.path) {
            println!(
                "\ncounterexample for \"{}\":\n{}",
                property.name,
                renderer.render(path)
            );
        }
    }
    println!("\n{}", report.table());
    let verdict = match &named {
        Some(check) => {
            println!("world {}: {}", check.name, check.about);
            for (name, why) in check.unreachable {
                println!("  unreachable here: \"{name}\" ({why})");
            }
            check.judge(&report)
        }
        None if report.passed() => Ok(()),
        None => Err("FAIL".into()),
    };
    match verdict {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            println!("{why}");
            ExitCode::FAILURE
        }
    }
}

fn explore(args: ExploreArgs) -> ExitCode {
    let model = match model(&args.world) {
        Ok(model) => model,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let address = ("127.0.0.1", args.port);
    println!(
        "Explorer on http://127.0.0.1:{}/ (Ctrl-C to stop)",
        args.port
    );
    // Serves until the process is stopped.
    let _checker = model.checker().serve(address);
    ExitCode::SUCCESS
}

fn always_names<M: Model>(model: &M) -> Vec<&'static str> {
    model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == stateright::Expectation::Always)
        .map(|p| p.name)
        .collect()
}

fn slug(name: &str) -> String {
    let mut slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    slug.trim_matches('-').to_string()
}

impl SearchArg {
    fn is_bfs(self) -> bool {
        matches!(self, SearchArg::Bfs)
    }
}
