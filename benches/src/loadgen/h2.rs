//! HTTP/2 for the load generator (`--h2`): many streams on each of a few
//! connections, h2c with prior knowledge, with tether-h2's client
//! connection. Each stream is an RFC 8441 WebSocket (an extended CONNECT)
//! or an event stream (a GET); what a stream receives is handed to the
//! mode as it comes, and released at once, so the server's windows never
//! wait for the load generator.

use std::io::{self, Read as _, Write as _};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tether_frame::OpCode;
use tether_h2::ErrorCode;
use tether_h2::client::{ClientConnection, Config, Event as H2Event};
use tether_h2::hpack::Field;

use super::conn::{Dial, Kind};
use super::echoes;
use super::report::{self, Report};
use super::wire::{self, EventReader};

/// Tokens of HTTP/2 connections start here, above those of HTTP/1.1
/// connections in the same poll.
pub const TOKEN_BASE: usize = 1 << 24;

/// One HTTP/2 connection and its streams, numbered 0.. in the order they
/// were opened (stream identifiers 1, 3, 5...).
#[derive(Debug)]
pub struct H2Conn {
    /// The socket, registered for reading and writing (edge-triggered).
    pub stream: TcpStream,
    h2: ClientConnection,
    /// Received, not yet taken by the HTTP/2 connection.
    input: Vec<u8>,
    /// Output the socket has not taken yet, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Each stream's bytes waiting for window.
    pending: Vec<Vec<u8>>,
    /// Streams to open, opened, and answered 200.
    want: usize,
    opened: usize,
    answered: usize,
    kind: Kind,
    target: String,
    authority: String,
}

impl H2Conn {
    /// The stream's index from its identifier.
    fn index(id: u32) -> usize {
        (id as usize - 1) / 2
    }

    /// Opens the streams the server's limit allows, up to `want`.
    fn open_streams(&mut self) -> io::Result<()> {
        // An extended CONNECT waits for the server's SETTINGS to allow it.
        if self.kind == Kind::WebSocket && !self.h2.settings_received() {
            return Ok(());
        }
        while self.opened < self.want && self.h2.can_open() {
            let mut fields = vec![Field::new(
                ":method",
                if self.kind == Kind::WebSocket {
                    "CONNECT"
                } else {
                    "GET"
                },
            )];
            if self.kind == Kind::WebSocket {
                fields.push(Field::new(":protocol", "websocket"));
            }
            fields.push(Field::new(":scheme", "http"));
            fields.push(Field::new(":path", self.target.as_str()));
            fields.push(Field::new(":authority", self.authority.as_str()));
            match self.kind {
                Kind::WebSocket => fields.push(Field::new("sec-websocket-version", "13")),
                Kind::EventStream => fields.push(Field::new("accept", "text/event-stream")),
            }
            let end = self.kind == Kind::EventStream;
            self.h2
                .open_stream(&fields, end, &mut self.out)
                .map_err(|e| io::Error::other(format!("open a stream: {e}")))?;
            self.opened += 1;
        }
        Ok(())
    }

