//! Compressed event streams in the hub: a client whose `Accept-Encoding`
//! takes gzip or deflate gets its event stream in that coding, each event
//! readable as soon as it is sent, the events' bytes compressed once for
//! every stream; read here with flate2 (not the server's compressor), over
//! HTTP/1.1, HTTP/2 and HTTP/3, resumed and multi-topic, and a stream the
//! server ends checked to its trailer. Every test here holds `SERIAL`,
//! because one counts the process's compressions.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::{Crc, Decompress, FlushDecompress, Status};
use tether_hub_app::{HubApp, HubSettings, Namespace};
use tether_server::Config;
use tether_testkit::h2::H2Client;
use tether_testkit::h3::H3Client;
use tether_testkit::{TestServer, config, tcp};

use support::http::{bearer, request};

const TOKEN: &str = "compress-token";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
        .namespaces
        .push("vault.* compress=off".parse::<Namespace>().unwrap());
    settings
}

fn compressing() -> Config {
    let mut config = config();
    config.sse_compression = true;
    config.shutdown_timeout = Duration::from_millis(500);
    config
}

/// A realistic event of about `len` bytes of JSON.
fn data(n: usize, len: usize) -> String {
    let mut quotes = Vec::new();
    let mut i = 0;
    while quotes.iter().map(String::len).sum::<usize>() < len {
        quotes.push(format!(
            "{{\"symbol\":\"SYM{i}\",\"bid\":{}.25,\"ask\":{}.5,\"venue\":\"XNAS\",\"n\":{n}}}",
            100 + i,
            101 + i
        ));
        i += 1;
    }
    format!("[{}]", quotes.join(","))
}

fn publish(addr: SocketAddr, topic: &str, body: &str) -> String {
    let response = request(addr, "POST", &format!("/topics/{topic}"), &bearer(TOKEN), body);
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let answer: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    answer["id"].as_str().expect("an id").to_owned()
}

/// A response body read as it comes, inflated by flate2 as far as it
/// goes after each piece.
struct Body {
    coding: Option<String>,
    raw: Vec<u8>,
    inflater: Decompress,
    /// Bytes of `raw` (past the gzip header) the inflater took.
    used: usize,
    plain: Vec<u8>,
    ended: bool,
}

impl Body {
    fn new(coding: Option<&str>) -> Body {
        Body {
            coding: coding.map(str::to_owned),
            raw: Vec::new(),
            // zlib's header is read by the inflater; gzip's here.
            inflater: Decompress::new(coding == Some("deflate")),
            used: 0,
            plain: Vec::new(),
            ended: false,
        }
    }

    fn header_len(&self) -> usize {
        if self.coding.as_deref() == Some("gzip") {
            10
        } else {
            0
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        if self.coding.is_none() {
            self.plain.extend_from_slice(bytes);
            return;
        }
        let start = self.header_len();
        if self.raw.len() < start {
            return;
        }
        if start == 10 {
            assert_eq!(&self.raw[..3], [0x1f, 0x8b, 8], "a gzip header");
        }
        while !self.ended && start + self.used < self.raw.len() {
            self.plain.reserve(64 * 1024);
            let before = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress_vec(
                    &self.raw[start + self.used..],
                    &mut self.plain,
                    FlushDecompress::Sync,
                )
                .expect("a valid deflate stream");
            self.used += (self.inflater.total_in() - before.0) as usize;
            self.ended = status == Status::StreamEnd;
            if (self.inflater.total_in(), self.inflater.total_out()) == before {
                break;
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.plain).into_owned()
    }

    /// Checks that the body ended as its format says: the final block,
    /// then (gzip) the CRC-32 and length of all of it, nothing after;
    /// zlib's Adler-32 is checked by the inflater.
    fn check_end(&self) {
        if self.coding.is_none() {
            // A plain body ends with the connection or stream.
            return;
        }
        assert!(self.ended, "no final block: {:?}", self.text());
        let rest = &self.raw[self.header_len() + self.used..];
        match self.coding.as_deref() {
            Some("gzip") => {
                let mut crc = Crc::new();
                crc.update(&self.plain);
                let mut trailer = crc.sum().to_le_bytes().to_vec();
                trailer.extend_from_slice(&(self.plain.len() as u32).to_le_bytes());
                assert_eq!(rest, trailer, "the gzip trailer");
            }
            _ => assert!(rest.is_empty(), "bytes after the end: {rest:?}"),
        }
    }
}

/// An HTTP/1.1 event stream: its head, and its body as it comes.
struct H1Stream {
    stream: TcpStream,
    head: String,
    body: Body,
}

impl H1Stream {
    fn open(addr: SocketAddr, target: &str, extra: &str) -> H1Stream {
        let mut stream = tcp(addr);
        write!(stream, "GET {target} HTTP/1.1\r\nHost: test\r\n{extra}\r\n").unwrap();
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed in the head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let coding = field(&head, "content-encoding");
        let mut body = Body::new(coding.as_deref());
        body.feed(&buf[end..]);
        H1Stream { stream, head, body }
    }

    fn until(&mut self, needle: &str) {
        while !self.body.text().contains(needle) {
            let mut chunk = [0; 16 * 1024];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "ended before {needle:?}: {:?}", self.body.text());
            self.body.feed(&chunk[..n]);
        }
    }

    fn read_to_end(&mut self) {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).unwrap();
        self.body.feed(&rest);
    }
}

