//! Property tests: any sequence of valid frames encodes, and decodes back
//! to the same frames whether the bytes come whole or in pieces.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use proptest::prelude::*;
use tether_h2::ErrorCode;
use tether_h2::frame::{
    Continuation, Data, Frame, FrameDecoder, GoAway, Headers, MAX_STREAM_ID, MAX_WINDOW_SIZE, PREFACE, Ping,
    PrefaceMatcher, Priority, PushPromise, RstStream, Setting, StreamDependency, UnknownFrame, WindowUpdate,
    encode_settings,
};

const MAX: u32 = 16_384;

/// An owned description of one frame (or of a field block: a HEADERS or
/// PUSH_PROMISE and its CONTINUATION frames).
#[derive(Debug, Clone)]
enum Spec {
    Data(u32, Vec<u8>, bool, Option<u8>),
    Headers {
        stream: u32,
        fragment: Vec<u8>,
        end_stream: bool,
        priority: Option<StreamDependency>,
        padding: Option<u8>,
        continuations: Vec<Vec<u8>>,
    },
    Priority(u32, StreamDependency),
    RstStream(u32, u32),
    Settings(Vec<Setting>),
    PushPromise {
        stream: u32,
        promised: u32,
        fragment: Vec<u8>,
        padding: Option<u8>,
        continuations: Vec<Vec<u8>>,
    },
    Ping(bool, [u8; 8]),
    GoAway(u32, u32, Vec<u8>),
    WindowUpdate(u32, u32),
    Unknown(u8, u8, u32, Vec<u8>),
}

