//! The client side of the WebSocket wire, cut down to what a load generator
//! needs: frames encoded once and written many times, and a streaming
//! reader that hands out payload slices of the shared read buffer without
//! copying or allocating.

use tether_frame::{DecodeRules, FrameHeader, MAX_HEADER_LEN, OpCode, Status, decode_header, encode_frame};

/// The masking key of every frame the load generator sends.
///
/// RFC 6455 wants a fresh, unpredictable key per frame so that a browser
/// script cannot choose the bytes an intermediary sees. A load generator
/// talks to its own server over loopback and sends bytes it chose anyway, so
/// one fixed key lets it encode a frame once and write it again and again
/// with no per-message masking. The server still has to unmask every frame,
/// so its work is what it would be with random keys.
pub const MASK: [u8; 4] = [0x5a, 0x3c, 0x96, 0xe1];

/// Appends a masked client frame (FIN set) to `out`.
pub fn push_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader::new(true, opcode, payload.len() as u64).with_mask(MASK);
    // Only control frames can be refused, and only over 125 bytes: the
    // callers send pongs echoing a ping, which is at most 125 bytes.
    encode_frame(out, header, payload).expect("a valid client frame");
}

/// A masked client frame (FIN set), encoded once.
pub fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_frame(&mut out, opcode, payload);
    out
}

/// What [`EventReader::feed`] found, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload bytes of a text or binary message: `chunk` starts `offset`
    /// bytes into the message (the message may be fragmented and arrive in
    /// any number of pieces).
    Data {
        /// The bytes, a slice of the caller's input.
        chunk: &'a [u8],
        /// Where they start in the message.
        offset: u64,
    },
    /// A text or binary message ended.
    End {
        /// Text (else binary).
        text: bool,
        /// Its length in bytes (on the wire, when compressed).
        len: u64,
        /// Its first frame had RSV1 set: compressed with permessage-deflate
        /// (the caller inflates it, and fails if none was negotiated).
        compressed: bool,
    },
    /// A ping, with its payload: answer it with a pong.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close frame, with its status code if it had one.
    Close(Option<u16>),
}

/// Why the server's bytes are not a valid stream of frames.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// A header broke RFC 6455 (masked, reserved bits, bad length ...).
    Frame(tether_frame::Error),
    /// A continuation frame with no message to continue.
    UnexpectedContinuation,
    /// A new message started before the previous one ended.
    ExpectedContinuation,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Frame(e) => write!(f, "bad frame from the server: {e:?}"),
            ReadError::UnexpectedContinuation => f.write_str("continuation frame outside a message"),
            ReadError::ExpectedContinuation => f.write_str("new message inside a fragmented one"),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<tether_frame::Error> for ReadError {
    fn from(e: tether_frame::Error) -> Self {
        ReadError::Frame(e)
    }
}

/// An incremental reader of a server's frames, as [`Event`]s (unmasked; RSV1 is taken and
/// reported, for permessage-deflate).
///
/// Feed it the bytes as they come, in chunks of any size. Payload is not
/// copied: [`Event::Data`] borrows from the input. Only a header split
/// across reads (at most 14 bytes) and control frame payloads (at most 125
/// bytes) are kept.
#[derive(Debug, Clone)]
pub struct EventReader {
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: u8,
    in_frame: bool,
    /// The current frame's opcode and FIN bit.
    opcode: OpCode,
    fin: bool,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    in_message: bool,
    text: bool,
    compressed: bool,
    msg_len: u64,
    ctrl_len: u8,
    ctrl: [u8; 125],
}

impl Default for EventReader {
    fn default() -> Self {
        Self::new()
    }
}

const RULES: DecodeRules = DecodeRules {
    max_payload: u64::MAX >> 1,
    allowed_rsv: tether_frame::Rsv::RSV1,
    ..DecodeRules::client()
};

