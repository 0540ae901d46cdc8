//! Client connections: opening many at once (TCP connect, the TLS
//! handshake for `wss://` and `https://`, then the WebSocket upgrade or the
//! event-stream request), and the I/O primitives every mode uses, the same
//! over plain TCP and over TLS.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tether_handshake::{ClientHandshake, ClientRequest};
use tether_http1::{EMPTY_HEADER, Limits, ResponseHead, Status};

use super::report::ConnectFailures;
use super::sources;
use super::tls::{self, Tls};
use super::wire::EventReader;

/// The longest response head taken.
const MAX_HEAD: usize = 64 * 1024;

/// What a connection speaks once open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A WebSocket (upgrade request, then frames).
    WebSocket,
    /// A Server-Sent Events stream (GET, then a `text/event-stream` body).
    EventStream,
}

/// `count` connections of one kind to one request target.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// What they speak.
    pub kind: Kind,
    /// The request target: path and query.
    pub target: &'a str,
    /// How many.
    pub count: usize,
    /// WebSockets only: offer permessage-deflate
    /// (`permessage-deflate; client_max_window_bits`).
    pub deflate: bool,
}

/// The permessage-deflate offer of a [`Group`] with `deflate`.
const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// How to open connections.
#[derive(Clone, Debug)]
pub struct Dial {
    /// The server.
    pub addr: SocketAddr,
    /// The `Host` header: the host and port as given.
    pub host: String,
    /// TLS over each connection (`wss://` or `https://`), else plain TCP.
    pub tls: Option<Tls>,
    /// Most handshakes in progress at once, so that a burst of thousands of
    /// connects does not overflow the server's listen backlog.
    pub concurrency: usize,
    /// All connections must be open by then.
    pub timeout: Duration,
    /// Local addresses the connections are bound to, in turn
    /// ([`super::sources`]); empty: the kernel picks.
    pub sources: Vec<IpAddr>,
    /// A TLS listener beside `addr` (plain): every second connection (the
    /// odd ones) goes there over TLS instead.
    pub half_tls: Option<TlsListener>,
}

/// A server's TLS address, for [`Dial::half_tls`].
#[derive(Clone, Debug)]
pub struct TlsListener {
    /// Its address.
    pub addr: SocketAddr,
    /// The `Host` header for it: the host and port as given.
    pub host: String,
    /// The TLS client configuration.
    pub tls: Tls,
}

impl Dial {
    /// Where the `index`-th connection goes: its address, `Host` header
    /// and TLS, if any.
    fn route(&self, index: usize) -> (SocketAddr, &str, Option<&Tls>) {
        match self.half_tls.as_ref().filter(|_| index % 2 == 1) {
            Some(other) => (other.addr, other.host.as_str(), Some(&other.tls)),
            None => (self.addr, self.host.as_str(), self.tls.as_ref()),
        }
    }
}

/// An open connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket, registered for reading and writing (edge-triggered, so
    /// the standing write interest costs nothing until a write is refused).
    pub stream: TcpStream,
    /// What it speaks.
    pub kind: Kind,
    /// Reader state for WebSocket frames (unused on an event stream).
    pub ws: EventReader,
    /// permessage-deflate, when the server accepted it: what inflates the
    /// messages that come compressed (RSV1).
    pub deflate: Option<Box<tether_deflate::Deflate>>,
    /// Bytes that arrived with the handshake response and belong to the
    /// stream after it; a mode feeds them before anything it reads.
    pub leftover: Vec<u8>,
    /// Output the socket (or, over TLS, rustls) has not taken yet. Empty,
    /// with no capacity, unless the socket has pushed back.
    out: Vec<u8>,
    out_pos: usize,
    /// The TLS session, when there is one: rustls encrypts what is sent
    /// and holds the records the socket has not taken (at most its buffer
    /// limit, 64 KiB; the rest waits in `out`), and decrypts what is read.
    tls: Option<Box<rustls::ClientConnection>>,
    setup: Option<Box<Setup>>,
}

