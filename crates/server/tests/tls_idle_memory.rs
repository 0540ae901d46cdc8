//! Memory an idle connection holds in the server, over TLS and over plain
//! TCP, counted with a global allocator that tallies the live bytes of
//! the server's own thread: connections are opened, each does its TLS
//! handshake, its WebSocket upgrade and one echoed message, and then
//! waits. What the server holds then, beyond what it held before they
//! came, divided by their number, is each idle connection's cost.
//!
//! `cargo test -p tether-server --test tls_idle_memory -- --nocapture`
//! prints the figures that `benches/README.md` quotes. Memory is
//! deterministic, so a budget is asserted. The aim is at most 2 KiB per
//! idle TLS connection. With rustls' own sessions it was out of reach
//! (about 3.3 KiB of rustls' state, none of it a buffer); since a TLS 1.3
//! session opens and seals its records itself once the handshake is done
//! (`tls::records`), an idle session holds its keys as bytes, what rustls
//! needs to update them (its `KernelConnection` and the key schedule
//! behind it) and the ALPN protocol: under 1 KiB. The budget asserted is
//! what this server reaches with some room, so that a buffer kept by an
//! idle connection, or rustls' session kept after the handshake, fails
//! here. The connection's slot in the loop's table is not heap memory of
//! its own and is not counted.

// Its TLS connections need the server's `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tether_server::{App, ConnId, Ctx, Handshake, MessageRef, Request, Route, Server, tls};
use tether_testkit::{IO_TIMEOUT, Upgrade, config};
use tether_ws::{Event, Message};

struct Counting;

thread_local! {
    /// Whether this thread is the server's, whose allocations count.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Live bytes allocated by the server's thread.
static SERVER_LIVE: AtomicIsize = AtomicIsize::new(0);

fn add(delta: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        SERVER_LIVE.fetch_add(delta, Ordering::Relaxed);
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

/// The budget per idle TLS connection: the record layer's state (about
/// 950 B, see above) and next to nothing more.
const TLS_BUDGET: isize = 1152;

/// Connections opened and closed first, so that what grows once and is
/// shared (the loop's table of connections, rustls' cache of 256 sessions
/// for resumption, two per TLS 1.3 handshake) is full before counting.
const WARM_UP: usize = 300;

/// Idle connections counted.
const IDLE: usize = 200;

/// Echoes every message.
struct Echo;

impl App for Echo {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::WebSocket(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        ctx.send(conn, message);
    }
}

/// A byte stream to the server: plain TCP or a rustls client over it.
enum Client {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Client {
    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            Client::Plain(s) => s,
            Client::Tls(s) => s.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Opens a WebSocket (over TLS with `tls`), has one message echoed, and
/// returns the connection, idle.
fn idle_connection(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>, seed: usize) -> Client {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    tcp.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    tcp.set_nodelay(true).expect("nodelay");
    let mut client = match tls {
        None => Client::Plain(tcp),
        Some(config) => {
            let name = ServerName::try_from("localhost").expect("a name");
            let session = rustls::ClientConnection::new(config.clone(), name).expect("a client session");
            Client::Tls(Box::new(rustls::StreamOwned::new(session, tcp)))
        }
    };
    let Upgrade {
        request, mut conn, ..
    } = Upgrade::new(addr, "/");
    let text = format!("hello from connection {seed}");
    let mut wire = request;
    conn.send(&Message::text(text.clone()), &mut wire)
        .expect("encode");
    client
        .stream()
        .write_all(&wire)
        .expect("the upgrade and a message");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = client.stream().read(&mut chunk).expect("read the 101");
        assert!(n > 0, "closed before the 101");
        buf.extend_from_slice(&chunk[..n]);
    };
    assert!(
        buf.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    buf.drain(..head_end);
    let mut out = Vec::new();
    loop {
        let (used, event) = conn.receive(&buf, Instant::now(), &mut out);
        buf.drain(..used);
        match event {
            Some(Event::Message(m)) => {
                assert_eq!(m.as_bytes(), text.as_bytes());
                return client;
            }
            Some(other) => panic!("expected the echo, got {other:?}"),
            None if used == 0 => {
                let n = client.stream().read(&mut chunk).expect("read the echo");
                assert!(n > 0, "closed before the echo");
                buf.extend_from_slice(&chunk[..n]);
            }
            None => {}
        }
    }
}

/// The server thread's live bytes once they stop changing.
fn settled() -> isize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = SERVER_LIVE.load(Ordering::Relaxed);
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = SERVER_LIVE.load(Ordering::Relaxed);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Bytes the server holds per idle connection (over TLS with `tls`).
fn held_per_idle_connection(tls: bool) -> isize {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let mut config = config();
    let mut client_config = None;
    if tls {
        let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
        config.tls = Some(tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).expect("TLS"));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone()).expect("a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config = Some(Arc::new(client));
    }
    let server = Server::bind(config, Handshake::new(), Echo).expect("bind");
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = thread::spawn(move || {
        COUNTED.with(|counted| counted.set(true));
        server.run()
    });

    let warm_up: Vec<Client> = (0..WARM_UP)
        .map(|i| idle_connection(addr, client_config.as_ref(), i))
        .collect();
    drop(warm_up);
    // Until the server has seen them go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open(&handle) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let before = settled();
    let idle: Vec<Client> = (0..IDLE)
        .map(|i| idle_connection(addr, client_config.as_ref(), i))
        .collect();
    let after = settled();
    drop(idle);
    handle.shutdown();
    thread.join().expect("the server thread").expect("the server");
    (after - before) / IDLE as isize
}

#[test]
fn an_idle_tls_connection_holds_no_buffer() {
    let plain = held_per_idle_connection(false);
    let tls = held_per_idle_connection(true);
    println!("held per idle connection (heap, beyond the loop's table): plain TCP {plain} B, TLS {tls} B");
    // A plain connection holds its slot in the loop's table only.
    assert!(plain < 64, "{plain} B held per idle plain connection");
    assert!(
        tls > plain,
        "TLS must cost more than plain TCP: {tls} B against {plain} B"
    );
    assert!(
        tls <= TLS_BUDGET,
        "{tls} B held per idle TLS connection, over the budget of {TLS_BUDGET} B"
    );
}

fn open(handle: &tether_server::Handle) -> u64 {
    let stats = handle.stats();
    stats.open_http + stats.open_websocket
}
