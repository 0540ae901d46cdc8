//! Test support for the end-to-end tests of tether-server and tether-apps
//! (not published): a server harness, a raw HTTP connection, a small
//! blocking WebSocket client built on tether-handshake and tether-ws,
//! an SSE reader built on tether-sse, an HTTP/2 client ([`h2`]), and
//! TLS and HTTP/3 clients ([`tls`], [`h3`]).
//!
//! Every socket has read and write timeouts, so a server that stops
//! answering fails a test instead of hanging it.
#![allow(missing_docs, clippy::missing_panics_doc)]
// A measuring and testing tool, not a server: it panics where it cannot go on, and indexes its own buffers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

pub mod h2;
pub mod h3;
pub mod kafka;
pub mod postgres;
pub mod proxy;
pub mod rabbitmq;
pub mod rabbitmq_cluster;
pub mod tls;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tether_frame::{FrameHeader, OpCode};
use tether_handshake::{ClientHandshake, ClientRequest, Status};
use tether_server::{App, Config, Handle, Handshake, Server};
use tether_sse::{Item, MessageEvent, Parser};
use tether_ws::{CloseCode, CloseFrame, Connection, Event, MaskSource, Message, Role};

/// How long any single read or write may block before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration for tests: an ephemeral port, no process-wide limit
/// changes, and a short linger so that shutdowns finish quickly.
pub fn config() -> Config {
    let mut config = Config::new("127.0.0.1:0".parse().expect("an address"));
    config.raise_fd_limit = false;
    config.linger = Duration::from_millis(500);
    config
}

/// A server running on its own thread.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: Handle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// Binds `app` with `config` and runs it on a new thread.
    pub fn start<A: App + Send + 'static>(config: Config, app: A) -> TestServer {
        TestServer::start_with(config, Handshake::new(), app)
    }

    /// The same, with the given handshake settings.
    pub fn start_with<A: App + Send + 'static>(config: Config, handshake: Handshake, app: A) -> TestServer {
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("tether-server".into())
            .spawn(move || {
                let server = Server::bind(config, handshake, app)?;
                tx.send((server.local_addr(), server.handle()))
                    .expect("the test waits for the address");
                server.run()
            })
            .expect("spawn the server thread");
        let (addr, handle) = match rx.recv() {
            Ok(started) => started,
            Err(_) => panic!("the server failed to bind: {:?}", thread.join()),
        };
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Binds `loops` event loops, each with the application `make_app`
    /// gives for its index (a shared application's `app(i)`), and runs
    /// them on a new thread.
    pub fn start_loops<A, F>(config: Config, handshake: Handshake, loops: usize, make_app: F) -> TestServer
    where
        A: App + Send + 'static,
        F: FnMut(usize) -> A,
    {
        let cluster =
            tether_server::Cluster::bind(config, handshake, loops, make_app).expect("bind the loops");
        let addr = cluster.local_addr();
        let handle = cluster.handle();
        let thread = thread::Builder::new()
            .name("tether-cluster".into())
            .spawn(move || cluster.run())
            .expect("spawn the cluster thread");
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// A `ws://` URL of this server.
    pub fn ws_url(&self, target: &str) -> String {
        format!("ws://{}{target}", self.addr)
    }

    /// An `http://` URL of this server.
    pub fn http_url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    /// The server's counters now.
    pub fn stats(&self) -> tether_server::StatsSnapshot {
        self.handle.stats()
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.handle.shutdown();
    }

    /// Waits for `run()` to return (after [`TestServer::begin_shutdown`])
    /// and checks that it returned `Ok`.
    pub fn join(mut self) {
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("run() failed: {e}"),
            Err(_) => panic!("the server thread panicked"),
        }
    }

    /// Shuts down gracefully, waits for `run()` and checks it returned
    /// `Ok`. Returns how long that took.
    pub fn shutdown(self) -> Duration {
        let start = Instant::now();
        self.begin_shutdown();
        self.join();
        start.elapsed()
    }

    /// As [`TestServer::join`], but a `run()` that has not returned after
    /// `patience` fails the test instead of hanging it. For a server whose
    /// shutdown timeout (or close timeout, or linger) is far longer than
    /// `patience`: that it returns at all shows what ended it, and how
    /// fast the machine was decides nothing.
    pub fn join_within(self, patience: Duration) {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            self.join();
            let _ = tx.send(());
        });
        match rx.recv_timeout(patience) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("run() had not returned after {patience:?} of waiting for it")
            }
            // join() panicked, and said why.
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("run() failed"),
        }
    }

    /// [`TestServer::begin_shutdown`], then [`TestServer::join_within`].
    pub fn shutdown_within(self, patience: Duration) {
        self.begin_shutdown();
        self.join_within(patience);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A test that failed half way still stops its server.
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
        }
    }
}

