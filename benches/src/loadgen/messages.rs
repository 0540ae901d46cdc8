//! The numbered messages of a fan-out run: written with their
//! publication time, read back and checked in order, and the publisher's
//! acknowledgements timed.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{report, sys};

/// The publisher's acknowledgements (`{"control":"published","id":"ID"}`):
/// when each publish not yet acknowledged was written, and what came back.
#[derive(Debug)]
pub struct Acks {
    /// Write times (ns) of the publishes not yet acknowledged, oldest first.
    pending: VecDeque<u64>,
    /// Acknowledgements received.
    pub count: u64,
    /// Acknowledgements whose id was not above the last one's, or that
    /// came with no publish waiting for one.
    pub bad: u64,
    last_id: (u64, u64),
    /// From each publish's write to its acknowledgement.
    pub hist: Histogram<u64>,
    /// When the last acknowledgement came (ns, as the publishes).
    pub last_ns: u64,
}

impl Default for Acks {
    fn default() -> Self {
        Acks::new()
    }
}

impl Acks {
    /// No publishes yet.
    pub fn new() -> Acks {
        Acks {
            pending: VecDeque::new(),
            count: 0,
            bad: 0,
            last_id: (0, 0),
            hist: report::latency_histogram(),
            last_ns: 0,
        }
    }

    /// A publish was written at `ns`.
    pub fn sent(&mut self, ns: u64) {
        self.pending.push_back(ns);
    }

    /// Publishes waiting for their acknowledgement.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Takes `text` if it is an acknowledgement (and returns whether it
    /// was): times it against the oldest publish waiting, and checks that
    /// its id is above the last one's.
    pub fn take(&mut self, text: &[u8], now_ns: u64) -> bool {
        const ACK: &[u8] = br#"{"control":"published","id":""#;
        let Some(rest) = text.strip_prefix(ACK) else {
            return false;
        };
        self.count += 1;
        self.last_ns = now_ns;
        let id = rest
            .iter()
            .position(|&b| b == b'"')
            .and_then(|end| std::str::from_utf8(&rest[..end]).ok())
            .and_then(parse_id);
        match id {
            Some(id) if id > self.last_id => self.last_id = id,
            _ => self.bad += 1,
        }
        match self.pending.pop_front() {
            Some(sent_ns) => report::record(
                &mut self.hist,
                Duration::from_nanos(now_ns.saturating_sub(sent_ns)),
            ),
            None => self.bad += 1,
        }
        true
    }
}

/// An event id: a number, or the hub's `ms-seq` pair of numbers.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    match id.split_once('-') {
        Some((ms, seq)) => ms.parse().ok().zip(seq.parse().ok()),
        None => id.parse().ok().map(|n| (0, n)),
    }
}

/// What a subscriber has seen.
#[derive(Debug, Default)]
pub struct Tally {
    /// The sequence number expected next.
    pub(crate) next: u64,
    /// Messages received in order.
    pub in_order: u64,
    /// Messages that were not the one expected (a gap, a repeat or a step
    /// back).
    pub out_of_order: u64,
    /// Messages whose text could not be read.
    pub garbled: u64,
    /// SSE only: events whose id did not increase.
    pub bad_ids: u64,
    last_id: (u64, u64),
    /// The first message that could not be read, for the report.
    pub first_garbled: Option<String>,
    /// Raw messages only: a JSON envelope is unreadable.
    raw: bool,
    /// Check each raw message whole against the one published: its size
    /// and whether it is padded with JSON.
    pub(crate) verify: Option<(usize, bool)>,
    scratch: Vec<u8>,
}

impl Tally {
    /// A subscriber that expects message 1 first.
    pub fn new() -> Tally {
        Tally {
            next: 1,
            ..Tally::default()
        }
    }

    /// A subscriber that expects message 1 first, as raw text only.
    pub fn raw() -> Tally {
        Tally {
            raw: true,
            ..Tally::new()
        }
    }

