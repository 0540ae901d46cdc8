//! Echo throughput: every connection sends one message (or `pipeline` of
//! them), and sends another for every echo that comes back, for a fixed
//! time.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use mio::{Events, Poll};
use serde_json::json;
use tether_frame::{FrameHeader, OpCode, encode_frame};

use super::conn::{Conn, Group, Kind, ReadOutcome, connect_all};
use super::deflated::{self, Collect};
#[cfg(test)]
use super::echoes::test_options;
use super::echoes::{Measure, finish, take_echoes};
pub use super::echoes::{Options, payload};
use super::report::{self, Report};
use super::wire;

/// Per-connection state besides the socket.
#[derive(Debug, Clone)]
struct Slot {
    /// When each message in flight was sent, oldest first, in nanoseconds
    /// from the start of the run: one clock subtraction per wake-up instead
    /// of one per message. Echoes come back in the order sent.
    sent_ns: VecDeque<u64>,
    /// Echoed bytes that differ from the payload, in the current message.
    mismatch: bool,
}

/// Runs the echo test.
pub fn run(opts: &Options) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut conns = connect_all(
        &mut poll,
        &opts.dial,
        &[Group {
            kind: Kind::WebSocket,
            target: &opts.target,
            count: opts.connections,
            deflate: opts.deflate,
        }],
    )?;
    if opts.child {
        report::wait_for_start()?;
    }
    let opcode = if opts.binary { OpCode::Binary } else { OpCode::Text };
    // Encoded (and masked, and compressed with --deflate) once; every send
    // writes these same bytes.
    let (body, frame, wire_size) = if opts.deflate {
        let body = deflated::payload(opts.size);
        let (frame, wire_size) = deflated::frame(&mut conns, opcode, &body)?;
        (body, frame, wire_size)
    } else {
        let body = payload(opts.size);
        let frame = wire::frame(opcode, &body);
        (body, frame, opts.size)
    };
    // With --deflate, each connection's echo is collected to be inflated.
    let mut collects: Vec<Collect> = if opts.deflate {
        conns.iter().map(|_| Collect::default()).collect()
    } else {
        Vec::new()
    };
    // The exact bytes of a correct echo: the same message in one unmasked
    // frame, as a server sends it. A read that is exactly these bytes, at
    // a message boundary, is one echo, checked by one comparison; anything
    // else goes through the frame reader.
    let expected = server_frame(opcode, &body);
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut pong = Vec::with_capacity(256);
    let mut hist = report::latency_histogram();
    let mut problems = Vec::new();

    let start = Instant::now();
    let since_start = |at: Instant| at.saturating_duration_since(start).as_nanos() as u64;
    let pipeline = opts.pipeline.max(1);
    let mut slots = vec![
        Slot {
            sent_ns: VecDeque::with_capacity(pipeline),
            mismatch: false,
        };
        conns.len()
    ];
    // `pipeline` copies of the frame: n echoes back are answered by the
    // first n of them, in one write.
    let burst = frame.repeat(pipeline);
    for (conn, slot) in conns.iter_mut().zip(&mut slots) {
        if !conn.leftover.is_empty() {
            return Err(io::Error::other("the server sent data before the first message"));
        }
        let now = since_start(Instant::now());
        slot.sent_ns.extend(std::iter::repeat_n(now, pipeline));
        conn.send(&burst)?;
    }

    let mut clock = Measure::new(start, opts);
    let mut count = 0u64;
    let mut events = Events::with_capacity(1024);
    // Round trips are counted here and handed to `hist` at the end.
    let mut rec = report::Recorder::new();
    loop {
        let warming = !clock.measuring();
        let Some(wait) = clock.next(&mut count, &mut hist)? else {
            break;
        };
        if warming && clock.measuring() {
            rec.clear();
        }
        poll.poll(&mut events, Some(wait))?;
        // One clock read per wake-up: the round trips that complete in it
        // share it.
        let now = since_start(Instant::now());
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            let slot = &mut slots[i];
            let collect = collects.get_mut(i);
            let done = on_ready(conn, slot, collect, &mut rbuf, &body, &expected, opts, &mut pong)
                .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
            let done = done as usize;
            if done > slot.sent_ns.len() {
                return Err(io::Error::other(format!(
                    "connection {i}: {done} echoes for {} messages in flight",
                    slot.sent_ns.len()
                )));
            }
            if done > 0 {
                if slot.mismatch {
                    problems.push(format!("connection {i}: echoed bytes differ from those sent"));
                    slot.mismatch = false;
                }
                for sent in slot.sent_ns.drain(..done) {
                    rec.record(now.saturating_sub(sent));
                }
                slot.sent_ns.extend(std::iter::repeat_n(now, done));
                count += done as u64;
                conn.send(&burst[..done * frame.len()])?;
            }
            if event.is_writable() && conn.has_pending_output() {
                conn.flush()?;
            }
        }
    }
    rec.drain_into(&mut hist);
    let mut what = format!("echo {} conns", opts.connections);
    if pipeline > 1 {
        what += &format!(", {pipeline} in flight on each");
    }
    if opts.deflate {
        what += &format!(", deflate ({wire_size} B sent on the wire)");
    }
    let mut report = finish(opts, clock, count, &hist, problems, &what, None)?;
    if let Some(json) = report.json.as_object_mut() {
        json.insert("deflate".into(), json!(opts.deflate));
        json.insert("wire_size".into(), json!(wire_size));
        json.insert("pipeline".into(), json!(pipeline));
    }
    Ok(report)
}