/// The state of a connection being opened.
#[derive(Debug)]
struct Setup {
    connected: bool,
    request: Vec<u8>,
    /// `None` for an event stream.
    handshake: Option<ClientHandshake>,
    head: Vec<u8>,
}

/// What one read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `len` bytes; `more` when they filled the buffer, so the socket may
    /// hold more. A short read drained the socket: with edge-triggered
    /// readiness the next arrival wakes the loop again, so there is no need
    /// to spend a system call on the read that would return `WouldBlock`.
    Data {
        /// Bytes read.
        len: usize,
        /// Whether to read again.
        more: bool,
    },
    /// Nothing to read now.
    Empty,
    /// The server closed the connection.
    Closed,
}

impl Conn {
    /// Writes `bytes`, or queues what the socket does not take now (to be
    /// written by [`Conn::flush`] when it becomes writable). Output always
    /// leaves in order.
    #[inline]
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // The common case, inline in the caller's loop: nothing queued, no
        // TLS, and the socket takes it all in one write.
        if self.out_pos >= self.out.len()
            && self.tls.is_none()
            && let Ok(n) = self.stream.write(bytes)
        {
            return match bytes.get(n..) {
                Some([]) => Ok(()),
                Some(rest) if n > 0 => self.send_slow(rest),
                _ => Err(io::ErrorKind::WriteZero.into()),
            };
        }
        self.send_slow(bytes)
    }

    /// [`Conn::send`] in full: queue behind earlier output, TLS, partial
    /// and refused writes.
    #[inline(never)]
    fn send_slow(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.out_pos < self.out.len() {
            self.out.extend_from_slice(bytes);
            return Ok(());
        }
        let written = if self.tls.is_some() {
            self.tls_write(bytes)?
        } else {
            self.plain_write(bytes)?
        };
        if written < bytes.len() {
            self.out.clear();
            self.out_pos = 0;
            self.out.extend_from_slice(&bytes[written..]);
        }
        Ok(())
    }

    /// Writes to the socket until done or refused; how much it took.
    fn plain_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Hands `bytes` to rustls and writes its records out, until all are
    /// written or the socket refuses; how much of `bytes` rustls took.
    fn tls_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let tls = self.tls.as_mut().expect("a TLS connection");
        let mut taken = 0;
        loop {
            let before = taken;
            if taken < bytes.len() {
                // Takes less than offered once its buffer limit is reached.
                taken += tls.writer().write(&bytes[taken..])?;
            }
            let had_records = tls.wants_write();
            if tls::write_records(tls, &mut self.stream)? {
                return Ok(taken);
            }
            if taken == bytes.len() || (taken == before && !had_records) {
                // Done, or rustls holds the bytes back until its handshake
                // is done (a later read or flush moves them along).
                return Ok(taken);
            }
        }
    }

    /// Writes queued output until done or refused.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.tls.is_some() {
            let out = std::mem::take(&mut self.out);
            let taken = self.tls_write(&out[self.out_pos..]);
            self.out = out;
            self.out_pos += taken?;
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
            }
            return Ok(());
        }
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(())
    }

    /// Whether output is waiting for the socket.
    pub fn has_pending_output(&self) -> bool {
        self.out_pos < self.out.len() || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// One read into `buf`.
    #[inline]
    pub fn read_into(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        if self.tls.is_some() {
            return self.tls_read(buf);
        }
        loop {
            return match self.stream.read(buf) {
                Ok(0) => Ok(ReadOutcome::Closed),
                Ok(len) => Ok(ReadOutcome::Data {
                    len,
                    more: len == buf.len(),
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::Empty),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    /// Plaintext into `buf`: what rustls has decrypted already, else what
    /// it decrypts from the socket's next records. `Data` always says
    /// `more`, since rustls may hold more than `buf` took; the call that
    /// finds the socket drained returns `Empty`.
    fn tls_read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let tls = self.tls.as_mut().expect("a TLS connection");
        loop {
            match tls.reader().read(buf) {
                // A close_notify.
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(len) => return Ok(ReadOutcome::Data { len, more: true }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without a close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadOutcome::Closed),
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Empty),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let processed = tls.process_new_packets();
            // Handshake messages, or the alert that reports an error.
            let written = tls::write_records(tls, &mut self.stream);
            processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")))?;
            written?;
        }
    }
}

/// A small xorshift generator for handshake nonces: the server only checks
/// that the key is 16 bytes of base64, and a load generator needs no
/// unpredictability.
#[derive(Debug)]
struct Nonces(u64);

impl Nonces {
    fn next(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for half in out.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            half.copy_from_slice(&self.0.to_le_bytes());
        }
        out
    }
}

/// Opens every connection the groups ask for, in order (token `i` is the
/// `i`-th connection), and completes each one's handshake. A connection
/// that cannot be opened is counted by its cause ([`cause_of`]) and the
/// others go on; at the end (or at the deadline) any failure makes the
/// result an error carrying the counts, a [`ConnectFailures`]
/// ([`super::report::connect_failures`] finds it), rather than the first error
/// alone: out of source ports reads differently from refused or reset.
pub fn connect_all(poll: &mut Poll, dial: &Dial, groups: &[Group<'_>]) -> io::Result<Vec<Conn>> {
    let total: usize = groups.iter().map(|g| g.count).sum();
    let deadline = Instant::now() + dial.timeout;
    let mut nonces = Nonces(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    // `None`: failed (token `i` stays the `i`-th connection).
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(total);
    let mut plan = groups
        .iter()
        .flat_map(|g| std::iter::repeat_n((g.kind, g.target, g.deflate), g.count));
    let mut in_progress = 0usize;
    let mut open = 0usize;
    let mut failures = ConnectFailures {
        wanted: total as u64,
        ..ConnectFailures::default()
    };
    let mut events = Events::with_capacity(1024);
    while open + (failures.failed() as usize) < total {
        while in_progress < dial.concurrency.max(1) && conns.len() < total {
            let Some((kind, target, deflate)) = plan.next() else {
                break;
            };
            let i = conns.len();
            match start(poll, dial, i, kind, target, deflate, &mut nonces) {
                Ok(conn) => {
                    conns.push(Some(conn));
                    in_progress += 1;
                }
                Err(e) => {
                    failures.count(&cause_of(&e), || format!("connection {i}: {e}"));
                    conns.push(None);
                }
            }
        }
        let now = Instant::now();
        if now >= deadline {
            let why = || format!("only {open} of {total} connections open in {:?}", dial.timeout);
            let still_opening = conns.iter().flatten().filter(|c| c.setup.is_some()).count();
            failures.add("timeout", still_opening as u64, why);
            failures.add("not_started", (total - conns.len()) as u64, why);
            break;
        }
        if in_progress == 0 {
            // Every connection started has failed or opened, and none is
            // left to start: nothing to wait for.
            continue;
        }
        poll.poll(
            &mut events,
            Some((deadline - now).min(Duration::from_millis(100))),
        )?;
        for event in events.iter() {
            let i = event.token().0;
            // Connections of another kind may share the poll (HTTP/2
            // subscribers, opened first under tokens of their own): what
            // they read is read on their next readiness.
            let Some(slot) = conns.get_mut(i) else {
                continue;
            };
            let Some(conn) = slot else {
                continue;
            };
            if conn.setup.is_none() {
                // Already open: the mode reads whatever this was about.
                continue;
            }
            match advance(conn) {
                Ok(true) => {
                    in_progress -= 1;
                    open += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    failures.count(&cause_of(&e), || format!("connection {i}: {e}"));
                    in_progress -= 1;
                    if let Some(mut failed) = slot.take() {
                        let _ = poll.registry().deregister(&mut failed.stream);
                    }
                }
            }
        }
    }
    failures.opened = open as u64;
    if failures.failed() > 0 {
        return Err(io::Error::other(failures));
    }
    Ok(conns.into_iter().flatten().collect())
}

/// Starts the `i`-th connection: the connect, registered with the poll,
/// and its request ready to send once connected.
fn start(
    poll: &mut Poll,
    dial: &Dial,
    i: usize,
    kind: Kind,
    target: &str,
    deflate: bool,
    nonces: &mut Nonces,
) -> io::Result<Conn> {
    let (addr, host, tls) = dial.route(i);
    let mut stream = sources::connect(addr, sources::source_of(&dial.sources, i))?;
    stream.set_nodelay(true)?;
    poll.registry()
        .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
    let mut request = Vec::with_capacity(256);
    let handshake = match kind {
        Kind::WebSocket => {
            let mut upgrade = ClientRequest::new(host, target, nonces.next());
            if deflate {
                upgrade = upgrade.extensions(DEFLATE_OFFER);
            }
            Some(
                upgrade
                    .write(&mut request)
                    .map_err(|e| io::Error::other(format!("bad request for {target}: {e:?}")))?,
            )
        }
        Kind::EventStream => {
            request.extend_from_slice(
                format!(
                    "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\
                     Cache-Control: no-cache\r\n\r\n"
                )
                .as_bytes(),
            );
            None
        }
    };
    let tls = match tls {
        Some(tls) => Some(Box::new(tls.connect()?)),
        None => None,
    };
    Ok(Conn {
        stream,
        kind,
        ws: EventReader::new(),
        deflate: None,
        leftover: Vec::new(),
        out: Vec::new(),
        out_pos: 0,
        tls,
        setup: Some(Box::new(Setup {
            connected: false,
            request,
            handshake,
            head: Vec::new(),
        })),
    })
}

/// The cause a connection's failure is counted under in
/// [`ConnectFailures`] (its documentation lists them).
pub fn cause_of(e: &io::Error) -> String {
    if let Some(refusal) = e.get_ref().and_then(|r| r.downcast_ref::<Refusal>()) {
        return format!("status_{}", refusal.status);
    }
    let cause = match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL | libc::EADDRINUSE) => "source_ports",
        Some(libc::ECONNREFUSED) => "refused",
        Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED) => "reset",
        Some(libc::ETIMEDOUT) => "timeout",
        Some(libc::EMFILE | libc::ENFILE) => "open_files",
        _ => match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => "reset",
            io::ErrorKind::ConnectionRefused => "refused",
            io::ErrorKind::TimedOut => "timeout",
            io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => "source_ports",
            _ => "other",
        },
    };
    cause.to_owned()
}

