//! The extension itself: compressing outgoing messages and inflating
//! incoming ones (RFC 7692 sections 6 and 7.2).

use std::cell::RefCell;

use tether_ws::{CloseCode, ExtensionError, OpCode, Rsv};
use zlib_rs::{DeflateConfig as ZConfig, DeflateFlush, InflateFlush, Status, Strategy};

use crate::params::{MAX_WINDOW_BITS, MIN_WINDOW_BITS, Params};
use crate::quick;

/// What a sync flush ends with; RFC 7692 section 7.2.1 strips it from every
/// message, and section 7.2.2 puts it back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output room given to the inflater on its first step for a piece, at
/// least (four times the piece when that is more). Every byte of room is
/// zeroed first (the crate has no `unsafe` to hand over spare capacity),
/// so the room starts near what a piece is likely to inflate to and
/// doubles, up to [`INFLATE_STEP_MAX`], for each step the inflater fills:
/// the bytes zeroed stay within about twice the output.
const INFLATE_STEP_MIN: usize = 256;
/// The most output room one inflate step gets.
const INFLATE_STEP_MAX: usize = 64 * 1024;

/// zlib-rs's memory level for level-1 compressors. Level 1 is zlib-rs's
/// quick strategy, which writes static Huffman codes as it goes and never
/// fills the symbol buffer that the memory level sizes; but zlib-rs zeroes
/// that buffer at every block, and a sync flush ends a block on every
/// message: 48 KiB zeroed per message at the default memory level 8, 384
/// bytes at memory level 1. The pending output buffer shrinks with it
/// (64 KiB to 512 bytes), which only makes the compressor hand its output
/// over in more, smaller pieces. Other levels keep zlib-rs's default, since
/// there the symbol buffer bounds the size of a block.
const QUICK_MEM_LEVEL: i32 = 1;

/// The default minimum size to compress when each message stands alone:
/// below about 200 bytes, a JSON message shrinks by 10 % or less at level 1.
pub const MIN_SIZE_WITHOUT_CONTEXT: usize = 256;

/// The default minimum size to compress when context is kept: short
/// messages that repeat earlier ones shrink to a fraction.
pub const MIN_SIZE_WITH_CONTEXT: usize = 32;

/// Idle shared states a thread keeps for reuse, per kind.
const POOL_LIMIT: usize = 8;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Compresses with the `server_*` parameters, inflates with the
    /// `client_*` ones.
    Server,
    /// The other way round.
    Client,
}

/// The compressor settings that decide whether two compressors are
/// interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// Raw deflate window bits handed to zlib-rs, 9 to 15.
    window_bits: u8,
    /// Run-length matches only (distance 1), for an 8-bit window.
    rle: bool,
    level: u8,
}

impl Key {
    pub(crate) fn new(negotiated_bits: u8, level: u8) -> Key {
        // zlib (and zlib-rs) refuse a raw 8-bit window. A run-length-only
        // compressor refers back exactly one byte, so whatever window it
        // is built with, its output is valid for a 256-byte window (RFC 7692
        // section 7.1.2.1 lets the sender use any window up to the limit).
        if negotiated_bits <= 8 {
            Key {
                window_bits: 9,
                rle: true,
                level,
            }
        } else {
            Key {
                window_bits: negotiated_bits,
                rle: false,
                level,
            }
        }
    }

    /// How far back a match may refer: the negotiated window, 256 bytes
    /// for 8 bits.
    fn max_distance(self) -> usize {
        if self.rle { 1 << 8 } else { 1 << self.window_bits }
    }

    fn compressor(self) -> zlib_rs::Deflate {
        let defaults = ZConfig::default();
        zlib_rs::Deflate::new_with_config(ZConfig {
            level: i32::from(self.level),
            window_bits: -i32::from(self.window_bits),
            mem_level: if self.level == 1 && !self.rle {
                QUICK_MEM_LEVEL
            } else {
                defaults.mem_level
            },
            strategy: if self.rle {
                Strategy::Rle
            } else {
                Strategy::Default
            },
            ..defaults
        })
    }
}

