//! `auth-model`: model-check the real auth-core session (`check`) or step through it in
//! stateright's Explorer (`explore`).
//!
//! ```text
//! cargo run --release -p auth-model -- check [--requests N] [--threads T] [--faults F] ...
//! cargo run --release -p auth-model -- explore --port 3000
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use auth_core::Session;
use auth_model::check::{Outcome, Search, Settings};
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
    /// release-before-persist, retry-without-budget, saturating-send-counter.
    #[arg(long)]
    bug: Option<String>,
    /// Check a corner world of the configuration space instead (the other world flags are
    /// ignored): minimum, maximum, no-queue-no-breaker, always-401-retries-0,
    /// always-401-retries-1, always-401-retries-255. `check` then passes when the corner's
    /// unreachable `sometimes` properties, and only those, stay unreached.
    #[arg(long)]
    corner: Option<String>,
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
    /// Checker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Depth-first (honours symmetry) or breadth-first (shortest counterexamples, no symmetry).
    #[arg(long, value_enum, default_value = "dfs")]
    search: SearchArg,
    /// Symmetry reduction over request ids (DFS only; see docs/verification.md for what it
    /// buys).
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
    /// Where counterexample traces are written.
    #[arg(long, default_value = "target/auth-model")]
    trace_dir: PathBuf,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
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
    let settings = Settings {
        threads: args.threads,
        symmetry: args.symmetry,
        search: match args.search {
            SearchArg::Dfs => Search::Dfs,
            SearchArg::Bfs => Search::Bfs,
        },
        max_depth: args.max_depth,
        max_states: args.max_states,
        timeout: args.timeout_secs.map(core::time::Duration::from_secs),
        progress: !args.quiet,
        stop_at: if args.stop_at_first {
            always_names(&model)
        } else {
            Vec::new()
        },
    };
    if args.search.is_bfs() && args.symmetry {
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

fn always_names(model: &AuthModel) -> Vec<&'static str> {
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
