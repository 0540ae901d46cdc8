//! A chunked request body is decoded once, read by read, and what its
//! framing may cost is bounded: a client sending chunks of one byte, each
//! behind a 4 KiB extension, gets a 400 after a bounded amount of wire,
//! instead of keeping the loop busy re-decoding its body until the request
//! deadline.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use tether_testkit as common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{HttpConn, TestServer, config};
use tether_server::{App, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

/// `POST /upload` answers with the body it got.
struct Echo;

impl App for Echo {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/upload" => Route::Handler(()),
            _ => Route::NotFound,
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: MessageRef<'_>) {}

    fn on_request(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: &Request<'_>, body: &[u8]) -> Reply {
        Reply::Now(Response::new(200, "application/octet-stream", body.to_vec()))
    }
}

const HEAD: &[u8] = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";

#[test]
fn chunks_that_are_mostly_extension_are_refused_after_a_bounded_amount() {
    let mut config = config();
    // Without a bound the request would only end at this deadline, with
    // no answer at all.
    config.handshake_timeout = Duration::from_secs(5);
    let server = TestServer::start(config, Echo);
    let mut conn = HttpConn::connect(server.addr);
    conn.send(HEAD);
    // One byte of body per 4 KiB of wire: 3 MB of it decode to 750 bytes,
    // far within the body limit.
    let mut chunk = b"1;".to_vec();
    chunk.extend(std::iter::repeat_n(b'e', 4000));
    chunk.extend_from_slice(b"\r\nX\r\n");
    let batch = chunk.repeat(16);
    let mut writer = conn.stream.try_clone().expect("clone the socket");
    let sending = thread::spawn(move || {
        for _ in 0..(3 << 20) / batch.len() {
            // The server stops reading once it has answered.
            if writer.write_all(&batch).is_err() {
                break;
            }
        }
    });
    let response = conn.response();
    assert_eq!(
        response.status,
        400,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(response.closes());
    sending.join().expect("the writer");
    server.shutdown();
}

#[test]
fn a_chunked_body_over_many_reads_arrives_whole() {
    let server = TestServer::start(config(), Echo);
    let mut conn = HttpConn::connect(server.addr);
    // 64 KiB in chunks of 16 bytes, each with an extension, written in
    // pieces that cut lines and data anywhere.
    let body: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut wire = HEAD.to_vec();
    for piece in body.chunks(16) {
        wire.extend_from_slice(format!("{:x};n=v\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    wire.extend_from_slice(b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n");
    for piece in wire.chunks(997) {
        conn.send(piece);
    }
    let response = conn.response();
    assert_eq!(response.status, 200);
    assert!(response.body == body, "the body echoed as it was sent");
    assert_eq!(conn.response().status, 404, "the pipelined request");
    // An empty body whose last chunk comes in two reads.
    for piece in [HEAD, b"0\r\n", b"\r\n"] {
        conn.send(piece);
        thread::sleep(Duration::from_millis(30));
    }
    let response = conn.response();
    assert_eq!((response.status, response.body.len()), (200, 0));
    server.shutdown();
}
