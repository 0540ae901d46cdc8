//! A small blocking HTTP/2 client made of `tether_h2::frame` and
//! `tether_h2::hpack`, over any byte stream (a `TcpStream` for h2c, a
//! rustls stream for ALPN `h2`): requests on streams of one connection,
//! what came back on each stream, and control over flow-control windows.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tether_h2::ErrorCode;
use tether_h2::frame::{self, Data, Frame, FrameDecoder, Headers, PREFACE, Ping, Setting, WindowUpdate};
use tether_h2::hpack::{Decoder, Encoder, Field};

/// What the server sent on one stream.
#[derive(Debug, Default, Clone)]
pub struct StreamState {
    /// Each header block (the response head, then trailers if any).
    pub heads: Vec<Vec<Field>>,
    /// DATA, joined.
    pub data: Vec<u8>,
    /// The server ended the stream (END_STREAM).
    pub ended: bool,
    /// The server reset it, with this code.
    pub reset: Option<ErrorCode>,
}

impl StreamState {
    /// The response's `:status`.
    pub fn status(&self) -> Option<u16> {
        self.field(":status").and_then(|s| s.parse().ok())
    }

    /// A field of the response head, as text.
    pub fn field(&self, name: &str) -> Option<String> {
        let head = self.heads.first()?;
        head.iter()
            .find(|f| f.name == name.as_bytes())
            .map(|f| String::from_utf8_lossy(&f.value).into_owned())
    }

    /// Whether the server is done with the stream.
    pub fn is_closed(&self) -> bool {
        self.ended || self.reset.is_some()
    }
}

/// An HTTP/2 client connection.
pub struct H2Client<S: Read + Write = TcpStream> {
    pub stream: S,
    encoder: Encoder,
    decoder: Decoder,
    frames: FrameDecoder,
    buf: Vec<u8>,
    next_stream: u32,
    /// Per stream, what the server sent.
    pub streams: BTreeMap<u32, StreamState>,
    /// The server's settings, as received.
    pub settings: Vec<Setting>,
    /// The server's GOAWAY: last stream id and code.
    pub goaway: Option<(u32, ErrorCode)>,
    /// Streams whose window the client does not open again (the
    /// connection's window is still opened for what they receive).
    pub held: BTreeSet<u32>,
    /// The server closed the connection.
    pub eof: bool,
    /// A header block being joined.
    block: Option<(u32, bool, Vec<u8>)>,
    /// What the server lets us send: on the connection, and per stream
    /// beyond the initial window.
    send_window: i64,
    stream_windows: BTreeMap<u32, i64>,
}

impl H2Client<TcpStream> {
    /// h2c with prior knowledge: the preface and empty SETTINGS.
    pub fn connect(addr: SocketAddr) -> H2Client<TcpStream> {
        H2Client::start(crate::tcp(addr), &[])
    }

    /// As [`H2Client::data`] without END_STREAM, but stops as soon as the
    /// server has reset the stream (whose window will not open again), or
    /// has kept the windows too shut for the next frame for `wait` (no
    /// frame from it in that time); returns how many bytes were sent.
    pub fn data_while_open(&mut self, stream: u32, bytes: &[u8], wait: Duration) -> usize {
        let mut wire = Vec::new();
        let mut sent = 0;
        for chunk in bytes.chunks(16_384) {
            let len = chunk.len() as i64;
            loop {
                if self.streams.get(&stream).is_some_and(|s| s.reset.is_some()) {
                    self.send(&wire);
                    return sent;
                }
                let initial = self.initial_window();
                let stream_window = initial + self.stream_windows.get(&stream).copied().unwrap_or(0);
                if self.send_window >= len && stream_window >= len {
                    break;
                }
                self.send(&std::mem::take(&mut wire));
                match self.read_frame_within(wait) {
                    Some(true) => {}
                    Some(false) => panic!("the connection ended while waiting for window"),
                    None => return sent,
                }
            }
            self.send_window -= len;
            *self.stream_windows.entry(stream).or_insert(0) -= len;
            Data::new(stream, chunk).encode(&mut wire, 16_384).expect("DATA");
            sent += chunk.len();
        }
        self.send(&wire);
        sent
    }