/// A server's answer that refused the upgrade or the event stream with an
/// HTTP status: counted under `status_NNN`.
#[derive(Debug)]
struct Refusal {
    status: u16,
    message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// Moves a connection's setup along; true once it is open.
fn advance(conn: &mut Conn) -> io::Result<bool> {
    let setup = conn.setup.as_mut().expect("a connection being set up");
    if !setup.connected {
        // mio's contract for a non-blocking connect: a writable (or error)
        // event, then take_error and peer_addr tell whether it worked.
        if let Some(e) = conn.stream.take_error()? {
            return Err(e);
        }
        match conn.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(e),
        }
        setup.connected = true;
        let request = std::mem::take(&mut setup.request);
        conn.send(&request)?;
    }
    conn.flush()?;
    let mut buf = [0u8; 4096];
    loop {
        match conn.read_into(&mut buf)? {
            ReadOutcome::Data { len, more } => {
                let setup = conn.setup.as_mut().expect("a connection being set up");
                setup.head.extend_from_slice(&buf[..len]);
                // What follows a complete head (a stream's first events, a
                // whole replay) may be longer than any head.
                if setup.head.len() > MAX_HEAD && !setup.head[..MAX_HEAD].windows(4).any(|w| w == b"\r\n\r\n")
                {
                    return Err(io::Error::other(format!("response head over {MAX_HEAD} bytes")));
                }
                if !more {
                    break;
                }
            }
            ReadOutcome::Empty => break,
            ReadOutcome::Closed => {
                let setup = conn.setup.as_ref().expect("a connection being set up");
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed during the handshake; got {:?}",
                        String::from_utf8_lossy(&setup.head)
                    ),
                ));
            }
        }
    }
    // Over TLS, the request waits in rustls until its handshake is done.
    conn.flush()?;
    let setup = conn.setup.as_ref().expect("a connection being set up");
    let used = match &setup.handshake {
        Some(handshake) => match upgrade_head(handshake, &setup.head)? {
            Some((used, params)) => {
                conn.deflate = params.map(|p| Box::new(tether_deflate::ClientOffer::new().extension(p)));
                used
            }
            None => return Ok(false),
        },
        None => match event_stream_head(&setup.head)? {
            Some(used) => used,
            None => return Ok(false),
        },
    };
    let setup = conn.setup.take().expect("a connection being set up");
    conn.leftover = setup.head[used..].to_vec();
    Ok(true)
}

