use std::cell::Cell;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_h2::hpack::Field;
use tether_h3::session::SessionEvent;

use super::*;
use crate::client::{ClientEvent, QuicClient};

thread_local! {
    /// The connection whose next drive panics, on this thread.
    static PANIC_IN: Cell<Option<ConnectionHandle>> = const { Cell::new(None) };
}

/// A panic in the work for `handle`, if one was asked for it: what a
/// bug in quinn-proto, rustls or the session would do.
pub(super) fn injected(handle: ConnectionHandle) {
    if PANIC_IN.with(|p| p.get()) == Some(handle) {
        PANIC_IN.with(|p| p.set(None));
        panic!("injected panic for connection {}", handle.0);
    }
}

fn certs() -> (rustls::ServerConfig, rustls::ClientConfig) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, client)
}

/// A server and clients on an in-memory network; the server's calls
/// are made as the loop makes them, under `catch_unwind`, with
/// `recover` after a panic.
struct Net {
    now: Instant,
    server: QuicServer,
    addr: SocketAddr,
    clients: Vec<(SocketAddr, QuicClient, Vec<ClientEvent>)>,
    /// The connections `recover` dropped.
    recovered: Vec<Option<ConnectionHandle>>,
    /// The server's connection of each client, by its address.
    handles: BTreeMap<SocketAddr, ConnectionHandle>,
}

impl Net {
    fn caught(&mut self, work: impl FnOnce(&mut QuicServer)) {
        if panic::catch_unwind(AssertUnwindSafe(|| work(&mut self.server))).is_err() {
            let lost = self.server.recover().map(|(handle, _)| handle);
            self.recovered.push(lost);
        }
    }

    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            let mut buf = Vec::new();
            let now = self.now;
            for i in 0..self.clients.len() {
                let from = self.clients[i].0;
                while let Some(t) = self.clients[i].1.poll_transmit(now, 1, &mut buf) {
                    let datagram = buf[..t.size].to_vec();
                    self.caught(|server| server.handle_datagram(now, from, None, &datagram));
                    moved = true;
                }
            }
            while let Some(event) = self.server.poll_event() {
                match event {
                    ServerEvent::Connected { conn, remote } => {
                        self.handles.insert(remote, conn);
                    }
                    ServerEvent::Session {
                        conn,
                        event: SessionEvent::Request { stream_id, .. },
                    } => {
                        let fields = [Field::new("content-type", "text/plain")];
                        self.caught(|server| {
                            server.send_head(now, conn, stream_id, 200, &fields).unwrap();
                            server.send_data(now, conn, stream_id, b"fine").unwrap();
                            server.finish(now, conn, stream_id).unwrap();
                        });
                    }
                    _ => {}
                }
            }
            loop {
                let mut sent = None;
                self.caught(|server| sent = server.poll_transmit(now, 1, &mut buf));
                let Some(t) = sent else { break };
                let to = t.destination;
                for (addr, client, _) in &mut self.clients {
                    if *addr == to {
                        client.handle_datagram(now, self.addr, &buf[..t.size]);
                    }
                }
                moved = true;
            }
            for (_, client, events) in &mut self.clients {
                client.poll_events(now, events);
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        self.settle();
        while self.now < end {
            self.now += Duration::from_millis(5);
            let now = self.now;
            for (_, client, _) in &mut self.clients {
                client.handle_timeout(now);
            }
            self.caught(|server| server.handle_timeout(now));
            self.settle();
        }
    }

    fn get(&mut self, client: usize) -> u64 {
        let fields = [
            Field::new(":method", "GET"),
            Field::new(":scheme", "https"),
            Field::new(":authority", "localhost"),
            Field::new(":path", "/"),
        ];
        self.clients[client].1.request(&fields, b"", true).unwrap()
    }

    fn answered(&self, client: usize, stream: u64) -> bool {
        self.clients[client]
            .2
            .iter()
            .any(|e| *e == ClientEvent::Finished { stream })
    }
}

#[test]
fn after_a_panic_recover_drops_the_connection_in_hand_and_the_others_go_on() {
    let (server_tls, client_tls) = certs();
    let now = Instant::now();
    let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let clients = (0..2)
        .map(|i| {
            let from: SocketAddr = format!("127.0.0.1:{}", 50_000 + i).parse().unwrap();
            let client = QuicClient::connect(&client_tls, addr, "localhost", 1 << 16, now).unwrap();
            (from, client, Vec::new())
        })
        .collect();
    let mut net = Net {
        now,
        server: QuicServer::new(QuicConfig::default(), &server_tls).unwrap(),
        addr,
        clients,
        recovered: Vec::new(),
        handles: BTreeMap::new(),
    };
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.server.connections(), 2);
    let victim = net.handles[&net.clients[0].0];
    let bystander = net.handles[&net.clients[1].0];

    // The victim's next datagram panics in its connection's work.
    PANIC_IN.with(|p| p.set(Some(victim)));
    let lost = net.get(0);
    let kept = net.get(1);
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.recovered, [Some(victim)]);
    assert!(!net.answered(0, lost));
    assert!(net.answered(1, kept));
    assert_eq!(net.server.connections(), 1);
    assert!(net.server.conns.contains_key(&bystander));
    assert_eq!(net.server.stats().closed_error, 1);
    assert_eq!(net.server.in_hand, None);

    // The victim's client learns of it when it next sends (its
    // retransmission is answered with a stateless reset); the
    // bystander is served on.
    let again = net.get(1);
    net.run_for(Duration::from_millis(100));
    assert!(net.clients[0].1.is_closed(), "{:?}", net.clients[0].2);
    assert!(net.answered(1, again));
    assert_eq!(net.recovered.len(), 1);
}

