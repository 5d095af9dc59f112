//! `explore` serves stateright's Explorer on loopback: the page and the state API answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn explorer_page_and_states_load_on_loopback() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_auth-model"))
        .args(["explore", "--requests", "1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        if let Some(page) = get(port, "/") {
            break page;
        }
        assert!(Instant::now() < deadline, "the Explorer did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        page.starts_with("HTTP/1.1 200") || page.starts_with("HTTP/1.0 200"),
        "{page}"
    );
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "{page}"
    );
    let init = get(port, "/.states").unwrap();
    assert!(init.contains(" 200 "), "{init}");
    assert!(init.contains("P1 exactly once"), "{init}");
    // The steps from the initial state, labelled by the model's action text.
    let steps = get(port, "/.states/0").unwrap();
    assert!(steps.contains("app submits a bearer request"), "{steps}");
}