    /// Reads and handles one frame, waiting at most `wait` for it; `None`
    /// if none came in that time, else as [`H2Client::read_frame`].
    pub fn read_frame_within(&mut self, wait: Duration) -> Option<bool> {
        self.stream.set_read_timeout(Some(wait)).expect("read timeout");
        let frame = self.next_frame(true);
        self.stream
            .set_read_timeout(Some(crate::IO_TIMEOUT))
            .expect("read timeout");
        frame
    }
}

impl<S: Read + Write> H2Client<S> {
    /// Sends the preface and SETTINGS with `settings` on `stream`.
    pub fn start(stream: S, settings: &[Setting]) -> H2Client<S> {
        let mut client = H2Client {
            stream,
            encoder: Encoder::new(),
            decoder: Decoder::new(4096).with_max_header_list_size(1 << 20),
            frames: FrameDecoder::new(),
            buf: Vec::new(),
            next_stream: 1,
            streams: BTreeMap::new(),
            settings: Vec::new(),
            goaway: None,
            held: BTreeSet::new(),
            eof: false,
            block: None,
            send_window: 65_535,
            stream_windows: BTreeMap::new(),
        };
        let mut wire = PREFACE.to_vec();
        frame::encode_settings(&mut wire, settings, 16_384).expect("settings");
        client.send(&wire);
        client
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
        self.stream.flush().expect("flush");
    }