#[test]
fn a_panic_in_a_timer_leaves_the_other_due_connections_for_the_next_call() {
    let (server_tls, client_tls) = certs();
    let now = Instant::now();
    let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let mut server = QuicServer::new(QuicConfig::default(), &server_tls).unwrap();
    let mut handles = Vec::new();
    for i in 0..3 {
        let from: SocketAddr = format!("127.0.0.1:{}", 51_000 + i).parse().unwrap();
        let mut client = QuicClient::connect(&client_tls, addr, "localhost", 1 << 16, now).unwrap();
        let mut buf = Vec::new();
        while let Some(t) = client.poll_transmit(now, 1, &mut buf) {
            server.handle_datagram(now, from, None, &buf[..t.size]);
        }
    }
    while let Some(t) = server.poll_transmit(now, 1, &mut Vec::new()) {
        drop(t);
    }
    handles.extend(server.conns.keys().copied());
    assert_eq!(handles.len(), 3);
    // Every handshake times out at once; the first visited panics.
    let late = now + Duration::from_secs(3600);
    let due = server.deadlines.take_due(late);
    assert_eq!(due.len(), 3);
    for handle in &due {
        server.deadlines.set(*handle, Some(now));
    }
    PANIC_IN.with(|p| p.set(Some(due[0])));
    let caught = panic::catch_unwind(AssertUnwindSafe(|| server.handle_timeout(late)));
    assert!(caught.is_err());
    assert_eq!(server.recover().map(|(handle, _)| handle), Some(due[0]));
    // The two not visited are due still, and handled by the next call.
    assert_eq!(server.due.len(), 2);
    assert!(server.next_timeout().is_some_and(|at| at <= late));
    server.handle_timeout(late);
    assert!(server.due.is_empty());
    assert_eq!(server.stats().closed_error, 1, "the one dropped");
    assert_eq!(server.stats().closed_handshake_timeout, 2, "the others");
    assert!(
        server
            .conns
            .values()
            .all(|c| c.quic.is_closed() || c.quic.is_drained())
    );
}

/// A client's first flight from `from`, handed to `server`; the client
/// is then left alone, half-open.
fn half_open(server: &mut QuicServer, client_tls: &rustls::ClientConfig, from: SocketAddr, now: Instant) {
    let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let mut client = QuicClient::connect(client_tls, addr, "localhost", 1 << 16, now).unwrap();
    let mut buf = Vec::new();
    while let Some(t) = client.poll_transmit(now, 1, &mut buf) {
        server.handle_datagram(now, from, None, &buf[..t.size]);
    }
}

/// A client from `from` that answers the server: whether its handshake
/// completes.
fn completes(net: &mut Net, client_tls: &rustls::ClientConfig, from: SocketAddr) -> bool {
    let client = QuicClient::connect(client_tls, net.addr, "localhost", 1 << 16, net.now).unwrap();
    net.clients.push((from, client, Vec::new()));
    let i = net.clients.len() - 1;
    net.run_for(Duration::from_millis(50));
    net.clients[i].1.is_connected()
}

#[test]
fn half_open_handshakes_from_one_source_past_its_bound_are_refused() {
    let (server_tls, client_tls) = certs();
    let now = Instant::now();
    let config = QuicConfig {
        max_half_open_per_source: 4,
        handshake_timeout: Duration::from_secs(2),
        ..QuicConfig::default()
    };
    let mut net = Net {
        now,
        server: QuicServer::new(config, &server_tls).unwrap(),
        addr: "127.0.0.1:4433".parse().unwrap(),
        clients: Vec::new(),
        recovered: Vec::new(),
        handles: BTreeMap::new(),
    };
    // Ten from one address (as many ports), none going on.
    for port in 0..10 {
        let from = SocketAddr::from(([192, 0, 2, 1], 40_000 + port));
        half_open(&mut net.server, &client_tls, from, now);
    }
    assert_eq!(net.server.connections(), 4);
    assert_eq!(net.server.stats().refused_half_open, 6);
    assert_eq!(net.server.stats().refused, 6);
    // Its /64 is one source for IPv6.
    for host in 1..=6u16 {
        let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, host);
        half_open(&mut net.server, &client_tls, SocketAddr::from((ip, 40_000)), now);
    }
    assert_eq!(net.server.connections(), 8);
    assert_eq!(net.server.stats().refused_half_open, 8);
    // A well-behaved client from elsewhere connects; so does one from the
    // same address once its half-open handshakes have timed out.
    assert!(completes(
        &mut net,
        &client_tls,
        SocketAddr::from(([192, 0, 2, 7], 40_000))
    ));
    let same = SocketAddr::from(([192, 0, 2, 1], 41_000));
    assert!(!completes(&mut net, &client_tls, same));
    net.clients.pop();
    net.run_for(Duration::from_millis(2100));
    assert_eq!(net.server.stats().closed_handshake_timeout, 8);
    assert_eq!(net.server.handshaking.len(), 0);
    assert!(completes(&mut net, &client_tls, same));
}

#[test]
fn half_open_handshakes_past_the_servers_bound_are_refused() {
    let (server_tls, client_tls) = certs();
    let now = Instant::now();
    let config = QuicConfig {
        max_half_open: 5,
        ..QuicConfig::default()
    };
    let mut server = QuicServer::new(config, &server_tls).unwrap();
    for host in 1..=8u8 {
        half_open(
            &mut server,
            &client_tls,
            SocketAddr::from(([192, 0, 2, host], 40_000)),
            now,
        );
    }
    assert_eq!(server.connections(), 5);
    assert_eq!(server.stats().refused_half_open, 3);
}
