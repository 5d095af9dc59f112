//! Loopback benchmarks of the tokio driver (issue 7), a bench binary with a fixed protocol:
//!
//! - `driver`: requests per second through the driver alone (no HTTP: the caller answers every
//!   send at once), at concurrency 1, 64, 1024: the driver's own ceiling.
//! - `throughput`: requests per second of `GET /api/bench` through
//!   `auth_tokio::reqwest::ApiClient`, through the same `reqwest::Client` alone (with a valid
//!   bearer token set by hand), and through the session's `Call` loop with that client (the
//!   session's own work without `ApiClient`'s), at concurrency 1, 64, 1024; with the CPU time of
//!   client and server per request. Windows of the three alternate, so the ratios are measured
//!   under the same load.
//! - `storm`: N = 10, 100, 1 000, 10 000 requests at once through `ApiClient` right after the
//!   server expired every access token (the requests already sent are rejected once, one
//!   refresh, they are sent again; the later ones wait for the refresh), against the same N with
//!   a valid token and with `reqwest` alone; refreshes, sends and errors counted by the server,
//!   the refresh timed in the backend. Then one storm of 10 000 with the default `Config`.
//! - `proactive`: the same storm when the client knows the token is about to expire
//!   (`expires_in` and the refresh margin): every request waits for one refresh and is sent once.
//!
//! ```text
//! cargo bench -p auth-demo --bench loopback [-- SECTION…] [--secs S] [--rounds R] [--max-n N]
//!     [--max-reps K] [--client-threads T]
//! ```
//!
//! Every section prints a markdown table with the load average before and after. Results,
//! machine and load: docs/performance.md. Without `--bench` (which `cargo bench` passes), as
//! under `cargo test --benches`, it makes a smoke run: every section once with tiny sizes.
//!
//! The demo servers run in a child process (this binary again, see `child.rs`), so that a storm
//! of N holds N sockets in each process rather than 2N in one; both processes raise their soft
//! descriptor limit to the hard limit, and storms larger than the limit allows are skipped and
//! said so. Connections are kept alive and reused: each size is warmed up with one unmeasured
//! round that fills the client's pool.

mod child;
mod load;

use std::error::Error;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use auth_demo::backend::DemoBackend;
use auth_tokio::auth_core::{AccessToken, Config, RefreshToken, TokenSet};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{Backend, LoginError, RefreshError, Scope, SessionHandle};
use http::header::HeaderValue;

use child::{Counts, ServerProcess};
use load::{
    closed_loop, cpu_time, load_average, median, raise_fd_limit, storm, Api, CallLoop, DriverOnly,
    Raw, Target,
};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

/// Concurrency levels of `driver` and `throughput`.
const CONCURRENCY: [usize; 3] = [1, 64, 1024];
/// Storm sizes, and how many measured repetitions each gets.
const STORMS: [(usize, usize); 4] = [(10, 15), (100, 15), (1_000, 10), (10_000, 6)];
/// Access-token lifetime of the server of `driver`/`throughput`/`storm`: never reached.
const LONG_LIFETIME: Duration = Duration::from_secs(300);
/// Access-token lifetime of the `proactive` server. With the default 30 s refresh margin the
/// session refreshes before use once half of it has passed (the margin is capped at half).
const SHORT_LIFETIME: Duration = Duration::from_secs(6);
/// Refreshes timed one after the other on an idle server for "one refresh".
const REFRESH_SAMPLES: usize = 20;
/// Room for everything but the storm's sockets (runtime, pipes, listener, stdio).
const SPARE_FDS: u64 = 200;

struct Settings {
    sections: Vec<String>,
    window: Duration,
    /// The unmeasured round before each concurrency level.
    warm_up: Duration,
    /// No `--bench` flag: a smoke run with tiny sizes.
    smoke: bool,
    rounds: usize,
    max_n: usize,
    max_reps: usize,
    /// Worker threads of the client's runtime (`None`: one per CPU).
    client_threads: Option<usize>,
    /// Concurrency levels of `driver` and `throughput`.
    concurrency: Vec<usize>,
    /// Sides of `throughput` to run (0 alone, 1 `Call` loop, 2 `ApiClient`), for profiling one.
    sides: Vec<usize>,
}

/// A backend that answers at once, for the driver alone.
struct InstantBackend;

/// The demo backend with a stopwatch on its refreshes, as the session runs them.
#[derive(Clone)]
struct TimedBackend {
    inner: DemoBackend,
    refreshes: Arc<Mutex<Vec<Duration>>>,
}

