//! Compressed fan-out in the hub: subscribers that negotiated
//! permessage-deflate without server context takeover get each event as a
//! frame compressed once and shared (RSV1), over HTTP/1.1 and HTTP/2, on
//! every loop; the others get the plain frame. Every test here holds
//! `SERIAL`, because one counts the process's compressions.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use tether_testkit as common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::{TestServer, client_connection, config, tcp};
use tether_frame::{DecodeRules, Rsv, Status, decode_header};
use tether_hub_app::{HubApp, HubSettings, HubShared};
use tether_server::deflate::{Deflate, DeflateConfig, Params, Role as DeflateRole};
use tether_server::{Cluster, Config, Handle, Handshake};
use tether_ws::{Connection, Event};

use support::announcing::Announcing;
use support::http::{bearer, request};

const TOKEN: &str = "deflate-token";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
}

fn handshake() -> Handshake {
    Handshake::new().negotiator(DeflateConfig::new())
}

fn short_shutdown() -> Config {
    // The test's clients do not answer close frames: do not wait for them.
    let mut config = config();
    config.shutdown_timeout = Duration::from_millis(100);
    config
}

/// About 1 KiB of JSON, as a quote feed would publish.
fn data(n: usize) -> String {
    let quotes: Vec<String> = (0..16)
        .map(|i| {
            format!(
                "{{\"symbol\":\"SYM{i}\",\"bid\":{}.25,\"ask\":{}.5,\"n\":{n}}}",
                100 + i,
                101 + i
            )
        })
        .collect();
    format!("[{}]", quotes.join(","))
}

