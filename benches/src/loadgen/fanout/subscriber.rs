//! A subscriber's reader: its bytes through the WebSocket or event-stream
//! parser, inflated when compressed, each message tallied.

use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tether_frame::OpCode;
use tether_sse::{Item, Parser};

use super::super::conn::Kind;
use super::super::report;
use super::super::wire::{self, Event};
use super::{Acks, Clock, Tally};

/// A subscriber's reader state besides the socket.
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) tally: Tally,
    /// A WebSocket message that spans reads.
    message: Vec<u8>,
    /// A compressed message, inflated.
    inflated: Vec<u8>,
    /// Messages that came compressed.
    pub(crate) compressed: u64,
    sse: Option<Parser>,
    /// The publisher's acknowledgements, when it asks for them.
    pub(crate) acks: Option<Acks>,
}

impl Sub {
    /// A reader of a WebSocket (JSON events, or raw ones) or an event
    /// stream, that expects message 1 first.
    pub(crate) fn new(kind: Kind, raw: bool) -> Sub {
        Sub {
            tally: if raw { Tally::raw() } else { Tally::new() },
            message: Vec::new(),
            inflated: Vec::new(),
            compressed: 0,
            sse: (kind == Kind::EventStream).then(Parser::new),
            acks: None,
        }
    }
}

/// Feeds a subscriber's bytes through its reader and tallies what they
/// deliver; a message that came compressed is inflated with `deflate`
/// first (and is an error without it). A close frame from the server is an
/// error of kind `ConnectionAborted`, and only that.
#[allow(clippy::too_many_arguments)]
pub(crate) fn consume(
    bytes: &[u8],
    sub: &mut Sub,
    ws: &mut wire::EventReader,
    mut deflate: Option<&mut tether_deflate::Deflate>,
    pong: &mut Vec<u8>,
    hist: &mut Histogram<u64>,
    clock: Clock,
    now: Instant,
    delivered: &mut u64,
) -> io::Result<()> {
    pong.clear();
    let now_ns = clock.ns(now);
    let mut on_message = |tally: &mut Tally, acks: &mut Option<Acks>, text: &[u8]| {
        if let Some(acks) = acks
            && acks.take(text, now_ns)
        {
            return;
        }
        *delivered += 1;
        if let Some(sent_ns) = tally.deliver(text) {
            report::record(hist, Duration::from_nanos(now_ns.saturating_sub(sent_ns)));
        }
    };
    match &mut sub.sse {
        Some(parser) => {
            parser.feed(bytes);
            while let Some(item) = parser.poll() {
                match item {
                    Ok(Item::Event(event)) => {
                        sub.tally.event_id(event.last_event_id());
                        on_message(&mut sub.tally, &mut sub.acks, event.data().as_bytes());
                    }
                    Ok(_) => {}
                    Err(e) => return Err(io::Error::other(format!("event stream: {e}"))),
                }
            }
        }
        None => {
            let (tally, message, inflated, acks) =
                (&mut sub.tally, &mut sub.message, &mut sub.inflated, &mut sub.acks);
            let compressed = &mut sub.compressed;
            let mut closed = None;
            let mut failed = None;
            // Bytes of a message whose start arrived in an earlier read are
            // collected in `message`; a message wholly inside this read is
            // handled in place.
            let mut whole: Option<(usize, usize)> = None;
            let base = bytes.as_ptr() as usize;
            ws.feed(bytes, &mut |event| match event {
                Event::Data { chunk, offset } => {
                    if offset == 0 && message.is_empty() {
                        let at = chunk.as_ptr() as usize - base;
                        whole = Some((at, chunk.len()));
                    } else {
                        if let Some((at, len)) = whole.take() {
                            message.extend_from_slice(&bytes[at..at + len]);
                        }
                        message.extend_from_slice(chunk);
                    }
                }
                Event::End {
                    compressed: false, ..
                } => {
                    match whole.take() {
                        Some((at, len)) => on_message(tally, acks, &bytes[at..at + len]),
                        None => on_message(tally, acks, message),
                    }
                    message.clear();
                }
                Event::End { compressed: true, .. } => {
                    let input = match whole.take() {
                        Some((at, len)) => &bytes[at..at + len],
                        None => &message[..],
                    };
                    inflated.clear();
                    let result = match deflate.as_deref_mut() {
                        Some(d) => tether_ws::Extension::decode(d, input, true, inflated, 64 << 20)
                            .map_err(|e| format!("inflating a message: {}", e.reason)),
                        None => Err("a compressed message without permessage-deflate".to_owned()),
                    };
                    match result {
                        Ok(()) => {
                            *compressed += 1;
                            on_message(tally, acks, inflated);
                        }
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                    message.clear();
                }
                Event::Ping(payload) => wire::push_frame(pong, OpCode::Pong, payload),
                Event::Pong => {}
                Event::Close(code) => closed = Some(code),
            })
            .map_err(io::Error::other)?;
            if let Some((at, len)) = whole {
                // The message goes on in the next read.
                message.extend_from_slice(&bytes[at..at + len]);
            }
            if let Some(code) = closed {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("close frame from the server: {code:?}"),
                ));
            }
            if let Some(why) = failed {
                return Err(io::Error::other(why));
            }
        }
    }
    Ok(())
}
