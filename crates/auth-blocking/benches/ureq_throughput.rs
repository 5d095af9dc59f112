//! Throughput of the blocking ureq integration against plain ureq (issue 11, item 5), a bench
//! binary with a fixed protocol:
//!
//! - auth-demo's server runs in this process on its own thread (`spawn_in_thread`), tokens
//!   living 300 s (never reached during a run);
//! - N threads send `GET /api/bench` back to back for a window and read every body: through
//!   `auth_blocking::ureq::ApiClient`, and through the same `ureq::Agent` alone with a valid
//!   bearer token set by hand (fetched from the session before each window);
//! - windows of the two sides alternate (the order flips every round), so each round's ratio
//!   is measured under the same load; the median of the rounds is printed.
//!
//! ```text
//! cargo bench -p auth-blocking --bench ureq_throughput [-- --secs S] [--rounds R]
//!     [--threads 1,64] [--agent plain|recommended|global]
//! ```
//!
//! `--agent` picks the agent both sides share: `plain` (ureq's defaults, no timeouts),
//! `recommended` (what docs/integration.md recommends: `timeout_connect` and
//! `timeout_per_read`/`timeout_per_write`, which cost nothing per request) or `global`
//! (`timeout_global`, which makes ureq resolve the host on a new thread for every request).
//! Every agent keeps up to 256 idle connections, so each thread reuses its own. Without
//! `--bench` (which `cargo bench` passes), as under `cargo test --benches`, it makes a smoke
//! run with tiny windows. Results: docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/demo.rs"]
#[allow(dead_code)]
mod demo;

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use auth_blocking::auth_core::{Config, RequestSpec, Verdict};
use auth_blocking::ureq::{ApiClient, Scope};
use auth_blocking::SessionHandle;
use auth_demo::server::{spawn_in_thread, ServerConfig};
use ureq::http::header::AUTHORIZATION;

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

struct Settings {
    window: Duration,
    rounds: usize,
    threads: Vec<usize>,
    agent: String,
    smoke: bool,
}

/// One side of a round: how requests are sent.
#[derive(Clone)]
enum Side {
    /// The agent alone with a fixed `Authorization` header.
    Alone {
        agent: ureq::Agent,
        url: String,
        authorization: String,
    },
    /// Through the session.
    Session { api: ApiClient, url: String },
    /// The session alone: a bearer request answered at once, no HTTP.
    Driver { session: SessionHandle },
}

fn main() -> Result<()> {
    let settings = Settings::from_args()?;
    if settings.smoke {
        println!("smoke run (no --bench flag): tiny windows, numbers mean nothing");
    }
    let server = spawn_in_thread(ServerConfig::default())?;
    let agent = agent(&settings.agent)?;
    let backend = demo::DemoBackend::new(server.base_url(), Duration::from_secs(5));
    let session = SessionHandle::builder(backend)
        .config(Config::default())
        .start()?;
    let scope = Scope::new(server.base_url())?;
    let api = ApiClient::new(agent.clone(), session.clone(), scope);
    let url = server.url("/api/bench");
    // Sign in once before measuring.
    let status = api.get(&url)?.status();
    assert_eq!(status.as_u16(), 200, "warm-up");
    println!(
        "machine: {} CPUs; agent `{}`; window {:?}, {} rounds; load average {}",
        thread::available_parallelism().map_or(0, usize::from),
        settings.agent,
        settings.window,
        settings.rounds,
        load_average(),
    );
    println!();
    println!("| threads | ureq alone (req/s) | ApiClient (req/s) | ratio (median of rounds) | min–max ratio | errors |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &threads in &settings.threads {
        // An unmeasured round fills the pool with one connection per thread.
        let warm = settings.window.min(Duration::from_millis(500));
        run(&Side::session(&api, &url), threads, warm);
        run(&Side::alone(&agent, &session, &url)?, threads, warm);
        let (mut alone, mut through, mut ratios, mut errors) = (vec![], vec![], vec![], 0);
        for round in 0..settings.rounds {
            let sides = [
                Side::alone(&agent, &session, &url)?,
                Side::session(&api, &url),
            ];
            let mut rates = [0.0; 2];
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for index in order {
                let (ok, failed) = run(&sides[index], threads, settings.window);
                rates[index] = ok as f64 / settings.window.as_secs_f64();
                errors += failed;
            }
            alone.push(rates[0]);
            through.push(rates[1]);
            ratios.push(rates[1] / rates[0]);
        }
        println!(
            "| {threads} | {:.0} | {:.0} | **{:.3}** | {:.3}–{:.3} | {errors} |",
            median(&mut alone),
            median(&mut through),
            median(&mut ratios),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
        );
    }
    println!();
    println!("driver alone (no HTTP: every send answered at once with an accepted response):");
    println!();
    println!("| threads | requests/s | CPU ns per request (busy CPUs ÷ requests/s) |");
    println!("|---:|---:|---:|");
    for &threads in &settings.threads {
        let side = Side::Driver {
            session: session.clone(),
        };
        run(
            &side,
            threads,
            settings.window.min(Duration::from_millis(500)),
        );
        let (ok, _) = run(&side, threads, settings.window);
        let rate = ok as f64 / settings.window.as_secs_f64();
        let cpus = thread::available_parallelism().map_or(1, usize::from);
        println!(
            "| {threads} | {rate:.0} | {:.0} |",
            1e9 * threads.min(cpus) as f64 / rate
        );
    }
    println!();
    println!("load average after: {}", load_average());
    session.shutdown(Duration::from_secs(10))?;
    Ok(())
}

