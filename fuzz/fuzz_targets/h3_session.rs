//! Fuzzing of `tether_h3::session::ServerSession` with arbitrary client
//! streams.
//!
//! The input is a list of records: a byte naming the stream (its low three
//! bits pick one of four request streams and four unidirectional ones, bit
//! 0x08 ends the stream after the bytes, bit 0x10 resets it instead, bit
//! 0x20 makes the bytes a QUIC datagram instead), a length byte, then that
//! many bytes. WebTransport is on, so the streams' first bytes may make
//! them WebTransport streams (0x54 or 0x41 then a session ID), and a
//! CONNECT with `:protocol = webtransport` a session. The first input byte picks a piece
//! size. Two runs that do not answer, one handing each record's bytes in
//! whole and one in pieces, must give the same events, and both a
//! connection error or neither (after an error, the same events up to the
//! last one the shorter run gave); a third run answers every request with a head, a body
//! and its end, and every byte any run writes on a request or control
//! stream must decode as HTTP/3 frames.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_h2::hpack::Field;
use tether_h3::frame::FrameDecoder;
use tether_h3::session::{LocalStream, ServerSession, SessionConfig, SessionEvent, Target};

const STREAMS: [u64; 8] = [0, 4, 8, 12, 2, 6, 10, 14];

struct Record<'a> {
    stream_id: u64,
    fin: bool,
    reset: bool,
    datagram: bool,
    bytes: &'a [u8],
}

fn records(mut input: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while let [selector, len, rest @ ..] = input {
        let n = usize::from(*len).min(rest.len());
        out.push(Record {
            stream_id: STREAMS[usize::from(selector & 0x07)],
            fin: selector & 0x08 != 0,
            reset: selector & 0x10 != 0,
            datagram: selector & 0x20 != 0,
            bytes: &rest[..n],
        });
        input = &rest[n..];
    }
    out
}

fn config() -> SessionConfig {
    SessionConfig {
        max_field_section_size: 2048,
        max_frame_payload: 2048,
        qpack_max_table_capacity: 256,
        qpack_blocked_streams: 2,
        max_blocked_bytes: 512,
        enable_connect_protocol: true,
        max_webtransport_sessions: 1,
    }
}