/// Parses a response head with tether-http1; `None` while incomplete.
fn with_head<T>(
    buf: &[u8],
    check: impl FnOnce(&ResponseHead<'_, '_>, usize) -> io::Result<T>,
) -> io::Result<Option<T>> {
    let mut headers = [EMPTY_HEADER; 32];
    let limits = Limits::new().max_head(MAX_HEAD);
    match tether_http1::parse_response(buf, &mut headers, "GET", &limits) {
        Ok(Status::Complete((head, used))) => check(&head, used).map(Some),
        Ok(Status::Partial) => Ok(None),
        Err(e) => Err(io::Error::other(format!(
            "bad response head ({e}): {:?}",
            String::from_utf8_lossy(buf)
        ))),
    }
}

/// Checks the response to a WebSocket upgrade; `Some(length)` once it is
/// complete and accepted, with the permessage-deflate parameters if the
/// server accepted the offer. tether-http1 reads the head;
/// tether-handshake then checks what RFC 6455 asks of it (101, `Upgrade`,
/// `Connection`, `Sec-WebSocket-Accept`, extensions offered).
fn upgrade_head(
    handshake: &ClientHandshake,
    buf: &[u8],
) -> io::Result<Option<(usize, Option<tether_deflate::Params>)>> {
    with_head(buf, |head, used| {
        let refuse = |why: String| {
            io::Error::other(format!(
                "upgrade refused ({why}): {:?}",
                String::from_utf8_lossy(&buf[..used])
            ))
        };
        if head.status() != 101 {
            return Err(io::Error::other(Refusal {
                status: head.status(),
                message: refuse(format!("status {} {}", head.status(), head.reason())).to_string(),
            }));
        }
        match handshake.validate_response(&buf[..used]) {
            Ok(tether_handshake::Status::Complete((response, n))) if n == used => {
                let offers = [tether_deflate::ClientOffer::new()];
                let params = tether_deflate::accept_response(&offers, response.extensions())
                    .map_err(|e| refuse(format!("permessage-deflate: {e}")))?;
                Ok((used, params))
            }
            Ok(_) => Err(refuse("the head's end is unclear".to_owned())),
            Err(e) => Err(refuse(format!("{e}"))),
        }
    })
}

/// Checks the head of an event-stream response; `Some(length)` once it is
/// complete and acceptable.
fn event_stream_head(buf: &[u8]) -> io::Result<Option<usize>> {
    with_head(buf, |head, used| {
        let refuse = |why: &str| {
            io::Error::other(format!(
                "event stream refused ({why}): {:?}",
                String::from_utf8_lossy(&buf[..used])
            ))
        };
        if head.status() != 200 {
            return Err(io::Error::other(Refusal {
                status: head.status(),
                message: refuse("status").to_string(),
            }));
        }
        if !head
            .header("content-type")
            .is_some_and(|v| v.starts_with(b"text/event-stream"))
        {
            return Err(refuse("content type"));
        }
        if head.header("transfer-encoding").is_some() {
            // The body would be chunked: this reader takes a raw stream only.
            return Err(refuse("transfer-encoding is not supported"));
        }
        Ok(used)
    })
}

#[cfg(test)]
mod tests;