impl EventReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        EventReader {
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            in_frame: false,
            opcode: OpCode::Binary,
            fin: true,
            remaining: 0,
            in_message: false,
            text: false,
            compressed: false,
            msg_len: 0,
            ctrl_len: 0,
            ctrl: [0; 125],
        }
    }

    /// Whether the reader is between messages: no header, frame or
    /// fragmented message under way. A whole frame fed then leaves it so
    /// again, which lets a caller that knows the exact bytes it expects
    /// compare them instead of parsing them.
    pub fn at_message_start(&self) -> bool {
        self.hdr_len == 0 && !self.in_frame && !self.in_message
    }

    /// Parses `input`, calling `on` for everything it completes or carries.
    /// After an error the reader is in an unspecified state: drop the
    /// connection.
    #[inline]
    pub fn feed<F: FnMut(Event<'_>)>(&mut self, mut input: &[u8], on: &mut F) -> Result<(), ReadError> {
        while !input.is_empty() {
            if !self.in_frame {
                let (header, used) = if self.hdr_len == 0 {
                    match decode_header(input, &RULES)? {
                        Status::Complete(found) => found,
                        Status::Partial => {
                            // Partial means the input ends inside a header,
                            // so it is shorter than the longest header.
                            self.hdr[..input.len()].copy_from_slice(input);
                            self.hdr_len = input.len() as u8;
                            return Ok(());
                        }
                    }
                } else {
                    let have = self.hdr_len as usize;
                    let take = (MAX_HEADER_LEN - have).min(input.len());
                    self.hdr[have..have + take].copy_from_slice(&input[..take]);
                    match decode_header(&self.hdr[..have + take], &RULES)? {
                        Status::Complete((header, used)) => {
                            self.hdr_len = 0;
                            // The first `have` bytes were not enough, so the
                            // header ends inside this input.
                            (header, used - have)
                        }
                        Status::Partial => {
                            self.hdr_len = (have + take) as u8;
                            return Ok(());
                        }
                    }
                };
                input = &input[used..];
                self.start_frame(header)?;
                if self.remaining == 0 {
                    self.end_frame(on);
                }
                continue;
            }
            let take = self.remaining.min(input.len() as u64) as usize;
            let (chunk, rest) = input.split_at(take);
            input = rest;
            self.remaining -= take as u64;
            if self.opcode.is_control() {
                let at = self.ctrl_len as usize;
                self.ctrl[at..at + take].copy_from_slice(chunk);
                self.ctrl_len += take as u8;
            } else {
                on(Event::Data {
                    chunk,
                    offset: self.msg_len,
                });
                self.msg_len += take as u64;
            }
            if self.remaining == 0 {
                self.end_frame(on);
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, header: FrameHeader) -> Result<(), ReadError> {
        match header.opcode {
            OpCode::Continuation if !self.in_message => return Err(ReadError::UnexpectedContinuation),
            OpCode::Text | OpCode::Binary if self.in_message => return Err(ReadError::ExpectedContinuation),
            OpCode::Text | OpCode::Binary => {
                self.in_message = true;
                self.text = header.opcode == OpCode::Text;
                self.compressed = header.rsv.bits() & tether_frame::Rsv::RSV1.bits() != 0;
                self.msg_len = 0;
            }
            OpCode::Continuation => {}
            _ => self.ctrl_len = 0,
        }
        self.opcode = header.opcode;
        self.fin = header.fin;
        self.remaining = header.payload_len;
        self.in_frame = true;
        Ok(())
    }

    fn end_frame<F: FnMut(Event<'_>)>(&mut self, on: &mut F) {
        self.in_frame = false;
        let ctrl = &self.ctrl[..self.ctrl_len as usize];
        match self.opcode {
            OpCode::Ping => on(Event::Ping(ctrl)),
            OpCode::Pong => on(Event::Pong),
            OpCode::Close => on(Event::Close(
                (ctrl.len() >= 2).then(|| u16::from_be_bytes([ctrl[0], ctrl[1]])),
            )),
            _ if self.fin => {
                self.in_message = false;
                on(Event::End {
                    text: self.text,
                    len: self.msg_len,
                    compressed: self.compressed,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reader reports for `input` fed in pieces of `step` bytes,
    /// with data chunks merged back into whole messages.
    fn read(input: &[u8], step: usize) -> Result<Vec<String>, ReadError> {
        let mut reader = EventReader::new();
        let mut out = Vec::new();
        let mut message = Vec::new();
        for piece in input.chunks(step) {
            reader.feed(piece, &mut |event| match event {
                Event::Data { chunk, offset } => {
                    assert_eq!(offset as usize, message.len());
                    message.extend_from_slice(chunk);
                }
                Event::End {
                    text,
                    len,
                    compressed,
                } => {
                    assert_eq!(len as usize, message.len());
                    let kind = match (text, compressed) {
                        (true, false) => "text",
                        (false, false) => "binary",
                        (true, true) => "deflated text",
                        (false, true) => "deflated binary",
                    };
                    out.push(format!("{kind}:{}", String::from_utf8_lossy(&message)));
                    message.clear();
                }
                Event::Ping(p) => out.push(format!("ping:{}", String::from_utf8_lossy(p))),
                Event::Pong => out.push("pong".into()),
                Event::Close(code) => out.push(format!("close:{code:?}")),
            })?;
        }
        Ok(out)
    }

    fn server_frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, payload: &[u8]) {
        encode_frame(out, FrameHeader::new(fin, opcode, 0), payload).unwrap();
    }

    #[test]
    fn rsv1_marks_a_message_compressed_from_its_first_frame() {
        let mut wire = Vec::new();
        let header = FrameHeader::new(false, OpCode::Text, 0).with_rsv(tether_frame::Rsv::RSV1);
        encode_frame(&mut wire, header, b"ab").unwrap();
        server_frame(&mut wire, true, OpCode::Continuation, b"cd");
        server_frame(&mut wire, true, OpCode::Text, b"plain");
        for step in [1, 3, wire.len()] {
            assert_eq!(
                read(&wire, step).unwrap(),
                ["deflated text:abcd", "text:plain"],
                "{step}"
            );
        }
    }

    fn stream() -> (Vec<u8>, Vec<String>) {
        let mut wire = Vec::new();
        server_frame(&mut wire, true, OpCode::Text, b"hello");
        server_frame(&mut wire, false, OpCode::Binary, b"ab");
        server_frame(&mut wire, true, OpCode::Ping, b"p1");
        server_frame(&mut wire, false, OpCode::Continuation, &[]);
        server_frame(&mut wire, true, OpCode::Continuation, b"cd");
        server_frame(&mut wire, true, OpCode::Text, &[]);
        let big = vec![b'x'; 70_000];
        server_frame(&mut wire, true, OpCode::Binary, &big);
        server_frame(&mut wire, true, OpCode::Text, &vec![b'y'; 300]);
        server_frame(&mut wire, true, OpCode::Pong, b"");
        server_frame(&mut wire, true, OpCode::Close, &[0x03, 0xe8]);
        let expected = vec![
            "text:hello".to_string(),
            "ping:p1".into(),
            "binary:abcd".into(),
            "text:".into(),
            format!("binary:{}", "x".repeat(70_000)),
            format!("text:{}", "y".repeat(300)),
            "pong".into(),
            "close:Some(1000)".into(),
        ];
        (wire, expected)
    }

    #[test]
    fn whole_stream_at_once() {
        let (wire, expected) = stream();
        assert_eq!(read(&wire, wire.len()).unwrap(), expected);
    }

    #[test]
    fn one_byte_at_a_time() {
        let (wire, expected) = stream();
        assert_eq!(read(&wire, 1).unwrap(), expected);
    }

    #[test]
    fn odd_chunk_sizes() {
        let (wire, expected) = stream();
        for step in [2, 3, 5, 7, 13, 100, 4099] {
            assert_eq!(read(&wire, step).unwrap(), expected, "step {step}");
        }
    }

    #[test]
    fn trailing_partial_frame_is_kept_for_later() {
        let mut wire = Vec::new();
        server_frame(&mut wire, true, OpCode::Text, b"one");
        server_frame(&mut wire, true, OpCode::Text, &[b'z'; 200]);
        let cut = wire.len() - 50;
        let mut reader = EventReader::new();
        let mut ends = 0;
        reader
            .feed(&wire[..cut], &mut |e| {
                ends += matches!(e, Event::End { .. }) as u32
            })
            .unwrap();
        assert_eq!(ends, 1);
        reader
            .feed(&wire[cut..], &mut |e| {
                ends += matches!(e, Event::End { .. }) as u32
            })
            .unwrap();
        assert_eq!(ends, 2);
    }

    #[test]
    fn protocol_errors() {
        // A masked frame from the server.
        assert_eq!(
            read(&frame(OpCode::Text, b"hi"), 64),
            Err(ReadError::Frame(tether_frame::Error::MaskedFrame))
        );
        let mut wire = Vec::new();
        server_frame(&mut wire, true, OpCode::Continuation, b"x");
        assert_eq!(read(&wire, 1), Err(ReadError::UnexpectedContinuation));
        let mut wire = Vec::new();
        server_frame(&mut wire, false, OpCode::Text, b"x");
        server_frame(&mut wire, true, OpCode::Text, b"y");
        assert_eq!(read(&wire, 3), Err(ReadError::ExpectedContinuation));
    }

    #[test]
    fn client_frames_are_masked_with_the_fixed_key() {
        let wire = frame(OpCode::Text, b"Hello");
        assert_eq!(&wire[..2], &[0x81, 0x85]);
        assert_eq!(&wire[2..6], &MASK);
        let mut payload = wire[6..].to_vec();
        tether_frame::apply_mask(&mut payload, MASK, 0);
        assert_eq!(payload, b"Hello");
    }
}