/// A TCP connection with timeouts on both directions.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the test server");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    stream.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads once into `buf`; returns the number of bytes (0 at EOF). Fails
/// the test on a timeout or an error.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed (a timeout means the server stopped answering): {e}"),
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response says the connection closes after it.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Parses a response head at the start of `buf`: the response (without
/// body) and the head's length, or `None` while it is incomplete.
pub(crate) fn parse_head(buf: &[u8]) -> Option<(Response, usize)> {
    let mut headers = [tether_http1::EMPTY_HEADER; 64];
    let limits = tether_http1::Limits::default();
    // The method only decides the body's framing, which the callers read
    // for themselves.
    match tether_http1::parse_response(buf, &mut headers, "GET", &limits) {
        Ok(tether_http1::Status::Complete((head, len))) => {
            let response = Response {
                status: head.status(),
                headers: head
                    .headers()
                    .iter()
                    .map(|h| {
                        let value = std::str::from_utf8(h.value).expect("an ASCII header value");
                        (h.name.to_owned(), value.to_owned())
                    })
                    .collect(),
                body: Vec::new(),
            };
            Some((response, len))
        }
        Ok(tether_http1::Status::Partial) => None,
        Err(e) => panic!("malformed response ({e}): {:?}", String::from_utf8_lossy(buf)),
    }
}

/// A plain HTTP/1.x connection that keeps what it has read but not yet
/// parsed, so pipelined responses can be taken one at a time.
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> HttpConn {
        HttpConn {
            stream: tcp(addr),
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write the request");
    }

    /// Writes a GET (or any bodiless request) for `target`.
    pub fn request(&mut self, method: &str, target: &str, extra_headers: &str) {
        let request = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n{extra_headers}\r\n");
        self.send(request.as_bytes());
    }

    /// Reads one response, with a body of its `Content-Length`.
    pub fn response(&mut self) -> Response {
        self.read_response(false)
    }

    /// Reads the response to a HEAD request: the head only, whatever its
    /// `Content-Length` says.
    pub fn head_response(&mut self) -> Response {
        self.read_response(true)
    }

    fn read_response(&mut self, head_only: bool) -> Response {
        let (mut response, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf) {
                break parsed;
            }
            let n = read_some(&mut self.stream, &mut self.buf);
            assert!(
                n > 0,
                "connection closed before a complete response head: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        };
        self.buf.drain(..head_len);
        let length: usize = if head_only {
            0
        } else {
            response
                .header("content-length")
                .expect("every non-streaming response has a Content-Length")
                .parse()
                .expect("a numeric Content-Length")
        };
        while self.buf.len() < length {
            let n = read_some(&mut self.stream, &mut self.buf);
            assert!(n > 0, "connection closed inside a response body");
        }
        response.body = self.buf.drain(..length).collect();
        response
    }

    /// Asserts that nothing more arrives and the server closes the
    /// connection.
    pub fn expect_eof(&mut self) {
        expect_eof(&mut self.stream, &mut self.buf);
    }

    /// Asserts that the server resets the connection (it dropped it with
    /// unread input, or aborted it) without sending anything more.
    pub fn expect_reset(&mut self) {
        expect_reset(&mut self.stream, &mut self.buf);
    }
}

/// Asserts that the peer resets `stream` (a read fails with
/// `ConnectionReset`) without sending anything first.
pub fn expect_reset(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "expected a reset, got a clean close after {:?}",
                String::from_utf8_lossy(buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("expected a reset, got {e}"),
        }
    }
    assert!(
        buf.is_empty(),
        "unexpected bytes before the reset: {:?}",
        String::from_utf8_lossy(buf)
    );
}

/// Asserts that `buf` holds nothing unread and that the peer closes the
/// stream cleanly (a read returns 0) without sending anything more.
pub fn expect_eof(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    assert!(
        buf.is_empty(),
        "unexpected bytes before the end: {:?}",
        String::from_utf8_lossy(buf)
    );
    let n = read_some(stream, buf);
    assert_eq!(
        n,
        0,
        "expected the server to close the connection, got {:?}",
        String::from_utf8_lossy(buf)
    );
}

/// `GET /metrics` on a fresh connection: the page (it must answer 200).
pub fn scrape_metrics(addr: SocketAddr) -> String {
    let response = get(addr, "/metrics");
    assert_eq!(response.status, 200, "GET /metrics");
    String::from_utf8(response.body).expect("the metrics page is UTF-8")
}

/// The text of the sample written exactly `series` (a name, with its
/// labels if it has any) on a metrics page, failing the test without it.
pub fn metric_sample<'a>(page: &'a str, series: &str) -> &'a str {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