    /// Opens a stream with `fields` (pseudo-headers first); `end_stream`
    /// when no body follows. Returns the stream's id.
    pub fn open(&mut self, fields: &[(&str, &str)], end_stream: bool) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        let fields: Vec<Field> = fields.iter().map(|(n, v)| Field::new(*n, *v)).collect();
        let mut block = Vec::new();
        self.encoder.encode(&fields, &mut block);
        let mut wire = Vec::new();
        let mut headers = Headers::new(id, &block);
        headers.end_stream = end_stream;
        headers
            .encode(&mut wire, 16_384)
            .expect("a header block that fits one frame");
        self.send(&wire);
        self.streams.entry(id).or_default();
        id
    }

    /// The identifier the next stream opened gets, and the one after.
    pub fn next_stream_id(&mut self) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        id
    }

    /// Makes the next stream opened `id` (odd), skipping those below.
    pub fn skip_to(&mut self, id: u32) {
        assert!(id % 2 == 1 && id >= self.next_stream, "a new odd stream id");
        self.next_stream = id;
    }

    /// Encodes a header block with the connection's HPACK encoder,
    /// for a test that frames it itself.
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let fields: Vec<Field> = fields.iter().map(|(n, v)| Field::new(*n, *v)).collect();
        let mut block = Vec::new();
        self.encoder.encode(&fields, &mut block);
        block
    }

    /// Sends RST_STREAM.
    pub fn reset(&mut self, stream: u32, code: ErrorCode) {
        let mut wire = Vec::new();
        tether_h2::frame::RstStream {
            stream_id: stream,
            code,
        }
        .encode(&mut wire)
        .expect("RST_STREAM");
        self.send(&wire);
    }

    /// A GET of `path` (with `extra` fields).
    pub fn get(&mut self, path: &str, extra: &[(&str, &str)]) -> u32 {
        let mut fields = vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
        ];
        fields.extend_from_slice(extra);
        self.open(&fields, true)
    }

    /// A request with a body.
    pub fn request_with_body(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> u32 {
        let length = body.len().to_string();
        let mut fields = vec![
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
            ("content-length", length.as_str()),
        ];
        fields.extend_from_slice(extra);
        let id = self.open(&fields, false);
        self.data(id, body, true);
        id
    }

    /// An extended CONNECT (RFC 8441) for a WebSocket at `path`.
    pub fn websocket(&mut self, path: &str, extra: &[(&str, &str)]) -> u32 {
        let mut fields = vec![
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
            ("sec-websocket-version", "13"),
        ];
        fields.extend_from_slice(extra);
        self.open(&fields, false)
    }

    /// The server's initial stream window.
    fn initial_window(&self) -> i64 {
        self.settings
            .iter()
            .rev()
            .find_map(|s| match s {
                Setting::InitialWindowSize(v) => Some(i64::from(*v)),
                _ => None,
            })
            .unwrap_or(65_535)
    }

    /// Sends DATA on a stream, in frames of at most 16 KiB, within the
    /// server's windows (reading its WINDOW_UPDATEs while they are shut).
    pub fn data(&mut self, stream: u32, bytes: &[u8], end_stream: bool) {
        self.send_data(stream, bytes, end_stream);
    }

    fn send_data(&mut self, stream: u32, bytes: &[u8], end_stream: bool) {
        let mut wire = Vec::new();
        let mut chunks = bytes.chunks(16_384).peekable();
        if bytes.is_empty() {
            let mut d = Data::new(stream, &[]);
            d.end_stream = end_stream;
            d.encode(&mut wire, 16_384).expect("DATA");
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len() as i64;
            loop {
                let initial = self.initial_window();
                let stream_window = initial + self.stream_windows.get(&stream).copied().unwrap_or(0);
                if self.send_window >= len && stream_window >= len {
                    break;
                }
                self.send(&std::mem::take(&mut wire));
                assert!(self.read_frame(), "the connection ended while waiting for window");
            }
            self.send_window -= len;
            *self.stream_windows.entry(stream).or_insert(0) -= len;
            let mut d = Data::new(stream, chunk);
            d.end_stream = end_stream && chunks.peek().is_none();
            d.encode(&mut wire, 16_384).expect("DATA");
        }
        self.send(&wire);
    }

    pub fn window_update(&mut self, stream: u32, increment: u32) {
        let mut wire = Vec::new();
        WindowUpdate {
            stream_id: stream,
            increment,
        }
        .encode(&mut wire)
        .expect("WINDOW_UPDATE");
        self.send(&wire);
    }

    /// Reads and handles one frame; false at the end of the connection.
    pub fn read_frame(&mut self) -> bool {
        self.next_frame(false)
            .expect("a frame (a timeout means the server stopped answering)")
    }

    /// As [`H2Client::read_frame`]; `None` on a read timeout if
    /// `timeout_ok`, else a timeout fails the test.
    fn next_frame(&mut self, timeout_ok: bool) -> Option<bool> {
        loop {
            let (n, result) = self.frames.decode(&self.buf);
            match result {
                Ok(Some(frame)) => {
                    let owned = own(frame);
                    self.buf.drain(..n);
                    self.handle(owned);
                    return Some(true);
                }
                Ok(None) => {}
                Err(e) => panic!("the server sent a bad frame: {e:?}"),
            }
            if self.eof {
                return Some(false);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Some(false);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return Some(false);
                }
                Err(e) if timeout_ok && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                Err(e) => panic!("read failed (a timeout means the server stopped answering): {e}"),
            }
        }
    }

    /// Reads until `done` holds; fails if the connection ends first.
    pub fn until(&mut self, mut done: impl FnMut(&Self) -> bool) {
        while !done(self) {
            assert!(self.read_frame(), "the connection ended first");
        }
    }

    /// Reads until the server is done with `stream`; returns it.
    pub fn finish(&mut self, stream: u32) -> StreamState {
        self.until(|c| c.streams.get(&stream).is_some_and(StreamState::is_closed));
        self.streams.get(&stream).cloned().unwrap_or_default()
    }

    /// Reads until `stream`'s data contains `needle`.
    pub fn data_contains(&mut self, stream: u32, needle: &[u8]) {
        self.until(|c| {
            c.streams.get(&stream).is_some_and(|s| {
                assert!(s.reset.is_none(), "stream {stream} was reset: {:?}", s.reset);
                s.data.windows(needle.len()).any(|w| w == needle)
            })
        });
    }

    /// Reads until the response head of `stream` is in.
    pub fn head(&mut self, stream: u32) -> StreamState {
        self.until(|c| {
            c.streams
                .get(&stream)
                .is_some_and(|s| !s.heads.is_empty() || s.reset.is_some())
        });
        self.streams.get(&stream).cloned().unwrap_or_default()
    }

    /// Takes the DATA received on `stream` so far.
    pub fn take_data(&mut self, stream: u32) -> Vec<u8> {
        self.streams
            .get_mut(&stream)
            .map(|s| std::mem::take(&mut s.data))
            .unwrap_or_default()
    }

    /// Reads to the end of the connection.
    pub fn read_to_end(&mut self) {
        while self.read_frame() {}
    }

    fn handle(&mut self, frame: Owned) {
        match frame {
            Owned::Settings(settings) => {
                self.settings.extend(settings);
                let mut wire = Vec::new();
                frame::encode_settings_ack(&mut wire);
                self.send(&wire);
            }
            Owned::Ping(data) => {
                let mut wire = Vec::new();
                Ping { ack: true, data }.encode(&mut wire);
                self.send(&wire);
            }
            Owned::Headers(stream, end_stream, end_headers, fragment) => {
                self.block = Some((stream, end_stream, fragment));
                if end_headers {
                    self.finish_block();
                }
            }
            Owned::Continuation(end_headers, fragment) => {
                if let Some(block) = self.block.as_mut() {
                    block.2.extend_from_slice(&fragment);
                }
                if end_headers {
                    self.finish_block();
                }
            }
            Owned::Data(stream, data, end_stream, flow) => {
                if flow > 0 {
                    let increment = u32::try_from(flow).expect("a frame's length");
                    let mut wire = Vec::new();
                    WindowUpdate {
                        stream_id: 0,
                        increment,
                    }
                    .encode(&mut wire)
                    .expect("WINDOW_UPDATE");
                    if !self.held.contains(&stream) && !end_stream {
                        WindowUpdate {
                            stream_id: stream,
                            increment,
                        }
                        .encode(&mut wire)
                        .expect("WINDOW_UPDATE");
                    }
                    // The server may be gone already.
                    let _ = self.stream.write_all(&wire);
                }
                let s = self.streams.entry(stream).or_default();
                s.data.extend_from_slice(&data);
                s.ended |= end_stream;
            }
            Owned::Rst(stream, code) => self.streams.entry(stream).or_default().reset = Some(code),
            Owned::GoAway(last, code) => self.goaway = Some((last, code)),
            Owned::Window(0, increment) => self.send_window += i64::from(increment),
            Owned::Window(stream, increment) => {
                *self.stream_windows.entry(stream).or_insert(0) += i64::from(increment);
            }
            Owned::Other => {}
        }
    }

    fn finish_block(&mut self) {
        let Some((stream, end_stream, bytes)) = self.block.take() else {
            return;
        };
        let fields = self.decoder.decode(&bytes).expect("a valid header block");
        let s = self.streams.entry(stream).or_default();
        s.heads.push(fields);
        s.ended |= end_stream;
    }
}