thread_local! {
    /// Compressors of connections that do not keep context: any of them
    /// can compress the next message of any connection on this thread, so
    /// an idle connection owns none.
    static COMPRESSORS: RefCell<Vec<(Key, zlib_rs::Deflate)>> = const { RefCell::new(Vec::new()) };
    /// Inflaters for peers that do not keep context, lent to a connection
    /// from a message's first piece to its end.
    static INFLATERS: RefCell<Vec<zlib_rs::Inflate>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn take_compressor(key: Key) -> zlib_rs::Deflate {
    COMPRESSORS
        .with_borrow_mut(|pool| {
            let i = pool.iter().position(|(k, _)| *k == key)?;
            Some(pool.swap_remove(i).1)
        })
        .unwrap_or_else(|| key.compressor())
}

pub(crate) fn return_compressor(key: Key, mut compressor: zlib_rs::Deflate) {
    compressor.reset();
    COMPRESSORS.with_borrow_mut(|pool| {
        if pool.len() < POOL_LIMIT {
            pool.push((key, compressor));
        }
    });
}

fn take_inflater() -> zlib_rs::Inflate {
    INFLATERS
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| zlib_rs::Inflate::new(false, MAX_WINDOW_BITS))
}

fn return_inflater(mut inflater: zlib_rs::Inflate) {
    // Back to a raw stream with a 15-bit window, which inflates any window.
    inflater.reset(false);
    INFLATERS.with_borrow_mut(|pool| {
        if pool.len() < POOL_LIMIT {
            pool.push(inflater);
        }
    });
}

fn corrupt() -> ExtensionError {
    ExtensionError {
        code: CloseCode::PROTOCOL_ERROR,
        reason: "invalid compressed data",
    }
}

fn too_big() -> ExtensionError {
    ExtensionError {
        code: CloseCode::TOO_BIG,
        reason: "message inflates past the size limit",
    }
}

/// permessage-deflate for one connection: a `tether_ws::Extension`.
///
/// Built from negotiated [`Params`] by [`DeflateConfig`](crate::negotiate::DeflateConfig)
/// on a server (its negotiator does it) or [`ClientOffer::extension`](crate::negotiate::ClientOffer::extension)
/// on a client, then installed with `tether_ws::Connection::with_extension`.
/// Both roles write the same compressed payloads; tether-ws masks them.
///
/// Sans-IO, in the words every tether crate uses: bytes in and bytes out
/// into a buffer the caller owns (the `Extension`'s `decode` and `encode`,
/// called by tether-ws with its `out`), events out (an error with its
/// close code, 1009 past the size limit, 1002 for a broken stream); no
/// time passed in and no deadline out: compression keeps no timers.
///
/// # Memory
///
/// State is created on first use, so a connection that never sends or
/// receives a compressed message holds none. A direction that keeps context
/// owns its state from then on: the compressor about 260 KiB with a 15-bit
/// window at level 1 (370 KiB at higher levels, whose symbol buffer is
/// larger), the inflater about 47 KiB. A direction without context takeover
/// owns nothing between messages: compression state is shared by all
/// connections of a thread (each tether server loop is one thread): at
/// level 1 a hash table sized to the message for messages of up to 16 KiB,
/// and zlib-rs compressors for longer ones and other levels. An inflater is
/// lent from a per-thread pool for the duration of one incoming message.
///
/// # Limits
///
/// Inflated bytes count against the message limit tether-ws passes in as
/// they are produced; a message that would inflate past it fails with 1009
/// after at most one byte more than the limit was written, however small
/// it was on the wire. A corrupt stream fails with 1002.
///
/// A peer's message may end its deflate stream with a final block (RFC
/// 7692 section 7.2.3.4); whatever follows that block in the message is
/// ignored, and the next message starts a new stream with an empty window,
/// even with context takeover (zlib-rs cannot hand the old window over), so
/// a peer that referred back past a final block would be failed with 1002.
///
/// ```
/// use std::time::Instant;
/// use tether_deflate::{Deflate, Params, Role};
/// use tether_ws::{Config, Connection, Event, Message};
///
/// let now = Instant::now();
/// let params = Params::default();
/// let mut server = Connection::new(tether_ws::Role::Server, Config::default(), now)
///     .with_extension(Box::new(Deflate::new(Role::Server, params).with_min_size(0)));
/// let masks = Box::new(|| [1, 2, 3, 4]);
/// let mut client = Connection::new(tether_ws::Role::Client(masks), Config::default(), now)
///     .with_extension(Box::new(Deflate::new(Role::Client, params).with_min_size(0)));
///
/// let mut wire = Vec::new();
/// client.send_text("Hello", &mut wire)?;
/// assert_eq!(wire[0], 0xC1, "FIN, RSV1 (compressed), text");
/// let (_, event) = server.receive(&wire, now, &mut Vec::new());
/// assert_eq!(event, Some(Event::Message(Message::text("Hello"))));
/// # Ok::<(), tether_ws::Error>(())
/// ```
pub struct Deflate {
    key: Key,
    /// Our own compressor, when we keep context (created on first use).
    compressor: Option<zlib_rs::Deflate>,
    send_takeover: bool,
    /// The inflater: our own when the peer keeps context, else borrowed
    /// from the thread's pool while a message is being received.
    inflater: Option<zlib_rs::Inflate>,
    recv_takeover: bool,
    recv_window_bits: u8,
    /// The peer's current message ended its deflate stream (a final block).
    stream_ended: bool,
    min_size: usize,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate")
            .field("send_window_bits", &self.key.window_bits)
            .field("send_takeover", &self.send_takeover)
            .field("recv_takeover", &self.recv_takeover)
            .field("recv_window_bits", &self.recv_window_bits)
            .field("level", &self.key.level)
            .field("min_size", &self.min_size)
            .finish_non_exhaustive()
    }
}