/// One request on a fresh connection (with `Connection: close`).
pub fn get(addr: SocketAddr, target: &str) -> Response {
    let mut conn = HttpConn::connect(addr);
    conn.request("GET", target, "Connection: close\r\n");
    conn.response()
}

/// `METHOD target` with these header lines (each ending in CRLF) and
/// `body`, on a connection of its own (closed after): the response.
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &[u8]) -> Response {
    let mut conn = HttpConn::connect(addr);
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    conn.send(head.as_bytes());
    conn.send(body);
    conn.response()
}

/// Masking keys from a small xorshift generator: varied, never all zero,
/// and the same in every run.
pub fn masks(seed: u32) -> MaskSource {
    let mut state = seed | 1;
    Box::new(move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_le_bytes()
    })
}

/// A client Connection that never pings and never times out on its own.
pub fn client_connection(seed: u32) -> Connection {
    let config = tether_ws::Config::default()
        .ping_interval(None)
        .idle_timeout(None);
    Connection::new(Role::Client(masks(seed)), config, Instant::now())
}

/// An upgrade request not yet sent: `request` holds its bytes, to which a
/// test may append frames (written with `conn`) so that they go out in the
/// same write.
pub struct Upgrade {
    pub request: Vec<u8>,
    pub conn: Connection,
    handshake: ClientHandshake,
}

impl Upgrade {
    pub fn new(addr: SocketAddr, target: &str) -> Upgrade {
        Upgrade::offering(addr, target, None)
    }

    /// An upgrade request that offers these extensions (a
    /// `Sec-WebSocket-Extensions` value); the response may accept them.
    /// The client's connection has none: a test adds what was agreed.
    pub fn offering(addr: SocketAddr, target: &str, extensions: Option<&str>) -> Upgrade {
        let mut request = Vec::new();
        let host = addr.to_string();
        let mut client = ClientRequest::new(&host, target, *b"tether-test-key!");
        if let Some(offer) = extensions {
            client = client.extensions(offer);
        }
        let handshake = client.write(&mut request).expect("a valid upgrade request");
        Upgrade {
            request,
            conn: client_connection(addr.port().into()),
            handshake,
        }
    }
}

/// A blocking WebSocket client.
pub struct WsClient {
    pub stream: TcpStream,
    pub conn: Connection,
    /// Bytes read but not yet fed to `conn`.
    buf: Vec<u8>,
    /// Write the replies `conn` produces (pongs, the close echo). A test
    /// playing an unresponsive peer turns this off.
    pub auto_reply: bool,
}

impl WsClient {
    /// Opens a WebSocket to `target`.
    pub fn connect(addr: SocketAddr, target: &str) -> WsClient {
        let upgrade = Upgrade::new(addr, target);
        let mut stream = tcp(addr);
        stream
            .write_all(&upgrade.request)
            .expect("write the upgrade request");
        WsClient::finish(stream, upgrade)
    }