/// `a == b`. From 16 to 32 bytes (a 20-byte echo's frame is 22), as two
/// overlapping 16-byte words, where the comparison costs less than the call
/// to `memcmp` that slice equality makes.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if !(16..=32).contains(&n) {
        return a == b;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 16];
        w.copy_from_slice(&s[at..at + 16]);
        u128::from_ne_bytes(w)
    };
    ((word(a, 0) ^ word(b, 0)) | (word(a, n - 16) ^ word(b, n - 16))) == 0
}

/// The frame a server echoes `body` in: unmasked, final, `opcode`.
fn server_frame(opcode: OpCode, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 10);
    let header = FrameHeader::new(true, opcode, body.len() as u64);
    encode_frame(&mut out, header, body).expect("a data frame always encodes");
    out
}

/// Reads what a connection has; returns how many echoes it completed.
/// With `collect` (permessage-deflate), every echo goes through
/// [`deflated::take_echoes`].
#[inline]
#[allow(clippy::too_many_arguments)]
fn on_ready(
    conn: &mut Conn,
    slot: &mut Slot,
    mut collect: Option<&mut Collect>,
    rbuf: &mut [u8],
    body: &[u8],
    expected: &[u8],
    opts: &Options,
    pong: &mut Vec<u8>,
) -> io::Result<u32> {
    let mut done = 0u32;
    loop {
        let (len, more) = match conn.read_into(rbuf)? {
            ReadOutcome::Data { len, more } => (len, more),
            ReadOutcome::Empty => break,
            ReadOutcome::Closed => return Err(io::Error::other("closed by the server")),
        };
        let read = &rbuf[..len];
        pong.clear();
        if let Some(collect) = collect.as_deref_mut() {
            let deflate = conn.deflate.as_deref_mut();
            done += deflated::take_echoes(
                &mut conn.ws,
                deflate,
                collect,
                read,
                &mut slot.mismatch,
                body,
                opts,
                pong,
            )?;
        } else if same_bytes(read, expected) && conn.ws.at_message_start() {
            done += 1;
        } else {
            done += take_echoes(&mut conn.ws, read, &mut slot.mismatch, body, opts, pong)?;
        }
        if !pong.is_empty() {
            conn.send(pong)?;
        }
        if !more {
            break;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_slice_equality_at_every_length_and_position() {
        let data: Vec<u8> = (0..80u8).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..=70 {
            let a = &data[..n];
            assert!(same_bytes(a, a), "{n}");
            assert!(!same_bytes(a, &data[..n + 1]), "{n}");
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 0x40;
                assert!(!same_bytes(a, &b), "length {n}, byte {at}");
            }
        }
    }

    #[test]
    fn the_expected_echo_is_what_a_server_sends() {
        let body = payload(20);
        let frame = server_frame(OpCode::Text, &body);
        let mut reader = wire::EventReader::new();
        assert!(reader.at_message_start());
        let opts = test_options(20, false);
        let (mut mismatch, mut pong) = (false, Vec::new());
        let done = take_echoes(&mut reader, &frame, &mut mismatch, &body, &opts, &mut pong).unwrap();
        assert_eq!((done, mismatch), (1, false));
        assert!(reader.at_message_start());
        // Half a frame leaves the reader inside it.
        take_echoes(&mut reader, &frame[..5], &mut mismatch, &body, &opts, &mut pong).unwrap();
        assert!(!reader.at_message_start());
    }
}