fn main() -> Result<()> {
    if child::is_server() {
        return child::serve();
    }
    let settings = Settings::from_args()?;
    if settings.smoke {
        println!(
            "smoke run (no --bench flag, as under `cargo test --benches`): tiny sizes, numbers mean nothing"
        );
    }
    let (before, after) = raise_fd_limit();
    println!(
        "machine: {} CPUs; open-descriptor soft limit {before} -> {after}; load average {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    let fd_room = usize::try_from(after.saturating_sub(SPARE_FDS)).unwrap_or(usize::MAX);
    let max_n = settings.max_n.min(fd_room);
    if max_n < settings.max_n {
        println!("note: storms capped at N = {max_n} by the descriptor limit ({after})");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = settings.client_threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    println!(
        "client runtime: multi-thread, {} worker(s); demo servers: child process, multi-thread, one worker per CPU",
        settings
            .client_threads
            .map_or_else(|| "one per CPU".to_owned(), |n| n.to_string())
    );
    runtime.block_on(async {
        let mut servers = ServerProcess::start(&[LONG_LIFETIME, SHORT_LIFETIME])?;
        if settings.wants("driver") {
            driver(&settings).await?;
        }
        if settings.wants("throughput") {
            throughput(&settings, &servers).await?;
        }
        if settings.wants("storm") {
            expiry_storms(&settings, &mut servers, max_n).await?;
        }
        if settings.wants("proactive") {
            proactive_storms(&settings, &mut servers, max_n).await?;
        }
        Ok(())
    })
}

/// Requests per second through the driver alone.
async fn driver(settings: &Settings) -> Result<()> {
    println!(
        "\n## driver alone (no HTTP) — load average {}",
        load_average()
    );
    let session = SessionHandle::builder(InstantBackend).start().await;
    let target = Arc::new(DriverOnly { session });
    println!("\n| concurrency | requests/s (median) | µs per request | errors |");
    println!("|---:|---:|---:|---:|");
    for &concurrency in &settings.concurrency {
        closed_loop(&target, concurrency, settings.warm_up).await;
        let mut rates = Vec::new();
        let mut errors = 0;
        for _ in 0..settings.rounds {
            let window = closed_loop(&target, concurrency, settings.window).await;
            rates.push(window.rate());
            errors += window.errors;
        }
        let rate = median(&rates);
        println!(
            "| {concurrency} | {rate:.0} | {:.2} | {errors} |",
            1e6 / rate
        );
    }
    println!("\nload average after: {}", load_average());
    Ok(())
}

/// Requests per second through `ApiClient` vs the same `reqwest::Client` alone, and through the
/// `Call` loop with that client (the driver's part of the difference).
async fn throughput(settings: &Settings, servers: &ServerProcess) -> Result<()> {
    println!(
        "\n## throughput: auth-tokio vs reqwest alone — load average {}",
        load_average()
    );
    let base = &servers.urls[0];
    let http = reqwest::Client::new();
    let backend = DemoBackend::new(http.clone(), base)?;
    let url = format!("{base}/api/bench");
    let raw = Arc::new(Raw {
        http: http.clone(),
        url: url.clone(),
        authorization: bearer(&backend.login().await?)?,
    });
    let session = SessionHandle::builder(backend).start().await;
    let call = Arc::new(CallLoop {
        session: session.clone(),
        http: http.clone(),
        url: url.clone(),
    });
    let api = Arc::new(Api {
        api: ApiClient::new(http, session, scope(base)?),
        url,
    });
    let server_pid = servers.pid().to_string();
    println!(
        "\n| concurrency | reqwest alone (req/s) | `Call` loop + reqwest (req/s) | `ApiClient` (req/s) | `ApiClient` / alone, req/s | CPU µs per request: alone | `Call` loop | `ApiClient` | `ApiClient` / alone, CPU | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &concurrency in &settings.concurrency {
        // Warm-up: fills the pool with `concurrency` connections and logs the session in.
        closed_loop(&raw, concurrency, settings.warm_up).await;
        closed_loop(&call, concurrency, settings.warm_up).await;
        closed_loop(&api, concurrency, settings.warm_up).await;
        let mut answered = 0;
        let (mut rates, mut cpus) = ([vec![], vec![], vec![]], [vec![], vec![], vec![]]);
        let (mut rate_ratios, mut cpu_ratios, mut errors) = (Vec::new(), Vec::new(), 0);
        let (mut on_cpu, mut waiting, mut switches) = (0, 0, [vec![], vec![], vec![]]);
        for round in 0..settings.rounds {
            // Rotate which side goes first, so a drift of the load hits all alike.
            let (mut round_rate, mut round_cpu) = ([0.0; 3], [0.0; 3]);
            let sides = (0..3).map(|k| (k + round) % 3);
            for side in sides.filter(|side| settings.sides.contains(side)) {
                let (client, server) = (cpu_time("self"), cpu_time(&server_pid));
                let window = match side {
                    0 => closed_loop(&raw, concurrency, settings.window).await,
                    1 => closed_loop(&call, concurrency, settings.window).await,
                    _ => closed_loop(&api, concurrency, settings.window).await,
                };
                let client = cpu_time("self").since(client);
                let server = cpu_time(&server_pid).since(server);
                on_cpu += client.on_cpu + server.on_cpu;
                waiting += client.waiting + server.waiting;
                // Microseconds of CPU (client and server processes) per answered request.
                let cpu = (client.on_cpu + server.on_cpu) as f64 / 1e3 / window.ok.max(1) as f64;
                switches[side].push(client.slices as f64 / window.ok.max(1) as f64);
                round_rate[side] = window.rate();
                round_cpu[side] = cpu;
                rates[side].push(window.rate());
                cpus[side].push(cpu);
                errors += window.errors;
                answered += window.ok;
            }
            rate_ratios.push(round_rate[2] / round_rate[0]);
            cpu_ratios.push(round_cpu[2] / round_cpu[0]);
        }
        println!(
            "| {concurrency} | {:.0} | {:.0} | {:.0} | {:.3} ({}) | {:.1} | {:.1} | {:.1} | {:.3} ({}) | {errors} |",
            median(&rates[0]),
            median(&rates[1]),
            median(&rates[2]),
            median(&rate_ratios),
            spread(&rate_ratios),
            median(&cpus[0]),
            median(&cpus[1]),
            median(&cpus[2]),
            median(&cpu_ratios),
            spread(&cpu_ratios),
        );
        println!(
            "  - c = {concurrency}: client threads switched in per request: alone {:.2}, `Call` loop {:.2}, `ApiClient` {:.2}; runnable but waiting for a CPU {:.0} % as long as on one",
            median(&switches[0]),
            median(&switches[1]),
            median(&switches[2]),
            waiting as f64 * 100.0 / on_cpu.max(1) as f64
        );
        if settings.sides.len() < 3 {
            println!("  - {answered} requests answered in the measured windows");
        }
    }
    println!(
        "\nmedians of {} rounds of alternating windows of {:?} each; a ratio is the median of the per-round ratios (min–max in brackets). CPU = time on a CPU of the client and server processes (/proc/PID/task/*/schedstat) per answered request.\nload average after: {}",
        settings.rounds,
        settings.window,
        load_average()
    );
    Ok(())
}

fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{min:.2}–{max:.2}")
}

/// Storms through a server-side expiry vs the same N with a valid token and reqwest alone.
async fn expiry_storms(
    settings: &Settings,
    servers: &mut ServerProcess,
    max_n: usize,
) -> Result<()> {
    println!(
        "\n## storm through a server-side expiry — load average {}",
        load_average()
    );
    // Let the server close the connections of an earlier section's pool first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = servers.urls[0].clone();
    let http = reqwest::Client::new();
    let backend = TimedBackend::new(DemoBackend::new(http.clone(), &base)?);
    let idle_refresh = one_refresh(&backend.inner).await?;
    println!(
        "one refresh on the idle server (median of {REFRESH_SAMPLES}): {:.2} ms",
        ms(idle_refresh)
    );
    let url = format!("{base}/api/storm");
    let mut raw = Arc::new(Raw {
        http: http.clone(),
        url: url.clone(),
        authorization: bearer(&backend.inner.login().await?)?,
    });
    let session = SessionHandle::builder(backend.clone())
        .config(storm_config())
        .start()
        .await;
    let api = Arc::new(Api {
        api: ApiClient::new(http.clone(), session, scope(&base)?),
        url: url.clone(),
    });
    println!(
        "\n| N | reqwest alone | auth-tokio, valid token | through expiry | expiry / valid | the storm's refresh | 1.2 × valid + refresh | target met | refreshes per storm | sends per request | refreshes in valid storms | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|");
    for (n, reps) in STORMS {
        if n > max_n {
            println!(
                "| {n} | skipped: above --max-n or the descriptor limit | | | | | | | | | | |"
            );
            continue;
        }
        // Warm-up: fills the pool with N connections.
        storm(&raw, n).await;
        storm(&api, n).await;
        let mut row = Row::default();
        for rep in 0..reps.min(settings.max_reps) {
            // Rotate the order, so a drift of the load hits all three alike.
            for which in (0..3).map(|k| (k + rep) % 3) {
                match which {
                    0 => {
                        let s = storm(&raw, n).await;
                        row.errors += s.failed();
                        row.alone.push(ms(s.elapsed));
                    }
                    1 => {
                        let before = servers.counters(0)?;
                        let s = storm(&api, n).await;
                        row.stray += servers.counters(0)?.since(before).refresh_calls;
                        row.errors += s.failed();
                        row.valid.push(ms(s.elapsed));
                        backend.take();
                    }
                    _ => {
                        servers.expire(0)?;
                        let before = servers.counters(0)?;
                        let s = storm(&api, n).await;
                        let done = servers.counters(0)?.since(before);
                        row.expired(n, &s, done, &backend);
                        // The hand-set token expired too: a fresh one for reqwest alone.
                        raw = Arc::new(Raw {
                            http: http.clone(),
                            url: url.clone(),
                            authorization: bearer(&backend.inner.login().await?)?,
                        });
                    }
                }
            }
        }
        println!("| {n} | {:.2} ms | {}", median(&row.alone), row.columns());
        row.note_logins(n);
    }
    println!(
        "\nmedians of {:?} repetitions (N, reps); load average after: {}",
        STORMS.map(|(n, reps)| (n, reps.min(settings.max_reps))),
        load_average()
    );
    if max_n >= 10_000 {
        default_config_storm(servers, &http, &backend.inner, &base, &url).await?;
    }
    Ok(())
}

/// One storm of 10 000 through an expiry with `Config::default()` (no queue bound).
async fn default_config_storm(
    servers: &mut ServerProcess,
    http: &reqwest::Client,
    backend: &DemoBackend,
    base: &str,
    url: &str,
) -> Result<()> {
    let session = SessionHandle::builder(backend.clone()).start().await;
    let api = Arc::new(Api {
        api: ApiClient::new(http.clone(), session, scope(base)?),
        url: url.to_owned(),
    });
    api.once().await?;
    servers.expire(0)?;
    let before = servers.counters(0)?;
    let s = storm(&api, 10_000).await;
    let done = servers.counters(0)?.since(before);
    println!(
        "\nN = 10000 through expiry with Config::default() (no queue bound): {:.2} ms, {} ok, errors {:?}, {} refresh(es), {:.2} sends per request",
        ms(s.elapsed),
        s.ok,
        s.errors,
        done.refresh_calls,
        done.api_requests as f64 / 10_000.0
    );
    Ok(())
}

/// Storms when the client knows the token is about to expire: queued for one refresh, sent once.
async fn proactive_storms(
    settings: &Settings,
    servers: &mut ServerProcess,
    max_n: usize,
) -> Result<()> {
    println!(
        "\n## storm through a client-known expiry (proactive refresh) — load average {}",
        load_average()
    );
    // Let the server close the connections of an earlier section's pool first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = servers.urls[1].clone();
    // A client of its own: an earlier section's pool (10 000 connections) is gone.
    let http = reqwest::Client::new();
    let backend = TimedBackend::new(DemoBackend::new(http.clone(), &base)?);
    let idle_refresh = one_refresh(&backend.inner).await?;
    println!(
        "one refresh on the idle server (median of {REFRESH_SAMPLES}): {:.2} ms; access tokens live {} s, refreshed before use after {} s",
        ms(idle_refresh),
        SHORT_LIFETIME.as_secs(),
        SHORT_LIFETIME.as_secs() / 2
    );
    let session = SessionHandle::builder(backend.clone())
        .config(storm_config())
        .start()
        .await;
    let api = Arc::new(Api {
        api: ApiClient::new(http, session, scope(&base)?),
        url: format!("{base}/api/storm"),
    });
    println!(
        "\n| N | valid token (right after) | through expiry | expiry / valid | the storm's refresh | 1.2 × valid + refresh | target met | refreshes per storm | sends per request | refreshes in valid storms | errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|");
    // Past this instant the session's token is due for a proactive refresh.
    let due_after = SHORT_LIFETIME / 2 + Duration::from_millis(200);
    let mut due = Instant::now();
    for (n, reps) in STORMS {
        if n > max_n {
            println!("| {n} | skipped: above --max-n or the descriptor limit | | | | | | | | | |");
            continue;
        }
        // Warm-up: one storm of each kind (the first one logs in).
        tokio::time::sleep_until(due.into()).await;
        storm(&api, n).await;
        storm(&api, n).await;
        backend.take();
        due = Instant::now() + due_after;
        let mut row = Row::default();
        for _ in 0..(reps * 2 / 3).max(3).min(settings.max_reps) {
            tokio::time::sleep_until(due.into()).await;
            let before = servers.counters(1)?;
            let s = storm(&api, n).await;
            let done = servers.counters(1)?.since(before);
            row.expired(n, &s, done, &backend);
            // Right after the refresh: the token is fresh for half its lifetime.
            let before = servers.counters(1)?;
            let s = storm(&api, n).await;
            row.stray += servers.counters(1)?.since(before).refresh_calls;
            row.errors += s.failed();
            row.valid.push(ms(s.elapsed));
            backend.take();
            due = Instant::now() + due_after;
        }
        println!("| {n} | {}", row.columns());
        row.note_logins(n);
    }
    println!("\nload average after: {}", load_average());
    Ok(())
}

/// The measurements of one storm size.
#[derive(Default)]
struct Row {
    alone: Vec<f64>,
    valid: Vec<f64>,
    expiry: Vec<f64>,
    /// Time spent in `Backend::refresh` during each storm through the expiry.
    refresh: Vec<f64>,
    refreshes: Vec<u64>,
    sends: Vec<f64>,
    /// Refreshes during storms with a valid token (should be none).
    stray: u64,
    /// Silent logins during storms through the expiry (should be none).
    logins: u64,
    errors: usize,
}

impl Row {
    /// Notes a storm through the expiry.
    fn expired(&mut self, n: usize, storm: &load::Storm, done: Counts, backend: &TimedBackend) {
        if storm.failed() > 0 {
            eprintln!("  N = {n}: errors {:?}", storm.errors);
        }
        self.errors += storm.failed();
        self.expiry.push(ms(storm.elapsed));
        self.refresh
            .push(backend.take().iter().copied().map(ms).sum::<f64>());
        self.refreshes.push(done.refresh_calls);
        self.logins += done.logins;
        self.sends.push(done.api_requests as f64 / n as f64);
    }

    /// Says so when a storm through the expiry fell back to a silent login.
    fn note_logins(&self, n: usize) {
        if self.logins > 0 {
            println!(
                "note: N = {n}: {} silent login(s) during the storms",
                self.logins
            );
        }
    }

    /// The columns from "valid token" on. The ratio is the median of the per-repetition ratios
    /// (storms of one repetition run back to back); the target is checked per repetition.
    fn columns(&self) -> String {
        let (valid, expiry, refresh) = (
            median(&self.valid),
            median(&self.expiry),
            median(&self.refresh),
        );
        let pairs = || self.valid.iter().zip(&self.expiry).zip(&self.refresh);
        let ratios: Vec<f64> = pairs().map(|((v, e), _)| e / v).collect();
        let met = pairs().filter(|&((v, e), r)| *e <= 1.2 * v + r).count();
        format!(
            "{valid:.2} ms | {expiry:.2} ms | {:.2} ({}) | {refresh:.2} ms | {:.2} ms | {met} of {} | {} | {:.2} | {} | {} |",
            median(&ratios),
            spread(&ratios),
            1.2 * valid + refresh,
            ratios.len(),
            range(&self.refreshes),
            median(&self.sends),
            self.stray,
            self.errors,
        )
    }
}

/// The median time of one refresh on an idle server, through the app's backend.
async fn one_refresh(backend: &DemoBackend) -> Result<Duration> {
    let mut refresh_token = backend
        .login()
        .await?
        .refresh_token
        .ok_or("the server issued no refresh token")?;
    let mut times = Vec::new();
    for _ in 0..REFRESH_SAMPLES {
        let start = Instant::now();
        let tokens = backend.refresh(&refresh_token).await?;
        times.push(start.elapsed().as_secs_f64());
        refresh_token = tokens.refresh_token.ok_or("the server did not rotate")?;
    }
    Ok(Duration::from_secs_f64(median(&times)))
}

/// The session config of the storms: room in the queue for the biggest storm.
fn storm_config() -> Config {
    Config {
        max_queued: 16_384,
        ..Config::default()
    }
}

fn scope(base: &str) -> Result<Scope> {
    Ok(Scope::new(base)?.public_path("/public"))
}

fn bearer(tokens: &TokenSet) -> Result<HeaderValue> {
    let value = format!("Bearer {}", tokens.access_token.expose_secret());
    let mut value = HeaderValue::from_str(&value)?;
    value.set_sensitive(true);
    Ok(value)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn range(values: &[u64]) -> String {
    let min = values.iter().min().copied().unwrap_or_default();
    let max = values.iter().max().copied().unwrap_or_default();
    if min == max {
        min.to_string()
    } else {
        format!("{min}–{max}")
    }
}

impl Settings {
    fn from_args() -> Result<Self> {
        let mut settings = Settings {
            sections: Vec::new(),
            window: Duration::from_secs(1),
            warm_up: Duration::from_secs(1),
            rounds: 9,
            max_n: 10_000,
            max_reps: usize::MAX,
            client_threads: None,
            concurrency: CONCURRENCY.to_vec(),
            sides: vec![0, 1, 2],
            smoke: true,
        };
        let (mut window, mut rounds, mut max_n, mut max_reps, mut concurrency) =
            (None, None, None, None, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                // Passed by `cargo bench`; without it (`cargo test --benches`) a smoke run.
                "--bench" => settings.smoke = false,
                "--secs" => window = Some(Duration::from_secs_f64(value()?.parse()?)),
                "--rounds" => rounds = Some(value()?.parse::<usize>()?.max(1)),
                "--max-n" => max_n = Some(value()?.parse()?),
                "--max-reps" => max_reps = Some(value()?.parse::<usize>()?.max(1)),
                "--client-threads" => {
                    settings.client_threads = Some(value()?.parse::<usize>()?.max(1))
                }
                "--concurrency" => {
                    concurrency = Some(
                        value()?
                            .split(',')
                            .map(str::parse)
                            .collect::<Result<_, _>>()?,
                    )
                }
                "--sides" => {
                    settings.sides = value()?
                        .split(',')
                        .map(|side| match side {
                            "alone" => Ok(0),
                            "call" => Ok(1),
                            "api" => Ok(2),
                            other => Err(format!("unknown side {other:?}")),
                        })
                        .collect::<Result<_, _>>()?
                }
                "driver" | "throughput" | "storm" | "proactive" => settings.sections.push(arg),
                other => return Err(format!("unknown argument {other:?}").into()),
            }
        }
        if settings.smoke {
            // Every section once, with tiny sizes: it runs, and that is all it shows.
            settings.window = Duration::from_millis(50);
            settings.warm_up = settings.window;
            settings.rounds = 1;
            settings.max_n = 100;
            settings.max_reps = 1;
            settings.concurrency = vec![1, 64];
        }
        settings.window = window.unwrap_or(settings.window);
        settings.rounds = rounds.unwrap_or(settings.rounds);
        settings.max_n = max_n.unwrap_or(settings.max_n);
        settings.max_reps = max_reps.unwrap_or(settings.max_reps);
        settings.concurrency = concurrency.unwrap_or(settings.concurrency);
        Ok(settings)
    }

    fn wants(&self, section: &str) -> bool {
        self.sections.is_empty() || self.sections.iter().any(|s| s == section)
    }
}

impl Backend for InstantBackend {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        Ok(TokenSet::new(AccessToken::new("bench-access"))
            .with_refresh_token(RefreshToken::new("bench-refresh")))
    }

    async fn refresh(&self, _refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        Ok(TokenSet::new(AccessToken::new("bench-access-2")))
    }
}

impl TimedBackend {
    fn new(inner: DemoBackend) -> Self {
        TimedBackend {
            inner,
            refreshes: Arc::default(),
        }
    }

    /// The durations of the refreshes since the last call.
    fn take(&self) -> Vec<Duration> {
        let mut refreshes = self
            .refreshes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *refreshes)
    }
}

impl Backend for TimedBackend {
    async fn login(&self) -> Result<TokenSet, LoginError> {
        self.inner.login().await
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<TokenSet, RefreshError> {
        let start = Instant::now();
        let result = self.inner.refresh(refresh_token).await;
        self.refreshes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(start.elapsed());
        result
    }
}
