//! HTTP/3 for the load generator (`--h3`): many event streams on each of
//! a few QUIC connections, each connection on a UDP socket of its own,
//! with tether-quic's client connection ([`QuicClient`]). What a stream
//! receives is handed to the mode as it comes; QUIC's flow control
//! credit is returned as soon as it is read, so the server's windows
//! never wait for the load generator.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use tether_h2::hpack::Field;
use tether_quic::{ClientEvent, QuicClient, Transmit};

use super::conn::Dial;

/// How many bytes of a stream the server may send ahead of what was
/// read: far more than one fan-out burst.
const STREAM_WINDOW: u32 = 1 << 20;

/// The largest UDP datagram a socket is read into.
const MAX_DATAGRAM: usize = 65_536;

/// One HTTP/3 connection and its event streams, numbered 0.. in the order
/// they were opened (stream IDs 0, 4, 8...).
#[derive(Debug)]
pub struct H3Conn {
    socket: UdpSocket,
    quic: QuicClient,
    /// A datagram the socket refused, to send first when it is writable.
    blocked: Option<(Transmit, Vec<u8>)>,
    /// Streams to open, opened, and answered 200.
    want: usize,
    opened: usize,
    answered: usize,
    target: String,
    authority: String,
}

impl H3Conn {
    /// The stream's index from its ID.
    fn index(stream: u64) -> usize {
        usize::try_from(stream / 4).unwrap_or(usize::MAX)
    }

    /// Opens the streams the server's limit allows, up to `want`.
    fn open_streams(&mut self) -> io::Result<()> {
        while self.opened < self.want && self.quic.is_connected() {
            let fields = [
                Field::new(":method", "GET"),
                Field::new(":scheme", "https"),
                Field::new(":authority", self.authority.as_str()),
                Field::new(":path", self.target.as_str()),
                Field::new("accept", "text/event-stream"),
            ];
            match self.quic.request(&fields, b"", true) {
                Ok(_) => self.opened += 1,
                // The server's stream limit: the rest wait for room.
                Err(tether_quic::ClientError::NoStream) => break,
                Err(e) => return Err(io::Error::other(format!("open a stream: {e}"))),
            }
        }
        Ok(())
    }

