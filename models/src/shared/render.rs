//! Counterexamples of the fleet model as readable listings: every step with the inputs each
//! process was fed and the commands it answered, tokens shown by the fake server's names.
//!
//! auth-core's `Trace` records one session from `Session::new` or `Session::restore`; a shared
//! session starts from a store record, which that format cannot express yet, so fleet paths are
//! listings only.

use core::fmt::Write as _;

use auth_core::{Command, Input, LeaseResult, Observed, PublishResult, Stored};

use super::model::{Entry, FleetAction, FleetEvents, FleetLog, FleetModel, FleetState, Msg};
use super::store::{Content, Tokens};
use crate::trace::{command_text, input_text, tokens_text};

/// Short text of an action, for listings and the Explorer.
pub fn describe(action: &FleetAction) -> String {
    match action {
        FleetAction::Submit(p) => format!("p{p}: app submits a bearer request"),
        FleetAction::Deliver(msg) => format!("p{}: {} answered", msg.process(), msg_text(msg)),
        FleetAction::StoreDown(msg, false) => format!(
            "p{}: {} finds the store unreachable [fault]",
            msg.process(),
            msg_text(msg)
        ),
        FleetAction::StoreDown(msg, true) => format!(
            "p{}: {} done by the store, answer lost: unavailable [fault]",
            msg.process(),
            msg_text(msg)
        ),
        FleetAction::ServerFault(msg, false) => format!(
            "p{}: {} fails transiently at the server [fault]",
            msg.process(),
            msg_text(msg)
        ),
        FleetAction::ServerFault(msg, true) => format!(
            "p{}: {} done by the server, then a transient failure [fault]",
            msg.process(),
            msg_text(msg)
        ),
        FleetAction::Delay(msg) => format!(
            "p{}: {} done by the store, its answer delayed [fault]",
            msg.process(),
            msg_text(msg)
        ),
        FleetAction::Paused(msg) => format!(
            "p{}: {} answered after a pause past its next timer [fault]",
            msg.process(),
            msg_text(msg)
        ),
        FleetAction::Expire => "server expires every access token".into(),
        FleetAction::ExpireLease => {
            "the lease expires before its holder releases it [fault]".into()
        }
        FleetAction::LoseStore => "the store loses its data: empty at v0, no lease [fault]".into(),
        FleetAction::Logout(p) => format!("p{p}: user logs out"),
        FleetAction::Login(p) => format!("p{p}: app asks for a login"),
        FleetAction::Crash(p) => format!("p{p}: crashes and restarts from the store [fault]"),
        FleetAction::Watch(p) => format!("p{p}: watcher reads the changed record"),
        FleetAction::Fire(p, timer) => format!("p{p}: time passes: {timer:?} fires"),
    }
}

fn msg_text(msg: &Msg) -> String {
    match msg {
        Msg::Api {
            id, attempt, token, ..
        } => format!("API call {id} (send {attempt}, a{token})"),
        Msg::Login { op, .. } => format!("login op {}", op.0),
        Msg::Refresh { op, token, .. } => format!("refresh op {} with r{token}", op.0),
        Msg::Acquire { op, .. } => format!("lease request op {}", op.0),
        Msg::Publish {
            op,
            expected,
            tokens,
            ..
        } => format!(
            "publish op {} of {} on v{expected}",
            op.0,
            content_text(Content::Tokens(*tokens))
        ),
        Msg::Answer { op, answer, .. } => format!("store answer to op {}: {answer:?}", op.0),
        Msg::Changed { record, .. } => format!(
            "record v{} {}{} read by the watcher",
            record.version,
            content_text(record.content),
            if record.spent { ", spent" } else { "" }
        ),
    }
}

/// The store's content by the fake server's token names.
pub fn content_text(content: Content) -> String {
    match content {
        Content::Empty => "empty".into(),
        Content::LoggedOut => "logged out".into(),
        Content::Tokens(Tokens { access, refresh }) => format!(
            "a{access}/{}",
            refresh.map_or("-".into(), |r| format!("r{r}"))
        ),
    }
}

