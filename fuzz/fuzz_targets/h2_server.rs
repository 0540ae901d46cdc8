//! Fuzzing of `tether_h2::connection::ServerConnection` with arbitrary
//! client bytes.
//!
//! The first input byte picks a chunk size and whether the client preface
//! is put in front; the rest is what the client sends. Two runs that do not
//! answer, one with the whole input and one in chunks, must give the same
//! events and the same output. A third run, in chunks, answers every
//! request with HEADERS and DATA and releases every DATA event; everything
//! any run writes must decode as valid frames, and DATA frames must fit the
//! largest SETTINGS_MAX_FRAME_SIZE the client set.

#![no_main]

#[path = "shared/h2_output.rs"]
mod h2_output;

use libfuzzer_sys::fuzz_target;
use tether_h2::connection::{Config, Event, ServerConnection};
use tether_h2::frame::PREFACE;
use tether_h2::hpack::Field;

fn config() -> Config {
    Config {
        // The ack budget depends on when the caller drains its output,
        // which differs between the runs compared.
        max_queued_acks: u32::MAX,
        max_concurrent_streams: 8,
        max_resets: 20,
        max_empty_frames: 20,
        ..Config::default()
    }
}

fn run(input: &[u8], chunk: usize, answer: bool) -> (Vec<Event>, Vec<u8>, u32) {
    let mut conn = ServerConnection::new(config()).expect("valid config");
    let (mut events, mut written, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    // The largest SETTINGS_MAX_FRAME_SIZE the client has set in the run:
    // it may lower it after frames were sent under a larger one.
    let mut peer_max = conn.peer_settings().max_frame_size;
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
                    Event::Request { stream, .. } => {
                        let _ = conn.send_headers(*stream, &[Field::new(":status", "200")], false, &mut out);
                        let _ = conn.send_data(*stream, &[b'x'; 70_000], true, &mut out);
                    }
                    Event::Data { stream, data, .. } => conn.release(*stream, data.len(), &mut out),
                    _ => {}
                }
            }
        }
        events.extend(new);
        written.extend_from_slice(&out);
    }
    if conn.is_closed() && !answer {
        // Only an error closes a connection that never calls `go_away`.
        assert!(events.iter().any(|e| matches!(e, Event::ConnectionError(_))));
    }
    (events, written, peer_max)
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, body)) = input.split_first() else {
        return;
    };
    let chunk = usize::from(control & 0x7f) + 1;
    let stream = if control & 0x80 == 0 {
        [&PREFACE[..], body].concat()
    } else {
        body.to_vec()
    };
    let whole = run(&stream, stream.len().max(1), false);
    let pieces = run(&stream, chunk, false);
    // Events and bytes written must not depend on how the input was cut;
    // the largest frame size seen may (two SETTINGS read in one call show
    // only the second).
    assert_eq!((&whole.0, &whole.1), (&pieces.0, &pieces.1));
    h2_output::check_frames(&pieces.1, pieces.2);
    h2_output::check_frames(&whole.1, whole.2);
    let answered = run(&stream, chunk, true);
    h2_output::check_frames(&answered.1, answered.2);
});
