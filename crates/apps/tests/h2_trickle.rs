//! An HTTP/2 connection with no live stream reaches its idle deadline
//! whatever it receives: a trickle of bytes the server drops (the body of
//! a request it refused, DATA on a stream it reset, WINDOW_UPDATEs) gets
//! the idle GOAWAY and the close at the keep-alive timeout, as silence
//! does. (Any byte used to restart the idle clock, so one byte a second
//! held a connection for as long as the trickle lasted.) A refused body
//! also has a deadline of its own: the handshake timeout.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::h2::H2Client;
use common::{HttpConn, TestServer, config, tcp};
use tether_apps::{HubSettings, HubShared};
use tether_h2::ErrorCode;
use tether_server::Handshake;

/// The idle (keep-alive) timeout the server is given.
const IDLE: Duration = Duration::from_millis(300);
/// How long a trickle goes on at most: many idle timeouts.
const TRICKLE: Duration = Duration::from_secs(5);
/// A trickled frame every so often: far more often than `IDLE`.
const EVERY: Duration = Duration::from_millis(40);

/// The hub with a publish token, a short idle timeout, and a refused
/// body's deadline (the handshake timeout) long enough that only the idle
/// timeout can end the connection within `TRICKLE`.
fn hub(handshake_timeout: Duration) -> TestServer {
    let mut config = config();
    config.keep_alive_timeout = IDLE;
    config.handshake_timeout = handshake_timeout;
    // Time for a client slow to be scheduled to read the GOAWAY before the
    // server gives up on it; one that has read it closes its side, which
    // ends the linger at once.
    config.linger = Duration::from_secs(3);
    let mut settings = HubSettings::default();
    settings.publish_token = Some("h2-token".to_owned());
    let shared = HubShared::new(settings, 1);
    let handshake = shared.settings().origin_policy(Handshake::new());
    TestServer::start_with(config, handshake, shared.app(0))
}

/// A frame header and payload, as the client writes them.
fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut wire = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, 0];
    wire.extend_from_slice(&stream.to_be_bytes());
    wire.extend_from_slice(payload);
    wire
}

/// Reads every frame the server sends until `due`, the end of the
/// connection, or `done`.
fn read_until(client: &mut H2Client, due: Instant, done: impl Fn(&H2Client) -> bool) {
    while !done(client) {
        let left = due.saturating_duration_since(Instant::now());
        // A read timeout of zero is refused: a millisecond at least.
        if left < Duration::from_millis(1) || client.read_frame_within(left) != Some(true) {
            return;
        }
    }
}

/// Sends `frame` every `EVERY` while reading what the server sends, until
/// the server ends the connection or `TRICKLE` passes; returns how many
/// frames were sent. Between two frames the client reads all that comes:
/// the server answers each DATA frame with two WINDOW_UPDATEs, and a
/// client that read one frame for each it sent fell behind, found a frame
/// waiting at every read, and so sent its next at once: the trickle was a
/// flood (up to some 30 000 frames before the 300 ms idle timeout), whose
/// answers queued in front of the GOAWAY; a loaded machine read it later
/// and later (up to 0.9 s after it came), and one read past the server's
/// linger lost it to the reset.
/// Once the GOAWAY has come the client stops sending and closes its side,
/// as a peer told to go away does, and reads to the end: a frame still
/// sent when the server closes draws a reset, which throws away a GOAWAY
/// the client has not read yet.
fn trickle(client: &mut H2Client, frame: &[u8]) -> usize {
    let started = Instant::now();
    let mut sent = 0;
    while !client.eof && started.elapsed() < TRICKLE {
        if client.goaway.is_some() {
            let _ = client.stream.shutdown(std::net::Shutdown::Write);
            read_until(client, started + TRICKLE, |_| false);
            break;
        }
        // The server may have closed between two reads: a failed write
        // is the end too, which the next read sees.
        if client.stream.write_all(frame).is_ok() {
            sent += 1;
        }
        read_until(client, Instant::now() + EVERY, |c| c.goaway.is_some());
    }
    sent
}