impl Deflate {
    /// The extension for one end of a connection, at compression level 1.
    /// Messages shorter than [`MIN_SIZE_WITHOUT_CONTEXT`] (256) bytes are
    /// sent as they are when this end compresses without context takeover,
    /// shorter than [`MIN_SIZE_WITH_CONTEXT`] (32) when it keeps context.
    pub fn new(role: Role, params: Params) -> Deflate {
        let (send_nct, send_bits, recv_nct, recv_bits) = match role {
            Role::Server => (
                params.server_no_context_takeover,
                params.server_max_window_bits,
                params.client_no_context_takeover,
                params.client_max_window_bits,
            ),
            Role::Client => (
                params.client_no_context_takeover,
                params.client_max_window_bits,
                params.server_no_context_takeover,
                params.server_max_window_bits,
            ),
        };
        Deflate {
            key: Key::new(send_bits, 1),
            compressor: None,
            send_takeover: !send_nct,
            inflater: None,
            recv_takeover: !recv_nct,
            recv_window_bits: recv_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
            stream_ended: false,
            min_size: if send_nct {
                MIN_SIZE_WITHOUT_CONTEXT
            } else {
                MIN_SIZE_WITH_CONTEXT
            },
        }
    }

    /// The zlib compression level, 0 (stored) to 9; larger values are
    /// taken as 9.
    pub fn with_level(mut self, level: u8) -> Deflate {
        self.key.level = level.min(9);
        self
    }

    /// Messages shorter than `bytes` are sent uncompressed.
    pub fn with_min_size(mut self, bytes: usize) -> Deflate {
        self.min_size = bytes;
        self
    }

    fn inflate_piece(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), ExtensionError> {
        if input.is_empty() {
            return Ok(());
        }
        if self.stream_ended {
            // What follows a final block is ignored, as inflating the
            // message with the tail appended would (RFC 7692 section 7.2.2);
            // a sender that ends with BFINAL leaves a byte of the empty
            // block of section 7.2.1 there (the example of 7.2.3.4).
            return Ok(());
        }
        let recv_takeover = self.recv_takeover;
        let bits = self.recv_window_bits;
        let inflater = self.inflater.get_or_insert_with(|| {
            if recv_takeover {
                zlib_rs::Inflate::new(false, bits)
            } else {
                take_inflater()
            }
        });
        let result = inflate_into(inflater, input, out, limit);
        match result {
            Ok(ended) => {
                self.stream_ended = ended;
                Ok(())
            }
            Err(e) => {
                // A failed inflater is not reused.
                self.inflater = None;
                Err(e)
            }
        }
    }

    fn end_message(&mut self) {
        let ended = std::mem::take(&mut self.stream_ended);
        if self.recv_takeover {
            if ended {
                // A final block ends the stream, and with it the window:
                // start afresh for the next message.
                if let Some(inflater) = self.inflater.as_mut() {
                    *inflater = zlib_rs::Inflate::new(false, self.recv_window_bits);
                }
            }
        } else if let Some(inflater) = self.inflater.take() {
            return_inflater(inflater);
        }
    }
}

