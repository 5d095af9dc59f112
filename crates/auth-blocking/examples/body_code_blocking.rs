//! A mini-program-style backend that answers an expired token with HTTP 200 and
//! `{"code":401}` (auth-demo's `/coded/…` routes, on a loopback port), called from several
//! threads through `ureq::ApiClient` with the `BodyCode` classifier: one refresh through the
//! expiry, and every caller reads the answer its request earned. Exits non-zero if a step goes
//! wrong.
//!
//! Run with `cargo run -p auth-blocking --example body_code_blocking`.

#[path = "../tests/support/demo.rs"]
#[allow(dead_code)]
mod demo;

use std::error::Error;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use auth_blocking::ureq::{ApiClient, BodyCode, Scope};
use auth_blocking::SessionHandle;
use auth_demo::server::{spawn_in_thread, ServerConfig};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("body_code_blocking: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let server = spawn_in_thread(ServerConfig::default())?;
    let backend = demo::DemoBackend::new(server.base_url(), Duration::from_secs(5));
    let session = SessionHandle::builder(backend).start()?;
    let scope = Scope::new(server.base_url())?.public_path("/public");
    let agent = demo::agent(Duration::from_secs(5));
    // The one line this example is about: `{"code":401}` in a body means "refresh".
    let api = ApiClient::new(agent, session, scope).with_classifier(BodyCode::new());

    let me = api
        .get(&server.url("/coded/me"))?
        .body_mut()
        .read_to_string()?;
    println!("GET /coded/me -> {me}");
    server.admin().expire_access_tokens();
    println!("(the server expired every access token)");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (api, url) = (api.clone(), server.url(&format!("/coded/item/{i}")));
            thread::spawn(move || -> Result<String, String> {
                let mut response = api.get(&url).map_err(|error| error.to_string())?;
                response
                    .body_mut()
                    .read_to_string()
                    .map_err(|error| error.to_string())
            })
        })
        .collect();
    for thread in threads {
        let body = thread.join().map_err(|_| "a request thread panicked")??;
        if !body.contains(r#""code":0"#) {
            return Err(format!("a request was not retried: {body}").into());
        }
        println!("  {body}");
    }
    let counters = server.admin().counters();
    println!(
        "{} refused as 200 {{\"code\":401}}, {} refresh",
        counters.coded_refusals, counters.refreshes
    );
    if counters.refreshes != 1 {
        return Err(format!("expected one refresh, saw {}", counters.refreshes).into());
    }
    Ok(())
}
