//! The server's listening sockets, bound once for all its loops: the main
//! listener, the TLS listener beside it, the admin listener and HTTP/3's
//! UDP socket, as the configuration asks.
//!
//! One process per port unless asked, and the kernel is the judge:
//!
//! - Without [`Config::reuse_port`] each of them is one socket without
//!   `SO_REUSEPORT`, which the kernel lets no other socket listen beside
//!   (TCP) or bind beside (UDP), whatever that one's options, and every
//!   loop serves it through a descriptor of its own (a `dup` of it,
//!   registered with its own poll). A loop that accepts a connection hands
//!   it to the loops in turn (`Mail::Adopt`), so that connections spread
//!   evenly whichever loop was free to accept; on the shared UDP socket a
//!   QUIC datagram is routed by its connection ID, or by its sender's
//!   address while the client has none of the server's (see
//!   `h3::H3Endpoint::readable`).
//! - With it, each loop binds sockets of its own with `SO_REUSEPORT`, and
//!   the kernel spreads connections (and, by a hash of their addresses,
//!   datagrams) over them and over the sockets of any other process that
//!   set it too, and of no other: Linux joins two sockets on one address
//!   only when both set the option and belong to the same effective user.
//!
//! Either way who owns an address is settled by the bind or the listen
//! itself, atomically: two servers started at the same instant cannot both
//! pass a check before either binds, since there is no check. An address
//! another socket holds is refused, for every listener and whatever the
//! loop count, with one message ([`in_use`]) that names the address, the
//! listener, and how to share a port on purpose.
//!
//! Calling contract: [`Sockets::bind`] once per server, then
//! [`Sockets::for_loop`] for each of its loops; the sockets close when the
//! last loop holding a descriptor of them closes it.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Config;

/// Connections the kernel may queue before the loops accept them.
const LISTEN_BACKLOG: i32 = 1024;

/// What a socket is for, as the refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `Config::addr`.
    Main,
    /// `Config::tls_addr`.
    Tls,
    /// `Config::admin_addr`.
    Admin,
    /// HTTP/3 (QUIC), on UDP.
    Quic,
}

impl Role {
    /// The protocol and address, and what the socket is for.
    fn named(self, addr: SocketAddr) -> String {
        let (protocol, what) = match self {
            Role::Main => ("TCP", "the main listener"),
            Role::Tls => ("TCP", "the TLS listener"),
            Role::Admin => ("TCP", "the admin (metrics) listener"),
            Role::Quic => ("UDP", "the HTTP/3 (QUIC) socket"),
        };
        format!("{protocol} {addr}, {what},")
    }
}

/// The error for a bind or listen of `role`'s socket on `addr` that
/// failed with `error`: for an address another socket holds, the one
/// refusal every listener gives; any other error, with the address and
/// the listener it was for.
fn in_use(error: io::Error, addr: SocketAddr, role: Role, reuse_port: bool) -> io::Error {
    let what = role.named(addr);
    if error.kind() != io::ErrorKind::AddrInUse {
        let what = what.trim_end_matches(',');
        return io::Error::new(error.kind(), format!("{what}: {error}"));
    }
    let why = if reuse_port {
        "is held by a socket that does not share it; a port is shared only among servers \
         that were all started with --reuse-port (reuse-port = true), as the same user"
    } else {
        "is held by another socket; to share a port on purpose, start every server on it \
         with --reuse-port (reuse-port = true)"
    };
    io::Error::new(io::ErrorKind::AddrInUse, format!("address in use: {what} {why}"))
}

/// A listening TCP socket on `addr`, non-blocking, with `SO_REUSEPORT`
/// only if `reuse_port`.
fn tcp(addr: SocketAddr, reuse_port: bool, role: Role) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted server bind beside the connections the last one
    // left in TIME_WAIT; never lets two sockets listen on one address.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    let refused = |e| in_use(e, addr, role, reuse_port);
    socket.bind(&addr.into()).map_err(refused)?;
    // Two sockets with SO_REUSEADDR may both bind an address that neither
    // listens on yet: the second to listen is the one refused, so listen
    // is where two servers started together are told apart. A backlog of
    // 128 (the usual default) overflows under a burst of connects and
    // costs each dropped SYN a one-second retransmit.
    socket.listen(LISTEN_BACKLOG).map_err(refused)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A UDP socket bound on `addr`, non-blocking, with `SO_REUSEPORT` only