    /// Reads what the socket has, hands each stream's bytes to `on_data`
    /// (stream index, bytes) and writes what the connection answers.
    /// Fails on a connection error, a reset stream or a refusal.
    pub fn on_readable(&mut self, rbuf: &mut [u8], on_data: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        let mut closed = false;
        loop {
            match self.stream.read(rbuf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&rbuf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut events = Vec::new();
        let used = self.h2.receive(&self.input, &mut self.out, &mut events);
        self.input.drain(..used);
        for event in events {
            match event {
                H2Event::Settings => self.open_streams()?,
                H2Event::Response { status, stream, .. } => {
                    if status != 200 {
                        return Err(io::Error::other(format!("stream {stream} answered {status}")));
                    }
                    self.answered += 1;
                }
                H2Event::Data { stream, data, .. } => {
                    self.h2.release(stream, data.len(), &mut self.out);
                    on_data(Self::index(stream), &data);
                }
                H2Event::WindowOpened { stream: 0 } => {
                    for i in 0..self.pending.len() {
                        self.send_pending(i);
                    }
                }
                H2Event::WindowOpened { stream } => self.send_pending(Self::index(stream)),
                H2Event::Reset { stream, code, .. } => {
                    return Err(io::Error::other(format!("stream {stream} reset: {code}")));
                }
                H2Event::ConnectionError(e) => return Err(io::Error::other(e.to_string())),
                H2Event::GoAway { code, .. } => {
                    return Err(io::Error::other(format!("GOAWAY from the server: {code}")));
                }
                _ => {}
            }
        }
        self.flush()?;
        if closed {
            return Err(io::Error::other("closed by the server"));
        }
        Ok(())
    }

    /// Sends `bytes` on stream `index`, keeping what the windows do not
    /// take for later.
    pub fn send(&mut self, index: usize, bytes: &[u8]) -> io::Result<()> {
        let Some(pending) = self.pending.get_mut(index) else {
            return Err(io::Error::other(format!("no stream {index}")));
        };
        if pending.is_empty() {
            let id = 1 + 2 * index as u32;
            let sent = self
                .h2
                .send_data(id, bytes, false, &mut self.out)
                .map_err(|e| io::Error::other(e.to_string()))?;
            pending.extend_from_slice(&bytes[sent..]);
        } else {
            pending.extend_from_slice(bytes);
        }
        self.flush()
    }

    fn send_pending(&mut self, index: usize) {
        let Some(pending) = self.pending.get_mut(index) else {
            return;
        };
        if pending.is_empty() {
            return;
        }
        let id = 1 + 2 * index as u32;
        if let Ok(sent) = self.h2.send_data(id, pending, false, &mut self.out) {
            pending.drain(..sent);
        }
    }

    /// Writes queued output until the socket refuses.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Ends the connection politely.
    pub fn go_away(&mut self) {
        self.h2.go_away(ErrorCode::NO_ERROR, &mut self.out);
        let _ = self.flush();
    }
}

/// Opens `streams` streams of `kind` to `target`, `per_conn` on each
/// connection (so `streams / per_conn` connections, rounded up), and waits
/// until every one is answered 200. Connection `i` gets token
/// `TOKEN_BASE + i`; stream `s` of the run is stream `s % per_conn` of
/// connection `s / per_conn`.
pub fn connect_all(
    poll: &mut Poll,
    dial: &Dial,
    kind: Kind,
    target: &str,
    streams: usize,
    per_conn: usize,
) -> io::Result<Vec<H2Conn>> {
    if dial.tls.is_some() || dial.half_tls.is_some() {
        return Err(io::Error::other(
            "--h2 speaks h2c (prior knowledge) only: give --addr without TLS",
        ));
    }
    let per_conn = per_conn.max(1);
    let config = Config {
        initial_window_size: 8 << 20,
        connection_window: 64 << 20,
        max_queued_acks: u32::MAX,
        ..Config::default()
    };
    let mut conns = Vec::new();
    let mut left = streams;
    while left > 0 {
        let want = left.min(per_conn);
        left -= want;
        let std = std::net::TcpStream::connect_timeout(&dial.addr, dial.timeout)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std);
        poll.registry().register(
            &mut stream,
            Token(TOKEN_BASE + conns.len()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut out = Vec::new();
        let h2 = ClientConnection::new(config, &mut out).map_err(|e| io::Error::other(e.to_string()))?;
        let mut conn = H2Conn {
            stream,
            h2,
            input: Vec::new(),
            out,
            out_pos: 0,
            pending: vec![Vec::new(); want],
            want,
            opened: 0,
            answered: 0,
            kind,
            target: target.to_owned(),
            authority: dial.host.clone(),
        };
        // Event streams need not wait for the server's SETTINGS.
        if kind == Kind::EventStream {
            conn.open_streams()?;
        }
        conn.flush()?;
        conns.push(conn);
    }
    let deadline = Instant::now() + dial.timeout;
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    let mut early = 0usize;
    while conns.iter().any(|c| c.answered < c.want) {
        let now = Instant::now();
        if now >= deadline {
            let answered: usize = conns.iter().map(|c| c.answered).sum();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "only {answered} of {streams} HTTP/2 streams open in {:?}",
                    dial.timeout
                ),
            ));
        }
        poll.poll(
            &mut events,
            Some((deadline - now).min(Duration::from_millis(100))),
        )?;
        for event in events.iter() {
            let Some(conn) = event
                .token()
                .0
                .checked_sub(TOKEN_BASE)
                .and_then(|i| conns.get_mut(i))
            else {
                continue;
            };
            conn.on_readable(&mut rbuf, &mut |_, data| early += data.len())?;
            conn.open_streams()?;
            conn.flush()?;
        }
    }
    if kind == Kind::WebSocket && early > 0 {
        return Err(io::Error::other("the server sent data before the first message"));
    }
    Ok(conns)
}