fn publish(addr: SocketAddr, topic: &str, body: &str) -> String {
    let response = request(addr, "POST", &format!("/topics/{topic}"), &bearer(TOKEN), body);
    assert_eq!(response.status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    answer["id"].as_str().expect("an id").to_owned()
}

/// The client side of a session: the agreed extension, and the frames as
/// they came (first byte) with the messages they carry.
struct Frames {
    conn: Connection,
    params: Option<Params>,
    buf: Vec<u8>,
}

impl Frames {
    fn new(extensions: Option<&str>, seed: u32) -> Frames {
        let params = extensions.map(|value| {
            let parsed = tether_handshake::parse_extensions(value).expect("a valid header");
            Params::from_response(&parsed[0]).expect("permessage-deflate")
        });
        let mut conn = client_connection(seed);
        if let Some(params) = params {
            conn = conn.with_extension(Box::new(Deflate::new(DeflateRole::Client, params)));
        }
        Frames {
            conn,
            params,
            buf: Vec::new(),
        }
    }

    fn take(&mut self) -> Option<(u8, String)> {
        let rules = DecodeRules {
            allowed_rsv: Rsv::RSV1,
            ..DecodeRules::client()
        };
        let Ok(Status::Complete((header, used))) = decode_header(&self.buf, &rules) else {
            return None;
        };
        let total = used + header.payload_len as usize;
        if self.buf.len() < total {
            return None;
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        let (n, event) = self.conn.receive(&frame, Instant::now(), &mut Vec::new());
        assert_eq!(n, frame.len());
        match event {
            Some(Event::Message(message)) => Some((frame[0], message.as_text().expect("text").to_owned())),
            other => panic!("not a message: {other:?}"),
        }
    }
}

/// A subscriber over HTTP/1.1 with the given offer.
struct Subscriber {
    stream: TcpStream,
    frames: Frames,
}

impl Subscriber {
    fn open(addr: SocketAddr, target: &str, offer: Option<&str>, seed: u32) -> Subscriber {
        let mut stream = tcp(addr);
        let offer = offer.map_or(String::new(), |o| format!("Sec-WebSocket-Extensions: {o}\r\n"));
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
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
        let mut frames = Frames::new(extensions.as_deref(), seed);
        frames.buf = buf.split_off(end);
        Subscriber { stream, frames }
    }

    fn next(&mut self) -> (u8, String) {
        loop {
            if let Some(frame) = self.frames.take() {
                return frame;
            }
            let mut chunk = [0; 16 * 1024];
            let n = self.stream.read(&mut chunk).expect("read a frame");
            assert!(n > 0, "closed before the frame");
            self.frames.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[test]
fn deflate_subscribers_get_compressed_events_and_the_others_plain_ones() {
    let _serial = serial();
    let server = TestServer::start_with(short_shutdown(), handshake(), HubApp::new(settings()));
    let target = "/topics/quotes/ws";
    let mut nct = Subscriber::open(
        server.addr,
        target,
        Some("permessage-deflate; server_no_context_takeover"),
        1,
    );
    let mut window = Subscriber::open(
        server.addr,
        target,
        Some("permessage-deflate; client_max_window_bits"),
        2,
    );
    let mut plain = Subscriber::open(server.addr, target, None, 3);
    let mut raw = Subscriber::open(
        server.addr,
        "/topics/quotes/ws?format=raw",
        Some("permessage-deflate"),
        4,
    );
    let mut raw_plain = Subscriber::open(server.addr, "/topics/quotes/ws?format=raw", None, 5);
    assert!(nct.frames.params.is_some_and(|p| p.server_no_context_takeover));
    assert!(window.frames.params.is_some_and(|p| p.server_no_context_takeover));
    assert!(plain.frames.params.is_none());
    for n in 0..3 {
        let data = data(n);
        let id = publish(server.addr, "quotes", &data);
        let (first, expected) = plain.next();
        assert_eq!(first, 0x81);
        let event = json(&expected);
        assert_eq!(
            (event["id"].as_str(), event["data"].as_str()),
            (Some(id.as_str()), Some(data.as_str()))
        );
        for subscriber in [&mut nct, &mut window] {
            assert_eq!(
                subscriber.next(),
                (0xC1, expected.clone()),
                "FIN, RSV1, text: the same event"
            );
        }
        assert_eq!(raw.next(), (0xC1, data.clone()));
        assert_eq!(raw_plain.next(), (0x81, data));
    }
    // A short event does not shrink: plain to everyone. Its JSON form
    // almost never does either, but for some ids it does (its digits
    // repeat the text around them: about 1 in 250), and then the JSON
    // subscribers that take twins get it compressed.
    publish(server.addr, "quotes", "1");
    let (first, json_form) = plain.next();
    assert_eq!(first, 0x81);
    let json_shrinks =
        tether_server::deflate::shared_frame(tether_frame::OpCode::Text, json_form.as_bytes()).is_some();
    for subscriber in [&mut nct, &mut window] {
        assert_eq!(
            subscriber.next(),
            (if json_shrinks { 0xC1 } else { 0x81 }, json_form.clone())
        );
    }
    assert_eq!(raw.next(), (0x81, "1".to_owned()));
    assert_eq!(server.stats().deflated_out, if json_shrinks { 11 } else { 9 });
    server.shutdown();
}

#[test]
fn a_deflate_subscriber_in_step_gets_each_delta_compressed_once_shared() {
    let _serial = serial();
    let mut settings = settings();
    settings
        .namespaces
        .push("state.* publish=backend delta=on".parse().unwrap());
    let server = TestServer::start_with(short_shutdown(), handshake(), HubApp::new(settings));
    let before = tether_hub::shared_compressions();
    let target = "/topics/state.quotes/ws?delta=1";
    let mut deflate =
        [1, 2].map(|seed| Subscriber::open(server.addr, target, Some("permessage-deflate"), seed));
    let mut plain = Subscriber::open(server.addr, target, None, 3);
    for n in 0..3 {
        publish(server.addr, "state.quotes", &data(n));
        let (first, text) = plain.next();
        assert_eq!(first, 0x81);
        let event = json(&text);
        // The first whole, then deltas: compressed for the deflate
        // sockets when that shrinks them, which it does for these.
        assert_eq!(event.get("delta").is_some(), n > 0, "{text}");
        if n > 0 {
            let shrinks = tether_server::deflate::shared_frame(tether_frame::OpCode::Text, text.as_bytes());
            assert!(shrinks.is_some(), "{text}");
        }
        for subscriber in &mut deflate {
            assert_eq!(
                subscriber.next(),
                (0xC1, text.clone()),
                "FIN, RSV1, text: the same"
            );
        }
    }
    // Each form compressed once for both deflate sockets: the first
    // event's and the two deltas.
    assert_eq!(server.stats().deflated_out, 6);
    assert_eq!(tether_hub::shared_compressions() - before, 3);
    server.shutdown();
}

#[test]
fn over_http2_a_deflate_stream_gets_compressed_events() {
    let _serial = serial();
    let server = TestServer::start_with(short_shutdown(), handshake(), HubApp::new(settings()));
    let mut client = H2Client::connect(server.addr);
    let open = |client: &mut H2Client<TcpStream>, offer: Option<&str>, seed| {
        let extra: Vec<(&str, &str)> = offer
            .map(|o| vec![("sec-websocket-extensions", o)])
            .unwrap_or_default();
        let stream = client.websocket("/topics/h2quotes/ws", &extra);
        let head = client.head(stream);
        assert_eq!(head.status(), Some(200));
        (
            stream,
            Frames::new(head.field("sec-websocket-extensions").as_deref(), seed),
        )
    };
    let (deflate_stream, mut deflate) =
        open(&mut client, Some("permessage-deflate; client_max_window_bits"), 6);
    let (plain_stream, mut plain) = open(&mut client, None, 7);
    assert!(deflate.params.is_some());
    let data = data(7);
    publish(server.addr, "h2quotes", &data);
    let next = |client: &mut H2Client<TcpStream>, stream: u32, frames: &mut Frames| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            frames.buf.extend_from_slice(&client.take_data(stream));
            if let Some(frame) = frames.take() {
                return frame;
            }
            assert!(Instant::now() < deadline, "no frame on stream {stream}");
            assert!(client.read_frame(), "the connection ended");
        }
    };
    let (first, expected) = next(&mut client, plain_stream, &mut plain);
    assert_eq!(first, 0x81);
    assert_eq!(json(&expected)["data"].as_str(), Some(data.as_str()));
    assert_eq!(next(&mut client, deflate_stream, &mut deflate), (0xC1, expected));
    assert_eq!(server.stats().deflated_out, 1);
    server.shutdown();
}

struct ClusterServer {
    addr: SocketAddr,
    handle: Handle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

impl Drop for ClusterServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The value of an unlabelled series on `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let response = common::get(addr, "/metrics");
    assert_eq!(response.status, 200);
    let text = String::from_utf8(response.body).expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[test]
fn each_event_is_compressed_once_for_every_subscriber_on_every_loop() {
    let _serial = serial();
    const LOOPS: u64 = 2;
    let shared = HubShared::new(settings(), LOOPS as usize);
    let cluster = Cluster::bind(short_shutdown(), handshake(), LOOPS as usize, |i| {
        Announcing(shared.app(i))
    })
    .expect("bind");
    let (addr, handle) = (cluster.local_addr(), cluster.handle());
    let server = ClusterServer {
        addr,
        handle,
        thread: Some(thread::spawn(move || cluster.run())),
    };
    // Two deflate subscribers and one plain on each loop.
    let mut deflate: Vec<(Subscriber, u64)> = Vec::new();
    let mut plain: Vec<(Subscriber, u64)> = Vec::new();
    let mut seed = 100;
    for _ in 0..400 {
        let full = |list: &Vec<(Subscriber, u64)>, per: usize| {
            (0..LOOPS).all(|l| list.iter().filter(|(_, i)| *i == l).count() >= per)
        };
        if full(&deflate, 2) && full(&plain, 1) {
            break;
        }
        seed += 1;
        let (list, per, offer) = if full(&deflate, 2) {
            (&mut plain, 1, None)
        } else {
            (&mut deflate, 2, Some("permessage-deflate"))
        };
        let mut subscriber = Subscriber::open(server.addr, "/topics/fan/ws", offer, seed);
        let (first, hello) = subscriber.next();
        assert_eq!(first, 0x81);
        let index = json(&hello)["loop"].as_u64().expect("the loop");
        if list.iter().filter(|(_, i)| *i == index).count() < per {
            list.push((subscriber, index));
        }
    }
    assert_eq!((deflate.len(), plain.len()), (4, 2), "subscribers on every loop");

    const EVENTS: usize = 5;
    let before = tether_hub::shared_compressions();
    for n in 0..EVENTS {
        let data = data(n);
        publish(server.addr, "fan", &data);
        let mut expected: Option<String> = None;
        for (subscriber, _) in &mut plain {
            let (first, text) = subscriber.next();
            assert_eq!(first, 0x81);
            assert_eq!(json(&text)["data"].as_str(), Some(data.as_str()));
            assert!(expected.as_ref().is_none_or(|e| *e == text));
            expected = Some(text);
        }
        for (subscriber, _) in &mut deflate {
            assert_eq!(subscriber.next(), (0xC1, expected.clone().expect("an event")));
        }
    }
    assert_eq!(
        tether_hub::shared_compressions() - before,
        EVENTS as u64,
        "one compression per event, for 4 subscribers on 2 loops"
    );
    assert_eq!(
        metric(server.addr, "tether_ws_shared_compressions_total"),
        tether_hub::shared_compressions()
    );
    assert_eq!(
        metric(server.addr, "tether_ws_deflated_sent_total"),
        (EVENTS * deflate.len()) as u64
    );
}