/// Feeds `input` to the inflater, appending output to `out` without ever
/// letting it grow past `limit + 1` bytes. Returns whether the deflate
/// stream ended (a final block).
fn inflate_into(
    inflater: &mut zlib_rs::Inflate,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<bool, ExtensionError> {
    let mut step = INFLATE_STEP_MIN
        .max(input.len().saturating_mul(4))
        .min(INFLATE_STEP_MAX);
    loop {
        let len = out.len();
        if len > limit {
            return Err(too_big());
        }
        // One byte past the limit tells "exactly at the limit" from "more".
        let allowed = (limit - len).saturating_add(1);
        let room = allowed.min(step);
        step = step.saturating_mul(2).min(INFLATE_STEP_MAX);
        if out.capacity() < len + room {
            // Grow geometrically, but never past the limit (+1).
            let target = (out.capacity().saturating_mul(2))
                .max(len + room)
                .min(len.saturating_add(allowed));
            out.reserve_exact(target - len);
        }
        out.resize(len + room, 0);
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater.decompress(
            input,
            out.get_mut(len..).unwrap_or_default(),
            InflateFlush::NoFlush,
        );
        let consumed = progress(inflater.total_in(), in_before);
        let written = progress(inflater.total_out(), out_before);
        out.truncate(len.saturating_add(written));
        input = input.get(consumed..).unwrap_or_default();
        if out.len() > limit {
            out.truncate(limit);
            return Err(too_big());
        }
        match status {
            Ok(Status::StreamEnd) => return Ok(true),
            Ok(Status::Ok | Status::BufError) => {
                if written < room && input.is_empty() {
                    return Ok(false);
                }
                if consumed == 0 && written == 0 {
                    // No progress with input and room left: cannot happen
                    // with a sound inflater; refuse rather than spin.
                    return Err(corrupt());
                }
            }
            Err(_) => return Err(corrupt()),
        }
    }
}

/// Compresses a whole message with a sync flush, appending to `out`, and
/// strips the flush's empty stored block tail (RFC 7692 section 7.2.1).
pub(crate) fn compress_into(
    compressor: &mut zlib_rs::Deflate,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ExtensionError> {
    let start = out.len();
    let mut input = payload;
    loop {
        let len = out.len();
        // Deflate's worst case is a little over the input; the loop covers
        // the rest.
        let room = input.len() + input.len() / 64 + 64;
        out.resize(len + room, 0);
        let (in_before, out_before) = (compressor.total_in(), compressor.total_out());
        let status = compressor.compress(
            input,
            out.get_mut(len..).unwrap_or_default(),
            DeflateFlush::SyncFlush,
        );
        let consumed = progress(compressor.total_in(), in_before);
        let written = progress(compressor.total_out(), out_before);
        out.truncate(len.saturating_add(written));
        input = input.get(consumed..).unwrap_or_default();
        if status.is_err() {
            return Err(ExtensionError {
                code: CloseCode::INTERNAL_ERROR,
                reason: "compression failed",
            });
        }
        if input.is_empty() && written < room {
            break;
        }
    }
    if out.len() == start {
        // Nothing new since the last flush (an empty message with context
        // kept): send an empty stored block, which is 0x00 once its tail is
        // stripped (RFC 7692 section 7.2.3.6).
        out.push(0x00);
        Ok(())
    } else if out.get(start..).is_some_and(|written| written.ends_with(&TAIL)) {
        out.truncate(out.len() - TAIL.len());
        Ok(())
    } else {
        Err(ExtensionError {
            code: CloseCode::INTERNAL_ERROR,
            reason: "compression did not end with a sync flush",
        })
    }
}

impl tether_ws::Extension for Deflate {
    fn rsv(&self) -> Rsv {
        Rsv::RSV1
    }

    fn decode(
        &mut self,
        input: &[u8],
        end_of_message: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ExtensionError> {
        self.inflate_piece(input, out, limit)?;
        if end_of_message {
            if !self.stream_ended {
                self.inflate_piece(&TAIL, out, limit)?;
                // The tail only closes an open block; it never ends a stream.
                self.stream_ended = false;
            }
            self.end_message();
        }
        Ok(())
    }

    fn encode(
        &mut self,
        _: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Rsv>, ExtensionError> {
        if payload.len() < self.min_size {
            return Ok(None);
        }
        let start = out.len();
        if self.send_takeover {
            let key = self.key;
            let compressor = self.compressor.get_or_insert_with(|| key.compressor());
            compress_into(compressor, payload, out)?;
        } else {
            if self.key.level == 1 && payload.len() <= quick::MAX_LEN {
                quick::compress(payload, self.key.max_distance(), out);
            } else {
                let mut compressor = take_compressor(self.key);
                compress_into(&mut compressor, payload, out)?;
                return_compressor(self.key, compressor);
            }
            // Without context the message stands alone, so sending it
            // plain instead costs the peer nothing.
            if out.len() - start >= payload.len() {
                return Ok(None);
            }
        }
        Ok(Some(Rsv::RSV1))
    }
}

/// How far one of zlib's running totals moved in a call: at most the
/// length of a buffer in memory, so it fits a usize; saturating keeps a
/// total that went backwards from wrapping.
fn progress(after: u64, before: u64) -> usize {
    usize::try_from(after.saturating_sub(before)).unwrap_or(usize::MAX)
}
