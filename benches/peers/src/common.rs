//! What the echo servers share: the command line, the listener and
//! the ready line that `compare.sh` waits for.

use std::net::SocketAddr;

/// The command line.
pub struct Args {
    /// `--port P` (default 9001).
    pub port: u16,
    /// `--threads N` (default 0: a current-thread runtime; N > 0: a
    /// multi-thread one with N workers).
    pub threads: usize,
    /// `--forward`: echo by forwarding the socket's stream of messages into
    /// its sink (see `forward.rs`), for the servers whose crate has both.
    pub forward: bool,
}

/// The command line, read (and checked) again at every call.
pub fn args(name: &str) -> Args {
    let mut port: u16 = 9001;
    let mut threads = 0;
    let mut forward = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" | "-p" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage(name));
            }
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage(name));
            }
            "--forward" => forward = true,
            _ => usage(name),
        }
    }
    Args {
        port,
        threads,
        forward,
    }
}

/// `--port P` on 127.0.0.1, bound on a tokio listener whose accept backlog
/// is tokio's (1024).
pub async fn listener(name: &str) -> tokio::net::TcpListener {
    let port = args(name).port;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| {
        eprintln!("{name}: binding {addr}: {e}");
        std::process::exit(1)
    });
    println!(
        "{name} listening on http://{}/",
        listener.local_addr().expect("bound")
    );
    listener
}

fn usage(name: &str) -> ! {
    eprintln!("usage: {name} [--port PORT] [--threads N] [--forward]");
    std::process::exit(2)
}

/// A single-threaded tokio runtime (one core, like tether's one loop), or
/// with `--threads N` a multi-thread one with N workers.
pub fn runtime() -> tokio::runtime::Runtime {
    let threads = args("echo").threads;
    if threads > 0 {
        return tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()
            .expect("a tokio runtime");
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime")
}
