//! One process per port unless asked, for every listener a server opens
//! (the main listener, the TLS listener, the admin listener, HTTP/3's UDP
//! socket) and whatever its loop count: a server that did not ask
//! (`Config::reuse_port` off) is joined by no socket, whatever that one's
//! options; a server that asked joins no socket that did not; two that
//! asked share every listener and both serve; and two servers (or a
//! server and a bare socket) binding at the same instant never both own
//! an address unless both asked. Every refusal is `AddrInUse` with one
//! message: the address, the listener, and how to share on purpose.

// The TLS listener and HTTP/3 come with the `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};

use socket2::{Domain, Protocol, Socket, Type};
use tether_server::{App, Cluster, Config, Handle, Handshake, Request, Route, tls};
use tether_testkit::h3::H3Client;
use tether_testkit::tls::{SelfSigned, TlsConn, self_signed};
use tether_testkit::{config, get};

/// Fresh connections tried before concluding that a shared listener does
/// not reach both servers: the kernel's hash sends each to the second
/// server with a probability of 2 in 5 (its 2 loops' sockets among 5), so
/// 100 all missing it would happen once in 10^22 runs.
const TRIES: usize = 100;

/// Answers every request with its server's name.
struct Named(&'static str);

impl App for Named {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::Page {
            content_type: "text/plain",
            body: self.0.as_bytes(),
        }
    }
}

/// What each listener of a server is for, as its refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Main,
    Tls,
    Admin,
    Quic,
}

impl Listener {
    const TCP: [Listener; 3] = [Listener::Main, Listener::Tls, Listener::Admin];

    fn name(self) -> &'static str {
        match self {
            Listener::Main => "the main listener",
            Listener::Tls => "the TLS listener",
            Listener::Admin => "the admin (metrics) listener",
            Listener::Quic => "the HTTP/3 (QUIC) socket",
        }
    }
}

/// Where a server's listeners go (port 0: any free port).
#[derive(Debug, Clone, Copy)]
struct Addrs {
    main: SocketAddr,
    tls: SocketAddr,
    admin: SocketAddr,
}

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

impl Addrs {
    fn any() -> Addrs {
        Addrs {
            main: any(),
            tls: any(),
            admin: any(),
        }
    }

    /// Every listener on a free port but `listener`, on `addr`.
    fn only(listener: Listener, addr: SocketAddr) -> Addrs {
        let mut addrs = Addrs::any();
        match listener {
            Listener::Main => addrs.main = addr,
            Listener::Tls | Listener::Quic => addrs.tls = addr,
            Listener::Admin => addrs.admin = addr,
        }
        addrs
    }
}

/// A server's configuration with every listener: plain HTTP on `main`,
/// TLS on `tls` and HTTP/3 on its port number (with `http3`), the admin
/// listener on `admin`.
fn every_listener(certs: &SelfSigned, addrs: Addrs, reuse_port: bool, http3: bool) -> Config {
    let mut config = config();
    config.addr = addrs.main;
    config.tls =
        Some(tls::server_config_from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap());
    config.tls_addr = Some(addrs.tls);
    config.admin_addr = Some(addrs.admin);
    config.http3 = http3;
    config.reuse_port = reuse_port;
    config
}

/// A server running its loops on a thread of their own; shut down when
/// dropped.
struct Running {
    handle: Handle,
    thread: Option<JoinHandle<io::Result<()>>>,
    main: SocketAddr,
    tls: SocketAddr,
    admin: SocketAddr,
    quic: SocketAddr,
}

