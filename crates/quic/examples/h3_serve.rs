//! A small HTTP/3 server on a UDP socket, for trying tether-quic with
//! other clients (the interop script in `interop/` drives Python's
//! aioquic against it).
//!
//! ```text
//! cargo run -p tether-quic --example h3_serve -- CERT_PEM_OUT [SECONDS]
//! ```
//!
//! It makes a self-signed certificate for `localhost`, writes it to
//! `CERT_PEM_OUT` for the client to trust, binds 127.0.0.1 on a free port,
//! prints `listening PORT`, and serves for `SECONDS` (20 by default):
//! `GET /hello` is a text answer, `GET /events` an event stream of three
//! events sent one by one, and a request with a body (`POST /echo`) gets
//! its body back; anything else is 404.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_h2::hpack::Field;
use tether_h3::session::SessionEvent;
use tether_quic::{ConnectionHandle, QuicConfig, QuicServer, ServerEvent};

type Failure = Box<dyn std::error::Error>;

/// What each request stream is: a path, and the body of an echo so far.
struct Pending {
    path: String,
    body: Vec<u8>,
}

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let cert_out = args.next().ok_or("usage: h3_serve CERT_PEM_OUT [SECONDS]")?;
    let seconds: u64 = args.next().map_or(Ok(20), |s| s.parse())?;

    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    std::fs::write(&cert_out, made.cert.pem())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(made.cert.der().to_vec())], key)?;
    let mut server = QuicServer::new(QuicConfig::default(), &tls)?;

    let socket = UdpSocket::bind("127.0.0.1:0")?;
    println!("listening {}", socket.local_addr()?.port());
    std::io::stdout().flush()?;

    let end = Instant::now() + Duration::from_secs(seconds);
    let mut requests: BTreeMap<(ConnectionHandle, u64), Pending> = BTreeMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::new();
    while Instant::now() < end {
        let now = Instant::now();
        let wait = server
            .next_timeout()
            .map_or(Duration::from_millis(50), |t| t.saturating_duration_since(now))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                server.handle_datagram(Instant::now(), from, None, buf.get(..n).unwrap_or_default())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if server.next_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        while let Some(event) = server.poll_event() {
            serve(&mut server, &mut requests, event)?;
        }
        while let Some(t) = server.poll_transmit(Instant::now(), 1, &mut out) {
            socket.send_to(out.get(..t.size).unwrap_or_default(), t.destination)?;
        }
    }
    Ok(())
}

fn serve(
    server: &mut QuicServer,
    requests: &mut BTreeMap<(ConnectionHandle, u64), Pending>,
    event: ServerEvent,
) -> Result<(), Failure> {
    let ServerEvent::Session { conn, event } = event else {
        eprintln!("{event:?}");
        return Ok(());
    };
    let now = Instant::now();
    match event {
        SessionEvent::Request { stream_id, request } => {
            let path = request.path.unwrap_or_default();
            requests.insert(
                (conn, stream_id),
                Pending {
                    path,
                    body: Vec::new(),
                },
            );
        }
        SessionEvent::Data { stream_id, data } => {
            if let Some(pending) = requests.get_mut(&(conn, stream_id)) {
                pending.body.extend_from_slice(&data);
            }
        }
        SessionEvent::End { stream_id } => {
            let Some(pending) = requests.remove(&(conn, stream_id)) else {
                return Ok(());
            };
            let text = |ty: &str| [Field::new("content-type", ty)];
            match pending.path.as_str() {
                "/hello" => {
                    server.send_head(now, conn, stream_id, 200, &text("text/plain"))?;
                    server.send_data(now, conn, stream_id, b"hello over h3")?;
                }
                "/events" => {
                    server.send_head(now, conn, stream_id, 200, &text("text/event-stream"))?;
                    for (id, data) in [(1, "one"), (2, "two"), (3, "three")] {
                        let event = format!("id: {id}\ndata: {data}\n\n");
                        server.send_data(now, conn, stream_id, event.as_bytes())?;
                    }
                }
                "/echo" => {
                    server.send_head(now, conn, stream_id, 200, &text("application/octet-stream"))?;
                    server.send_data(now, conn, stream_id, &pending.body)?;
                }
                _ => server.send_head(now, conn, stream_id, 404, &[])?,
            }
            server.finish(now, conn, stream_id)?;
        }
        other => eprintln!("{other:?}"),
    }
    Ok(())
}
