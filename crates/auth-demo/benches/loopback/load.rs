//! Load generators (a closed loop at fixed concurrency, a storm of N at once), the request
//! targets they drive, and the machine facts printed with every result.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_tokio::auth_core::{RequestSpec, Verdict};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{verdict, Error, Next, SessionHandle};
use http::header::{HeaderValue, AUTHORIZATION};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::task::JoinSet;

/// One request of a benchmark; `Err` names what went wrong (for the error tally).
pub(crate) trait Target: Send + Sync + 'static {
    /// Sends one request and reads its whole answer.
    fn once(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// `GET url` with the `reqwest::Client` alone, carrying a valid bearer token set by hand.
pub(crate) struct Raw {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) authorization: HeaderValue,
}

/// `GET url` through the session: [`ApiClient`] over the same `reqwest::Client`.
pub(crate) struct Api {
    pub(crate) api: ApiClient,
    pub(crate) url: String,
}

/// `GET url` through the session's [`auth_tokio::Call`] loop with the `reqwest::Client` as the
/// transport: the driver's round trips without `ApiClient`'s own work (scope, request clone).
pub(crate) struct CallLoop {
    pub(crate) session: SessionHandle,
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
}

/// A request through the driver alone, without HTTP: the caller answers every send at once.
pub(crate) struct DriverOnly {
    pub(crate) session: SessionHandle,
}

/// What a closed loop measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
}

/// What one storm measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Storm {
    pub(crate) elapsed: Duration,
    pub(crate) ok: usize,
    pub(crate) errors: BTreeMap<String, usize>,
}

/// `concurrency` workers send requests back to back for `length`; requests that finish after
/// the window are not counted.
pub(crate) async fn closed_loop<T: Target>(
    target: &Arc<T>,
    concurrency: usize,
    length: Duration,
) -> Window {
    let start = Instant::now();
    let deadline = start + length;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let target = Arc::clone(target);
        workers.spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let result = target.once().await;
                if Instant::now() > deadline {
                    break;
                }
                match result {
                    Ok(()) => ok += 1,
                    Err(_) => errors += 1,
                }
            }
            (ok, errors)
        });
    }
    let mut window = Window {
        ok: 0,
        errors: 0,
        elapsed: length,
    };
    while let Some(joined) = workers.join_next().await {
        let (ok, errors) = joined.unwrap_or((0, 1));
        window.ok += ok;
        window.errors += errors;
    }
    window
}

/// `n` requests at once; the time until the last one is answered.
pub(crate) async fn storm<T: Target>(target: &Arc<T>, n: usize) -> Storm {
    let start = Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..n {
        let target = Arc::clone(target);
        calls.spawn(async move { target.once().await });
    }
    let mut storm = Storm::default();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(())) => storm.ok += 1,
            Ok(Err(error)) => *storm.errors.entry(error).or_default() += 1,
            Err(_) => *storm.errors.entry("panic".into()).or_default() += 1,
        }
    }
    storm.elapsed = start.elapsed();
    storm
}

impl Target for Raw {
    async fn once(&self) -> Result<(), String> {
        let sent = self
            .http
            .get(&self.url)
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await;
        read(sent.map_err(Error::Transport)).await
    }
}

impl Target for Api {
    async fn once(&self) -> Result<(), String> {
        read(self.api.get(&self.url).await).await
    }
}

impl Target for CallLoop {
    async fn once(&self) -> Result<(), String> {
        let mut call = self.session.call(RequestSpec::bearer());
        loop {
            match call.next_step().await {
                Ok(Next::Send(attempt)) => {
                    let mut request = self.http.get(&self.url);
                    if let Some(authorization) = attempt.authorization() {
                        request = request.header(AUTHORIZATION, authorization);
                    }
                    let sent = request.send().await;
                    let verdict = match &sent {
                        Ok(response) => verdict(response.status(), response.headers()),
                        Err(_) => Verdict::Accepted,
                    };
                    call.respond(sent, verdict);
                }
                Ok(Next::Deliver(sent)) => return read(sent.map_err(Error::Transport)).await,
                Err(error) => return Err(format!("session: {error:?}")),
            }
        }
    }
}

impl Target for DriverOnly {
    async fn once(&self) -> Result<(), String> {
        let mut call = self.session.call::<()>(RequestSpec::bearer());
        loop {
            match call.next_step().await {
                Ok(Next::Send(_attempt)) => call.respond((), Verdict::Accepted),
                Ok(Next::Deliver(())) => return Ok(()),
                Err(error) => return Err(format!("{error:?}")),
            }
        }
    }
}

/// Reads the whole body of a 200; anything else is an error named by its kind.
async fn read(response: Result<reqwest::Response, Error<reqwest::Error>>) -> Result<(), String> {
    let response = response.map_err(|error| match error {
        Error::Session(reason) => format!("session: {reason:?}"),
        Error::Transport(error) if error.is_connect() => "transport: connect".to_owned(),
        Error::Transport(error) if error.is_timeout() => "transport: timeout".to_owned(),
        Error::Transport(_) => "transport: other".to_owned(),
        other => format!("{other:?}"),
    })?;
    let status = response.status();
    let body = response.bytes().await;
    match (status.as_u16(), body) {
        (200, Ok(_)) => Ok(()),
        (200, Err(_)) => Err("body: read failed".to_owned()),
        (other, _) => Err(format!("HTTP {other}")),
    }
}

/// Raises the soft limit of open descriptors to the hard limit; returns `(before, after)`.
pub(crate) fn raise_fd_limit() -> (u64, u64) {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    // An unlimited hard limit still has the kernel's `nr_open` ceiling; 2^20 is its default.
    let hard = limit.maximum.unwrap_or(1 << 20);
    if before >= hard {
        return (before, before);
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => (before, hard),
        Err(_) => (before, before),
    }
}

/// CPU time of process `pid` (`"self"` for this one) so far: the sum over its threads of the
/// time on a CPU and of the time spent runnable but waiting for one, in nanoseconds, and of the
/// times it was switched in, from
/// `/proc/PID/task/*/schedstat` (precise, unlike the tick-based `/proc/PID/stat`). Zero where
/// `/proc` has no schedstat.
pub(crate) fn cpu_time(pid: &str) -> Cpu {
    let mut cpu = Cpu::default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return cpu;
    };
    for task in tasks.flatten() {
        // A thread may exit between the listing and the read: skipped.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(on_cpu)), Some(Ok(waiting)), Some(Ok(slices))) =
            (fields.next(), fields.next(), fields.next())
        {
            cpu.on_cpu += on_cpu;
            cpu.waiting += waiting;
            cpu.slices += slices;
        }
    }
    cpu
}

/// Nanoseconds a process spent on a CPU and waiting for one, and how many times one of its
/// threads was switched in; see [`cpu_time`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cpu {
    pub(crate) on_cpu: u64,
    pub(crate) waiting: u64,
    pub(crate) slices: u64,
}

impl Cpu {
    /// What was spent between `before` and `self`.
    pub(crate) fn since(self, before: Cpu) -> Cpu {
        Cpu {
            on_cpu: self.on_cpu.saturating_sub(before.on_cpu),
            waiting: self.waiting.saturating_sub(before.waiting),
            slices: self.slices.saturating_sub(before.slices),
        }
    }
}

/// The load average (1, 5, 15 min) as `/proc/loadavg` says, or `?` elsewhere.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl Window {
    /// Requests per second answered with a 200.
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

impl Storm {
    /// Failed requests.
    pub(crate) fn failed(&self) -> usize {
        self.errors.values().sum()
    }
}