fn observed_text(observed: &Observed) -> String {
    let content = match &observed.content {
        Stored::Empty => "empty".into(),
        Stored::LoggedOut => "logged out".into(),
        Stored::Tokens(set) => tokens_text(set),
    };
    let spent = if observed.spent { ", spent" } else { "" };
    format!("v{} {content}{spent}", observed.version.0)
}

fn shared_input_text(input: &Input) -> String {
    match input {
        Input::Lease { op, result } => match result {
            LeaseResult::Granted(o) => format!("Lease(op {}, Granted {})", op.0, observed_text(o)),
            LeaseResult::Busy(o) => format!("Lease(op {}, Busy {})", op.0, observed_text(o)),
            LeaseResult::Unavailable => format!("Lease(op {}, Unavailable)", op.0),
        },
        Input::Published { op, result } => match result {
            PublishResult::Written => format!("Published(op {}, Written)", op.0),
            PublishResult::Conflict(o) => {
                format!("Published(op {}, Conflict {})", op.0, observed_text(o))
            }
            PublishResult::Unavailable => format!("Published(op {}, Unavailable)", op.0),
        },
        Input::StoreChanged(o) => format!("StoreChanged({})", observed_text(o)),
        other => input_text(other),
    }
}

fn shared_command_text(command: &Command) -> String {
    match command {
        Command::Publish {
            op,
            expected,
            persist,
        } => format!(
            "Publish op {} on v{} gen {} ({}/{})",
            op.0,
            expected.0,
            persist.generation.0,
            persist.access_token.expose_secret(),
            persist
                .refresh_token
                .as_ref()
                .map_or("-", |t| t.expose_secret())
        ),
        other => command_text(other),
    }
}

impl FleetModel {
    /// Renders a path (as stateright reports it) as a listing, ending with the violations the
    /// last state holds.
    pub fn render(&self, path: &[(FleetState, Option<FleetAction>)]) -> String {
        let mut text = String::new();
        for (n, (state, action)) in path.iter().enumerate() {
            let Some(action) = action else { continue };
            let mut log = FleetLog::recording();
            // The path came from the model, so the step is possible.
            let _ = self.step(state, *action, &mut log);
            let _ = writeln!(text, "{:>3}. {}", n + 1, describe(action));
            for entry in &log.entries {
                let _ = match entry {
                    Entry::In(p, at, input) => writeln!(
                        text,
                        "       p{p} t={:>3}ms in  {}",
                        at.as_millis(),
                        shared_input_text(input)
                    ),
                    Entry::Out(p, command) => {
                        writeln!(
                            text,
                            "       p{p}          out {}",
                            shared_command_text(command)
                        )
                    }
                    Entry::Restart(p, observed) => writeln!(
                        text,
                        "       p{p} restarts: Session::shared on {}",
                        observed_text(observed)
                    ),
                };
            }
        }
        if let Some((last, _)) = path.last() {
            let store = &last.store;
            let _ = writeln!(
                text,
                "  store: v{} {}{}, lease {:?}; server: {} token sets, reuse detected: {}",
                store.version,
                content_text(store.content),
                if store.spent { ", spent" } else { "" },
                store.lease,
                last.server.issued(),
                last.server.reuse_detected
            );
            if last.server.reuse_detected {
                let _ = writeln!(
                    text,
                    "  violation: the server saw a refresh token twice and revoked its family"
                );
            }
            if last.events.contains(FleetEvents::OLDER_OVER_NEWER) {
                let _ = writeln!(
                    text,
                    "  violation: the store replaced a token set with an older one"
                );
            }
            for violation in last.fleet.violations() {
                let _ = writeln!(text, "  violation: {violation}");
            }
            for (p, proc) in last.procs.iter().enumerate() {
                for violation in proc.checked.monitor.violations() {
                    let _ = writeln!(text, "  violation in p{p}: {violation}");
                }
            }
            if !last.settled_if_quiet() {
                let _ = writeln!(
                    text,
                    "  violation: the fleet is quiet but a process did not settle"
                );
            }
        }
        text
    }
}