    /// Reads the datagrams the socket has, then does what they call for.
    pub fn on_readable(&mut self, rbuf: &mut [u8], on_data: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        loop {
            match self.socket.recv_from(rbuf) {
                Ok((n, from)) => {
                    let datagram = rbuf.get(..n).unwrap_or_default();
                    self.quic.handle_datagram(Instant::now(), from, datagram);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.drive(on_data)
    }

    /// Runs the connection's timers that are due (retransmissions,
    /// delayed acknowledgements).
    pub fn on_timers(&mut self, now: Instant, on_data: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        if self.quic.next_timeout().is_some_and(|at| at <= now) {
            self.quic.handle_timeout(now);
            self.drive(on_data)?;
        }
        Ok(())
    }

    /// When [`H3Conn::on_timers`] is due next.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.quic.next_timeout()
    }

    /// Hands each stream's bytes to `on_data` (stream index, bytes) and
    /// sends what the connection has to send. Fails on a closed
    /// connection, a reset stream, a status other than 200 or a GOAWAY.
    fn drive(&mut self, on_data: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        let mut events = Vec::new();
        self.quic.poll_events(Instant::now(), &mut events);
        for event in events {
            match event {
                ClientEvent::Connected => self.open_streams()?,
                ClientEvent::Response { stream, status, .. } => {
                    if status != 200 {
                        return Err(io::Error::other(format!("stream {stream} answered {status}")));
                    }
                    self.answered += 1;
                }
                ClientEvent::Data { stream, data } => on_data(Self::index(stream), &data),
                ClientEvent::Finished { stream } => {
                    return Err(io::Error::other(format!("stream {stream} ended by the server")));
                }
                ClientEvent::Reset { stream, code } => {
                    return Err(io::Error::other(format!("stream {stream} reset: {code:#x}")));
                }
                ClientEvent::Goaway(id) => {
                    return Err(io::Error::other(format!("GOAWAY from the server at stream {id}")));
                }
                ClientEvent::Closed(why) => return Err(io::Error::other(format!("closed: {why}"))),
                ClientEvent::Trailers { .. } => {}
            }
        }
        // Streams that found no room at first are opened as others end
        // (none do in a fan-out, but the server's limit may be below K).
        self.open_streams()?;
        self.flush()
    }

    /// Sends the connection's datagrams until it has none or the socket
    /// refuses.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some((transmit, bytes)) = self.blocked.take()
            && !self.send(&transmit, &bytes)?
        {
            self.blocked = Some((transmit, bytes));
            return Ok(());
        }
        let mut buf = Vec::with_capacity(1500);
        while let Some(transmit) = self.quic.poll_transmit(Instant::now(), 1, &mut buf) {
            if !self.send(&transmit, &buf)? {
                self.blocked = Some((transmit, std::mem::take(&mut buf)));
                break;
            }
        }
        Ok(())
    }

    /// Sends one datagram: false if the socket is full.
    fn send(&self, transmit: &Transmit, bytes: &[u8]) -> io::Result<bool> {
        let datagram = bytes.get(..transmit.size).unwrap_or(bytes);
        loop {
            match self.socket.send_to(datagram, transmit.destination) {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Ends the connection politely.
    pub fn go_away(&mut self) {
        self.quic.close(Instant::now());
        let _ = self.flush();
    }
}

/// A UDP socket for a connection to `server`, of its address family,
/// with a receive buffer large enough for a fan-out burst.
fn bind(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(server),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // The kernel caps it at net.core.rmem_max; what it grants is enough
    // either way, this only asks for more than the default.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// Opens `streams` event streams to `target`, `per_conn` on each QUIC
/// connection (so `streams / per_conn` connections, rounded up), and waits
/// until every one is answered 200. Connection `i` gets token `base + i`;
/// stream `s` of the run is stream `s % per_conn` of connection
/// `s / per_conn`. The server's certificate is checked as over TCP (its
/// UDP port is the TLS port's number).
pub fn connect_all(
    poll: &mut Poll,
    dial: &Dial,
    base: usize,
    target: &str,
    streams: usize,
    per_conn: usize,
) -> io::Result<Vec<H3Conn>> {
    let per_conn = per_conn.max(1);
    let mut wants = Vec::new();
    let mut left = streams;
    while left > 0 {
        let want = left.min(per_conn);
        left -= want;
        wants.push(want);
    }
    connect(poll, dial, base, target, &wants)
}

/// Opens `connections` QUIC connections that open no request stream (an
/// HTTP/3 connection at rest: the handshake done, the control streams
/// exchanged), and waits until every one is connected.
pub fn connect_idle(
    poll: &mut Poll,
    dial: &Dial,
    base: usize,
    connections: usize,
) -> io::Result<Vec<H3Conn>> {
    connect(poll, dial, base, "", &vec![0; connections])
}

/// Opens a connection for each entry of `wants`, with that many event
/// streams to `target`, at most `dial.concurrency` handshakes at a time,
/// and waits until each is connected and its streams answered 200.
fn connect(
    poll: &mut Poll,
    dial: &Dial,
    base: usize,
    target: &str,
    wants: &[usize],
) -> io::Result<Vec<H3Conn>> {
    let Some(tls) = &dial.tls else {
        return Err(io::Error::other(
            "--h3 runs over QUIC, which carries TLS: give --addr as https://host:port",
        ));
    };
    let server_name = dial
        .host
        .rsplit_once(':')
        .map_or(dial.host.as_str(), |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let mut conns: Vec<H3Conn> = Vec::new();
    let deadline = Instant::now() + dial.timeout;
    let mut rbuf = vec![0u8; MAX_DATAGRAM];
    let mut events = Events::with_capacity(1024);
    let mut ignore = |_: usize, _: &[u8]| {};
    loop {
        // At most `dial.concurrency` handshakes in progress at once, as
        // over TCP.
        let handshaking = conns.iter().filter(|c| !c.quic.is_connected()).count();
        let room = dial.concurrency.max(1).saturating_sub(handshaking);
        for &want in wants.get(conns.len()..).unwrap_or_default().iter().take(room) {
            let mut socket = bind(dial.addr)?;
            poll.registry().register(
                &mut socket,
                Token(base + conns.len()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let quic =
                QuicClient::connect(&tls.config, dial.addr, server_name, STREAM_WINDOW, Instant::now())
                    .map_err(|e| io::Error::other(e.to_string()))?;
            let mut conn = H3Conn {
                socket,
                quic,
                blocked: None,
                want,
                opened: 0,
                answered: 0,
                target: target.to_owned(),
                authority: dial.host.clone(),
            };
            conn.flush()?;
            conns.push(conn);
        }
        if conns.len() == wants.len()
            && conns
                .iter()
                .all(|c| c.quic.is_connected() && c.answered >= c.want)
        {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            let connected = conns.iter().filter(|c| c.quic.is_connected()).count();
            let answered: usize = conns.iter().map(|c| c.answered).sum();
            let streams: usize = wants.iter().sum();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "only {connected} of {} QUIC connections and {answered} of {streams} HTTP/3 streams open in {:?}",
                    wants.len(),
                    dial.timeout
                ),
            ));
        }
        wait(poll, &mut conns, &mut events, deadline)?;
        for event in events.iter() {
            let Some(conn) = event.token().0.checked_sub(base).and_then(|i| conns.get_mut(i)) else {
                continue;
            };
            conn.on_readable(&mut rbuf, &mut ignore)?;
        }
        let now = Instant::now();
        for conn in &mut conns {
            conn.on_timers(now, &mut ignore)?;
        }
    }
    Ok(conns)
}

/// Polls until a socket is ready, the earliest QUIC timer, or `until`
/// (at most 100 ms).
fn wait(poll: &mut Poll, conns: &mut [H3Conn], events: &mut Events, until: Instant) -> io::Result<()> {
    let now = Instant::now();
    let timer = conns.iter_mut().filter_map(H3Conn::next_timeout).min();
    let wait = timer
        .map_or(until, |t| t.min(until))
        .saturating_duration_since(now)
        .min(Duration::from_millis(100));
    poll.poll(events, Some(wait))
}

/// Keeps `conns` (opened with token `base + i`) going for `period`:
/// datagrams read, acknowledged, timers run. Fails if a connection ends
/// or delivers stream bytes.
pub fn hold(poll: &mut Poll, conns: &mut [H3Conn], base: usize, period: Duration) -> io::Result<()> {
    let until = Instant::now() + period;
    let mut rbuf = vec![0u8; MAX_DATAGRAM];
    let mut events = Events::with_capacity(1024);
    let mut stray = 0usize;
    while Instant::now() < until {
        wait(poll, conns, &mut events, until)?;
        for event in events.iter() {
            let i = event.token().0.wrapping_sub(base);
            if let Some(conn) = conns.get_mut(i) {
                conn.on_readable(&mut rbuf, &mut |_, data| stray += data.len())
                    .map_err(|e| io::Error::new(e.kind(), format!("QUIC connection {i}: {e}")))?;
            }
        }
        let now = Instant::now();
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.on_timers(now, &mut |_, data| stray += data.len())
                .map_err(|e| io::Error::new(e.kind(), format!("QUIC connection {i}: {e}")))?;
        }
        if stray > 0 {
            return Err(io::Error::other(format!("{stray} bytes on idle connections")));
        }
    }
    Ok(())
}
