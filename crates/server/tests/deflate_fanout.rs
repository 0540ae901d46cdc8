//! Compressed fan-out: a frame's compressed twin reaches the sessions that
//! negotiated permessage-deflate without server context takeover, over
//! HTTP/1.1 and HTTP/2, and the plain frame every other one.
#![cfg(feature = "deflate")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tether_frame::{DecodeRules, OpCode, Rsv, Status, decode_header};
use tether_server::deflate::{Deflate, DeflateConfig, Params, Role as DeflateRole, shared_frame};
use tether_server::{App, ConnId, Ctx, Encoded, Handshake, Message, MessageRef, Request, Route};
use tether_testkit::h2::H2Client;
use tether_testkit::{TestServer, client_connection, config, tcp};
use tether_ws::{Connection, Event};

/// A JSON-like message of about 1 KiB: compressible, as most are.
fn payload() -> String {
    let mut text = String::from("[");
    for i in 0..18 {
        text.push_str(&format!(
            "{{\"symbol\":\"SYM{i}\",\"bid\":{}.25,\"ask\":{}.5,\"venue\":\"main\"}},",
            100 + i,
            101 + i
        ));
    }
    text.push_str("{}]");
    text
}

/// Sends whatever any session says ("eager", "lazy", "small") to every
/// open session, as one shared frame with a compressed twin.
struct Fan {
    subscribers: Vec<ConnId>,
    /// How many times a lazy twin was made.
    made: Arc<AtomicUsize>,
}

impl App for Fan {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/fan" => Route::WebSocket(()),
            _ => Route::NotFound,
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: &Request<'_>) {
        self.subscribers.push(conn);
        ctx.send(conn, &Message::text("ready"));
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &mut (), _: tether_server::CloseReason) {
        self.subscribers.retain(|c| *c != conn);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &mut (), message: MessageRef<'_>) {
        if let Some(text) = message.as_text().and_then(|t| t.strip_prefix("echo ")) {
            // To this session alone, through its own extension.
            return ctx.send(conn, &Message::text(text));
        }
        if message.as_text().is_some_and(|t| t.starts_with("mirror ")) {
            // The message itself, as it was lent.
            return ctx.send(conn, message);
        }
        let encoded = match message.as_text() {
            Some("eager") => Encoded::ws_deflated(&Message::text(payload())),
            Some(what @ ("lazy" | "small")) => {
                let text = if what == "lazy" {
                    payload()
                } else {
                    "tiny".to_owned()
                };
                let made = Arc::clone(&self.made);
                let plain = text.clone();
                Encoded::ws(&Message::text(text)).with_deflated_lazy(move || {
                    made.fetch_add(1, Ordering::SeqCst);
                    shared_frame(OpCode::Text, plain.as_bytes()).map(Arc::from)
                })
            }
            _ => return,
        };
        ctx.send_encoded(self.subscribers.clone(), &encoded);
    }
}

fn start(deflate: DeflateConfig) -> (TestServer, Arc<AtomicUsize>) {
    let made = Arc::new(AtomicUsize::new(0));
    let app = Fan {
        subscribers: Vec::new(),
        made: Arc::clone(&made),
    };
    // The test's clients do not answer close frames: do not wait for them.
    let mut config = config();
    config.shutdown_timeout = Duration::from_millis(100);
    let server = TestServer::start_with(config, Handshake::new().negotiator(deflate), app);
    (server, made)
}

/// The client side of one session: the agreed extension and the frames.
struct Session {
    conn: Connection,
    params: Option<Params>,
}

impl Session {
    fn new(extensions: Option<&str>, seed: u32) -> Session {
        let params = extensions.map(|value| {
            let parsed = tether_handshake::parse_extensions(value).expect("a valid header");
            Params::from_response(&parsed[0]).expect("permessage-deflate")
        });
        let mut conn = client_connection(seed);
        if let Some(params) = params {
            conn = conn.with_extension(Box::new(Deflate::new(DeflateRole::Client, params)));
        }
        Session { conn, params }
    }

    /// Takes one whole frame off the front of `buf`: its first byte and
    /// the message it carries (read through the agreed extension).
    fn frame(&mut self, buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
        let rules = DecodeRules {
            allowed_rsv: Rsv::RSV1,
            ..DecodeRules::client()
        };
        let Ok(Status::Complete((header, used))) = decode_header(buf, &rules) else {
            return None;
        };
        let total = used + header.payload_len as usize;
        if buf.len() < total {
            return None;
        }
        let frame: Vec<u8> = buf.drain(..total).collect();
        let (n, event) = self.conn.receive(&frame, Instant::now(), &mut Vec::new());
        assert_eq!(n, frame.len());
        match event {
            Some(Event::Message(message)) => Some((frame[0], message.as_bytes().to_vec())),
            other => panic!("not a message: {other:?}"),
        }
    }
}