fn field(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn fields(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
        .collect()
}

#[test]
fn gzip_and_deflate_streams_share_each_event_and_end_with_their_trailers() {
    let _serial = serial();
    let mut config = compressing();
    config.sse_heartbeat = Duration::from_millis(100);
    let server = TestServer::start(config, HubApp::new(settings()));
    let target = "/topics/quotes/events";
    let mut gzip = H1Stream::open(
        server.addr,
        target,
        "Accept-Encoding: gzip, deflate, br, zstd\r\n",
    );
    let mut zlib = H1Stream::open(server.addr, target, "Accept-Encoding: deflate\r\n");
    let mut plain = H1Stream::open(server.addr, target, "");
    assert_eq!(field(&gzip.head, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(field(&zlib.head, "content-encoding").as_deref(), Some("deflate"));
    assert_eq!(field(&plain.head, "content-encoding"), None);
    for stream in [&gzip, &zlib, &plain] {
        assert!(
            fields(&stream.head, "vary").contains(&"accept-encoding".to_owned()),
            "{}",
            stream.head
        );
    }

    let before = tether_hub::shared_sse_compressions();
    let mut sent = Vec::new();
    for (n, len) in [(1, 300), (2, 2000), (3, 40)] {
        let data = data(n, len);
        let id = publish(server.addr, "quotes", &data);
        let line = format!("id: {id}\nevent: message\ndata: {data}\n\n");
        // Each event is readable before the next is published: flushed
        // at once, on every stream.
        for stream in [&mut gzip, &mut zlib, &mut plain] {
            stream.until(&line);
        }
        sent.push(line);
    }
    // Two events above the floor, each compressed once for both streams.
    assert_eq!(tether_hub::shared_sse_compressions() - before, 2);
    // Heartbeats come within the compressed stream too.
    let after_events = gzip.body.plain.len();
    while !gzip.body.plain[after_events..].windows(2).any(|w| w == b":\n") {
        let mut chunk = [0; 1024];
        let n = gzip.stream.read(&mut chunk).unwrap();
        assert!(n > 0, "ended before a heartbeat");
        gzip.body.feed(&chunk[..n]);
    }
    let compressed = gzip.body.raw.len();
    assert!(
        compressed * 2 < plain.body.raw.len(),
        "{compressed} bytes for {} plain",
        plain.body.raw.len()
    );

    // The server ends the streams: each body ends whole.
    drop(server);
    for stream in [&mut gzip, &mut zlib, &mut plain] {
        stream.read_to_end();
        assert!(
            stream.body.text().starts_with("retry: "),
            "{}",
            stream.body.text()
        );
        stream.body.check_end();
        let mut parser = tether_sse::Parser::new();
        parser.feed(&stream.body.plain);
        let mut datas = Vec::new();
        while let Some(item) = parser.poll() {
            if let Ok(tether_sse::Item::Event(event)) = item {
                datas.push(event.data().to_owned());
            }
        }
        assert_eq!(datas.len(), 3, "{}", stream.body.text());
    }
}

#[test]
fn a_resumed_stream_gets_its_replay_compressed() {
    let _serial = serial();
    let server = TestServer::start(compressing(), HubApp::new(settings()));
    let first = publish(server.addr, "news", &data(1, 300));
    let second = data(2, 2000);
    let second_id = publish(server.addr, "news", &second);
    let mut resumed = H1Stream::open(
        server.addr,
        "/topics/news/events",
        &format!("Accept-Encoding: gzip\r\nLast-Event-ID: {first}\r\n"),
    );
    assert_eq!(field(&resumed.head, "content-encoding").as_deref(), Some("gzip"));
    resumed.until(&format!("id: {second_id}\nevent: message\ndata: {second}\n\n"));
    assert!(!resumed.body.text().contains(&format!("id: {first}\n")));
    // A resume from an id the hub never made: the gap signal, compressed
    // for this stream alone.
    let mut gap = H1Stream::open(
        server.addr,
        "/topics/news/events",
        "Accept-Encoding: deflate\r\nLast-Event-ID: 1-1\r\n",
    );
    gap.until("event: gap\n");
    gap.until(&format!("id: {second_id}\n"));
}

#[test]
fn a_multi_topic_stream_is_compressed_with_each_streams_own_id_lines() {
    let _serial = serial();
    let server = TestServer::start(compressing(), HubApp::new(settings()));
    let target = "/events?topic=a&topic=b";
    let mut one = H1Stream::open(server.addr, target, "Accept-Encoding: gzip\r\n");
    let mut two = H1Stream::open(server.addr, target, "Accept-Encoding: gzip;q=0.5, deflate\r\n");
    assert_eq!(field(&one.head, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(field(&two.head, "content-encoding").as_deref(), Some("deflate"));
    let a = data(1, 2000);
    let a_id = publish(server.addr, "a", &a);
    let b_id = publish(server.addr, "b", &data(2, 300));
    for stream in [&mut one, &mut two] {
        stream.until(&format!("\"id\":\"{a_id}\""));
        stream.until(&format!("\"id\":\"{b_id}\""));
        let mut parser = tether_sse::Parser::new();
        parser.feed(&stream.body.plain);
        let mut topics = Vec::new();
        while let Some(Ok(item)) = parser.poll() {
            if let tether_sse::Item::Event(event) = item {
                let json: serde_json::Value = serde_json::from_str(event.data()).unwrap();
                topics.push(json["topic"].as_str().unwrap().to_owned());
                // The stream's own cursor, not the event's id.
                assert!(
                    event.last_event_id().starts_with('~'),
                    "{}",
                    event.last_event_id()
                );
            }
        }
        assert_eq!(topics, ["a", "b"]);
    }
    // A multi-topic stream with a topic whose namespace says
    // compress=off goes plain.
    let vault = H1Stream::open(
        server.addr,
        "/events?topic=a&topic=vault.x",
        "Accept-Encoding: gzip\r\n",
    );
    assert_eq!(field(&vault.head, "content-encoding"), None);
}

#[test]
fn namespaces_the_server_option_and_odd_accept_encodings_leave_streams_plain() {
    let _serial = serial();
    let server = TestServer::start(compressing(), HubApp::new(settings()));
    let huge = format!("Accept-Encoding: {}gzip\r\n", "x;q=0.5, ".repeat(1200));
    for (target, extra) in [
        (
            "/topics/vault.keys/events",
            "Accept-Encoding: gzip\r\n".to_owned(),
        ),
        (
            "/topics/t/events",
            "Accept-Encoding: gzip;q=0, deflate;q=0\r\n".to_owned(),
        ),
        ("/topics/t/events", "Accept-Encoding: gzip;q=2\r\n".to_owned()),
        ("/topics/t/events", "Accept-Encoding: br, zstd\r\n".to_owned()),
        (
            "/topics/t/events",
            "Accept-Encoding: ;;;==,, \"gzip\", gzip;q=1.0001, *;q\r\n".to_owned(),
        ),
        ("/topics/t/events", huge),
    ] {
        let mut stream = H1Stream::open(server.addr, target, &extra);
        assert_eq!(
            field(&stream.head, "content-encoding"),
            None,
            "{target} {extra:.80}"
        );
        stream.until("retry: ");
    }
    // A control character in the field is the HTTP parser's to refuse.
    let mut bad = tcp(server.addr);
    write!(
        bad,
        "GET /topics/t/events HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\u{1}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    bad.read_to_end(&mut answer).unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Two fields make one list.
    let stream = H1Stream::open(
        server.addr,
        "/topics/t/events",
        "Accept-Encoding: br\r\nAccept-Encoding: deflate\r\n",
    );
    assert_eq!(
        field(&stream.head, "content-encoding").as_deref(),
        Some("deflate")
    );
    // HEAD gets the head GET would.
    let mut head = tcp(server.addr);
    write!(
        head,
        "HEAD /topics/t/events HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n"
    )
    .unwrap();
    let mut answer = vec![0; 1024];
    let n = head.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert_eq!(
        field(&answer, "content-encoding").as_deref(),
        Some("gzip"),
        "{answer}"
    );
    drop(server);

    // The server option off (the library's default): no coding, no Vary.
    let mut off = compressing();
    off.sse_compression = false;
    let server = TestServer::start(off, HubApp::new(settings()));
    let stream = H1Stream::open(server.addr, "/topics/t/events", "Accept-Encoding: gzip\r\n");
    assert_eq!(field(&stream.head, "content-encoding"), None);
    assert!(fields(&stream.head, "vary").is_empty(), "{}", stream.head);
}

#[test]
fn http2_streams_are_compressed_and_end_with_their_trailers() {
    let _serial = serial();
    let server = TestServer::start(compressing(), HubApp::new(settings()));
    let mut client = H2Client::connect(server.addr);
    let gzip = client.get("/topics/h2/events", &[("accept-encoding", "gzip")]);
    let zlib = client.get("/events?topic=h2", &[("accept-encoding", "deflate")]);
    let mut bodies = Vec::new();
    for (stream, coding) in [(gzip, "gzip"), (zlib, "deflate")] {
        let head = client.head(stream);
        assert_eq!(head.status(), Some(200));
        assert_eq!(head.field("content-encoding").as_deref(), Some(coding));
        assert_eq!(head.field("vary").as_deref(), Some("accept-encoding"));
        bodies.push((stream, Body::new(Some(coding))));
    }
    let data = data(7, 2000);
    let id = publish(server.addr, "h2", &data);
    for (stream, body) in &mut bodies {
        while !body.text().contains(&format!("\"id\":\"{id}\""))
            && !body.text().contains(&format!("id: {id}\n"))
        {
            assert!(client.read_frame(), "the connection ended first");
            let bytes = client.take_data(*stream);
            body.feed(&bytes);
        }
    }
    assert!(bodies[0].1.text().contains(&format!("data: {data}\n\n")));
    drop(server);
    client.read_to_end();
    for (stream, body) in &mut bodies {
        let bytes = client.take_data(*stream);
        body.feed(&bytes);
        assert!(client.streams[stream].ended, "END_STREAM");
        body.check_end();
    }
}

#[test]
fn http3_streams_are_compressed_and_end_with_their_trailers() {
    let _serial = serial();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    let mut config = compressing();
    config.tls = Some(tether_server::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    config.http3 = true;
    let server = TestServer::start(config, HubApp::new(settings()));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let mut tls =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let mut client = H3Client::connect(server.addr, &Arc::new(tls));
    let gzip = client.get_with("/topics/h3/events", &[("accept-encoding", "gzip")]);
    let zlib = client.get_with("/topics/h3/events", &[("accept-encoding", "deflate")]);
    client.until("both heads", |c| {
        [gzip, zlib]
            .iter()
            .all(|s| c.responses.get(s).is_some_and(|r| r.status.is_some()))
    });
    let data = data(9, 2000);
    let auth = format!("Bearer {TOKEN}");
    let post = client.request("POST", "/topics/h3", &[("authorization", &auth)], data.as_bytes());
    let (status, answer) = client.response(post);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let id = answer["id"].as_str().unwrap().to_owned();
    let line = format!("id: {id}\nevent: message\ndata: {data}\n\n");
    for (stream, coding) in [(gzip, "gzip"), (zlib, "deflate")] {
        let response = &client.responses[&stream];
        let fields = &response.fields;
        assert!(
            fields.contains(&("content-encoding".to_owned(), coding.to_owned())),
            "{fields:?}"
        );
        assert!(
            fields.contains(&("vary".to_owned(), "accept-encoding".to_owned())),
            "{fields:?}"
        );
        client.until("the event", |c| {
            let mut body = Body::new(Some(coding));
            body.feed(&c.responses[&stream].body);
            body.text().contains(&line)
        });
    }
    drop(server);
    client.until("both ends", |c| {
        c.closed.is_some() || [gzip, zlib].iter().all(|s| c.responses[s].finished)
    });
    for (stream, coding) in [(gzip, "gzip"), (zlib, "deflate")] {
        let response = &client.responses[&stream];
        assert!(response.finished, "{coding}: not finished");
        let mut body = Body::new(Some(coding));
        body.feed(&response.body);
        body.check_end();
        assert!(body.text().contains(&line));
    }
}
