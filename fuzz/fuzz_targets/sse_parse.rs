//! The SSE parser on arbitrary bytes: never panics, and gives the same items
//! however the input is chunked. The first byte picks the limits and the
//! chunking; the chunk sizes come from the input's own bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_sse::{Error, Event, Item, Limits, Parser};

type Outcome = (Vec<Result<Item, Error>>, String, Option<u64>);

fn parse<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = Parser::with_limits(limits);
    let mut items = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        items.extend(std::iter::from_fn(|| parser.poll()));
    }
    parser.finish();
    items.extend(std::iter::from_fn(|| parser.poll()));
    (items, parser.last_event_id().to_owned(), parser.retry())
}

/// Splits `stream` into chunks of 1 to 16 bytes, sizes read from the stream
/// itself (mixed with `seed`) so the fuzzer steers the boundaries.
fn chunks(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let size = 1 + usize::from(stream[i % stream.len()] ^ seed) % 16;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
        i += 1;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, stream)) = input.split_first() else {
        return;
    };
    let limits = if seed & 1 == 0 {
        Limits::new()
    } else {
        // Tiny limits, so the error paths get as much fuzzing as the rest.
        Limits::new()
            .with_max_line_len(usize::from(seed >> 4))
            .with_max_event_size(usize::from(seed >> 1))
    };

    let whole = parse(limits, [stream]);
    assert_eq!(parse(limits, chunks(stream, seed)), whole);
    assert_eq!(parse(limits, stream.chunks(1)), whole);
    for item in &whole.0 {
        match item {
            // Each raw byte decodes to at most 3 bytes (U+FFFD).
            Ok(Item::Event(event)) => assert!(event.data().len() <= 3 * limits.max_event_size()),
            Err(error) => assert!(error.is_peer_error()),
            Ok(Item::Retry(_)) => {}
        }
    }

    // The same bytes as event data survive an encode-then-parse round trip,
    // line breaks aside.
    let data = String::from_utf8_lossy(stream);
    let mut wire = Vec::new();
    Event::new().data(&data).encode(&mut wire).unwrap();
    let expected = data.replace("\r\n", "\n").replace('\r', "\n");
    let (items, _, _) = parse(Limits::new(), chunks(&wire, seed));
    match &items[..] {
        [Ok(Item::Event(event))] => assert_eq!(event.data(), expected),
        other => panic!("round trip gave {other:?}"),
    }
});