/// A WebSocket over HTTP/1.1 with the given offer.
struct H1 {
    stream: TcpStream,
    buf: Vec<u8>,
    session: Session,
}

impl H1 {
    fn open(addr: SocketAddr, offer: Option<&str>, seed: u32) -> H1 {
        let mut stream = tcp(addr);
        let offer = offer.map_or(String::new(), |o| format!("Sec-WebSocket-Extensions: {o}\r\n"));
        write!(
            stream,
            "GET /fan HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        )
        .expect("write the upgrade");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).expect("read the 101");
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let extensions = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
            .map(str::to_owned);
        buf.drain(..end);
        let mut h1 = H1 {
            stream,
            buf,
            session: Session::new(extensions.as_deref(), seed),
        };
        assert_eq!(h1.next(), (0x81, b"ready".to_vec()));
        h1
    }

    fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if let Some(frame) = self.session.frame(&mut self.buf) {
                return frame;
            }
            let mut chunk = [0; 16 * 1024];
            let n = self.stream.read(&mut chunk).expect("read a frame");
            assert!(n > 0, "closed before the frame");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn say(&mut self, text: &str) {
        let mut out = Vec::new();
        self.session
            .conn
            .send(&Message::text(text), &mut out)
            .expect("send");
        self.stream.write_all(&out).expect("write");
    }
}

#[test]
fn sessions_without_server_context_takeover_get_the_compressed_twin() {
    let (server, made) = start(DeflateConfig::new());
    let mut nct = H1::open(
        server.addr,
        Some("permessage-deflate; server_no_context_takeover"),
        1,
    );
    let mut window = H1::open(server.addr, Some("permessage-deflate; client_max_window_bits"), 2);
    let mut plain = H1::open(server.addr, None, 3);
    // A 9-bit window is too small for a 1 KiB message compressed on its own.
    let mut small_window = H1::open(
        server.addr,
        Some("permessage-deflate; server_max_window_bits=9"),
        4,
    );
    for session in [&nct, &window, &small_window] {
        assert!(
            session
                .session
                .params
                .is_some_and(|p| p.server_no_context_takeover)
        );
    }
    assert!(plain.session.params.is_none());
    let text = payload().into_bytes();
    assert!((1000..1100).contains(&text.len()), "{}", text.len());

    // Said by the first session: it is the current connection, the others
    // are sent to after the callback; both paths choose per session.
    nct.say("lazy");
    for session in [&mut nct, &mut window] {
        let (first, message) = session.next();
        assert_eq!(first, 0xC1, "FIN, RSV1, text");
        assert_eq!(message, text);
    }
    for session in [&mut plain, &mut small_window] {
        assert_eq!(session.next(), (0x81, text.clone()));
    }
    assert_eq!(made.load(Ordering::SeqCst), 1, "made once for all");
    assert_eq!(server.stats().deflated_out, 2);

    // Made eagerly: the same choices.
    plain.say("eager");
    assert_eq!(nct.next().0, 0xC1);
    assert_eq!(window.next(), (0xC1, text.clone()));
    assert_eq!(plain.next(), (0x81, text.clone()));
    assert_eq!(small_window.next(), (0x81, text.clone()));

    // A message that does not shrink goes plain to all, made once all the
    // same.
    window.say("small");
    for session in [&mut nct, &mut window, &mut plain, &mut small_window] {
        assert_eq!(session.next(), (0x81, b"tiny".to_vec()));
    }
    assert_eq!(made.load(Ordering::SeqCst), 2);
    assert_eq!(server.stats().deflated_out, 4);
    server.shutdown();
}

#[test]
fn a_twin_nobody_takes_is_never_made() {
    let (server, made) = start(DeflateConfig::new());
    let mut plain = H1::open(server.addr, None, 5);
    let mut other = H1::open(server.addr, None, 6);
    plain.say("lazy");
    assert_eq!(plain.next().0, 0x81);
    assert_eq!(other.next().0, 0x81);
    assert_eq!(made.load(Ordering::SeqCst), 0);
    server.shutdown();
}