    /// Opens a WebSocket to `target` whose upgrade request carries these
    /// header lines too (each ending in CRLF).
    pub fn connect_with(addr: SocketAddr, target: &str, headers: &str) -> WsClient {
        let mut upgrade = Upgrade::new(addr, target);
        // Before the blank line that ends the head.
        let end = upgrade.request.len().saturating_sub(2);
        upgrade.request.splice(end..end, headers.bytes());
        let mut stream = tcp(addr);
        stream
            .write_all(&upgrade.request)
            .expect("write the upgrade request");
        WsClient::finish(stream, upgrade)
    }

    /// Reads the `101` to an upgrade request already written to `stream`.
    pub fn finish(mut stream: TcpStream, upgrade: Upgrade) -> WsClient {
        let mut buf = Vec::new();
        loop {
            match upgrade.handshake.validate_response(&buf) {
                Ok(Status::Complete((_, used))) => {
                    buf.drain(..used);
                    break;
                }
                Ok(Status::Partial) => {
                    let n = read_some(&mut stream, &mut buf);
                    assert!(
                        n > 0,
                        "closed during the handshake: {:?}",
                        String::from_utf8_lossy(&buf)
                    );
                }
                Err(e) => panic!("upgrade refused ({e}): {:?}", String::from_utf8_lossy(&buf)),
            }
        }
        WsClient {
            stream,
            conn: upgrade.conn,
            buf,
            auto_reply: true,
        }
    }

    fn write_out(&mut self, out: &[u8]) {
        self.stream.write_all(out).expect("write to the server");
    }

    pub fn send(&mut self, message: &Message) {
        let mut out = Vec::new();
        self.conn.send(message, &mut out).expect("send a message");
        self.write_out(&out);
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(&Message::text(text));
    }

    pub fn send_binary(&mut self, data: &[u8]) {
        self.send(&Message::binary(data));
    }

    pub fn ping(&mut self, payload: &[u8]) {
        let mut out = Vec::new();
        self.conn.ping(payload, &mut out).expect("send a ping");
        self.write_out(&out);
    }

