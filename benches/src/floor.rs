//! What both floors do to frames (`src/bin/floor.rs` on epoll,
//! `src/bin/floor_uring.rs` on io_uring): answer the opening handshake,
//! and turn every complete client frame into the server frame with the
//! same first byte and payload, in place. See `benches/README.md`.

/// The largest frame payload taken; a larger one closes the connection.
pub const MAX_PAYLOAD: usize = 128 * 1024;
/// The longest opening handshake taken.
pub const MAX_HEAD: usize = 8 * 1024;

/// What `echo_frames` did with a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Echoed {
    /// The server frames to write: `buf[out.0..out.1]`.
    pub out: (usize, usize),
    /// Bytes of complete client frames; the rest is a partial frame.
    pub consumed: usize,
    /// A close frame was among them (nothing after it is read).
    pub close: bool,
}

/// Turns every complete masked client frame at the start of `buf` into the
/// unmasked server frame with the same first byte and payload, in place,
/// and gathers them into one contiguous range. `Err` for a frame that is
/// not masked or whose payload is over `MAX_PAYLOAD`.
pub fn echo_frames(buf: &mut [u8]) -> Result<Echoed, &'static str> {
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
pub fn handshake(head: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
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