fn stream_id() -> impl Strategy<Value = u32> {
    prop_oneof![1..=9u32, 1..=MAX_STREAM_ID]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn dependency() -> impl Strategy<Value = StreamDependency> {
    (any::<bool>(), 0..=MAX_STREAM_ID, any::<u8>()).prop_map(|(exclusive, stream_id, weight)| {
        StreamDependency {
            exclusive,
            stream_id,
            weight,
        }
    })
}

fn setting() -> impl Strategy<Value = Setting> {
    prop_oneof![
        any::<u32>().prop_map(Setting::HeaderTableSize),
        any::<bool>().prop_map(Setting::EnablePush),
        any::<u32>().prop_map(Setting::MaxConcurrentStreams),
        (0..=MAX_WINDOW_SIZE).prop_map(Setting::InitialWindowSize),
        (16_384..=16_777_215u32).prop_map(Setting::MaxFrameSize),
        any::<u32>().prop_map(Setting::MaxHeaderListSize),
        any::<bool>().prop_map(Setting::EnableConnectProtocol),
        (any::<u16>(), any::<u32>())
            .prop_filter("an unknown identifier", |(id, _)| matches!(id, 0 | 7 | 9..))
            .prop_map(|(id, value)| Setting::Unknown { id, value }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (stream_id(), bytes(64), any::<bool>(), any::<Option<u8>>())
            .prop_map(|(s, d, e, p)| Spec::Data(s, d, e, p)),
        (
            stream_id(),
            bytes(32),
            any::<bool>(),
            prop::option::of(dependency()),
            any::<Option<u8>>(),
            prop::collection::vec(bytes(16), 0..3)
        )
            .prop_map(
                |(stream, fragment, end_stream, priority, padding, continuations)| {
                    Spec::Headers {
                        stream,
                        fragment,
                        end_stream,
                        priority,
                        padding,
                        continuations,
                    }
                }
            ),
        (stream_id(), dependency())
            .prop_filter("no self-dependency", |(s, d)| *s != d.stream_id)
            .prop_map(|(s, d)| Spec::Priority(s, d)),
        (stream_id(), any::<u32>()).prop_map(|(s, c)| Spec::RstStream(s, c)),
        prop::collection::vec(setting(), 0..8).prop_map(Spec::Settings),
        (
            stream_id(),
            stream_id(),
            bytes(32),
            any::<Option<u8>>(),
            prop::collection::vec(bytes(16), 0..3)
        )
            .prop_map(
                |(stream, promised, fragment, padding, continuations)| Spec::PushPromise {
                    stream,
                    promised,
                    fragment,
                    padding,
                    continuations,
                }
            ),
        (any::<bool>(), any::<[u8; 8]>()).prop_map(|(a, d)| Spec::Ping(a, d)),
        (0..=MAX_STREAM_ID, any::<u32>(), bytes(32)).prop_map(|(l, c, d)| Spec::GoAway(l, c, d)),
        (0..=MAX_STREAM_ID, 1..=MAX_WINDOW_SIZE).prop_map(|(s, i)| Spec::WindowUpdate(s, i)),
        (10..=255u8, any::<u8>(), 0..=MAX_STREAM_ID, bytes(32))
            .prop_map(|(k, f, s, p)| Spec::Unknown(k, f, s, p)),
    ]
}

/// Encodes a field block's trailing CONTINUATION frames.
fn continuations(wire: &mut Vec<u8>, stream_id: u32, fragments: &[Vec<u8>]) {
    for (i, fragment) in fragments.iter().enumerate() {
        let c = Continuation {
            stream_id,
            fragment,
            end_headers: i + 1 == fragments.len(),
        };
        c.encode(wire, MAX).unwrap();
    }
}

/// Encodes every spec, each frame with its own encoder.
fn encode_all(specs: &[Spec]) -> Vec<u8> {
    let mut wire = Vec::new();
    for spec in specs {
        match spec {
            Spec::Data(stream_id, data, end_stream, padding) => Data {
                stream_id: *stream_id,
                data,
                end_stream: *end_stream,
                padding: *padding,
            }
            .encode(&mut wire, MAX)
            .unwrap(),
            Spec::Headers {
                stream,
                fragment,
                end_stream,
                priority,
                padding,
                continuations: more,
            } => {
                Headers {
                    stream_id: *stream,
                    fragment,
                    end_stream: *end_stream,
                    end_headers: more.is_empty(),
                    priority: *priority,
                    padding: *padding,
                }
                .encode(&mut wire, MAX)
                .unwrap();
                continuations(&mut wire, *stream, more);
            }
            Spec::Priority(stream_id, dependency) => Priority {
                stream_id: *stream_id,
                dependency: *dependency,
            }
            .encode(&mut wire)
            .unwrap(),
            Spec::RstStream(stream_id, code) => RstStream {
                stream_id: *stream_id,
                code: ErrorCode(*code),
            }
            .encode(&mut wire)
            .unwrap(),
            Spec::Settings(list) => encode_settings(&mut wire, list, MAX).unwrap(),
            Spec::PushPromise {
                stream,
                promised,
                fragment,
                padding,
                continuations: more,
            } => {
                PushPromise {
                    stream_id: *stream,
                    promised_stream_id: *promised,
                    fragment,
                    end_headers: more.is_empty(),
                    padding: *padding,
                }
                .encode(&mut wire, MAX)
                .unwrap();
                continuations(&mut wire, *stream, more);
            }
            Spec::Ping(ack, data) => Ping {
                ack: *ack,
                data: *data,
            }
            .encode(&mut wire),
            Spec::GoAway(last_stream_id, code, debug_data) => GoAway {
                last_stream_id: *last_stream_id,
                code: ErrorCode(*code),
                debug_data,
            }
            .encode(&mut wire, MAX)
            .unwrap(),
            Spec::WindowUpdate(stream_id, increment) => WindowUpdate {
                stream_id: *stream_id,
                increment: *increment,
            }
            .encode(&mut wire)
            .unwrap(),
            Spec::Unknown(kind, flags, stream_id, payload) => UnknownFrame {
                kind: *kind,
                flags: *flags,
                stream_id: *stream_id,
                payload,
            }
            .encode(&mut wire, MAX)
            .unwrap(),
        }
    }
    wire
}

/// Checks a decoded frame against its spec (field block frames one by
/// one, `part` 0 being the HEADERS or PUSH_PROMISE).
fn matches_spec(frame: &Frame<'_>, spec: &Spec, part: usize) -> bool {
    let cont = |stream, more: &[Vec<u8>]| {
        let i = part - 1;
        *frame
            == Frame::Continuation(Continuation {
                stream_id: stream,
                fragment: &more[i],
                end_headers: i + 1 == more.len(),
            })
    };
    match spec {
        Spec::Headers {
            stream,
            continuations: more,
            ..
        }
        | Spec::PushPromise {
            stream,
            continuations: more,
            ..
        } if part > 0 => cont(*stream, more),
        Spec::Data(s, d, e, p) => {
            *frame
                == Frame::Data(Data {
                    stream_id: *s,
                    data: d,
                    end_stream: *e,
                    padding: *p,
                })
        }
        Spec::Headers {
            stream,
            fragment,
            end_stream,
            priority,
            padding,
            continuations: more,
        } => {
            *frame
                == Frame::Headers(Headers {
                    stream_id: *stream,
                    fragment,
                    end_stream: *end_stream,
                    end_headers: more.is_empty(),
                    priority: *priority,
                    padding: *padding,
                })
        }
        Spec::Priority(s, d) => {
            *frame
                == Frame::Priority(Priority {
                    stream_id: *s,
                    dependency: *d,
                })
        }
        Spec::RstStream(s, c) => {
            *frame
                == Frame::RstStream(RstStream {
                    stream_id: *s,
                    code: ErrorCode(*c),
                })
        }
        Spec::Settings(list) => {
            matches!(frame, Frame::Settings(f) if !f.is_ack() && f.iter().collect::<Vec<_>>() == *list)
        }
        Spec::PushPromise {
            stream,
            promised,
            fragment,
            padding,
            continuations: more,
        } => {
            *frame
                == Frame::PushPromise(PushPromise {
                    stream_id: *stream,
                    promised_stream_id: *promised,
                    fragment,
                    end_headers: more.is_empty(),
                    padding: *padding,
                })
        }
        Spec::Ping(a, d) => *frame == Frame::Ping(Ping { ack: *a, data: *d }),
        Spec::GoAway(l, c, d) => {
            *frame
                == Frame::GoAway(GoAway {
                    last_stream_id: *l,
                    code: ErrorCode(*c),
                    debug_data: d,
                })
        }
        Spec::WindowUpdate(s, i) => {
            *frame
                == Frame::WindowUpdate(WindowUpdate {
                    stream_id: *s,
                    increment: *i,
                })
        }
        Spec::Unknown(k, f, s, p) => {
            *frame
                == Frame::Unknown(UnknownFrame {
                    kind: *k,
                    flags: *f,
                    stream_id: *s,
                    payload: p,
                })
        }
    }
}

fn parts(spec: &Spec) -> usize {
    match spec {
        Spec::Headers { continuations, .. } | Spec::PushPromise { continuations, .. } => {
            1 + continuations.len()
        }
        _ => 1,
    }
}

/// Decodes `wire` in pieces of `chunk` bytes through a buffer, returning
/// each frame re-encoded.
fn decode_chunked(wire: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut decoder = FrameDecoder::new();
    let mut buffer = Vec::new();
    let mut frames = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            let (used, result) = decoder.decode(&buffer);
            let Some(frame) = result.unwrap() else { break };
            let mut out = Vec::new();
            frame.encode(&mut out, MAX).unwrap();
            frames.push(out);
            buffer.drain(..used);
        }
    }
    assert!(buffer.is_empty());
    frames
}