#[test]
fn sessions_with_server_context_takeover_get_the_plain_frame() {
    let (server, made) = start(DeflateConfig::new().server_context_takeover(true));
    let mut takeover = H1::open(server.addr, Some("permessage-deflate"), 7);
    let params = takeover.session.params.expect("negotiated");
    assert!(!params.server_no_context_takeover);
    let mut nct = H1::open(
        server.addr,
        Some("permessage-deflate; server_no_context_takeover"),
        8,
    );
    takeover.say("lazy");
    let text = payload().into_bytes();
    assert_eq!(takeover.next(), (0x81, text.clone()));
    assert_eq!(nct.next(), (0xC1, text.clone()));
    takeover.say("eager");
    assert_eq!(takeover.next(), (0x81, text.clone()));
    assert_eq!(nct.next(), (0xC1, text.clone()));
    assert_eq!(made.load(Ordering::SeqCst), 1);
    // The session's own compressor, which keeps context, still agrees with
    // the client's window: messages sent to it alone are compressed, the
    // second referring to the first.
    let echo = format!("echo {}", payload());
    for _ in 0..2 {
        takeover.say(&echo);
        assert_eq!(takeover.next(), (0xC1, text.clone()));
    }
    server.shutdown();
}

/// A WebSocket on a stream of an HTTP/2 connection (RFC 8441).
struct H2Ws {
    stream: u32,
    buf: Vec<u8>,
    session: Session,
}

impl H2Ws {
    fn open(client: &mut H2Client<TcpStream>, offer: Option<&str>, seed: u32) -> H2Ws {
        let extra: Vec<(&str, &str)> = offer
            .map(|o| vec![("sec-websocket-extensions", o)])
            .unwrap_or_default();
        let stream = client.websocket("/fan", &extra);
        let head = client.head(stream);
        assert_eq!(head.status(), Some(200));
        let extensions = head.field("sec-websocket-extensions");
        let mut ws = H2Ws {
            stream,
            buf: Vec::new(),
            session: Session::new(extensions.as_deref(), seed),
        };
        assert_eq!(ws.next(client), (0x81, b"ready".to_vec()));
        ws
    }

    fn next(&mut self, client: &mut H2Client<TcpStream>) -> (u8, Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.buf.extend_from_slice(&client.take_data(self.stream));
            if let Some(frame) = self.session.frame(&mut self.buf) {
                return frame;
            }
            assert!(Instant::now() < deadline, "no frame on stream {}", self.stream);
            assert!(client.read_frame(), "the connection ended");
        }
    }

    fn say(&mut self, client: &mut H2Client<TcpStream>, text: &str) {
        let mut out = Vec::new();
        self.session
            .conn
            .send(&Message::text(text), &mut out)
            .expect("send");
        client.data(self.stream, &out, false);
    }
}

#[test]
fn over_http2_streams_choose_as_sessions_do() {
    let (server, made) = start(DeflateConfig::new());
    let mut client = H2Client::connect(server.addr);
    let mut nct = H2Ws::open(&mut client, Some("permessage-deflate; client_max_window_bits"), 9);
    let mut plain = H2Ws::open(&mut client, None, 10);
    let mut h1 = H1::open(
        server.addr,
        Some("permessage-deflate; server_no_context_takeover"),
        11,
    );
    let text = payload().into_bytes();
    nct.say(&mut client, "lazy");
    assert_eq!(nct.next(&mut client), (0xC1, text.clone()));
    assert_eq!(plain.next(&mut client), (0x81, text.clone()));
    assert_eq!(h1.next(), (0xC1, text.clone()));
    // From the HTTP/1.1 session to the streams.
    h1.say("lazy");
    assert_eq!(h1.next(), (0xC1, text.clone()));
    assert_eq!(nct.next(&mut client), (0xC1, text.clone()));
    assert_eq!(plain.next(&mut client), (0x81, text));
    assert_eq!(made.load(Ordering::SeqCst), 2, "one per message");
    assert_eq!(server.stats().deflated_out, 4);
    server.shutdown();
}

#[test]
fn a_plain_message_echoed_as_lent_goes_back_through_the_extension() {
    // A client may send a message uncompressed on a session that agreed on
    // permessage-deflate: it is lent in place, and the echo of it cannot go
    // back where it lies, since the extension compresses it.
    let (server, _) = start(DeflateConfig::new());
    let mut session = H1::open(
        server.addr,
        Some("permessage-deflate; server_no_context_takeover"),
        5,
    );
    assert!(session.session.params.is_some());
    let text = format!("mirror {}", payload());
    let mut frame = Vec::new();
    client_connection(6)
        .send(&Message::text(text.as_str()), &mut frame)
        .expect("frame it");
    assert_eq!(frame[0], 0x81, "FIN, text, not compressed");
    session.stream.write_all(&frame).expect("write");
    let (first, echoed) = session.next();
    assert_eq!(first, 0xC1, "FIN, RSV1, text: compressed");
    assert_eq!(echoed, text.as_bytes());
    drop(session);
    server.shutdown();
}
