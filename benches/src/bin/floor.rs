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

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The largest frame payload taken; a larger one closes the connection.
const MAX_PAYLOAD: usize = 128 * 1024;
/// The longest opening handshake taken.
const MAX_HEAD: usize = 8 * 1024;
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

/// What `echo_frames` did with a buffer.
#[derive(Debug, PartialEq, Eq)]
struct Echoed {
    /// The server frames to write: `buf[out.0..out.1]`.
    out: (usize, usize),
    /// Bytes of complete client frames; the rest is a partial frame.
    consumed: usize,
    /// A close frame was among them (nothing after it is read).
    close: bool,
}

/// Turns every complete masked client frame at the start of `buf` into the
/// unmasked server frame with the same first byte and payload, in place,
/// and gathers them into one contiguous range. `Err` for a frame that is
/// not masked or whose payload is over `MAX_PAYLOAD`.
fn echo_frames(buf: &mut [u8]) -> Result<Echoed, &'static str> {
    let mut read = 0usize;
    let mut out: Option<(usize, usize)> = None;
    let mut close = false;
    while let Some(&[b0, b1]) = buf.get(read..read + 2) {
        if b1 & 0x80 == 0 {
            return Err("an unmasked client frame");
        }
        let (len, len_bytes) = match b1 & 0x7f {
            126 => match buf.get(read + 2..read + 4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
                None => break,
            },
            127 => match buf
                .get(read + 2..read + 10)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            {
                Some(b) => (u64::from_be_bytes(b), 8),
                None => break,
            },
            n => (u64::from(n), 0),
        };
        let len = match usize::try_from(len) {
            Ok(len) if len <= MAX_PAYLOAD => len,
            _ => return Err("a frame over 128 KiB"),
        };
        let mask_at = read + 2 + len_bytes;
        let start = mask_at + 4;
        let end = start + len;
        if end > buf.len() {
            break;
        }
        let mask = match buf.get(mask_at..start).and_then(|m| <[u8; 4]>::try_from(m).ok()) {
            Some(mask) => mask,
            None => break,
        };
        tether_frame::apply_mask(&mut buf[start..end], mask, 0);
        // The server header goes right before the payload, over the end of
        // the client's header: it is at least 4 bytes shorter (no mask).
        let header_at = if len < 126 {
            buf[start - 1] = len as u8;
            start - 2
        } else if len < 65536 {
            buf[start - 3] = 126;
            buf[start - 2..start].copy_from_slice(&(len as u16).to_be_bytes());
            start - 4
        } else {
            buf[start - 9] = 127;
            buf[start - 8..start].copy_from_slice(&(len as u64).to_be_bytes());
            start - 10
        };
        buf[header_at] = b0;
        out = Some(match out {
            None => (header_at, end),
            Some((from, to)) => {
                // Behind the previous frame's end: header_at >= to + 4.
                buf.copy_within(header_at..end, to);
                (from, to + (end - header_at))
            }
        });
        read = end;
        if b0 & 0x0f == 0x8 {
            close = true;
            break;
        }
    }
    Ok(Echoed {
        out: out.unwrap_or((0, 0)),
        consumed: read,
        close,
    })
}