/// Echo over HTTP/2: `opts.connections` WebSockets, `per_conn` to a
/// connection; each sends a message, waits for its echo, and sends again.
pub fn echo(opts: &echoes::Options, per_conn: usize) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut conns = connect_all(
        &mut poll,
        &opts.dial,
        Kind::WebSocket,
        &opts.target,
        opts.connections,
        per_conn,
    )?;
    if opts.child {
        report::wait_for_start()?;
    }
    let body = echoes::payload(opts.size);
    let opcode = if opts.binary { OpCode::Binary } else { OpCode::Text };
    let frame = wire::frame(opcode, &body);
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut pong = Vec::with_capacity(256);
    let mut hist = report::latency_histogram();
    let mut problems = Vec::new();

    let start = Instant::now();
    let total = opts.connections;
    let mut readers: Vec<EventReader> = (0..total).map(|_| EventReader::new()).collect();
    let mut sent_at = vec![start; total];
    let mut mismatch = vec![false; total];
    for (c, conn) in conns.iter_mut().enumerate() {
        for s in 0..conn.want {
            sent_at[c * per_conn + s] = Instant::now();
            conn.send(s, &frame)?;
        }
    }

    let mut clock = echoes::Measure::new(start, opts);
    let mut count = 0u64;
    let mut events = Events::with_capacity(1024);
    while let Some(wait) = clock.next(&mut count, &mut hist)? {
        poll.poll(&mut events, Some(wait))?;
        let now = Instant::now();
        for event in events.iter() {
            let c = event.token().0 - TOKEN_BASE;
            let conn = &mut conns[c];
            // Echoes complete per stream; answers are sent after the read.
            let mut done: Vec<usize> = Vec::new();
            let mut pongs: Vec<(usize, Vec<u8>)> = Vec::new();
            let mut failure = None;
            conn.on_readable(&mut rbuf, &mut |s, data| {
                let i = c * per_conn + s;
                pong.clear();
                match echoes::take_echoes(&mut readers[i], data, &mut mismatch[i], &body, opts, &mut pong) {
                    Ok(0) => {}
                    Ok(1) => done.push(s),
                    Ok(n) => failure = Some(format!("stream {i}: {n} echoes for one message sent")),
                    Err(e) => failure = Some(format!("stream {i}: {e}")),
                }
                if !pong.is_empty() {
                    pongs.push((s, pong.clone()));
                }
            })
            .map_err(|e| io::Error::new(e.kind(), format!("connection {c}: {e}")))?;
            if let Some(why) = failure {
                return Err(io::Error::other(why));
            }
            for (s, bytes) in pongs {
                conn.send(s, &bytes)?;
            }
            for s in done {
                let i = c * per_conn + s;
                if mismatch[i] {
                    problems.push(format!("stream {i}: echoed bytes differ from those sent"));
                    mismatch[i] = false;
                }
                report::record(&mut hist, now - sent_at[i]);
                count += 1;
                sent_at[i] = now;
                conn.send(s, &frame)?;
            }
            if event.is_writable() {
                conn.flush()?;
            }
        }
    }
    for conn in &mut conns {
        conn.go_away();
    }
    let what = format!(
        "echo over h2: {} streams on {} conns",
        opts.connections,
        conns.len()
    );
    echoes::finish(opts, clock, count, &hist, problems, &what, Some(conns.len()))
}
