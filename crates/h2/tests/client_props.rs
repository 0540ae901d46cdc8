//! Property tests of the client connection: however the server's bytes
//! are cut, the events and the output are the same.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use tether_h2::client::{ClientConnection, Config as ClientConfig, Event};
use tether_h2::connection::{Config, Event as SEvent, ServerConnection};
use tether_h2::hpack::Field;

/// One response: body length, a large header (sent in CONTINUATIONs),
/// trailers.
type Shape = (usize, bool, bool);

fn request(i: usize) -> Vec<Field> {
    vec![
        Field::new(":method", "GET"),
        Field::new(":scheme", "http"),
        Field::new(":path", format!("/{i}")),
        Field::new(":authority", "example.com"),
    ]
}

/// Runs a client against a server in memory and returns every byte the
/// server wrote.
fn server_bytes(shapes: &[Shape]) -> Vec<u8> {
    let mut to_server = Vec::new();
    let mut client = ClientConnection::new(ClientConfig::default(), &mut to_server).unwrap();
    for i in 0..shapes.len() {
        client.open_stream(&request(i), true, &mut to_server).unwrap();
    }
    let mut server = ServerConnection::new(Config::default()).unwrap();
    let (mut wrote, mut sevents) = (Vec::new(), Vec::new());
    server.receive(&to_server, &mut wrote, &mut sevents);
    let streams: Vec<u32> = sevents
        .iter()
        .filter_map(|e| match e {
            SEvent::Request { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect();
    assert_eq!(streams.len(), shapes.len());
    for (&stream, &(len, big, trailers)) in streams.iter().zip(shapes) {
        let mut head = vec![Field::new(":status", "200")];
        if big {
            head.push(Field::new(
                "x-big",
                (0..20_000).map(|i| (i % 251) as u8 | 0x80).collect::<Vec<u8>>(),
            ));
        }
        server.send_headers(stream, &head, false, &mut wrote).unwrap();
        let body: Vec<u8> = (0..len).map(|i| (i + stream as usize) as u8).collect();
        assert_eq!(server.send_data(stream, &body, !trailers, &mut wrote), Ok(len));
        if trailers {
            server
                .send_headers(stream, &[Field::new("x-end", "1")], true, &mut wrote)
                .unwrap();
        }
    }
    let _ = server.ping(*b"pingpong", &mut wrote);
    wrote
}

/// Feeds `input` to a client that opened the streams, cut at `cuts`;
/// returns its events and everything it wrote after its requests.
fn run(streams: usize, input: &[u8], cuts: &[usize]) -> (Vec<Event>, Vec<u8>) {
    let mut out = Vec::new();
    let mut client = ClientConnection::new(ClientConfig::default(), &mut out).unwrap();
    for i in 0..streams {
        client.open_stream(&request(i), true, &mut out).unwrap();
    }
    let (mut events, mut written, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    for pair in bounds.windows(2) {
        pending.extend_from_slice(&input[pair[0]..pair[1]]);
        let mut new = Vec::new();
        let used = client.receive(&pending, &mut written, &mut new);
        pending.drain(..used);
        for e in &new {
            if let Event::Data { stream, data, .. } = e {
                client.release(*stream, data.len(), &mut written);
            }
        }
        events.extend(new);
    }
    assert!(pending.is_empty());
    (events, written)
}

/// The frames in `bytes` but streams' WINDOW_UPDATEs, each as its bytes,
/// sorted.
fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut list = Vec::new();
    let mut decoder = tether_h2::frame::FrameDecoder::new();
    while !bytes.is_empty() {
        let (n, f) = decoder.decode(bytes);
        match f {
            Ok(Some(tether_h2::frame::Frame::WindowUpdate(w))) if w.stream_id != 0 => {}
            Ok(Some(_)) => list.push(bytes[..n].to_vec()),
            other => panic!("not a whole frame: {other:?}"),
        }
        bytes = &bytes[n..];
    }
    list.sort();
    list
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cuts_do_not_change_events(
        shapes in prop::collection::vec((0usize..20_000, any::<bool>(), any::<bool>()), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let input = server_bytes(&shapes);
        let (whole, whole_out) = run(shapes.len(), &input, &[]);
        let (cut, cut_out) = run(shapes.len(), &input, &cuts);
        prop_assert_eq!(&cut, &whole);
        let responses = whole.iter().filter(|e| matches!(e, Event::Response { .. })).count();
        prop_assert_eq!(responses, shapes.len());
        // The same answers (acknowledgements, the PING's, a connection
        // WINDOW_UPDATE per release), though the releases may come between
        // others. A stream's WINDOW_UPDATE depends on whether its end had
        // come when its data was released, so those are left out.
        prop_assert_eq!(frames(&cut_out), frames(&whole_out));
        let clean = whole.iter().all(|e| !matches!(e, Event::ConnectionError(_) | Event::Reset { .. }));
        prop_assert!(clean);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut out = Vec::new();
        let mut client = ClientConnection::new(ClientConfig::default(), &mut out).unwrap();
        client.open_stream(&request(0), true, &mut out).unwrap();
        let mut events = Vec::new();
        let used = client.receive(&bytes, &mut out, &mut events);
        prop_assert!(used <= bytes.len());
    }
}