/// The 101 response to a complete, valid upgrade request at the start of
/// `head`, and the request's length; `Ok(None)` while incomplete.
fn handshake(head: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let (request, used) = match tether_handshake::parse_request(head) {
        Ok(tether_handshake::Status::Complete(done)) => done,
        Ok(tether_handshake::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad request: {e}")),
    };
    let upgrade =
        tether_handshake::UpgradeRequest::new(request.head()).map_err(|e| format!("not an upgrade: {e}"))?;
    let accept = tether_handshake::accept_key(upgrade.key().as_bytes());
    let mut response = Vec::with_capacity(160);
    response.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    response.extend_from_slice(&accept);
    response.extend_from_slice(b"\r\n\r\n");
    Ok(Some((response, used)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tether_frame::{FrameHeader, OpCode, encode_frame};

    fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = FrameHeader::new(fin, opcode, payload.len() as u64).with_mask([9, 8, 7, 6]);
        encode_frame(&mut out, header, payload).unwrap();
        out
    }

    fn server_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            FrameHeader::new(fin, opcode, payload.len() as u64),
            payload,
        )
        .unwrap();
        out
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_length_form_comes_back_unmasked() {
        for n in [0, 1, 20, 125, 126, 1000, 65535, 65536, 100_000] {
            let p = payload(n);
            let mut buf = client_frame(OpCode::Binary, true, &p);
            let len = buf.len();
            let e = echo_frames(&mut buf).unwrap();
            assert_eq!(e.consumed, len, "{n}");
            assert!(!e.close);
            assert_eq!(
                &buf[e.out.0..e.out.1],
                &server_frame(OpCode::Binary, true, &p)[..],
                "{n}"
            );
        }
    }

    #[test]
    fn several_frames_are_gathered_and_a_partial_one_kept() {
        let parts: [(OpCode, bool, Vec<u8>); 4] = [
            (OpCode::Text, true, b"hello".to_vec()),
            (OpCode::Binary, false, payload(300)),
            (OpCode::Continuation, true, payload(70_000)),
            (OpCode::Ping, true, b"p".to_vec()),
        ];
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (op, fin, p) in &parts {
            wire.extend(client_frame(*op, *fin, p));
            expected.extend(server_frame(*op, *fin, p));
        }
        let whole = wire.len();
        let tail = client_frame(OpCode::Text, true, &payload(500));
        // The next frame cut at every point of its header and payload.
        for cut in [1, 2, 3, 5, 7, 8, 9, 200, tail.len() - 1] {
            let mut buf = wire.clone();
            buf.extend_from_slice(&tail[..cut]);
            let e = echo_frames(&mut buf).unwrap();
            assert_eq!(e.consumed, whole, "cut {cut}");
            assert_eq!(&buf[e.out.0..e.out.1], &expected[..], "cut {cut}");
            assert_eq!(&buf[e.consumed..], &tail[..cut], "cut {cut}");
        }
    }

    #[test]
    fn a_close_ends_the_echo() {
        let mut close = Vec::new();
        encode_frame(
            &mut close,
            FrameHeader::new(true, OpCode::Close, 2).with_mask([1, 2, 3, 4]),
            &1000u16.to_be_bytes(),
        )
        .unwrap();
        let mut buf = close.clone();
        buf.extend(client_frame(OpCode::Text, true, b"after"));
        let e = echo_frames(&mut buf).unwrap();
        assert!(e.close);
        assert_eq!(e.consumed, close.len());
        assert_eq!(&buf[e.out.0..e.out.1], &[0x88, 2, 0x03, 0xe8][..]);
    }

    #[test]
    fn unmasked_and_oversized_frames_are_refused() {
        let mut unmasked = server_frame(OpCode::Text, true, b"x");
        assert!(echo_frames(&mut unmasked).is_err());
        // 2^63 and just over the limit, announced by the header alone.
        let mut huge = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(echo_frames(&mut huge).is_err());
        let mut over = vec![0x82, 0xff];
        over.extend_from_slice(&(MAX_PAYLOAD as u64 + 1).to_be_bytes());
        assert!(echo_frames(&mut over).is_err());
        let mut empty: [u8; 0] = [];
        assert_eq!(
            echo_frames(&mut empty),
            Ok(Echoed {
                out: (0, 0),
                consumed: 0,
                close: false
            })
        );
    }

    #[test]
    fn handshakes() {
        let request = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nHost: h\r\nSec-WebSocket-Version: 13\r\n\r\nxy";
        let (response, used) = handshake(request).unwrap().unwrap();
        assert_eq!(used, request.len() - 2);
        let text = String::from_utf8(response).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
        assert!(
            text.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(handshake(&request[..30]).unwrap(), None);
        assert!(handshake(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").is_err());
    }
}
