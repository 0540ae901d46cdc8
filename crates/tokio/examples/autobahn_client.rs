//! Drives Autobahn|Testsuite's fuzzing server (`wstest -m fuzzingserver`)
//! with the tether-tokio client, echoing every message:
//!
//! ```sh
//! cargo run --release -p tether-tokio --features client --example autobahn_client -- ws://127.0.0.1:9001 tether-tokio-client
//! ```
//!
//! It reads `/getCaseCount`, runs each case at `/runCase?case=N&agent=A`
//! until the connection ends, then opens `/updateReports?agent=A`. A case
//! that fails the connection is wstest's to grade, not an error here.

use std::process::ExitCode;
use std::time::Duration;

use tether_tokio::client::{ClientBuilder, Stream};
use tether_tokio::{Config, Error, Options, WebSocket};

fn builder(url: String) -> ClientBuilder {
    // wstest stays silent for a while in some cases: no keepalive ping of
    // ours may show in its logs.
    let config = Config::default()
        .ping_interval(None)
        .idle_timeout(Some(Duration::from_secs(60)));
    ClientBuilder::new(url).options(Options::default().config(config))
}

async fn echo(ws: &mut WebSocket<Stream>) -> Result<(), Error> {
    while let Some(message) = ws.recv_ref().await? {
        match message.echo() {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn run(base: &str, agent: &str) -> Result<(), String> {
    let mut ws = builder(format!("{base}/getCaseCount"))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    let count: u32 = match ws.recv().await {
        Ok(Some(message)) => message.as_text().and_then(|t| t.trim().parse().ok()),
        _ => None,
    }
    .ok_or("/getCaseCount sent no count")?;
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let result = match builder(url).connect().await {
            Ok(mut ws) => echo(&mut ws).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            eprintln!("case {case}: {e}");
        }
    }
    let mut ws = builder(format!("{base}/updateReports?agent={agent}"))
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    echo(&mut ws).await.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, agent] = args.as_slice() else {
        eprintln!("usage: autobahn_client WS_URL AGENT");
        return ExitCode::from(2);
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run(base.trim_end_matches('/'), agent)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            ExitCode::FAILURE
        }
    }
}