proptest! {
    #[test]
    fn frame_sequences_round_trip(specs in prop::collection::vec(spec(), 0..12), chunk in 1..40usize) {
        let wire = encode_all(&specs);
        // Whole input: each frame equals its spec.
        let mut decoder = FrameDecoder::new();
        let mut at = 0;
        for spec in &specs {
            for part in 0..parts(spec) {
                let (used, result) = decoder.decode(&wire[at..]);
                let frame = result.unwrap().unwrap();
                prop_assert!(matches_spec(&frame, spec, part), "{frame:?} from {spec:?}");
                at += used;
            }
        }
        prop_assert_eq!(at, wire.len());
        prop_assert_eq!(decoder.decode(&wire[at..]), (0, Ok(None)));
        // In pieces, the frames re-encode to the same bytes.
        let whole = decode_chunked(&wire, wire.len());
        prop_assert_eq!(whole.concat(), wire.clone());
        prop_assert_eq!(decode_chunked(&wire, chunk), whole);
    }

    #[test]
    fn the_preface_matches_in_any_pieces(cut in 0..=24usize, extra in bytes(8)) {
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&extra);
        let mut m = PrefaceMatcher::new();
        let first = m.feed(&wire[..cut]).unwrap();
        prop_assert_eq!(first, (cut == 24).then_some(cut));
        let second = m.feed(&wire[cut..]).unwrap();
        prop_assert_eq!(second, Some(24 - cut));
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in bytes(256), max in 16_384..=16_777_215u32) {
        let mut decoder = FrameDecoder::new();
        decoder.set_max_frame_size(max).unwrap();
        let mut at = 0;
        loop {
            let (used, result) = decoder.decode(&input[at..]);
            prop_assert!(used <= input.len() - at);
            match result {
                Ok(Some(_)) => prop_assert!(used >= 9),
                Ok(None) => break,
                Err(e) if e.is_connection_error() => break,
                Err(e) => prop_assert!(e.stream_id().is_some() && used >= 9),
            }
            at += used;
        }
    }
}
