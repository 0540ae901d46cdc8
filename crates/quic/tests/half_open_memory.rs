//! What a half-open QUIC handshake holds in a `QuicServer`: a client's
//! first flight (its padded Initial) is handed to the server from many
//! addresses, none of them going on, and the server's live heap bytes
//! are tallied with a counting global allocator. What it holds beyond
//! what it held before, divided by the handshakes, is each one's cost;
//! once every handshake has reached its timeout and drained, the server
//! holds what it held before.
//!
//! `cargo test -p tether-quic --test half_open_memory -- --nocapture`
//! prints the figures. Memory is deterministic, so a budget is asserted.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::indexing_slicing
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tether_quic::{QuicClient, QuicConfig, QuicServer};

struct Counting;

thread_local! {
    /// Whether this thread's allocations are the server's, which count.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Live bytes allocated while [`COUNTED`] was set.
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn add(delta: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator with the same
// arguments; the tally is a thread-local flag and an atomic counter, which
// never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work` with its allocations counted.
fn counted<T>(work: impl FnOnce() -> T) -> T {
    COUNTED.with(|c| c.set(true));
    let result = work();
    COUNTED.with(|c| c.set(false));
    result
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn certs() -> (rustls::ServerConfig, Arc<rustls::ClientConfig>) {
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
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h3".to_vec()];
    (server, Arc::new(client))
}

const SERVER: &str = "127.0.0.1:4433";

/// A client's first flight (made outside the count), each datagram of it.
fn first_flight(client_tls: &Arc<rustls::ClientConfig>, now: Instant) -> Vec<Vec<u8>> {
    let mut client =
        QuicClient::connect(client_tls, SERVER.parse().unwrap(), "localhost", 1 << 16, now).unwrap();
    let mut buf = Vec::new();
    let mut flight = Vec::new();
    while let Some(t) = client.poll_transmit(now, 1, &mut buf) {
        flight.push(buf[..t.size].to_vec());
    }
    flight
}

/// Takes (and drops) everything the server has to send and every event.
fn drain_output(server: &mut QuicServer, now: Instant, buf: &mut Vec<u8>) -> usize {
    let mut sent = 0;
    while server.poll_transmit(now, 1, buf).is_some() {
        sent += 1;
    }
    while server.poll_event().is_some() {}
    sent
}

/// Runs the server's timers from `from` until nothing is due before `until`.
fn run_timers(server: &mut QuicServer, from: Instant, until: Instant, buf: &mut Vec<u8>) {
    let mut now = from;
    while let Some(at) = server.next_timeout()
        && at <= until
    {
        now = now.max(at);
        server.handle_timeout(now);
        drain_output(server, now, buf);
    }
}

const FLOOD: usize = 512;

/// Hands `flights` to the server from as many addresses, each answered
/// and none going on: the live bytes held then, beyond `before`.
fn flood(
    server: &mut QuicServer,
    flights: &[Vec<Vec<u8>>],
    now: Instant,
    before: isize,
    buf: &mut Vec<u8>,
) -> isize {
    let mut answers = 0;
    counted(|| {
        for (i, flight) in flights.iter().enumerate() {
            let from = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 40_000));
            for d in flight {
                server.handle_datagram(now, from, None, d);
            }
            answers += drain_output(server, now, buf);
        }
    });
    assert_eq!(server.connections(), flights.len());
    assert!(answers >= flights.len(), "each handshake answered: {answers}");
    live() - before
}

#[test]
fn a_half_open_handshake_costs_its_budget_and_all_of_it_is_freed_at_its_timeout() {
    let (server_tls, client_tls) = certs();
    let start = Instant::now();
    let config = QuicConfig {
        // Every Initial is answered with state (no Retry, no refusal): the
        // state is what is measured.
        retry_above_handshakes: usize::MAX,
        max_half_open: usize::MAX,
        max_half_open_per_source: usize::MAX,
        ..QuicConfig::default()
    };
    let timeout = config.handshake_timeout;
    let flights: Vec<Vec<Vec<u8>>> = (0..FLOOD).map(|_| first_flight(&client_tls, start)).collect();
    let mut server = QuicServer::new(config, &server_tls).unwrap();
    let mut buf = Vec::with_capacity(1 << 16);
    // One handshake first, so that what the server allocates once (on
    // its first client) is not spread over the others; then it is timed
    // out and drained.
    let warm = first_flight(&client_tls, start);
    counted(|| {
        for d in &warm {
            server.handle_datagram(start, SocketAddr::from(([10, 9, 9, 9], 1)), None, d);
        }
        drain_output(&mut server, start, &mut buf);
        run_timers(&mut server, start, start + timeout * 3, &mut buf);
    });
    assert_eq!(server.connections(), 0);
    let before = live();
    let mut now = start + timeout * 3;
    let mut kept = Vec::new();
    for round in 1..=2 {
        let held = flood(&mut server, &flights, now, before, &mut buf);
        let per_handshake = held / FLOOD as isize;
        println!(
            "flood {round}: {FLOOD} half-open handshakes, heap held: {held} B, per handshake: {per_handshake} B"
        );
        // The connection's own state, and no more than this: 37.8 KiB
        // before the connections were boxed in the server's map and the
        // request streams held back until the handshake is complete.
        assert!(
            per_handshake <= 30 * 1024,
            "{per_handshake} B per half-open handshake"
        );
        // Past every handshake's timeout and its closing period.
        counted(|| run_timers(&mut server, now, now + timeout * 3, &mut buf));
        now += timeout * 3;
        let left = live() - before;
        println!(
            "after the timeout: {} connections, {left} B still held",
            server.connections()
        );
        assert_eq!(server.connections(), 0);
        assert_eq!(
            server.stats().closed_handshake_timeout,
            (round * FLOOD) as u64 + 1
        );
        kept.push(left);
    }
    // What is still held is the tables' capacity (quinn-proto's
    // connection slab and ID maps, the server's queues) grown for the
    // flood's peak, under 1 KiB per handshake, and reused by the next:
    // a second flood keeps no more.
    assert!(kept[0] <= (FLOOD * 1024) as isize, "{kept:?}");
    assert!(kept[1] <= kept[0], "{kept:?}");
}
