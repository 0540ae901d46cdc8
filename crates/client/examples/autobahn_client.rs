//! Drives Autobahn|Testsuite's fuzzing server (`wstest -m fuzzingserver`)
//! with tether-client as an echo client:
//!
//! ```sh
//! cargo run --release -p tether-client --example autobahn_client -- ws://127.0.0.1:9001 tether-client
//! ```
//!
//! It asks `/getCaseCount`, runs every case at `/runCase?case=N&agent=AGENT`
//! echoing each message back until the connection ends, then opens
//! `/updateReports?agent=AGENT`. A case that fails the connection is not
//! an error of the driver: wstest grades it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tether_client::{Error, Event, WebSocket, WebSocketBuilder};

fn builder(url: String) -> WebSocketBuilder {
    WebSocket::builder(url)
        // Autobahn's largest messages are 16 MiB; these are the defaults,
        // spelled out because the cases depend on them.
        .max_frame_size(16 << 20)
        .max_message_size(64 << 20)
        // wstest answers nothing in some cases for a while: no keepalive
        // traffic of ours should show in its logs.
        .ping_interval(None)
        .idle_timeout(Some(Duration::from_secs(60)))
}

/// Echoes every message until the connection ends; returns how it ended.
fn echo(ws: &mut WebSocket) -> Result<(), Error> {
    loop {
        match ws.recv()? {
            Event::Message(message) => match ws.send(&message) {
                Ok(()) | Err(Error::Closed) => {}
                Err(e) => return Err(e),
            },
            Event::Closed(_) => return Ok(()),
            _ => {}
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, agent] = args.as_slice() else {
        eprintln!("usage: autobahn_client WS_URL AGENT   (e.g. ws://127.0.0.1:9001 tether-client)");
        return ExitCode::from(2);
    };
    let base = base.trim_end_matches('/');

    let count = match WebSocket::connect(&format!("{base}/getCaseCount")).and_then(|mut ws| ws.recv_message())
    {
        Ok(Some(message)) => match message.as_text().and_then(|t| t.trim().parse::<u32>().ok()) {
            Some(n) => n,
            None => {
                eprintln!("/getCaseCount answered {message:?}");
                return ExitCode::FAILURE;
            }
        },
        Ok(None) => {
            eprintln!("/getCaseCount closed without a count");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("/getCaseCount: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("{count} cases");

    let start = Instant::now();
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let result = builder(url).connect().and_then(|mut ws| echo(&mut ws));
        if let Err(e) = result {
            eprintln!("case {case}: {e}");
        }
    }
    eprintln!("{count} cases in {:.0} s", start.elapsed().as_secs_f64());

    let url = format!("{base}/updateReports?agent={agent}");
    match WebSocket::connect(&url).and_then(|mut ws| echo(&mut ws)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("/updateReports: {e}");
            ExitCode::FAILURE
        }
    }
}
