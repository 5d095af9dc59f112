//! A mini-program-style backend that answers an expired token with HTTP 200 and
//! `{"code":401}` (auth-demo's `/coded/…` routes, on a loopback port), called through
//! `reqwest::ApiClient` with the `BodyCode` classifier: a burst of requests through an expiry
//! makes one refresh, and every caller reads the answer its request earned. Exits non-zero if
//! a step goes wrong.
//!
//! Run with `cargo run -p auth-tokio --example body_code_tokio`.

use std::error::Error;
use std::process::ExitCode;

use auth_demo::backend::DemoBackend;
use auth_demo::server::{self, ServerConfig};
use auth_tokio::reqwest::ApiClient;
use auth_tokio::{BodyCode, Scope, SessionHandle};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("body_code_tokio: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let server = server::spawn(ServerConfig::default()).await?;
    let http = reqwest::Client::new();
    let backend = DemoBackend::new(http.clone(), server.base_url())?;
    let session = SessionHandle::builder(backend).start().await;
    let scope = Scope::new(server.base_url())?.public_path("/public");
    // The one line this example is about: `{"code":401}` in a body means "refresh".
    let api = ApiClient::new(http, session.clone(), scope).with_classifier(BodyCode::new());

    println!(
        "GET /coded/me -> {}",
        api.get(&server.url("/coded/me")).await?.text().await?
    );
    server.admin().expire_access_tokens();
    println!("(the server expired every access token)");
    let requests = (0..8).map(|i| {
        let (api, url) = (api.clone(), server.url(&format!("/coded/item/{i}")));
        async move {
            api.get(&url)
                .await?
                .text()
                .await
                .map_err(auth_tokio::Error::Transport)
        }
    });
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    for handle in handles {
        let body = handle.await??;
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
    session.shutdown(std::time::Duration::from_secs(1)).await?;
    Ok(())
}
