//! `floor_tokio`: the least a WebSocket echo server can do on tokio, the
//! floor for `tokio.sh`'s table as `floor` is for `compare.sh`'s. See
//! `benches/README.md`.
//!
//! A tokio runtime (current-thread, or multi-thread with `--threads N`
//! workers, as benches/peers' echo servers), a task per connection, and in
//! it what `floor` does per readable event: one `read` into the
//! connection's buffer, every complete client frame turned into its server
//! frame in place (`tether_benches::floor::echo_frames`: the unmask and a
//! few header bytes, no other check), then one `write_all` of them. Its
//! figures are what a server on tokio would reach with no work of its own
//! beyond the system calls every echo makes and the one pass over the
//! payload RFC 6455 asks of any server.
//!
//! ```text
//! floor_tokio --port 9001 --threads 0   # prints "listening on 127.0.0.1:9001"
//! ```
// A measuring tool, not a server: it indexes its own buffer, whose bounds
// `echo_frames` and `BUF` keep.
#![allow(clippy::indexing_slicing)]

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use tether_benches::floor::{MAX_HEAD, MAX_PAYLOAD, echo_frames, handshake};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A connection's buffer: a partial frame (at most a header and
/// `MAX_PAYLOAD`) plus room to read.
const BUF: usize = 2 * MAX_PAYLOAD + 64;

async fn connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        match handshake(&buf[..filled]).map_err(io::Error::other)? {
            Some((response, used)) => {
                stream.write_all(&response).await?;
                buf.copy_within(used..filled, 0);
                filled -= used;
                break;
            }
            None if filled > MAX_HEAD => return Err(io::Error::other("handshake over 8 KiB")),
            None => {}
        }
    }
    loop {
        let echoed = echo_frames(&mut buf[..filled]).map_err(io::Error::other)?;
        let (from, to) = echoed.out;
        if to > from {
            stream.write_all(&buf[from..to]).await?;
        }
        if echoed.close {
            return Ok(());
        }
        buf.copy_within(echoed.consumed..filled, 0);
        filled -= echoed.consumed;
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

async fn serve(port: u16) -> io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        // Out of descriptors, or a connection reset before it was taken:
        // try the next one.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream));
    }
}

fn main() -> ExitCode {
    let mut port = None;
    let mut threads = Some(0);
    let mut understood = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse::<u16>().ok()),
            "--threads" => threads = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => understood = false,
        }
    }
    let (true, Some(port), Some(threads)) = (understood, port, threads) else {
        eprintln!("usage: floor_tokio --port PORT [--threads N]   (N = 0: a current-thread runtime)");
        return ExitCode::from(2);
    };
    let runtime = if threads > 0 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_io().build()
    };
    let result = runtime.and_then(|runtime| runtime.block_on(serve(port)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor_tokio: {e}");
            ExitCode::FAILURE
        }
    }
}
