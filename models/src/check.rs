//! Running the checker: progress, completeness, and the result table.
//!
//! stateright 0.31 has three traps this module closes (measured, see `docs/verification.md`):
//! a search cut off by `target_max_depth`, `target_state_count` or a timeout still passes
//! `assert_properties()`, so [`Report::complete`] is computed here and an incomplete search
//! fails; `spawn_bfs` ignores `.symmetry()`, so symmetry forces DFS; `eventually` is judged only
//! at terminal states, so progress is an `always` property over quiet states instead.

use core::fmt::{Debug, Write as _};
use core::hash::Hash;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::Write as _;

use stateright::report::{ReportData, ReportDiscovery, Reporter};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, Representative as _};

use crate::model::{Action, AuthModel, State};

/// Which search to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// Depth-first: little memory, honours symmetry reduction.
    Dfs,
    /// Breadth-first: shortest counterexamples (single-threaded); ignores symmetry.
    Bfs,
}

/// How to run the checker.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Checker threads.
    pub threads: usize,
    /// Symmetry reduction over request ids (DFS only).
    pub symmetry: bool,
    /// DFS or BFS.
    pub search: Search,
    /// Cut the search off at this depth (then it is incomplete).
    pub max_depth: Option<usize>,
    /// Stop after about this many states (then it is incomplete).
    pub max_states: Option<usize>,
    /// Stop after this long (then it is incomplete).
    pub timeout: Option<Duration>,
    /// Print progress to stderr every second.
    pub progress: bool,
    /// Stop as soon as any of these properties has a discovery (the search is then
    /// incomplete); empty to exhaust the space.
    pub stop_at: Vec<&'static str>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threads: 1,
            symmetry: false,
            search: Search::Dfs,
            max_depth: None,
            max_states: None,
            timeout: None,
            progress: false,
            stop_at: Vec::new(),
        }
    }
}

/// What the checker concluded about one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An `always` property with no counterexample.
    Holds,
    /// An `always` property with a counterexample.
    Violated,
    /// A `sometimes` property with an example.
    Reached,
    /// A `sometimes` property with no example: the path it names was never taken.
    NotReached,
}

/// One row of the result table. Generic over the model's state and action so that every model
/// of this crate (the session's, the fleet's in [`crate::shared`]) reports alike.
#[derive(Clone, Debug)]
pub struct PropertyResult<S = State, A = Action> {
    /// The property's name.
    pub name: &'static str,
    /// `always` or `sometimes`.
    pub expectation: Expectation,
    /// The verdict.
    pub outcome: Outcome,
    /// The counterexample or example.
    pub path: Option<Vec<(S, Option<A>)>>,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Report<S = State, A = Action> {
    /// Every property, in the model's order.
    pub properties: Vec<PropertyResult<S, A>>,
    /// Unique states (symmetry classes with symmetry reduction).
    pub unique_states: usize,
    /// States generated, repeats included.
    pub total_states: usize,
    /// Deepest path explored.
    pub max_depth: usize,
    /// Wall time of the search.
    pub elapsed: Duration,
    /// Why the search is incomplete, if it is.
    pub incomplete: Option<String>,
    /// How it was run, for the table.
    pub how: String,
}

impl<S, A> Report<S, A> {
    /// Whether the search was exhaustive.
    pub fn complete(&self) -> bool {
        self.incomplete.is_none()
    }

    /// Complete, every `always` property holds and every `sometimes` property was reached.
    pub fn passed(&self) -> bool {
        self.complete()
            && self
                .properties
                .iter()
                .all(|p| matches!(p.outcome, Outcome::Holds | Outcome::Reached))
    }

    /// The result for `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyResult<S, A>> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Names of the violated `always` properties.
    pub fn violated(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.outcome == Outcome::Violated)
            .map(|p| p.name)
            .collect()
    }

