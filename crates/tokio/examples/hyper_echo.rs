//! A WebSocket echo server on hyper alone: every text or binary message
//! goes back as it came, framed where it lies in the read buffer.
//!
//! ```sh
//! cargo run --release -p tether-tokio --features hyper --example hyper_echo -- --port 9001 --threads 0
//! ```
//!
//! `--threads 0` (the default) runs a current-thread runtime; `--threads N`
//! a multi-thread one with N workers. `--accept 1` leaves hyper out: the
//! handshake is read from the socket by [`tether_tokio::Acceptor::accept`]
//! (as a server that owns its port would, and as tokio-websockets' echo in
//! the benchmarks does). Autobahn tests the adapter's server role against
//! this binary (`.ci/run`), and the benchmarks measure it both ways.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tether_tokio::{Acceptor, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};

/// Sends every message back as it came, until the peer closes.
async fn echo_all<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>) {
    while let Ok(Some(message)) = ws.recv_ref().await {
        if message.echo().is_err() {
            break;
        }
    }
}

async fn echo(
    mut req: Request<Incoming>,
    acceptor: Arc<Acceptor>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match tether_tokio::hyper::upgrade(&mut req, &acceptor) {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                if let Ok(ws) = upgrading.await {
                    echo_all(ws).await;
                }
            });
            response
        }
        Err(refusal) => refusal,
    })
}

async fn serve(port: u16, without_hyper: bool) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("hyper_echo listening on http://{}/", listener.local_addr()?);
    let acceptor = Acceptor::default().shared();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: one failed accept must not end
            // the server. Wait a little for connections to close.
            Err(e) => {
                eprintln!("hyper_echo: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = Arc::clone(&acceptor);
        if without_hyper {
            tokio::spawn(async move {
                if let Ok(ws) = acceptor.accept(stream).await {
                    echo_all(ws).await;
                }
            });
            continue;
        }
        tokio::spawn(async move {
            let service = service_fn(move |req| echo(req, Arc::clone(&acceptor)));
            // hyper needs a timer to drop a client whose request head
            // does not come within the limit (the handshake's 10 s).
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn main() -> std::io::Result<()> {
    let (mut port, mut threads, mut without_hyper) = (9001u16, 0usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(p)) => port = u16::try_from(p).unwrap_or(port),
            ("--threads", Some(t)) => threads = t,
            ("--accept", Some(a)) => without_hyper = a == 1,
            _ => {
                eprintln!("usage: hyper_echo [--port PORT] [--threads N] [--accept 0|1]");
                std::process::exit(2);
            }
        }
    }
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(port, without_hyper))
}