impl Running {
    fn addr(&self, listener: Listener) -> SocketAddr {
        match listener {
            Listener::Main => self.main,
            Listener::Tls => self.tls,
            Listener::Admin => self.admin,
            Listener::Quic => self.quic,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `loops` loops that answer `name`, and runs them.
fn start(config: Config, loops: usize, name: &'static str) -> io::Result<Running> {
    let cluster = Cluster::bind(config, Handshake::new(), loops, |_| Named(name))?;
    let main = cluster.local_addr();
    let tls = cluster.tls_addr().expect("a TLS listener");
    let admin = cluster.admin_addr().expect("an admin listener");
    let quic = cluster.quic_addr().unwrap_or(tls);
    let handle = cluster.handle();
    let thread = thread::spawn(move || cluster.run());
    Ok(Running {
        handle,
        thread: Some(thread),
        main,
        tls,
        admin,
        quic,
    })
}

/// Asserts that `result` is the refusal of `listener`'s address `addr`.
fn assert_refused<T>(result: io::Result<T>, addr: SocketAddr, listener: Listener) {
    let Err(error) = result else {
        panic!("{} on {addr} was not refused", listener.name());
    };
    let message = error.to_string();
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{message}");
    let protocol = if listener == Listener::Quic { "UDP" } else { "TCP" };
    for part in [
        "address in use: ",
        &format!("{protocol} {addr}, "),
        listener.name(),
        "--reuse-port",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

/// A bare TCP socket listening on `addr`, with `SO_REUSEPORT` if
/// `reuse_port`: another program's listener, as the kernel sees it.
fn bare_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.bind(&addr.into())?;
    socket.listen(16)?;
    Ok(socket)
}

/// A bare UDP socket bound on `addr`, with `SO_REUSEPORT` if `reuse_port`.
fn bare_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(reuse_port)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A port free on both TCP and UDP just now.
/// Whether something holds `addr` (TCP or UDP) now.
fn held_by_another(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_err() || UdpSocket::bind(addr).is_err()
}

fn free_port() -> SocketAddr {
    loop {
        let tcp = TcpListener::bind(any()).unwrap();
        let addr = tcp.local_addr().unwrap();
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// The names of the servers that fresh connections through `connect`
/// reached, until both `first` and `second` have been seen or [`TRIES`]
/// connections were made.
fn names_reached(mut connect: impl FnMut() -> String) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..TRIES {
        seen.insert(connect());
        if seen.len() == 2 {
            break;
        }
    }
    seen
}

fn both() -> BTreeSet<String> {
    ["first".to_owned(), "second".to_owned()].into()
}

#[test]
fn a_server_that_did_not_ask_is_joined_by_nobody_on_any_listener() {
    let certs = self_signed(b"http/1.1");
    for loops in [1, 3] {
        let first = start(every_listener(&certs, Addrs::any(), false, true), loops, "first").unwrap();
        for listener in Listener::TCP {
            let addr = first.addr(listener);
            // The kernel refuses any listener beside it, asking or not.
            for reuse_port in [false, true] {
                let bare = bare_tcp(addr, reuse_port);
                assert_eq!(
                    bare.err().map(|e| e.kind()),
                    Some(io::ErrorKind::AddrInUse),
                    "{addr}"
                );
            }
            // And so a server that asked, with one loop or several.
            for second_loops in [1, 2] {
                let second = every_listener(&certs, Addrs::only(listener, addr), true, false);
                assert_refused(start(second, second_loops, "second"), addr, listener);
            }
        }
        for reuse_port in [false, true] {
            let bare = bare_udp(first.quic, reuse_port);
            assert_eq!(
                bare.err().map(|e| e.kind()),
                Some(io::ErrorKind::AddrInUse),
                "UDP {}",
                first.quic
            );
        }
        // The first serves on, alone.
        assert_eq!(get(first.main, "/").body, b"first", "{loops} loops");
    }
}

#[test]
fn a_server_that_asked_joins_no_listener_that_did_not() {
    let certs = self_signed(b"http/1.1");
    for loops in [1, 3] {
        let first = start(every_listener(&certs, Addrs::any(), true, true), loops, "first").unwrap();
        for listener in Listener::TCP {
            let addr = first.addr(listener);
            assert_eq!(
                bare_tcp(addr, false).err().map(|e| e.kind()),
                Some(io::ErrorKind::AddrInUse)
            );
            for second_loops in [1, 2] {
                let second = every_listener(&certs, Addrs::only(listener, addr), false, false);
                assert_refused(start(second, second_loops, "second"), addr, listener);
            }
        }
        let bare = bare_udp(first.quic, false);
        assert_eq!(
            bare.err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse),
            "UDP {}",
            first.quic
        );
        assert_eq!(get(first.main, "/").body, b"first", "{loops} loops");
    }
}

#[test]
fn http3_refuses_a_udp_port_held_by_a_socket_that_did_not_ask() {
    let certs = self_signed(b"h3");
    for holder_asked in [false, true] {
        let addr = free_port();
        let _holder = bare_udp(addr, holder_asked).unwrap();
        for reuse_port in [false, true] {
            let config = every_listener(&certs, Addrs::only(Listener::Quic, addr), reuse_port, true);
            let result = start(config, 2, "second");
            if holder_asked && reuse_port {
                // Both asked: the server shares the UDP port.
                assert_eq!(result.unwrap().quic, addr);
            } else {
                assert_refused(result, addr, Listener::Quic);
            }
        }
    }
}

#[test]
fn servers_that_both_asked_share_every_listener_and_both_serve() {
    let certs = self_signed(b"h3");
    // The TLS listener speaks HTTP/1.1 (or HTTP/2), not HTTP/3.
    let https = {
        let mut client = (*certs.client).clone();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(client)
    };
    let first = start(every_listener(&certs, Addrs::any(), true, true), 3, "first").unwrap();
    let addrs = Addrs {
        main: first.main,
        tls: first.tls,
        admin: first.admin,
    };
    let second = start(every_listener(&certs, addrs, true, true), 2, "second").unwrap();
    assert_eq!(
        (second.main, second.tls, second.admin, second.quic),
        (first.main, first.tls, first.admin, first.quic)
    );

    let body = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    for listener in [Listener::Main, Listener::Admin] {
        let seen = names_reached(|| body(get(first.addr(listener), "/").body));
        assert_eq!(seen, both(), "{}", listener.name());
    }
    let seen = names_reached(|| {
        let mut conn = TlsConn::connect(first.tls, &https);
        conn.request("GET", "/");
        body(conn.response().body)
    });
    assert_eq!(seen, both(), "{}", Listener::Tls.name());
    let seen = names_reached(|| {
        let mut client = H3Client::connect(first.quic, &certs.client);
        let stream = client.get("/");
        let (status, bytes) = client.response(stream);
        assert_eq!(status, 200);
        body(bytes)
    });
    assert_eq!(seen, both(), "{}", Listener::Quic.name());
}

/// What a contender in a race binds.
#[derive(Debug, Clone, Copy)]
enum Contender {
    /// A server of 2 loops with `listener` on the address, asking to
    /// share it or not.
    Server { listener: Listener, asks: bool },
    /// A bare UDP socket, with `SO_REUSEPORT` or without: another QUIC
    /// server, as the kernel sees it.
    Udp { asks: bool },
}

impl Contender {
    fn asks(self) -> bool {
        match self {
            Contender::Server { asks, .. } | Contender::Udp { asks } => asks,
        }
    }
}

/// Releases `contenders` on `addr` at the same instant; for each, whether
/// it owns the address, or the error that refused it.
fn race(certs: &SelfSigned, addr: SocketAddr, contenders: [Contender; 2]) -> Vec<io::Result<()>> {
    let barrier = Arc::new(Barrier::new(contenders.len()));
    let threads: Vec<_> = contenders
        .into_iter()
        .map(|contender| {
            let barrier = barrier.clone();
            let config = match contender {
                Contender::Server { listener, asks } => Some(every_listener(
                    certs,
                    Addrs::only(listener, addr),
                    asks,
                    listener == Listener::Quic,
                )),
                Contender::Udp { .. } => None,
            };
            thread::spawn(move || {
                barrier.wait();
                let owned: io::Result<Box<dyn Send>> = match config {
                    Some(config) => Cluster::bind(config, Handshake::new(), 2, |_| Named("racer"))
                        .map(|cluster| Box::new(cluster) as Box<dyn Send>),
                    None => bare_udp(addr, contender.asks()).map(|socket| Box::new(socket) as Box<dyn Send>),
                };
                // Both results are in before either lets go of the address.
                barrier.wait();
                owned.map(drop)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Runs `rounds` races of `contenders`, each on a fresh port: both own
/// the address when both asked, else exactly one does and the server
/// refused (if it lost) says why.
fn races(certs: &SelfSigned, rounds: usize, contenders: [Contender; 2]) {
    let mut foreign = 0;
    let mut round = 0;
    while round < rounds {
        let addr = free_port();
        let results = race(certs, addr, contenders);
        let owners = results.iter().filter(|r| r.is_ok()).count();
        // Neither got the address, and it is still taken when both are
        // gone: another process (a test running beside this one) bound it
        // between `free_port` and the race. That round says nothing of
        // the contenders; it is run again on another address, a few times
        // at most. (A contender that refuses wrongly leaves the address
        // free, and fails the round below.)
        if owners == 0 && held_by_another(addr) && foreign < 5 {
            foreign += 1;
            continue;
        }
        round += 1;
        if contenders.iter().all(|c| c.asks()) {
            assert_eq!(owners, 2, "round {round} of {contenders:?}: {results:?}");
            continue;
        }
        assert_eq!(owners, 1, "round {round} of {contenders:?}: {results:?}");
        for (contender, result) in contenders.iter().zip(results) {
            if let (Contender::Server { listener, .. }, Err(e)) = (contender, result) {
                assert_refused::<()>(Err(e), addr, *listener);
            }
        }
    }
}

#[test]
fn servers_started_at_the_same_instant_never_both_own_an_address_unless_both_asked() {
    let certs = self_signed(b"http/1.1");
    for listener in Listener::TCP {
        for (a, b) in [(false, false), (true, false), (false, true), (true, true)] {
            let contenders = [
                Contender::Server { listener, asks: a },
                Contender::Server { listener, asks: b },
            ];
            races(&certs, 10, contenders);
        }
    }
}

#[test]
fn a_udp_socket_bound_at_the_same_instant_never_shares_http3s_port_unless_both_asked() {
    let certs = self_signed(b"h3");
    for (server, other) in [(false, true), (true, false), (false, false), (true, true)] {
        let contenders = [
            Contender::Server {
                listener: Listener::Quic,
                asks: server,
            },
            Contender::Udp { asks: other },
        ];
        races(&certs, 10, contenders);
    }
}