/// The connection got the idle GOAWAY and was closed before the trickle
/// ran out.
fn expect_idle_close(client: &H2Client, what: &str, sent: usize) {
    assert!(
        client.eof,
        "{what}: still open after {sent} frames over {TRICKLE:?} (idle timeout {IDLE:?})"
    );
    assert_eq!(
        client.goaway.map(|(_, code)| code),
        Some(ErrorCode::NO_ERROR),
        "{what}"
    );
}

/// The server still answers a new connection.
fn still_serves(server: &TestServer) {
    let mut fresh = H2Client::connect(server.addr);
    let health = fresh.get("/healthz", &[]);
    assert_eq!(fresh.finish(health).status(), Some(200));
    let mut http = HttpConn::connect(server.addr);
    http.request("GET", "/healthz", "");
    assert_eq!(http.response().status, 200);
}

/// A POST the hub refuses before its body (no credential), whose body
/// the server then reads and drops.
fn refused_post(client: &mut H2Client) -> u32 {
    let head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/topics/t"),
        (":authority", "localhost"),
    ];
    let stream = client.open(&head, false);
    assert_eq!(client.head(stream).status(), Some(401));
    stream
}

#[test]
fn a_refused_bodys_trickle_does_not_hold_an_idle_connection() {
    let server = hub(Duration::from_secs(30));
    let mut client = H2Client::connect(server.addr);
    let stream = refused_post(&mut client);
    let sent = trickle(&mut client, &frame(0, stream, b"x"));
    expect_idle_close(&client, "refused body", sent);
    still_serves(&server);
    server.shutdown();
}

#[test]
fn data_on_a_reset_stream_does_not_hold_an_idle_connection() {
    let server = hub(Duration::from_secs(30));
    let mut client = H2Client::connect(server.addr);
    // Announced larger than the largest body: answered 413 and reset.
    let head = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/topics/t"),
        (":authority", "localhost"),
        ("authorization", "Bearer h2-token"),
        ("content-length", "100000000"),
    ];
    let stream = client.open(&head, false);
    client.until(|c| c.streams.get(&stream).is_some_and(|s| s.reset.is_some()));
    let sent = trickle(&mut client, &frame(0, stream, b"x"));
    expect_idle_close(&client, "reset stream", sent);
    still_serves(&server);
    server.shutdown();
}

#[test]
fn window_updates_do_not_hold_an_idle_connection() {
    let server = hub(Duration::from_secs(30));
    let mut client = H2Client::connect(server.addr);
    let health = client.get("/healthz", &[]);
    assert_eq!(client.finish(health).status(), Some(200));
    let sent = trickle(&mut client, &frame(8, 0, &1u32.to_be_bytes()));
    expect_idle_close(&client, "window updates", sent);
    still_serves(&server);
    server.shutdown();
}

#[test]
fn a_refused_body_still_coming_at_the_handshake_timeout_is_reset() {
    // The idle timeout cannot end this connection first: a live stream
    // (a quiet event stream) keeps it open.
    let server = hub(Duration::from_millis(500));
    let socket = tcp(server.addr);
    let mut client = H2Client::start(socket, &[]);
    let events = client.get("/topics/quiet/events", &[]);
    client.data_contains(events, b"retry:");
    let stream = refused_post(&mut client);
    let data = frame(0, stream, b"x");
    let started = Instant::now();
    while client.streams[&stream].reset.is_none() && started.elapsed() < TRICKLE {
        client.send(&data);
        read_until(&mut client, Instant::now() + EVERY, |c| {
            c.streams[&stream].reset.is_some()
        });
    }
    assert_eq!(client.streams[&stream].reset, Some(ErrorCode::NO_ERROR));
    assert!(client.goaway.is_none() && !client.eof);
    assert!(client.streams[&events].reset.is_none());
    still_serves(&server);
    drop(client);
    server.shutdown();
}
