//! One-line renderings of inputs and commands for scenario snapshots: short, stable, and with
//! tokens shown only as fingerprints.

use crate::command::{Command, Outcome};
use crate::input::{Auth, Input, Retry, Verdict};
use crate::shared::{LeaseResult, Observed, PublishResult, Stored};
use crate::sim::state_name;
use crate::token::TokenSet;

pub(crate) fn input(input: &Input) -> String {
    match input {
        Input::Submit(spec) => {
            let mut text = match spec.auth {
                Auth::Bearer => "submit bearer".to_owned(),
                Auth::Public => "submit public".to_owned(),
            };
            if spec.retry == Retry::Deny {
                text.push_str(" no-retry");
            }
            if !spec.replayable {
                text.push_str(" not-replayable");
            }
            text
        }
        Input::Cancel(id) => format!("cancel #{}", id.sequence()),
        Input::Response {
            id,
            attempt,
            verdict,
        } => {
            let verdict = match verdict {
                Verdict::Accepted => "200",
                Verdict::Rejected => "401",
            };
            format!("response #{} attempt {attempt}: {verdict}", id.sequence())
        }
        Input::LoginResult { op, result } => {
            format!(
                "login result op{}: {}",
                op.0,
                result_text(result.as_ref().map_err(|e| format!("{e:?}")))
            )
        }
        Input::RefreshResult { op, result } => {
            format!(
                "refresh result op{}: {}",
                op.0,
                result_text(result.as_ref().map_err(|e| format!("{e:?}")))
            )
        }
        Input::Logout => "logout".to_owned(),
        Input::Login => "login".to_owned(),
        Input::Timeout => "timeout".to_owned(),
        Input::Lease { op, result } => {
            let result = match result {
                LeaseResult::Granted(observed) => format!("granted on {}", observed_text(observed)),
                LeaseResult::Busy(observed) => format!("busy, store {}", observed_text(observed)),
                LeaseResult::Unavailable => "store unavailable".to_owned(),
            };
            format!("lease op{}: {result}", op.0)
        }
        Input::Published { op, result } => {
            let result = match result {
                PublishResult::Written => "written".to_owned(),
                PublishResult::Conflict(observed) => {
                    format!("conflict, store {}", observed_text(observed))
                }
                PublishResult::Unavailable => "store unavailable".to_owned(),
            };
            format!("published op{}: {result}", op.0)
        }
        Input::StoreChanged(observed) => format!("store changed: {}", observed_text(observed)),
    }
}

pub(crate) fn observed_text(observed: &Observed) -> String {
    let content = match &observed.content {
        Stored::Empty => "empty".to_owned(),
        Stored::Tokens(set) => result_text(Ok(set)),
        Stored::LoggedOut => "logged out".to_owned(),
    };
    let spent = if observed.spent { " (spent)" } else { "" };
    format!("v{} {content}{spent}", observed.version.0)
}

fn result_text(result: Result<&TokenSet, String>) -> String {
    match result {
        Ok(set) => {
            let mut text = format!("ok access {}", set.access_token.fingerprint());
            if let Some(refresh) = &set.refresh_token {
                text.push_str(&format!(" refresh {}", refresh.fingerprint()));
            }
            if let Some(life) = set.expires_in {
                text.push_str(&format!(" expires_in {}s", life.as_secs()));
            }
            text
        }
        Err(error) => format!("error {error}"),
    }
}

pub(crate) fn command(command: &Command) -> String {
    match command {
        Command::Send {
            id,
            attempt,
            token,
            generation,
        } => match (token, generation) {
            (Some(token), Some(generation)) => format!(
                "send #{} attempt {attempt} gen {} {}",
                id.sequence(),
                generation.0,
                token.fingerprint()
            ),
            _ => format!("send #{} attempt {attempt} without token", id.sequence()),
        },
        Command::Login { op } => format!("login op{}", op.0),
        Command::Refresh { op, refresh_token } => {
            format!("refresh op{} with {}", op.0, refresh_token.fingerprint())
        }
        Command::Persist(persist) => format!(
            "persist gen {} access {}",
            persist.generation.0,
            persist.access_token.fingerprint()
        ),
        Command::ClearStore => "clear store".to_owned(),
        Command::Revoke { refresh_token } => format!("revoke {}", refresh_token.fingerprint()),
        Command::Complete { id, outcome } => match outcome {
            Outcome::Deliver => format!("complete #{}: deliver", id.sequence()),
            Outcome::Fail(error) => format!("complete #{}: fail {error:?}", id.sequence()),
        },
        Command::Notify(state) => format!("notify {}", state_name(*state)),
        Command::Acquire { op, ttl } => {
            format!("acquire lease op{} for {}ms", op.0, ttl.as_millis())
        }
        Command::Publish {
            op,
            expected,
            persist,
        } => format!(
            "publish op{} on v{} gen {} access {}",
            op.0,
            expected.0,
            persist.generation.0,
            persist.access_token.fingerprint()
        ),
        Command::Release { op, version, spent } => {
            let mark = if *spent { "keep mark" } else { "clear mark" };
            format!("release lease op{} on v{} ({mark})", op.0, version.0)
        }
        Command::Adopted(generation) => format!("adopted gen {}", generation.0),
    }
}