    /// The result table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{:<40} {:<10} result", "property", "kind");
        let _ = writeln!(t, "{}", "-".repeat(68));
        for p in &self.properties {
            let kind = match p.expectation {
                Expectation::Always => "always",
                Expectation::Sometimes => "sometimes",
                Expectation::Eventually => "eventually",
            };
            let mut result = match p.outcome {
                Outcome::Holds => "holds",
                Outcome::Violated => "VIOLATED",
                Outcome::Reached => "reached",
                Outcome::NotReached => "NOT REACHED",
            }
            .to_string();
            if !self.complete() && p.outcome == Outcome::Holds {
                result.push_str(" (so far)");
            }
            let _ = writeln!(t, "{:<40} {:<10} {result}", p.name, kind);
        }
        let _ = writeln!(t, "{}", "-".repeat(68));
        let _ = writeln!(t, "{:<40} {}", "unique states", self.unique_states);
        let _ = writeln!(t, "{:<40} {}", "total states", self.total_states);
        let _ = writeln!(t, "{:<40} {}", "max depth", self.max_depth);
        let _ = writeln!(t, "{:<40} {:.2} s", "time", self.elapsed.as_secs_f64());
        let _ = writeln!(t, "{:<40} {}", "search", self.how);
        let verdict = match &self.incomplete {
            None => "complete".to_string(),
            Some(why) => format!("INCOMPLETE: {why}"),
        };
        let _ = writeln!(t, "{:<40} {verdict}", "exhaustive");
        let _ = writeln!(
            t,
            "{:<40} {}",
            "verdict",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        t
    }
}

