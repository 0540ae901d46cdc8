//! `floor`: the least a WebSocket echo server can do on this machine, as a
//! floor to measure real servers against. See `benches/README.md`.
//!
//! One thread, one mio (epoll) loop, edge-triggered. Each connection's
//! opening handshake is read and answered once (the request checked by
//! `tether-handshake`, `Sec-WebSocket-Accept` computed by it). After that,
//! per readable event: one `read` into one shared buffer, and for every
//! complete client frame in it, in place:
//!
//! - the 2-byte header (plus 2 or 8 bytes of extended length) is read, with
//!   no other check than "masked" and "at most 128 KiB";
//! - the payload is unmasked (`tether_frame::apply_mask`, word at a time);
//! - a server header (same first byte, so the same FIN, opcode and RSV
//!   bits; no mask) is written over the end of the client's header, right
//!   before the payload;
//! - the frames of one read are made contiguous (a `memmove`, only when a
//!   read held more than one frame)
//!
//! then one `write` of all of them. No UTF-8 check, no message assembly, no
//! control-frame handling: every frame is echoed as it came, which is a
//! valid echo without extensions (a close comes back as the close reply,
//! and the connection is closed once it is written). What the server does
//! per message is thus a `read`, a `write`, the unmask and a few header
//! bytes: the syscall floor plus the one pass over the payload that RFC 6455
//! requires of any server.
//!
//! ```text
//! floor 9001        # prints "listening on 127.0.0.1:9001"
//! ```
// A measuring and testing tool, not a server: it panics where it cannot go on, and indexes its own buffers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tether_benches::floor::{MAX_HEAD, MAX_PAYLOAD, echo_frames, handshake};

/// The shared read buffer: what a connection kept of a partial frame (at
/// most a header and `MAX_PAYLOAD`) plus room to read.
const READ_BUF: usize = 2 * MAX_PAYLOAD + 64;
/// Output waiting for the socket beyond which a connection is not read
/// until the socket has taken some.
const MAX_OUT: usize = 4 * 1024 * 1024;
const LISTENER: Token = Token(usize::MAX);

/// One connection.
struct Conn {
    stream: TcpStream,
    upgraded: bool,
    /// Bytes of a frame (or of the handshake) that is not complete yet.
    partial: Vec<u8>,
    /// Output the socket has not taken.
    out: Vec<u8>,
    out_pos: usize,
    /// A close frame was echoed: close once the output is written.
    closing: bool,
}

impl Conn {
    /// Writes `bytes`, queueing what the socket does not take now.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.out_pos < self.out.len() {
            self.out.extend_from_slice(bytes);
            return Ok(());
        }
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
        if written < bytes.len() {
            self.out.clear();
            self.out_pos = 0;
            self.out.extend_from_slice(&bytes[written..]);
        }
        Ok(())
    }

    /// Writes queued output until done or refused.
    fn flush(&mut self) -> io::Result<()> {
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

    fn pending_output(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Reads until the socket is drained (a short read), echoing every
    /// complete frame; `Ok(false)` when the connection is done.
    fn on_readable(&mut self, rbuf: &mut [u8]) -> io::Result<bool> {
        loop {
            if self.closing {
                return Ok(self.pending_output() > 0);
            }
            if self.pending_output() > MAX_OUT {
                // Read again once the socket has taken some (writable event).
                return Ok(true);
            }
            let kept = self.partial.len();
            rbuf[..kept].copy_from_slice(&self.partial);
            let room = rbuf.len() - kept;
            let n = match self.stream.read(&mut rbuf[kept..]) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.partial.clear();
            let filled = kept + n;
            let mut from = 0;
            if !self.upgraded {
                match handshake(&rbuf[..filled]).map_err(io::Error::other)? {
                    Some((response, used)) => {
                        self.send(&response)?;
                        self.upgraded = true;
                        from = used;
                    }
                    None if filled > MAX_HEAD => return Err(io::Error::other("handshake over 8 KiB")),
                    None => {
                        self.partial.extend_from_slice(&rbuf[..filled]);
                        from = filled;
                    }
                }
            }
            if self.upgraded && from < filled {
                let frames = &mut rbuf[from..filled];
                let echoed = echo_frames(frames).map_err(io::Error::other)?;
                let (a, b) = echoed.out;
                if b > a {
                    self.send(&frames[a..b])?;
                }
                if echoed.close {
                    self.closing = true;
                    return Ok(self.pending_output() > 0);
                }
                self.partial.extend_from_slice(&frames[echoed.consumed..]);
            }
            if n < room {
                return Ok(true);
            }
        }
    }
}

fn serve(port: u16) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut rbuf = vec![0u8; READ_BUF];
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    let mut stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // Out of descriptors, or a connection reset before
                        // it was taken: try again on the next event.
                        Err(_) => break,
                    };
                    let _ = stream.set_nodelay(true);
                    let i = free.pop().unwrap_or(conns.len());
                    if poll
                        .registry()
                        .register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        free.push(i);
                        continue;
                    }
                    let conn = Conn {
                        stream,
                        upgraded: false,
                        partial: Vec::new(),
                        out: Vec::new(),
                        out_pos: 0,
                        closing: false,
                    };
                    if i == conns.len() {
                        conns.push(Some(conn));
                    } else if let Some(slot) = conns.get_mut(i) {
                        *slot = Some(conn);
                    }
                }
                continue;
            }
            let i = event.token().0;
            let Some(Some(conn)) = conns.get_mut(i) else {
                continue;
            };
            let mut keep = true;
            if event.is_writable() && conn.pending_output() > 0 {
                let was_paused = conn.pending_output() > MAX_OUT;
                keep = conn.flush().is_ok();
                if keep && conn.closing && conn.pending_output() == 0 {
                    keep = false;
                } else if keep && was_paused && conn.pending_output() <= MAX_OUT {
                    // Reading stopped while the output was over the limit;
                    // the readable edge may have passed since.
                    keep = conn.on_readable(&mut rbuf).unwrap_or(false);
                }
            }
            if keep && (event.is_readable() || event.is_read_closed()) {
                keep = conn.on_readable(&mut rbuf).unwrap_or(false);
            }
            if keep && (event.is_error() || event.is_write_closed()) && conn.pending_output() > 0 {
                keep = false;
            }
            if !keep {
                if let Some(Some(mut conn)) = conns.get_mut(i).map(Option::take) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(i);
            }
        }
    }
}

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: floor PORT   (0 for any free port)");
            return ExitCode::from(2);
        }
    };
    match serve(port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}