/// if `reuse_port`.
fn udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Never SO_REUSEADDR: on UDP it would let any other socket that sets
    // it bind beside this one.
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| in_use(e, addr, Role::Quic, reuse_port))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The listening sockets of one server, bound; each loop's handles come
/// from [`Sockets::for_loop`].
#[derive(Debug)]
pub(crate) struct Sockets {
    main: TcpListener,
    tls: Option<TcpListener>,
    admin: Option<TcpListener>,
    quic: Option<UdpSocket>,
    reuse_port: bool,
    loops: usize,
}

/// One loop's handles on the server's sockets.
#[derive(Debug)]
pub(crate) struct LoopSockets {
    pub(super) main: mio::net::TcpListener,
    pub(super) tls: Option<mio::net::TcpListener>,
    /// The first loop's only.
    pub(super) admin: Option<mio::net::TcpListener>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))] // HTTP/3 comes with TLS
    pub(super) quic: Option<UdpSocket>,
    /// The loops serve the same sockets (several loops, no
    /// `SO_REUSEPORT`): connections are handed out in turn, and QUIC
    /// datagrams routed among the loops whatever loop read them.
    pub(super) shared: bool,
}

impl Sockets {
    /// Binds every socket `config` asks for, for a server of `loops`
    /// loops: the main listener, the TLS listener (with TLS and a
    /// `tls_addr`), the admin listener (with an `admin_addr`), and with
    /// HTTP/3 a UDP socket on the port number of the TLS listener (or of
    /// the main one, when it serves TLS). Port 0 picks a free port.
    pub(crate) fn bind(config: &Config, loops: usize) -> io::Result<Sockets> {
        let reuse_port = config.reuse_port;
        let main = tcp(config.addr, reuse_port, Role::Main)?;
        let tls = tls_addr(config)
            .map(|addr| tcp(addr, reuse_port, Role::Tls))
            .transpose()?;
        let admin = config
            .admin_addr
            .map(|addr| tcp(addr, reuse_port, Role::Admin))
            .transpose()?;
        let quic = if http3(config)? {
            let tcp_addr = tls.as_ref().unwrap_or(&main).local_addr()?;
            Some(udp(tcp_addr, reuse_port)?)
        } else {
            None
        };
        Ok(Sockets {
            main,
            tls,
            admin,
            quic,
            reuse_port,
            loops: loops.max(1),
        })
    }

    /// The main listener's address (the port chosen, for port 0).
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.main.local_addr()
    }

    /// The TLS listener's address, if there is one.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.tls.as_ref().map(TcpListener::local_addr).transpose()
    }

    /// Loop `index`'s handles: descriptors of the sockets themselves, or
    /// with `reuse_port` (for every loop but the first) sockets of its own
    /// bound beside them with `SO_REUSEPORT`. The admin listener is the
    /// first loop's alone.
    pub(crate) fn for_loop(&self, index: usize) -> io::Result<LoopSockets> {
        let own = index != 0 && self.reuse_port;
        let tcp_for = |listener: &TcpListener, role: Role| -> io::Result<mio::net::TcpListener> {
            let listener = if own {
                tcp(listener.local_addr()?, true, role)?
            } else {
                listener.try_clone()?
            };
            Ok(mio::net::TcpListener::from_std(listener))
        };
        let quic = match &self.quic {
            Some(socket) if own => Some(udp(socket.local_addr()?, true)?),
            Some(socket) => Some(socket.try_clone()?),
            None => None,
        };
        Ok(LoopSockets {
            main: tcp_for(&self.main, Role::Main)?,
            tls: self.tls.as_ref().map(|l| tcp_for(l, Role::Tls)).transpose()?,
            admin: match (&self.admin, index) {
                (Some(admin), 0) => Some(mio::net::TcpListener::from_std(admin.try_clone()?)),
                _ => None,
            },
            quic,
            shared: !self.reuse_port && self.loops > 1,
        })
    }
}

/// Where the TLS listener of its own goes, if the configuration has one
/// (and TLS to serve on it).
fn tls_addr(config: &Config) -> Option<SocketAddr> {
    #[cfg(feature = "tls")]
    return config.tls_addr.filter(|_| config.tls.is_some());
    #[cfg(not(feature = "tls"))]
    return {
        let _ = config;
        None
    };
}

/// Whether HTTP/3 is served; an error if it is asked for without TLS.
fn http3(config: &Config) -> io::Result<bool> {
    #[cfg(feature = "tls")]
    {
        if config.http3 && config.tls.is_none() {
            return Err(http3_needs_tls());
        }
        Ok(config.http3)
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = config;
        Ok(false)
    }
}

/// The error for HTTP/3 asked for without TLS.
#[cfg(feature = "tls")]
pub(super) fn http3_needs_tls() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "HTTP/3 needs TLS: set a certificate (Config::tls) or turn HTTP/3 off",
    )
}