/// Whether `report` is what the world called `name` must give: a complete search, every
/// `always` property holding, and every `sometimes` property reached except the ones listed in
/// `unreachable` (which must indeed stay unreached, or the list is stale).
pub fn judge<S, A>(
    name: &str,
    unreachable: &[(&str, &str)],
    report: &Report<S, A>,
) -> Result<(), String> {
    if let Some(why) = &report.incomplete {
        return Err(format!("{name}: incomplete search: {why}"));
    }
    for property in &report.properties {
        let excused = unreachable.iter().any(|(n, _)| *n == property.name);
        match (property.outcome, excused) {
            (Outcome::Violated, _) => {
                return Err(format!("{name}: \"{}\" violated", property.name))
            }
            (Outcome::NotReached, false) => {
                return Err(format!("{name}: \"{}\" not reached", property.name))
            }
            (Outcome::Reached, true) => {
                return Err(format!(
                    "{name}: \"{}\" is listed as unreachable but was reached",
                    property.name
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs the checker on `model` and waits for it.
pub fn run(model: AuthModel, settings: &Settings) -> Report {
    run_model(model, settings, Some(State::representative))
}

/// A model's symmetry reduction: the representative of a state's symmetry class.
pub type Representative<M> = fn(&<M as Model>::State) -> <M as Model>::State;

/// Runs the checker on any model of this crate and waits for it: the same completeness rules
/// and result table for every model. `representative` is the model's symmetry reduction, used
/// when `settings.symmetry` asks for it (DFS only); `None` for a model without one.
pub fn run_model<M>(
    model: M,
    settings: &Settings,
    representative: Option<Representative<M>>,
) -> Report<M::State, M::Action>
where
    M: Model + Send + Sync + 'static,
    M::State: Debug + Hash + Send + Sync + Clone + PartialEq + 'static,
    M::Action: Debug + Clone + PartialEq + Send + Sync + 'static,
{
    let symmetry = settings.symmetry && settings.search == Search::Dfs;
    let mut builder = model.checker().threads(settings.threads.max(1));
    if let (true, Some(representative)) = (symmetry, representative) {
        builder = builder.symmetry_fn(representative);
    }
    if let Some(depth) = settings.max_depth {
        builder = builder.target_max_depth(depth);
    }
    if let Some(states) = settings.max_states {
        builder = builder.target_state_count(states);
    }
    if let Some(timeout) = settings.timeout {
        builder = builder.timeout(timeout);
    }
    if !settings.stop_at.is_empty() {
        let names = settings.stop_at.iter().copied().collect();
        builder = builder.finish_when(HasDiscoveries::AnyOf(names));
    }
    let how = format!(
        "{}, symmetry {}, {} thread(s)",
        match settings.search {
            Search::Dfs => "DFS",
            Search::Bfs => "BFS",
        },
        if symmetry && representative.is_some() {
            "on"
        } else {
            "off"
        },
        settings.threads.max(1)
    );
    let started = std::time::Instant::now();
    match settings.search {
        Search::Dfs => finish(builder.spawn_dfs(), settings, started, how),
        Search::Bfs => finish(builder.spawn_bfs(), settings, started, how),
    }
}

fn finish<M, C>(
    checker: C,
    settings: &Settings,
    started: std::time::Instant,
    how: String,
) -> Report<M::State, M::Action>
where
    M: Model,
    M::State: Debug + Hash + Clone + PartialEq,
    M::Action: Debug + Clone + PartialEq,
    C: Checker<M> + Send + Sync,
{
    let (checker, elapsed) = if settings.progress {
        let mut progress = Progress::default();
        let checker = checker.join_and_report(&mut progress);
        // The reporter's final sample, not the end of its last sleep.
        let elapsed = progress.done.unwrap_or_else(|| started.elapsed());
        (checker, elapsed)
    } else {
        let checker = checker.join();
        (checker, started.elapsed())
    };
    let model = checker.model();
    let discoveries = checker.discoveries();
    let properties: Vec<_> = model
        .properties()
        .into_iter()
        .map(|p| {
            let path = discoveries.get(p.name).cloned().map(Path::into_vec);
            let outcome = match (&p.expectation, path.is_some()) {
                (Expectation::Sometimes, true) => Outcome::Reached,
                (Expectation::Sometimes, false) => Outcome::NotReached,
                (_, true) => Outcome::Violated,
                (_, false) => Outcome::Holds,
            };
            PropertyResult {
                name: p.name,
                expectation: p.expectation,
                outcome,
                path,
            }
        })
        .collect();
    let total_states = checker.state_count();
    let max_depth = checker.max_depth();
    let mut incomplete = None;
    if let Some(depth) = settings.max_depth.filter(|d| max_depth >= *d) {
        incomplete = Some(format!("cut off at depth {depth}"));
    } else if let Some(states) = settings.max_states.filter(|s| total_states >= *s) {
        incomplete = Some(format!("stopped after {states} states"));
    } else if let Some(timeout) = settings.timeout.filter(|t| elapsed >= *t) {
        incomplete = Some(format!("timed out after {} s", timeout.as_secs()));
    } else if let Some(name) = settings
        .stop_at
        .iter()
        .find(|name| discoveries.contains_key(*name))
    {
        incomplete = Some(format!("stopped once \"{name}\" had a discovery"));
    } else if !checker.is_done() {
        incomplete = Some("the checker stopped early".into());
    } else if properties.iter().all(|p| p.path.is_some()) {
        // Every property has a discovery: stateright stops there, before exhausting the space.
        incomplete = Some("stopped once every property had a discovery".into());
    }
    Report {
        properties,
        unique_states: checker.unique_state_count(),
        total_states,
        max_depth,
        elapsed,
        incomplete,
        how,
    }
}

/// Prints states, states/s and depth to stderr.
#[derive(Default)]
struct Progress {
    last: Option<(Duration, usize)>,
    done: Option<Duration>,
}

impl<M: Model> Reporter<M> for Progress {
    fn report_checking(&mut self, data: ReportData) {
        let (since, before) = self.last.unwrap_or((Duration::ZERO, 0));
        let span = data.duration.saturating_sub(since).as_secs_f64();
        let rate = if span > 0.0 {
            (data.total_states.saturating_sub(before)) as f64 / span
        } else {
            0.0
        };
        self.last = Some((data.duration, data.total_states));
        if data.done {
            self.done = Some(data.duration);
        }
        let _ = writeln!(
            std::io::stderr(),
            "{:>7.1}s  states {:>10}  unique {:>10}  {:>9.0} states/s  depth {:>3}{}",
            data.duration.as_secs_f64(),
            data.total_states,
            data.unique_states,
            rate,
            data.max_depth,
            if data.done { "  done" } else { "" }
        );
    }

    fn report_discoveries(
        &mut self,
        _model: &M,
        _discoveries: BTreeMap<&'static str, ReportDiscovery<M>>,
    ) where
        M::Action: Debug + PartialEq,
        M::State: Debug + Hash + PartialEq,
    {
        // The result table reports them.
    }
}
