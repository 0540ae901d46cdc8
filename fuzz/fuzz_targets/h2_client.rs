//! Fuzzing of `tether_h2::client::ClientConnection` with arbitrary server
//! bytes after the client's preface.
//!
//! The client opens a few streams (a GET, a POST with a body to send, an
//! extended CONNECT once the server allows it) and the input is what the
//! server sends. The first input byte picks a chunk size. Two runs that do
//! not answer, one with the whole input and one in chunks, must give the
//! same events. A third run, in chunks, releases every DATA event, sends
//! body bytes whenever a window opens and opens new streams as slots free
//! up; everything any run writes must decode as valid frames whose DATA
//! fits the server's largest SETTINGS_MAX_FRAME_SIZE, and a DATA frame is
//! never larger than what the windows allowed.

#![no_main]

#[path = "shared/h2_output.rs"]
mod h2_output;

use libfuzzer_sys::fuzz_target;
use tether_h2::client::{ClientConnection, Config, Event};
use tether_h2::frame::PREFACE;
use tether_h2::hpack::Field;

fn config() -> Config {
    Config {
        // The ack budget depends on when the caller drains its output,
        // which differs between the runs compared.
        max_queued_acks: u32::MAX,
        max_empty_frames: 20,
        max_header_list_size: 8192,
        ..Config::default()
    }
}

fn request(method: &str) -> Vec<Field> {
    vec![
        Field::new(":method", method),
        Field::new(":scheme", "http"),
        Field::new(":path", "/"),
        Field::new(":authority", "example.com"),
    ]
}

fn connect() -> Vec<Field> {
    let mut f = request("CONNECT");
    f.insert(1, Field::new(":protocol", "websocket"));
    f
}

fn run(input: &[u8], chunk: usize, answer: bool) -> (Vec<Event>, Vec<u8>, u32) {
    let mut written = Vec::new();
    let mut conn = ClientConnection::new(config(), &mut written).expect("valid config");
    let get = conn.open_stream(&request("GET"), true, &mut written).ok();
    let post = conn.open_stream(&request("POST"), false, &mut written).ok();
    assert_eq!((get, post), (Some(1), Some(3)));
    let (mut events, mut pending) = (Vec::new(), Vec::new());
    let mut peer_max = conn.peer_settings().max_frame_size;
    let mut body_left = 200_000usize;
    let mut connected = false;
    for piece in input.chunks(chunk) {
        pending.extend_from_slice(piece);
        let mut out = Vec::new();
        let mut new = Vec::new();
        let n = conn.receive(&pending, &mut out, &mut new);
        assert!(n <= pending.len());
        peer_max = peer_max.max(conn.peer_settings().max_frame_size);
        pending.drain(..n);
        if answer {
            for e in &new {
                match e {
                    Event::Data { stream, data, .. } => conn.release(*stream, data.len(), &mut out),
                    Event::WindowOpened { .. } | Event::Settings => {
                        let cap = conn.send_capacity(3).unwrap_or(0);
                        let take = body_left.min(usize::try_from(cap).unwrap_or(usize::MAX));
                        if let Ok(sent) = conn.send_data(3, &vec![b'x'; take], take == body_left, &mut out) {
                            assert!(sent <= take);
                            body_left -= sent;
                        }
                        if !connected && conn.connect_protocol_enabled() && conn.can_open() {
                            connected = conn.open_stream(&connect(), false, &mut out).is_ok();
                        }
                    }
                    _ => {}
                }
            }
        }
        events.extend(new);
        written.extend_from_slice(&out);
    }
    if conn.is_closed() {
        assert!(events.iter().any(|e| matches!(e, Event::ConnectionError(_))));
    }
    (events, written, peer_max)
}

fn check_output(bytes: &[u8], peer_max: u32) {
    let bytes = bytes.strip_prefix(PREFACE).expect("the preface first");
    h2_output::check_frames(bytes, peer_max);
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, body)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(control) + 1;
    let whole = run(body, body.len().max(1), false);
    let pieces = run(body, chunk, false);
    assert_eq!(whole.0, pieces.0);
    check_output(&whole.1, whole.2);
    let answered = run(body, chunk, true);
    check_output(&answered.1, answered.2);
});
