//! Counterexamples as auth-core [`Trace`]s (the one trace format of the project) and as
//! readable event listings; and the replay a test runs on a trace file.

use core::fmt::Write as _;

use auth_core::{Checked, Command, Input, Outcome, Session, Start, Trace, Violation};

use crate::model::{Action, AuthModel, State, StepLog};

/// A path the checker found, in both forms.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The inputs of the session that was alive at the end of the path (a crash starts a new
    /// session, restored from the store: the trace starts there).
    pub trace: Trace,
    /// Every step, with the inputs it fed and the commands the session answered.
    pub text: String,
}

/// Short text of an action, for the Explorer and the listings.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Submit(kind) => format!("app submits a {kind} request"),
        Action::Cancel(id) => format!("app cancels {id}"),
        Action::Deliver(id, attempt) => format!("API answers {id} (send {attempt})"),
        Action::Duplicate(id, attempt) => {
            format!("API answers {id} (send {attempt}), answer duplicated [fault]")
        }
        Action::LoginOk(op) => format!("login op {} succeeds", op.0),
        Action::LoginTransient(op) => format!("login op {} fails transiently [fault]", op.0),
        Action::LoginFatal(op) => format!("login op {} fails for good [fault]", op.0),
        Action::RefreshOk(op) => format!("refresh op {} succeeds", op.0),
        Action::RefreshInvalidGrant(op) => format!("refresh op {} gets invalid_grant", op.0),
        Action::RefreshTransient(op) => format!("refresh op {} fails transiently [fault]", op.0),
        Action::Expire => "server expires every access token".into(),
        Action::Logout => "user logs out".into(),
        Action::Login => "app asks for a login".into(),
        Action::Fire(timer) => format!("time passes: {timer:?} fires"),
        Action::Crash => "process crashes and restarts from the store".into(),
    }
}

pub(crate) fn input_text(input: &Input) -> String {
    match input {
        Input::Submit(spec) => format!("Submit({:?}, {:?})", spec.auth, spec.retry),
        Input::LoginResult { op, result } => match result {
            Ok(set) => format!("LoginResult(op {}, Ok {})", op.0, tokens_text(set)),
            Err(e) => format!("LoginResult(op {}, Err {e:?})", op.0),
        },
        Input::RefreshResult { op, result } => match result {
            Ok(set) => format!("RefreshResult(op {}, Ok {})", op.0, tokens_text(set)),
            Err(e) => format!("RefreshResult(op {}, Err {e:?})", op.0),
        },
        other => format!("{other:?}"),
    }
}

pub(crate) fn tokens_text(set: &auth_core::TokenSet) -> String {
    // The model's tokens are not secrets: show the fake server's names.
    let refresh = set
        .refresh_token
        .as_ref()
        .map_or("-".to_string(), |t| t.expose_secret().to_string());
    format!("{}/{}", set.access_token.expose_secret(), refresh)
}

pub(crate) fn command_text(command: &Command) -> String {
    match command {
        Command::Send {
            id,
            attempt,
            token,
            generation,
        } => format!(
            "Send {id} send {attempt} token {} gen {}",
            token.as_ref().map_or("-", |t| t.expose_secret()),
            generation.map_or("-".to_string(), |g| g.0.to_string())
        ),
        Command::Refresh { op, refresh_token } => {
            format!("Refresh op {} with {}", op.0, refresh_token.expose_secret())
        }
        Command::Persist(p) => format!(
            "Persist gen {} ({})",
            p.generation.0,
            p.access_token.expose_secret()
        ),
        Command::Complete { id, outcome } => match outcome {
            Outcome::Deliver => format!("Complete {id} Deliver"),
            Outcome::Fail(e) => format!("Complete {id} Fail({e:?})"),
        },
        other => format!("{other:?}"),
    }
}

impl AuthModel {
    /// Renders a path (as stateright reports it) as a trace and a listing.
    pub fn render(&self, path: &[(State, Option<Action>)]) -> Rendered {
        let mut trace = Trace::new(self.world.config, auth_core::Instant::ZERO);
        let mut text = String::new();
        for (n, (state, action)) in path.iter().enumerate() {
            let Some(action) = action else { continue };
            let mut log = StepLog::default();
            // The path came from the model, so the step is possible; a failure would print
            // as a step with no inputs.
            let _ = self.step(state, *action, &mut log);
            let _ = writeln!(
                text,
                "{:>3}. t={:>6}ms  {}",
                n + 1,
                state.checked.session.now().as_millis(),
                describe(action)
            );
            if let Some(start) = log.restart.take() {
                trace = match start {
                    Start::New { at } => Trace::new(self.world.config, at),
                    Start::Restore { at, wall, snapshot } => {
                        Trace::restored(self.world.config, snapshot, at, wall)
                    }
                };
            }
            for (at, input) in log.inputs {
                let _ = writeln!(text, "       in  {}", input_text(&input));
                trace.push(at, input);
            }
            for command in &log.commands {
                let _ = writeln!(text, "       out {}", command_text(command));
            }
        }
        if let Some((last, _)) = path.last() {
            for violation in last.checked.monitor.violations() {
                let _ = writeln!(text, "  violation: {violation}");
            }
            if !last.settled_if_quiet() {
                let _ = writeln!(
                    text,
                    "  violation: the world is quiet but the session did not settle ({:?}, {} requests open)",
                    last.checked.session.state(),
                    last.checked.monitor.pending()
                );
            }
        }
        Rendered { trace, text }
    }
}

/// Replays `trace` through `plant(session)` with a fresh monitor, as [`Trace::replay`] does for
/// the real core; with `settle`, then judges P8 as at a quiet state. Returns what the monitor
/// found.
pub fn replay(trace: &Trace, plant: fn(Session) -> Session, settle: bool) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut checked = Checked::new(plant(trace.session()), &mut out);
    for step in &trace.steps {
        checked.handle(step.input.clone(), step.at, &mut out);
    }
    if settle {
        let state = checked.session.state();
        checked.monitor.check_settled(state);
    }
    checked.monitor.violations().to_vec()
}