impl Side {
    fn alone(agent: &ureq::Agent, session: &SessionHandle, url: &str) -> Result<Side> {
        // The session's current token, as a hand-written client would hold it.
        let bearer = session.request(RequestSpec::bearer(), |attempt| {
            (attempt.bearer(), Verdict::Accepted)
        })?;
        let authorization = bearer
            .ok_or("a bearer request carries a token")?
            .to_string();
        Ok(Side::Alone {
            agent: agent.clone(),
            url: url.to_owned(),
            authorization,
        })
    }

    fn session(api: &ApiClient, url: &str) -> Side {
        Side::Session {
            api: api.clone(),
            url: url.to_owned(),
        }
    }

    /// One request, its body read whole; whether it got a 200.
    fn once(&self) -> bool {
        let response = match self {
            Side::Alone {
                agent,
                url,
                authorization,
            } => agent
                .get(url)
                .header(AUTHORIZATION, authorization)
                .call()
                .map_err(|error| error.to_string()),
            Side::Session { api, url } => api.get(url).map_err(|error| error.to_string()),
            Side::Driver { session } => {
                return session
                    .request(RequestSpec::bearer(), |_| ((), Verdict::Accepted))
                    .is_ok();
            }
        };
        match response {
            Ok(mut response) => {
                let ok = response.status().as_u16() == 200;
                ok && response.body_mut().read_to_vec().is_ok()
            }
            Err(_) => false,
        }
    }
}

/// `threads` threads send back to back for `window`; requests that finish after it are not
/// counted. Returns (ok, errors).
fn run(side: &Side, threads: usize, window: Duration) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (side, ok, errors, stop, start) = (
                side.clone(),
                Arc::clone(&ok),
                Arc::clone(&errors),
                Arc::clone(&stop),
                Arc::clone(&start),
            );
            thread::spawn(move || {
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let done = side.once();
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let counter = if done { &ok } else { &errors };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start.wait();
    let begun = Instant::now();
    thread::sleep(window.saturating_sub(begun.elapsed()));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed))
}

/// The agent both sides share.
fn agent(kind: &str) -> Result<ureq::Agent> {
    let builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(256)
        .max_idle_connections_per_host(256);
    let builder = match kind {
        "plain" => builder,
        "recommended" => builder
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_per_read(Some(Duration::from_secs(30)))
            .timeout_per_write(Some(Duration::from_secs(30))),
        "global" => builder.timeout_global(Some(Duration::from_secs(30))),
        other => return Err(format!("unknown --agent {other}").into()),
    };
    Ok(builder.build().into())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

impl Settings {
    fn from_args() -> Result<Settings> {
        let mut settings = Settings {
            window: Duration::from_secs(2),
            rounds: 7,
            threads: vec![1, 64],
            agent: "recommended".into(),
            smoke: true,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--bench" => settings.smoke = false,
                "--secs" => settings.window = Duration::from_secs_f64(value()?.parse()?),
                "--rounds" => settings.rounds = value()?.parse()?,
                "--threads" => {
                    settings.threads = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?;
                }
                "--agent" => settings.agent = value()?,
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if settings.smoke {
            settings.window = Duration::from_millis(100);
            settings.rounds = 1;
        }
        Ok(settings)
    }
}
