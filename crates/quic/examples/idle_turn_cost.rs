//! What one loop turn costs a `QuicServer` holding many idle connections:
//! the calls the server's loop makes every turn when no datagram came and
//! no timer is due (`next_timeout`, `poll_transmit` until it gives none).
//!
//! ```text
//! cargo run --release -p tether-quic --example idle_turn_cost -- [COUNT ...]
//! ```
//!
//! For each COUNT (1, 1000 and 10 000 by default) it completes that many
//! handshakes with a quinn-proto client over an in-memory network on a
//! virtual clock, then times turns at an instant no timer has reached and
//! prints the nanoseconds per turn. Nothing is asserted: compare the
//! figures of one run with each other. Under callgrind
//! (`valgrind --tool=callgrind`), the instruction counts of `turns` say the
//! same without a clock.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{ClientConfig, DatagramEvent, Endpoint, EndpointConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_quic::{QuicConfig, QuicServer};

type Failure = Box<dyn std::error::Error>;

const SERVER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4433);

fn main() -> Result<(), Failure> {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let counts = if counts.is_empty() {
        vec![1, 1000, 10_000]
    } else {
        counts
    };
    let (server_tls, client_tls) = tls()?;
    println!("idle connections | turns timed | ns per turn");
    for count in counts {
        let start = Instant::now();
        let mut config = QuicConfig {
            max_connections: count + 1,
            ..QuicConfig::default()
        };
        // Every handshake completes before the next starts: no Retry.
        config.retry_above_handshakes = usize::MAX;
        let mut server = QuicServer::new(config, &server_tls)?;
        let mut client = Endpoint::new(Arc::new(EndpointConfig::default()), None, false, None);
        for i in 0..count {
            handshake(&mut server, &mut client, &client_tls, client_address(i), start)?;
        }
        if server.connections() != count {
            return Err(format!("{} of {count} connections held", server.connections()).into());
        }
        let turns = (2_000_000 / count.max(1)).clamp(200, 200_000);
        let elapsed = self::turns(&mut server, start, turns);
        let per_turn = elapsed.as_nanos() / u128::try_from(turns)?;
        println!("{count:>16} | {turns:>11} | {per_turn:>11}");
    }
    Ok(())
}

/// `turns` loop turns with nothing to do, at `now`, as the server's loop
/// makes them: timers if due, every datagram to send, the next deadline.
#[inline(never)]
fn turns(server: &mut QuicServer, now: Instant, turns: usize) -> std::time::Duration {
    let mut buf = Vec::new();
    let began = Instant::now();
    for _ in 0..turns {
        if server.next_timeout().is_some_and(|at| at <= now) {
            server.handle_timeout(now);
        }
        while server.poll_transmit(now, 1, &mut buf).is_some() {}
        std::hint::black_box(server.next_timeout());
    }
    began.elapsed()
}

/// A distinct client address for each connection.
fn client_address(i: usize) -> SocketAddr {
    let [_, a, b, c] = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
    SocketAddr::from(([127, a, b, c.max(1)], 40_000 + u16::from(c)))
}

/// One handshake completed at `now`, datagrams moved until neither side
/// has any; the client's side is dropped after, so that the server's
/// connection stays idle.
fn handshake(
    server: &mut QuicServer,
    client: &mut Endpoint,
    tls: &Arc<rustls::ClientConfig>,
    from: SocketAddr,
    now: Instant,
) -> Result<(), Failure> {
    let config = ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls.clone())?));
    let (handle, mut conn) = client.connect(now, config, SERVER, "localhost")?;
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        while let Some(t) = conn.poll_transmit(now, 1, &mut buf) {
            moved = true;
            server.handle_datagram(now, from, None, buf.get(..t.size).unwrap_or_default());
            buf.clear();
        }
        while server.poll_event().is_some() {}
        while let Some(t) = server.poll_transmit(now, 1, &mut buf) {
            moved = true;
            let datagram = BytesMut::from(buf.get(..t.size).unwrap_or_default());
            let mut response = Vec::new();
            if let Some(DatagramEvent::ConnectionEvent(_, event)) =
                client.handle(now, SERVER, None, None, datagram, &mut response)
            {
                conn.handle_event(event);
            }
        }
        while let Some(event) = conn.poll_endpoint_events() {
            if let Some(event) = client.handle_event(handle, event) {
                conn.handle_event(event);
            }
        }
        while conn.poll().is_some() {}
        if !moved {
            break;
        }
    }
    if conn.is_handshaking() {
        return Err("a handshake did not complete".into());
    }
    Ok(())
}

/// A self-signed certificate for `localhost`: the server's TLS
/// configuration and a client's that trusts it and offers h3.
fn tls() -> Result<(rustls::ServerConfig, Arc<rustls::ClientConfig>), Failure> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h3".to_vec()];
    Ok((server, Arc::new(client)))
}