/// Every event (body pieces joined per stream in a row), the connection
/// error if any, and what was written per target.
fn run(records: &[Record<'_>], piece: usize, answer: bool) -> (Vec<SessionEvent>, Option<tether_h3::Error>) {
    let mut session = ServerSession::new(config());
    let mut events: Vec<SessionEvent> = Vec::new();
    let mut error = None;
    let mut written: Vec<(Target, Vec<u8>)> = Vec::new();
    // Client bidirectional streams that are WebTransport streams: raw
    // bytes, not frames.
    let mut raw_streams: Vec<u64> = Vec::new();
    'records: for record in records {
        let result = if record.datagram {
            session.receive_datagram(record.bytes)
        } else if record.reset {
            session.reset_by_peer(record.stream_id, 0x10c)
        } else if record.bytes.is_empty() {
            session.receive(record.stream_id, &[], record.fin)
        } else {
            let pieces: Vec<&[u8]> = record.bytes.chunks(piece).collect();
            let mut result = Ok(());
            for (i, p) in pieces.iter().enumerate() {
                result = session.receive(record.stream_id, p, record.fin && i + 1 == pieces.len());
                if result.is_err() {
                    break;
                }
            }
            result
        };
        while let Some(event) = session.poll_event() {
            if answer && let SessionEvent::Request { stream_id, .. } = &event {
                // A request given up in the same bytes (its body too long)
                // is no longer there to answer.
                if session
                    .send_head(*stream_id, 200, &[Field::new("content-type", "text/plain")])
                    .is_ok()
                {
                    session.send_data(*stream_id, b"answer").expect("after the head");
                    session.finish(*stream_id).expect("after the head");
                }
            }
            if answer {
                match &event {
                    SessionEvent::WebTransportStream {
                        stream_id,
                        session_id,
                        bidirectional,
                    } => {
                        if *bidirectional {
                            raw_streams.push(*stream_id);
                            session
                                .send_webtransport(Target::Request(*stream_id), b"echo", false)
                                .expect("a bidirectional stream of a session is writable");
                        }
                        if let Ok(stream) = session.open_webtransport_stream(*session_id) {
                            session
                                .send_webtransport(Target::Local(stream), b"event\n", false)
                                .expect("a stream just opened is writable");
                        }
                    }
                    SessionEvent::Datagram { session_id, data } => {
                        session.datagram(*session_id, data).expect("a live session");
                    }
                    _ => {}
                }
            }
            if let SessionEvent::WebTransportData { stream_id, data, fin } = &event
                && let Some(SessionEvent::WebTransportData {
                    stream_id: last_id,
                    data: last,
                    fin: last_fin,
                }) = events.last_mut()
                && last_id == stream_id
                && !*last_fin
            {
                last.extend_from_slice(data);
                *last_fin = *fin;
                continue;
            }
            if let SessionEvent::Data { stream_id, data } = &event
                && let Some(SessionEvent::Data {
                    stream_id: last_id,
                    data: last,
                }) = events.last_mut()
                && last_id == stream_id
            {
                last.extend_from_slice(data);
                continue;
            }
            events.push(event);
        }
        for write in session.take_writes() {
            match written.iter_mut().find(|(t, _)| *t == write.target) {
                Some((_, bytes)) => bytes.extend_from_slice(&write.bytes),
                None => written.push((write.target, write.bytes)),
            }
        }
        if let Err(e) = result {
            // Every later call gives the same error.
            assert_eq!(session.receive(0, b"x", false), Err(e));
            error = Some(e);
            break 'records;
        }
    }
    for (target, bytes) in written {
        let bytes = match target {
            Target::Request(id) if raw_streams.contains(&id) => continue,
            Target::Request(_) => &bytes[..],
            Target::Local(LocalStream::Control) => {
                assert_eq!(bytes.first(), Some(&0x00), "control stream type");
                &bytes[1..]
            }
            // Raw bytes: a WebTransport stream's.
            Target::Local(LocalStream::QpackDecoder | LocalStream::WebTransport(_)) => continue,
        };
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut rest = bytes;
        while !rest.is_empty() {
            let (used, _) = decoder.decode(rest).expect("what the session writes decodes");
            rest = &rest[used..];
        }
        decoder.finish().expect("whole frames");
    }
    (events, error)
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, rest)) = input.split_first() else {
        return;
    };
    let piece = 1 + usize::from(first % 16);
    let records = records(rest);
    let (whole, whole_error) = run(&records, usize::MAX, false);
    let (pieces, pieces_error) = run(&records, piece, false);
    // Both runs fail, or neither. Which error comes first may differ: an
    // encoder-stream input that inserts an entry and then goes wrong is
    // refused whole as QPACK_ENCODER_STREAM_ERROR, while in pieces the
    // insert alone arrives first and unblocks a request whose own bytes
    // may then break a rule of their stream. Both are connection errors
    // the peer earned; the order of detection follows the order of arrival.
    assert_eq!(
        whole_error.is_some(),
        pieces_error.is_some(),
        "whole ({whole_error:?}) and in pieces of {piece} ({pieces_error:?})"
    );
    if whole_error.is_none() {
        assert_eq!(whole, pieces, "whole and in pieces of {piece}");
    } else {
        // A connection error ends the session in the middle of a call: a
        // call given more bytes at once may stop before events that
        // smaller calls had already given (a blocked section unblocked by
        // the first half of an encoder-stream input whose second half is
        // invalid). The events before the last are the same.
        let n = whole.len().min(pieces.len()).saturating_sub(1);
        assert_eq!(whole[..n], pieces[..n], "whole and in pieces of {piece}");
    }
    run(&records, piece, true);
});
