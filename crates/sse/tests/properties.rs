//! Property tests: the parser against a plain reference model of the spec,
//! chunking invariance, and encode-then-parse round trips.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use proptest::sample::Index;
use tether_sse::{Event, Item, Limits, MessageEvent, Parser};

/// The spec's algorithm written the obvious way, with no concern for speed:
/// decode the whole stream, split it into lines, interpret each line.
/// Returns the items, the last event ID and the reconnection time.
fn model(input: &[u8]) -> (Vec<Item>, String, Option<u64>) {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = String::from_utf8_lossy(input);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                lines.push(std::mem::take(&mut line));
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    // Whatever is left in `line` never ended: the spec discards it.
    let mut items = Vec::new();
    let (mut data, mut event_type, mut id_buffer) = (String::new(), String::new(), String::new());
    let mut last_event_id = String::new();
    let mut reconnection = None;
    for line in &lines {
        if line.is_empty() {
            last_event_id = id_buffer.clone();
            if !data.is_empty() {
                if data.ends_with('\n') {
                    data.pop();
                }
                items.push(Item::Event(MessageEvent::new(
                    &event_type,
                    std::mem::take(&mut data),
                    &last_event_id,
                )));
            }
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.find(':') {
            Some(i) => (
                &line[..i],
                line[i + 1..].strip_prefix(' ').unwrap_or(&line[i + 1..]),
            ),
            None => (&line[..], ""),
        };
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let ms = value.parse::<u64>().unwrap_or(u64::MAX);
                reconnection = Some(ms);
                items.push(Item::Retry(ms));
            }
            _ => {}
        }
    }
    (items, last_event_id, reconnection)
}

type Outcome = (Vec<Result<Item, tether_sse::Error>>, String, Option<u64>);

fn parse<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = Parser::with_limits(limits);
    let mut items = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        items.extend(std::iter::from_fn(|| parser.poll()));
    }
    parser.finish();
    (items, parser.last_event_id().to_owned(), parser.retry())
}

/// Splits `bytes` at the given (unsorted) points.
fn split<'a>(bytes: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = points.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for end in at {
        chunks.push(&bytes[start..end]);
        start = end;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// Byte streams made of the pieces that matter to the parser, so that
/// random ones are full of fields, line ends, BOMs and broken UTF-8.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"data",
        b"data:",
        b"data: ",
        b"event:",
        b"id:",
        b"id",
        b"retry:",
        b"retry: 1",
        b":",
        b" ",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\xEF\xBB\xBF",
        b"\xEF",
        b"\xC3\xA9",
        b"\xC3",
        b"\xE2\x82",
        b"\xF0\x9F\x98\x80",
        b"\xFF",
        b"\0",
        b"7",
        b"x",
        b"Data",
    ];
    let piece = prop::sample::select(PIECES).prop_map(<[u8]>::to_vec);
    let any_bytes = prop::collection::vec(any::<u8>(), 1..4);
    prop::collection::vec(prop_oneof![4 => piece, 1 => any_bytes], 0..60).prop_map(|pieces| pieces.concat())
}

/// Strings with more line breaks and spaces than `any::<String>()` gives.
fn text(forbidden: &'static [char]) -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => any::<char>(),
        1 => Just('\r'),
        1 => Just('\n'),
        1 => Just(' '),
        1 => Just('a'),
    ];
    prop::collection::vec(c, 0..24)
        .prop_map(move |chars| chars.into_iter().filter(|c| !forbidden.contains(c)).collect())
}

#[derive(Clone, Debug)]
struct Spec {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    comment: Option<String>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(text(&['\r', '\n', '\0'])),
        prop::option::of(text(&['\r', '\n'])),
        prop::option::weighted(0.8, text(&[])),
        prop::option::weighted(0.2, any::<u64>()),
        prop::option::weighted(0.2, text(&[])),
    )
        .prop_map(|(id, event, data, retry, comment)| Spec {
            id,
            event,
            data,
            retry,
            comment,
        })
}

fn small_limits() -> Limits {
    Limits::new().with_max_line_len(8).with_max_event_size(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_matches_the_reference_model(input in stream(), points in prop::collection::vec(any::<Index>(), 0..6)) {
        let (items, last_id, retry) = model(&input);
        let expected = (items.into_iter().map(Ok).collect::<Vec<_>>(), last_id, retry);
        prop_assert_eq!(&parse(Limits::new(), [&input[..]]), &expected);
        prop_assert_eq!(&parse(Limits::new(), split(&input, &points)), &expected);
    }

    #[test]
    fn any_chunking_gives_the_same_items(input in stream(), points in prop::collection::vec(any::<Index>(), 0..12)) {
        for limits in [Limits::new(), small_limits()] {
            let whole = parse(limits, [&input[..]]);
            prop_assert_eq!(&parse(limits, split(&input, &points)), &whole);
            prop_assert_eq!(&parse(limits, input.chunks(1)), &whole);
        }
    }

    #[test]
    fn encode_then_parse_gives_the_events_back(events in prop::collection::vec(spec(), 1..6), points in prop::collection::vec(any::<Index>(), 0..6)) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let mut last_id = String::new();
        for spec in &events {
            let mut event = Event::new();
            if let Some(id) = &spec.id { event = event.id(id); }
            if let Some(ty) = &spec.event { event = event.event(ty); }
            if let Some(data) = &spec.data { event = event.data(data); }
            if let Some(ms) = spec.retry { event = event.retry(ms); }
            if let Some(text) = &spec.comment { event = event.comment(text); }
            event.encode(&mut wire).unwrap();

            if let Some(ms) = spec.retry {
                expected.push(Ok(Item::Retry(ms)));
            }
            if let Some(id) = &spec.id {
                last_id = id.clone();
            }
            if let Some(data) = &spec.data {
                // The one thing the format cannot carry: CR, which comes
                // back as LF (and CRLF as one LF).
                let data = data.replace("\r\n", "\n").replace('\r', "\n");
                let ty = spec.event.as_deref().unwrap_or("");
                expected.push(Ok(Item::Event(MessageEvent::new(ty, data, &last_id))));
            }
        }
        let (items, parsed_last_id, _) = parse(Limits::new(), split(&wire, &points));
        prop_assert_eq!(items, expected);
        prop_assert_eq!(parsed_last_id, last_id);
    }

    #[test]
    fn an_encode_error_writes_nothing(id in text(&[]), ty in text(&[]), data in text(&[]), prefix in prop::collection::vec(any::<u8>(), 0..8)) {
        let event = Event::new().id(&id).event(&ty).data(&data);
        let mut out = prefix.clone();
        let bad = id.contains(['\r', '\n', '\0']) || ty.contains(['\r', '\n']);
        match event.encode(&mut out) {
            Ok(()) => prop_assert!(!bad),
            Err(e) => {
                prop_assert!(bad && !e.is_peer_error());
                prop_assert_eq!(out, prefix);
            }
        }
    }
}
