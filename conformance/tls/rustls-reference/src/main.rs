//! A plain rustls HTTPS server, for comparison with tether under the same
//! TLS test cases: rustls' buffered `ServerConnection` in a
//! `StreamOwned` over a blocking socket, a thread per connection, every
//! request answered with the same small body.
//!
//!     rustls-reference CERT.pem KEY.pem [PORT]
//!
//! It prints `listening on 127.0.0.1:PORT` once it accepts connections
//! (port 0, the default, picks a free one), and a line on stderr for each
//! connection that ends with an error.
//!
//! What it does around rustls is kept to what any careful application
//! does, so that a difference from tether is rustls' or tether's own, not
//! this program's: the configuration is tether's (rustls' safe default
//! versions and suites with the ring provider, no client certificates,
//! ALPN `http/1.1`), and a connection is closed without resetting it (its
//! write side shut, unread input drained for a moment), so that the
//! client reads the alert rustls sent before the close.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const BODY: &[u8] = b"rustls reference\n";
/// A request head longer than this is refused (as tether's default).
const MAX_HEAD: usize = 16 * 1024;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// How long a closing connection's unread input is drained at most.
const LINGER: Duration = Duration::from_secs(2);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 || args.len() > 4 {
        eprintln!("usage: rustls-reference CERT.pem KEY.pem [PORT]");
        std::process::exit(2);
    }
    let port: u16 = match args.get(3).map(|p| p.parse()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(e)) => fail(&format!("the port: {e}")),
    };
    let config = Arc::new(config(&args[1], &args[2]).unwrap_or_else(|e| fail(&e)));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| fail(&e.to_string()));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(&e.to_string()));
    println!("listening on {addr}");
    let _ = io::stdout().flush();
    for socket in listener.incoming() {
        let socket = match socket {
            Ok(socket) => socket,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let config = config.clone();
        let spawned = std::thread::Builder::new().spawn(move || {
            let peer = socket.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            if let Err(e) = serve(config, socket) {
                eprintln!("connection from {peer}: {e}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("spawn: {e}");
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("rustls-reference: {message}");
    std::process::exit(1);
}

fn config(cert: &str, key: &str) -> Result<ServerConfig, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One connection: requests answered until the client closes, asks to
/// close (HTTP/1.0, `Connection: close`), or breaks the protocol.
fn serve(config: Arc<ServerConfig>, socket: TcpStream) -> io::Result<()> {
    socket.set_read_timeout(Some(IDLE))?;
    socket.set_nodelay(true)?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, socket);
    let result = requests(&mut tls);
    linger_close(&tls.sock);
    result
}

fn requests(tls: &mut StreamOwned<ServerConnection, TcpStream>) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            // The client's close_notify: answer it with ours.
            tls.conn.send_close_notify();
            return tls.flush();
        }
        head.extend_from_slice(&buf[..n]);
        while let Some(end) = head_end(&head) {
            let request: Vec<u8> = head.drain(..end).collect();
            if request.starts_with(b"GET /clock ") {
                return clock(tls);
            }
            let close = wants_close(&request);
            let mut answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n",
                BODY.len()
            )
            .into_bytes();
            if close {
                answer.extend_from_slice(b"connection: close\r\n");
            }
            answer.extend_from_slice(b"\r\n");
            answer.extend_from_slice(BODY);
            tls.write_all(&answer)?;
            if close {
                tls.conn.send_close_notify();
                return tls.flush();
            }
            tls.flush()?;
        }
        if head.len() > MAX_HEAD {
            tls.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
            tls.conn.send_close_notify();
            return tls.flush();
        }
    }
}

/// An event stream with an event a second (as tether's demo has at
/// `/clock`), for cases where the server writes while the client's
/// records are read: what arrives meanwhile is read and dropped.
fn clock(tls: &mut StreamOwned<ServerConnection, TcpStream>) -> io::Result<()> {
    tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n")?;
    tls.flush()?;
    let mut buf = [0u8; 16 * 1024];
    for n in 1u64.. {
        let next = Instant::now() + Duration::from_secs(1);
        while let Some(left) = next
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            tls.sock.set_read_timeout(Some(left))?;
            match tls.read(&mut buf) {
                Ok(0) => {
                    tls.conn.send_close_notify();
                    return tls.flush();
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
        tls.write_all(format!("event: tick\ndata: {n}\n\n").as_bytes())?;
        tls.flush()?;
    }
    Ok(())
}

/// Where the first request head in `buf` ends (after its empty line),
/// its lines ended by CRLF or, as tlsfuzzer's TLS 1.2 scripts send them,
/// by a bare LF.
fn head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| match &buf[i..] {
        [b'\n', b'\n', ..] => Some(i + 2),
        [b'\n', b'\r', b'\n', ..] => Some(i + 3),
        _ => None,
    })
}

/// HTTP/1.0 without keep-alive, or `Connection: close`.
fn wants_close(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request).to_ascii_lowercase();
    let first = text.lines().next().unwrap_or_default();
    let connection = text
        .lines()
        .skip(1)
        .filter_map(|line| line.strip_prefix("connection:"))
        .map(str::trim)
        .collect::<Vec<_>>();
    if first.ends_with("http/1.0") {
        !connection.iter().any(|c| c.contains("keep-alive"))
    } else {
        connection.iter().any(|c| c.contains("close"))
    }
}

/// Ends the connection without a reset: closing a socket with unread
/// input sends RST, which can reach the client before the alert it was
/// sent and make it drop the alert.
fn linger_close(socket: &TcpStream) {
    let _ = socket.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut reader = socket;
    let mut sink = [0u8; 16 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