    /// Checks one delivered message; returns its publication time (ns
    /// since the start) when it could be read.
    pub fn deliver(&mut self, text: &[u8]) -> Option<u64> {
        let parsed = parse_message(text, self.raw).filter(|&(seq, ns)| match self.verify {
            Some((size, json)) if self.raw => {
                write_message(&mut self.scratch, seq, ns, size, json);
                self.scratch == text
            }
            _ => true,
        });
        let Some((seq, sent_ns)) = parsed else {
            self.garbled += 1;
            if self.first_garbled.is_none() {
                let shown = &text[..text.len().min(200)];
                self.first_garbled = Some(String::from_utf8_lossy(shown).into_owned());
            }
            return None;
        };
        if seq == self.next {
            self.in_order += 1;
        } else {
            self.out_of_order += 1;
        }
        self.next = self.next.max(seq + 1);
        Some(sent_ns)
    }

    /// Checks an event-stream id: each must be above the last, as a
    /// number or as the hub's `ms-seq` pair of numbers.
    pub fn event_id(&mut self, id: &str) {
        match parse_id(id) {
            Some(id) if id > self.last_id => self.last_id = id,
            _ => self.bad_ids += 1,
        }
    }

    /// Whether it got messages 1 to `published`, each once, in order.
    pub fn complete(&self, published: u64) -> bool {
        self.in_order == published && self.out_of_order == 0 && self.garbled == 0 && self.bad_ids == 0
    }
}

/// `"<seq> <ns> ...."` into its two numbers; unless `raw`, the text may
/// also be the `data` of a hub event in JSON (the numbers, spaces and dots
/// need no escaping, so they stand as they are).
pub(super) fn parse_message(text: &[u8], raw: bool) -> Option<(u64, u64)> {
    let text = if !raw && text.first() == Some(&b'{') {
        const DATA: &[u8] = b"\"data\":\"";
        let at = text.windows(DATA.len()).position(|w| w == DATA)?;
        &text[at + DATA.len()..]
    } else {
        text
    };
    let mut parts = text.split(|&b| b == b' ');
    let number = |p: Option<&[u8]>| std::str::from_utf8(p?).ok()?.parse::<u64>().ok();
    Some((number(parts.next())?, number(parts.next())?))
}

/// The message numbered `seq`, published at `ns` on the system's monotonic
/// clock (`CLOCK_MONOTONIC`, the same in every process), padded to `size`
/// with dots, or with `json` with quotes of a made-up feed (numbers from
/// `seq`, so that no two messages are alike; about 3 to 1 with deflate, as
/// such feeds are).
pub fn write_message(out: &mut Vec<u8>, seq: u64, ns: u64, size: usize, json: bool) {
    out.clear();
    let _ = write!(out, "{seq} {ns} ");
    if json {
        let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut k = 0u64;
        while out.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let _ = write!(
                out,
                "{{\"id\":{},\"symbol\":\"S{:02}\",\"bid\":{}.{:02},\"qty\":{}}},",
                seq * 64 + k,
                x % 40,
                100 + x % 900,
                (x >> 12) % 100,
                (x >> 24) % 5000
            );
            k += 1;
        }
        out.truncate(size.max(out.iter().position(|&b| b == b'{').unwrap_or(out.len())));
    }
    if out.len() < size {
        out.resize(size, b'.');
    }
}

/// The message numbered `seq` inside the hub's publish envelope:
/// `{"data":"<seq> <ns> ...."}`, the data `size` bytes as without one
/// (its characters need no escaping).
pub fn write_envelope(out: &mut Vec<u8>, seq: u64, ns: u64, size: usize) {
    let mut text = Vec::with_capacity(size.max(32));
    write_message(&mut text, seq, ns, size, false);
    out.clear();
    out.extend_from_slice(br#"{"data":""#);
    out.extend_from_slice(&text);
    out.extend_from_slice(br#""}"#);
}

/// Instants as nanoseconds of the system's monotonic clock, so that a
/// message stamped in one process is timed in another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) start: Instant,
    /// `CLOCK_MONOTONIC` at `start`.
    pub(crate) base_ns: u64,
}

impl Clock {
    /// The clock now, from `start` on.
    pub(crate) fn start() -> io::Result<Clock> {
        Ok(Clock {
            start: Instant::now(),
            base_ns: sys::monotonic_ns()?,
        })
    }

    /// When it started.
    pub(crate) fn started(&self) -> Instant {
        self.start
    }

    pub(crate) fn ns(&self, at: Instant) -> u64 {
        self.base_ns
            .saturating_add(at.saturating_duration_since(self.start).as_nanos() as u64)
    }
}