/// A frame, owned, so that the read buffer can move on.
enum Owned {
    Settings(Vec<Setting>),
    Ping([u8; 8]),
    Headers(u32, bool, bool, Vec<u8>),
    Continuation(bool, Vec<u8>),
    Data(u32, Vec<u8>, bool, usize),
    Rst(u32, ErrorCode),
    GoAway(u32, ErrorCode),
    Window(u32, u32),
    Other,
}

fn own(frame: Frame<'_>) -> Owned {
    match frame {
        Frame::Settings(s) if !s.is_ack() => Owned::Settings(s.iter().collect()),
        Frame::Ping(p) if !p.ack => Owned::Ping(p.data),
        Frame::Headers(h) => Owned::Headers(h.stream_id, h.end_stream, h.end_headers, h.fragment.to_vec()),
        Frame::Continuation(c) => Owned::Continuation(c.end_headers, c.fragment.to_vec()),
        Frame::Data(d) => Owned::Data(
            d.stream_id,
            d.data.to_vec(),
            d.end_stream,
            d.flow_controlled_len(),
        ),
        Frame::RstStream(r) => Owned::Rst(r.stream_id, r.code),
        Frame::GoAway(g) => Owned::GoAway(g.last_stream_id, g.code),
        Frame::WindowUpdate(w) => Owned::Window(w.stream_id, w.increment),
        _ => Owned::Other,
    }
}
