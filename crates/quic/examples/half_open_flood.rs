//! A flood of QUIC handshakes left half-open, against a running server:
//! what `benches/h3-half-open.sh` sends.
//!
//! ```text
//! cargo run --release -p tether-quic --example half_open_flood -- SERVER COUNT [HOLD_SECONDS]
//! ```
//!
//! COUNT clients, each from a UDP socket on a loopback address of its own
//! (127.1.x.y, so that no bound per source applies), send a client's first
//! flight (a padded Initial holding a ClientHello) to SERVER (an
//! `IP:port`). A client the server sends a Retry answers it with the
//! Initial that carries its token, as a client with a real address
//! would; then every client stops: nothing the server sends after that
//! is read or answered, so that each handshake stays half-open on the
//! server until its handshake timeout. The sockets are held open for
//! HOLD_SECONDS (default 0) so that what the server sends them meanwhile
//! finds a socket. Prints how many first flights went out, how many
//! clients were sent a Retry, and how many had an answer of any kind.
//! Linux only: it binds addresses of 127.0.0.0/8 other than 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_quic::QuicClient;

type Failure = Box<dyn std::error::Error>;

/// The first byte of a QUIC v1 Retry (long header, fixed bit, type 3;
/// RFC 9000 §17.2.5).
const RETRY: u8 = 0xf0;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: half_open_flood SERVER COUNT [HOLD_SECONDS]";
    let server: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let count: usize = args.next().ok_or(usage)?.parse()?;
    let hold = Duration::from_secs(args.next().map_or(Ok(0), |a| a.parse())?);
    let tls = tls()?;
    let (mut retried, mut answered) = (0, 0);
    let mut sockets = Vec::with_capacity(count);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut reply = vec![0u8; 1 << 16];
    for i in 0..count {
        let host = u32::try_from(i)?;
        let ip = Ipv4Addr::new(127, 1, u8::try_from(host / 250)?, u8::try_from(host % 250 + 1)?);
        let socket = UdpSocket::bind((ip, 0))?;
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        let now = Instant::now();
        let mut client = QuicClient::connect(&tls, server, "localhost", 1 << 16, now)?;
        send(&mut client, &socket, now, &mut buf)?;
        if let Ok((n, from)) = socket.recv_from(&mut reply) {
            answered += 1;
            if reply.first().is_some_and(|b| b & RETRY == RETRY) {
                retried += 1;
                let now = Instant::now();
                client.handle_datagram(now, from, reply.get(..n).ok_or("short read")?);
                send(&mut client, &socket, now, &mut buf)?;
            }
        }
        sockets.push(socket);
    }
    println!("first flights: {count}, sent a Retry: {retried}, answered: {answered}");
    std::thread::sleep(hold);
    Ok(())
}

/// Sends everything `client` has to send now.
fn send(client: &mut QuicClient, socket: &UdpSocket, now: Instant, buf: &mut Vec<u8>) -> Result<(), Failure> {
    while let Some(t) = client.poll_transmit(now, 1, buf) {
        socket.send_to(buf.get(..t.size).ok_or("short transmit")?, t.destination)?;
    }
    Ok(())
}

/// A client configuration that trusts no certificate: no client here
/// gets as far as reading one.
fn tls() -> Result<rustls::ClientConfig, Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}