    /// Starts the close handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str) {
        let mut out = Vec::new();
        self.conn
            .close(code, reason, Instant::now(), &mut out)
            .expect("send a close frame");
        self.write_out(&out);
    }

    /// Writes bytes as they are (hand-made frames).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.write_out(bytes);
    }

    /// The next event, or `None` when the server closes the connection.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            if !self.buf.is_empty() {
                let mut out = Vec::new();
                let (used, event) = self.conn.receive(&self.buf, Instant::now(), &mut out);
                self.buf.drain(..used);
                if self.auto_reply && !out.is_empty() {
                    // The server may already have shut down its side for
                    // good; what the test reads decides, not this write.
                    let _ = self.stream.write_all(&out);
                }
                if event.is_some() {
                    return event;
                }
                if !self.buf.is_empty() {
                    continue;
                }
            }
            if read_some(&mut self.stream, &mut self.buf) == 0 {
                return None;
            }
        }
    }

    /// The next data message, skipping pings and pongs.
    pub fn recv(&mut self) -> Message {
        loop {
            match self.next_event() {
                Some(Event::Message(message)) => return message,
                Some(Event::Ping(_) | Event::Pong(_)) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next text message's text.
    pub fn recv_text(&mut self) -> String {
        self.recv().into_text().expect("a text message")
    }

    /// The server's close frame, skipping pings and pongs.
    pub fn recv_close(&mut self) -> CloseFrame {
        loop {
            match self.next_event() {
                Some(Event::Close(frame)) => return frame,
                Some(Event::Ping(_) | Event::Pong(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// The text messages that come before the close frame, and the close
    /// frame.
    pub fn texts_then_close(&mut self) -> (Vec<String>, CloseFrame) {
        let mut texts = Vec::new();
        loop {
            match self.next_event() {
                Some(Event::Close(frame)) => return (texts, frame),
                Some(Event::Message(message)) => match message.into_text() {
                    Ok(text) => texts.push(text),
                    Err(binary) => panic!("expected a text message, got {binary:?}"),
                },
                Some(Event::Ping(_) | Event::Pong(_)) => {}
                other => panic!("expected a text message or a close frame, got {other:?}"),
            }
        }
    }

    /// Asserts that the server closes the TCP connection now, sending
    /// nothing more.
    pub fn expect_eof(&mut self) {
        expect_eof(&mut self.stream, &mut self.buf);
    }
}

/// Appends one masked client frame, built by hand (for fragments and
/// deliberately broken frames).
pub fn client_frame(out: &mut Vec<u8>, fin: bool, opcode: OpCode, payload: &[u8], mask: [u8; 4]) {
    let header = FrameHeader::new(fin, opcode, payload.len() as u64).with_mask(mask);
    tether_frame::encode_frame(out, header, payload).expect("a valid frame");
}

/// A message split into frames of the given sizes (the last frame takes
/// the rest), masked, as wire bytes.
pub fn fragmented(message: &Message, sizes: &[usize], seed: u32) -> Vec<u8> {
    let mut mask = masks(seed);
    let mut out = Vec::new();
    let mut rest = message.as_bytes();
    let first = if message.is_text() {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    let mut opcode = first;
    for &size in sizes {
        let take = size.min(rest.len());
        client_frame(&mut out, false, opcode, &rest[..take], mask());
        rest = &rest[take..];
        opcode = OpCode::Continuation;
    }
    client_frame(&mut out, true, opcode, rest, mask());
    out
}

/// An event-stream reader: the response head, then the body through
/// tether-sse's parser, keeping the raw body too (comments such as
/// heartbeats never reach the parser's output).
pub struct SseClient {
    pub stream: TcpStream,
    pub response: Response,
    pub raw: Vec<u8>,
    parser: Parser,
    ended: bool,
}

impl SseClient {
    /// Requests `target` with extra header lines (each ending in CRLF) and
    /// reads the response head. The caller checks the status.
    pub fn connect(addr: SocketAddr, target: &str, extra_headers: &str) -> SseClient {
        let mut stream = tcp(addr);
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n{extra_headers}\r\n"
        );
        stream.write_all(request.as_bytes()).expect("write the request");
        let mut buf = Vec::new();
        let (response, head_len) = loop {
            if let Some(parsed) = parse_head(&buf) {
                break parsed;
            }
            let n = read_some(&mut stream, &mut buf);
            assert!(n > 0, "closed before the response head");
        };
        buf.drain(..head_len);
        let mut client = SseClient {
            stream,
            response,
            raw: Vec::new(),
            parser: Parser::new(),
            ended: false,
        };
        client.take(&buf);
        client
    }

    fn take(&mut self, body: &[u8]) {
        self.raw.extend_from_slice(body);
        self.parser.feed(body);
    }

    /// Reads more of the body; false at the end of the stream.
    pub fn read_more(&mut self) -> bool {
        if self.ended {
            return false;
        }
        let mut buf = Vec::new();
        if read_some(&mut self.stream, &mut buf) == 0 {
            self.ended = true;
            self.parser.finish();
            return false;
        }
        self.take(&buf);
        true
    }

    /// The next parsed item, or `None` at the end of the stream.
    pub fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.parser.poll() {
                return Some(item.expect("a well-formed event stream"));
            }
            if !self.read_more() {
                return None;
            }
        }
    }

    /// The next event, skipping `retry` items; fails at the end of the
    /// stream.
    pub fn next_event(&mut self) -> MessageEvent {
        loop {
            match self.next_item() {
                Some(Item::Event(event)) => return event,
                Some(Item::Retry(_)) => {}
                None => panic!(
                    "the stream ended; raw body: {:?}",
                    String::from_utf8_lossy(&self.raw)
                ),
            }
        }
    }

    /// Reads until the raw body is at least `len` bytes long.
    pub fn read_raw_until(&mut self, len: usize) {
        while self.raw.len() < len {
            assert!(
                self.read_more(),
                "the stream ended early: {:?}",
                String::from_utf8_lossy(&self.raw)
            );
        }
    }

    /// Reads to the end of the stream; returns the events that were still
    /// to come.
    pub fn read_to_end(&mut self) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while let Some(item) = self.next_item() {
            if let Item::Event(event) = item {
                events.push(event);
            }
        }
        events
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }
}

/// Half-closes our side of a connection (the request is complete).
pub fn shutdown_write(stream: &TcpStream) {
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
}
