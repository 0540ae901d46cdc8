//! Fan-out: one WebSocket publisher sends numbered messages into a topic at
//! a fixed rate; N subscribers (WebSocket members of the topic, or
//! Server-Sent Events streams of it) receive them. Each subscriber checks
//! that it gets every message, in order, and times each delivery from the
//! moment the message was published.
//!
//! Each message's text is `"<seq> <ns> "` padded with dots to the
//! requested size, where `ns` is when it was written on the system's
//! monotonic clock: a subscriber, in this process or another, needs no
//! shared state to check order and latency. The default topic is a chat topic of tether's hub: the
//! publisher sends text messages on `/topics/chat.T/ws` (and gets its own
//! events back, which it reads and checks for error messages), WebSocket
//! subscribers read the same route, event-stream subscribers read
//! `/topics/chat.T/events`. A WebSocket subscriber takes either the hub's
//! JSON events (`{"topic":..,"id":..,"event":..,"data":"<text>"}`) or the
//! raw text (a plain chat room); SSE ids may be numbers or the hub's
//! `ms-seq`. Both targets are options.
//!
//! With [`Options::ack`] the publisher sends each message as the hub's
//! JSON envelope (`{"data":"<text>"}`, on a route with `?envelope=1`) and
//! reads the hub's acknowledgement of each (`{"control":"published",
//! "id":..}`): they come back in the order of the publishes, so each is
//! timed from its own publish, and their ids must increase. With
//! [`Options::window`] as well, no more than that many publishes wait for
//! their acknowledgement at once: with a rate above what the server
//! takes, the run measures how many publishes a second it acknowledges.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Poll};
use serde_json::json;
use tether_frame::OpCode;
use tether_sse::{Item, Parser};

use super::conn::{Dial, Group, Kind, ReadOutcome, connect_all};
use super::mux::{self, MuxConn, Version};
use super::report::{self, Report, Window};
use super::spread::Spread;
use super::wire::{self, Event};
use super::{h2, sys};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where and how to connect.
    pub dial: Dial,
    /// How the subscribers connect.
    pub transport: Kind,
    /// Subscribers.
    pub subscribers: usize,
    /// The publisher's WebSocket request target.
    pub publish_target: String,
    /// The subscribers' request target.
    pub subscribe_target: String,
    /// A mixed run: the second half of the subscribers (of this process's
    /// share) are event streams of this target instead; the first half
    /// stay `transport` subscribers of `subscribe_target`.
    pub mixed_sse_target: Option<String>,
    /// Messages per second.
    pub rate: f64,
    /// Message size in bytes (at least what the sequence number and
    /// timestamp take).
    pub size: usize,
    /// How long to publish.
    pub duration: Duration,
    /// How long to wait for the last deliveries after publishing stops.
    pub drain: Duration,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// Whether this process publishes. Off in all but the first process of
    /// a multi-process run: the others only subscribe, and count the
    /// messages due from the rate and the duration as the publisher does.
    pub publish: bool,
    /// Subscribers take raw messages only (`"<seq> <ns> ...."`, no JSON
    /// envelope): a hub event counts as unreadable.
    pub raw: bool,
    /// Part of a multi-process run: wait at the start gate, and put the
    /// latency histogram's counts in the JSON line.
    pub child: bool,
    /// Subscribers as streams of multiplexed connections, this many to a
    /// connection: HTTP/2 (h2c), or HTTP/3 with `h3`; `None`: a
    /// connection each.
    pub h2: Option<usize>,
    /// With `h2`'s count: the streams are of HTTP/3 (QUIC) connections
    /// instead of HTTP/2 ones (event streams only, over TLS).
    pub h3: bool,
    /// The publisher sends JSON envelopes and checks and times the
    /// acknowledgement of each (the publish target must ask for them:
    /// `?envelope=1`).
    pub ack: bool,
    /// With `ack`: most publishes unacknowledged at once (the schedule
    /// waits while that many are).
    pub window: Option<usize>,
    /// WebSocket subscribers offer permessage-deflate and inflate what
    /// comes compressed; with `raw`, each message is then checked byte for
    /// byte against the one published.
    pub deflate: bool,
    /// Pad messages with JSON-like text (compressible as real feeds are)
    /// instead of dots.
    pub json_payload: bool,
}

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
    next: u64,
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
    verify: Option<(usize, bool)>,
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
fn parse_message(text: &[u8], raw: bool) -> Option<(u64, u64)> {
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
    start: Instant,
    /// `CLOCK_MONOTONIC` at `start`.
    base_ns: u64,
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

/// A subscriber's reader state besides the socket.
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) tally: Tally,
    /// A WebSocket message that spans reads.
    message: Vec<u8>,
    /// A compressed message, inflated.
    inflated: Vec<u8>,
    /// Messages that came compressed.
    compressed: u64,
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

/// Runs the fan-out test.
pub fn run(opts: &Options) -> io::Result<Report> {
    if opts.rate.is_nan() || opts.rate <= 0.0 {
        return Err(io::Error::other("--rate must be positive"));
    }
    if opts.window.is_some() && !opts.ack {
        return Err(io::Error::other(
            "a window of publishes needs their acknowledgements",
        ));
    }
    if opts.mixed_sse_target.is_some() && (opts.h2.is_some() || opts.transport != Kind::WebSocket) {
        return Err(io::Error::other(
            "a mixed run is of WebSocket and SSE subscribers over HTTP/1.1",
        ));
    }
    if opts.deflate && (opts.h2.is_some() || opts.transport != Kind::WebSocket) {
        return Err(io::Error::other(
            "--deflate is for WebSocket subscribers over HTTP/1.1",
        ));
    }
    // The server's peak RSS over this run only: started over from its RSS
    // now, before any subscriber connects (by the publishing process).
    let peak_reset = match opts.server_pid.filter(|_| opts.publish) {
        Some(pid) => sys::reset_peak_rss(pid).is_ok(),
        None => false,
    };
    let server_rss_start = opts.server_pid.map(sys::rss_bytes).transpose()?;
    let mut poll = Poll::new()?;
    // Subscribers first, then the publisher (the last token): when the
    // publisher is open, every subscriber's join has been handled (in a
    // multi-process run, the start gate waits for every process's).
    let mixed_sse = if opts.mixed_sse_target.is_some() {
        opts.subscribers / 2
    } else {
        0
    };
    // Subscribers below this index are of `transport`, the rest event
    // streams of the mixed run.
    let first_kind = opts.subscribers - mixed_sse;
    let groups = [
        Group {
            kind: opts.transport,
            target: &opts.subscribe_target,
            count: first_kind,
            deflate: opts.deflate,
        },
        Group {
            kind: Kind::EventStream,
            target: opts.mixed_sse_target.as_deref().unwrap_or_default(),
            count: mixed_sse,
            deflate: false,
        },
        Group {
            kind: Kind::WebSocket,
            target: &opts.publish_target,
            count: 1,
            deflate: false,
        },
    ];
    // Over HTTP/2 the subscribers are streams of connections of their
    // own, opened first; the publisher is then the only HTTP/1.1
    // connection.
    let version = if opts.h3 { Version::H3 } else { Version::H2 };
    let mut h2conns: Vec<MuxConn> = match opts.h2 {
        Some(per_conn) => mux::connect_all(
            &mut poll,
            &opts.dial,
            version,
            opts.transport,
            &opts.subscribe_target,
            opts.subscribers,
            per_conn,
        )?,
        None => Vec::new(),
    };
    let per_conn = opts.h2.unwrap_or(1).max(1);
    let groups = match (opts.h2.is_some(), opts.publish) {
        (false, true) => &groups[..],
        (false, false) => &groups[..2],
        (true, true) => &groups[2..],
        (true, false) => &groups[..0],
    };
    let mut conns = connect_all(&mut poll, &opts.dial, groups)?;
    if opts.child {
        report::wait_for_start()?;
    }
    let publisher = opts.subscribers;
    // The publisher's connection, and the subscriber a connection's token
    // stands for.
    let pub_conn = if opts.h2.is_some() { 0 } else { publisher };
    let sub_of = |i: usize| if i == pub_conn { publisher } else { i };
    let mut h2_readers: Vec<wire::EventReader> = (0..if opts.h2.is_some() { opts.subscribers } else { 0 })
        .map(|_| wire::EventReader::new())
        .collect();
    // The publisher reads its own messages back like a WebSocket
    // subscriber (it is one, of a hub topic or a chat room), which also
    // shows an error the server sends it instead of publishing.
    let mut subs: Vec<Sub> = (0..=opts.subscribers)
        .map(|i| {
            if i < first_kind {
                let mut sub = Sub::new(opts.transport, opts.raw);
                sub.tally.verify = opts.deflate.then_some((opts.size, opts.json_payload));
                sub
            } else if i < publisher {
                Sub::new(Kind::EventStream, opts.raw)
            } else {
                let mut sub = Sub::new(Kind::WebSocket, opts.raw);
                sub.acks = (opts.ack && opts.publish).then(Acks::new);
                sub
            }
        })
        .collect();
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut pong = Vec::with_capacity(256);
    let mut text = Vec::with_capacity(opts.size.max(64));
    let mut frame = Vec::with_capacity(opts.size.max(64) + 16);
    let mut hist = report::latency_histogram();
    let mut spread = Spread::new(opts.subscribers);
    let mut own_hist = report::latency_histogram();
    let mut own_echoes = 0u64;
    let mut delivered = 0u64;
    let mut dropped = Vec::new();
    // Bytes the subscribers read (over HTTP/2: their streams' DATA).
    let mut wire_bytes = 0u64;

    let interval_ns = 1e9 / opts.rate;
    let window = Window::start(opts.server_pid)?;
    let start = window.started();
    let clock = Clock {
        start,
        base_ns: sys::monotonic_ns()?,
    };
    let send_end = start + opts.duration;
    let due_at = |k: u64| start + Duration::from_nanos((k as f64 * interval_ns) as u64);
    let mut published = 0u64;
    let mut drain_until = None;
    let mut last_delivery = start;
    let mut events = Events::with_capacity(1024);

    // Bytes that came with a handshake response go first.
    for (i, conn) in conns.iter_mut().enumerate() {
        let leftover = std::mem::take(&mut conn.leftover);
        if !leftover.is_empty() {
            let now = Instant::now();
            let i = sub_of(i);
            let (hist, delivered) = if i == publisher {
                (&mut own_hist, &mut own_echoes)
            } else {
                (&mut hist, &mut delivered)
            };
            consume(
                &leftover,
                &mut subs[i],
                &mut conn.ws,
                conn.deflate.as_deref_mut(),
                &mut pong,
                hist,
                clock,
                now,
                delivered,
            )?;
            if !pong.is_empty() {
                conn.send(&pong)?;
            }
        }
    }

    // Why the server ended the publisher's connection, if it did (a
    // publisher that reads its own events back too slowly is closed as a
    // slow consumer): the run stops there and reports it as a problem, a
    // rate not sustained, rather than failing.
    let mut publisher_lost: Option<String> = None;
    'run: loop {
        let now = Instant::now();
        let room = |subs: &[Sub]| match (opts.window, &subs[publisher].acks) {
            (Some(window), Some(acks)) => acks.in_flight() < window,
            _ => true,
        };
        let mut next_due = due_at(published);
        // Behind the schedule (a full window), publishing still stops at
        // the end.
        while next_due <= now && next_due < send_end && now < send_end && room(&subs) {
            published += 1;
            // Stamped with when it is written: a publisher that is late
            // (by up to the millisecond that epoll's timeout resolution
            // allows) does not count against the server. A stalled server
            // does, since writes do not wait for it.
            let written = if let Some(acks) = &mut subs[publisher].acks {
                write_envelope(&mut text, published, clock.ns(now), opts.size);
                acks.sent(clock.ns(now));
                true
            } else if opts.publish {
                write_message(&mut text, published, clock.ns(now), opts.size, opts.json_payload);
                true
            } else {
                false
            };
            if written {
                spread.published(published, clock.ns(now));
                frame.clear();
                wire::push_frame(&mut frame, OpCode::Text, &text);
                if let Err(e) = conns[pub_conn].send(&frame) {
                    publisher_lost = Some(format!("writing to it: {e}"));
                    break 'run;
                }
            }
            next_due = due_at(published);
        }
        let all_in = || {
            subs[..publisher]
                .iter()
                .all(|s| s.tally.in_order + s.tally.out_of_order >= published)
                && subs[publisher].acks.as_ref().is_none_or(|a| a.count >= published)
        };
        if now >= send_end && drain_until.is_none() {
            drain_until = Some(now + opts.drain);
        }
        let wake = match drain_until {
            Some(until) => {
                if now >= until || all_in() {
                    break;
                }
                until
            }
            // A full window: the next publish waits for an acknowledgement.
            None if !room(&subs) => send_end,
            None => next_due.min(send_end),
        };
        // QUIC's timers (acknowledgements, retransmissions) come first.
        let wake = h2conns
            .iter_mut()
            .filter_map(MuxConn::next_timeout)
            .fold(wake, Instant::min);
        // No spinning for the exact due time: the subscribers' CPU cost is
        // what this mode measures on the load generator's side.
        poll.poll(&mut events, Some(wake.saturating_duration_since(now)))?;
        let now_after = Instant::now();
        for (c, conn) in h2conns.iter_mut().enumerate() {
            conn.on_timers(now_after)
                .map_err(|e| io::Error::new(e.kind(), format!("HTTP/3 connection {c}: {e}")))?;
        }
        for event in events.iter() {
            if let Some(c) = event.token().0.checked_sub(h2::TOKEN_BASE) {
                let now = Instant::now();
                let before = delivered;
                let mut failure = None;
                let mut pongs = Vec::new();
                h2conns[c]
                    .on_readable(&mut rbuf, &mut |s, data| {
                        let i = c * per_conn + s;
                        wire_bytes += data.len() as u64;
                        let consumed = consume(
                            data,
                            &mut subs[i],
                            &mut h2_readers[i],
                            None,
                            &mut pong,
                            &mut hist,
                            clock,
                            now,
                            &mut delivered,
                        );
                        if let Err(e) = consumed {
                            failure.get_or_insert(format!("subscriber {i}: {e}"));
                        }
                        if !pong.is_empty() {
                            pongs.push((s, pong.clone()));
                        }
                    })
                    .map_err(|e| io::Error::new(e.kind(), format!("{version:?} connection {c}: {e}")))?;
                if let Some(why) = failure {
                    return Err(io::Error::other(why));
                }
                for (s, bytes) in pongs {
                    h2conns[c].send(s, &bytes)?;
                }
                if delivered > before {
                    last_delivery = now;
                }
                continue;
            }
            let i = sub_of(event.token().0);
            let conn = &mut conns[event.token().0];
            loop {
                let (len, more) = match conn.read_into(&mut rbuf)? {
                    ReadOutcome::Data { len, more } => (len, more),
                    ReadOutcome::Empty => break,
                    ReadOutcome::Closed => {
                        if i == publisher {
                            publisher_lost = Some("the server closed the connection".to_owned());
                            break 'run;
                        }
                        // Counted as missing events at the end; a closed
                        // socket stays readable, so stop watching it.
                        dropped.push(i);
                        poll.registry().deregister(&mut conn.stream)?;
                        break;
                    }
                };
                let now = Instant::now();
                if i == publisher {
                    let consumed = consume(
                        &rbuf[..len],
                        &mut subs[i],
                        &mut conn.ws,
                        conn.deflate.as_deref_mut(),
                        &mut pong,
                        &mut own_hist,
                        clock,
                        now,
                        &mut own_echoes,
                    );
                    match consumed {
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                            publisher_lost = Some(e.to_string());
                            break 'run;
                        }
                        other => other.map_err(|e| io::Error::new(e.kind(), format!("publisher: {e}")))?,
                    }
                    if !pong.is_empty() {
                        conn.send(&pong)?;
                    }
                } else {
                    let before = delivered;
                    let next_before = subs[i].tally.next;
                    wire_bytes += len as u64;
                    consume(
                        &rbuf[..len],
                        &mut subs[i],
                        &mut conn.ws,
                        conn.deflate.as_deref_mut(),
                        &mut pong,
                        spread.histogram_of(i),
                        clock,
                        now,
                        &mut delivered,
                    )
                    .map_err(|e| io::Error::new(e.kind(), format!("subscriber {i}: {e}")))?;
                    if delivered > before {
                        last_delivery = now;
                        spread.arrived(next_before, subs[i].tally.next, clock.ns(now));
                    }
                    if !pong.is_empty() {
                        conn.send(&pong)?;
                    }
                }
                if !more {
                    break;
                }
            }
            if event.is_writable() && conn.has_pending_output() {
                conn.flush()?;
            }
        }
    }
    let span = window.stop()?;
    // Read while the server still holds its connections.
    let server_peak_rss = opts.server_pid.map(sys::peak_rss_bytes).transpose()?;
    let server_rss_end = opts.server_pid.map(sys::rss_bytes).transpose()?;
    // WebSocket subscribers over HTTP/1.1 were timed by their tenth.
    hist.add(spread.merged()).map_err(io::Error::other)?;
    for conn in &mut h2conns {
        conn.go_away();
    }
    let busy = (last_delivery - start).as_secs_f64();

    let mut problems = Vec::new();
    if let Some(why) = &publisher_lost {
        problems.push(format!(
            "the publisher was cut off after {published} messages: {why}"
        ));
    }
    let mut incomplete = 0usize;
    let mut missing = 0u64;
    let (mut out_of_order, mut garbled, mut bad_ids) = (0u64, 0u64, 0u64);
    if let Some(text) = &subs[publisher].tally.first_garbled {
        problems.push(format!(
            "the publisher got a message that is not one of its own: {text}"
        ));
    }
    for (i, sub) in subs[..publisher].iter().enumerate() {
        let t = &sub.tally;
        out_of_order += t.out_of_order;
        garbled += t.garbled;
        bad_ids += t.bad_ids;
        missing += published.saturating_sub(t.in_order);
        if !t.complete(published) {
            incomplete += 1;
            if problems.len() < 10 {
                problems.push(format!(
                    "subscriber {i}{}: {} of {published} in order, {} out of order, {} unreadable{}, {} bad ids",
                    if dropped.contains(&i) { " (closed by the server)" } else { "" },
                    t.in_order,
                    t.out_of_order,
                    t.garbled,
                    t.first_garbled.as_ref().map_or(String::new(), |g| format!(" (first: {g})")),
                    t.bad_ids
                ));
            }
        }
    }
    let acks = subs[publisher].acks.as_ref();
    if let Some(acks) = acks
        && (acks.count != published || acks.bad > 0)
    {
        problems.push(format!(
            "{} of {published} publishes acknowledged ({} out of order or unexpected)",
            acks.count, acks.bad
        ));
    }
    let transport = match (opts.transport, opts.mixed_sse_target.is_some()) {
        (_, true) => "ws+sse",
        (Kind::WebSocket, false) => "ws",
        (Kind::EventStream, false) => "sse",
    };
    let mut json = serde_json::Map::new();
    json.insert("mode".into(), json!("fanout"));
    json.insert("transport".into(), json!(transport));
    json.insert("h2".into(), json!(opts.h2.is_some() && !opts.h3));
    json.insert("h3".into(), json!(opts.h2.is_some() && opts.h3));
    json.insert("subscribers".into(), json!(opts.subscribers));
    json.insert("size".into(), json!(opts.size));
    json.insert("rate".into(), json!(opts.rate));
    json.insert("published".into(), json!(published));
    json.insert("delivered".into(), json!(delivered));
    json.insert("publisher_echoes".into(), json!(own_echoes));
    json.insert("publisher".into(), json!(opts.publish));
    json.insert("raw".into(), json!(opts.raw));
    json.insert("deflate".into(), json!(opts.deflate));
    json.insert("json_payload".into(), json!(opts.json_payload));
    json.insert(
        "compressed".into(),
        json!(subs[..publisher].iter().map(|s| s.compressed).sum::<u64>()),
    );
    json.insert("wire_bytes".into(), json!(wire_bytes));
    json.extend(span.rates("events", delivered));
    json.extend(per_delivery(wire_bytes, span.server_cpu, delivered));
    json.insert(
        "delivered_per_s_while_busy".into(),
        json!(if busy > 0.0 {
            (delivered as f64 / busy).round()
        } else {
            0.0
        }),
    );
    json.insert("busy_s".into(), json!(report::round3(busy)));
    json.insert("latency_us".into(), report::percentiles_us(&hist));
    json.extend(spread.json());
    json.insert("server_rss_start".into(), json!(server_rss_start));
    json.insert("server_rss_end".into(), json!(server_rss_end));
    json.insert("server_peak_rss".into(), json!(server_peak_rss));
    // Whether the peak is this run's (else it counts from the server's start).
    json.insert("server_peak_rss_of_run".into(), json!(peak_reset));
    if let Some(acks) = acks {
        json.insert("acked".into(), json!(acks.count));
        json.insert("ack_bad".into(), json!(acks.bad));
        let acking = (acks.last_ns.saturating_sub(clock.base_ns)) as f64 / 1e9;
        json.insert(
            "acked_per_s".into(),
            json!(if acking > 0.0 {
                (acks.count as f64 / acking).round()
            } else {
                0.0
            }),
        );
        json.insert("ack_latency_us".into(), report::percentiles_us(&acks.hist));
        json.insert("window".into(), json!(opts.window));
    }
    if opts.child {
        json.insert(
            "hist".into(),
            json!({ "latency_us": report::histogram_counts(&hist) }),
        );
        json.insert("timeline".into(), spread.timeline());
    }
    json.insert("missing".into(), json!(missing));
    json.insert("out_of_order".into(), json!(out_of_order));
    json.insert("unreadable".into(), json!(garbled));
    json.insert("bad_ids".into(), json!(bad_ids));
    json.insert("incomplete_subscribers".into(), json!(incomplete));
    json.insert("closed_subscribers".into(), json!(dropped.len()));
    json.insert("problems".into(), json!(problems.len()));
    Ok(Report {
        human: format!(
            "fanout {} {transport}{} subscribers, {} msg/s x {} B: {published} published, {delivered} delivered \
             ({} missing, {} out of order, {incomplete} subscribers incomplete); {}; latency {}{}{}",
            opts.subscribers,
            match (opts.h2.is_some(), opts.h3) {
                (true, true) => " (h3)",
                (true, false) => " (h2)",
                (false, _) => "",
            },
            opts.rate,
            opts.size,
            missing,
            out_of_order,
            span.rates_human("events", delivered),
            report::percentiles_human(&hist),
            server_peak_rss.map_or(String::new(), |b| format!(
                "; server peak RSS {:.1} MiB",
                b as f64 / (1024.0 * 1024.0)
            )),
            acks.map_or(String::new(), |a| format!(
                "; {} acknowledged, publish to acknowledgement {}",
                a.count,
                report::percentiles_human(&a.hist)
            )),
        ),
        json: json.into(),
        problems,
    })
}

/// Bytes on the wire and server CPU per delivery (JSON fields).
pub fn per_delivery(
    wire_bytes: u64,
    server_cpu: Option<f64>,
    delivered: u64,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let per = |x: f64| (delivered > 0).then(|| x / delivered as f64);
    m.insert(
        "wire_bytes_per_delivery".into(),
        json!(per(wire_bytes as f64).map(|b| (b * 10.0).round() / 10.0)),
    );
    m.insert(
        "server_cpu_ns_per_delivery".into(),
        json!(server_cpu.and_then(|c| per(c * 1e9)).map(f64::round)),
    );
    m
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_padded_messages_are_exact_readable_and_compressible() {
        let mut out = Vec::new();
        for seq in [1, 2, 1000] {
            write_message(&mut out, seq, 77, 1024, true);
            assert_eq!(out.len(), 1024);
            assert_eq!(parse_message(&out, true), Some((seq, 77)));
            assert!(out[10..].starts_with(b"{\"id\":") || out.contains(&b'{'));
            let frame = tether_deflate::shared_frame(OpCode::Text, &out).expect("compressible");
            assert!(frame.len() < out.len() / 2, "{} of {}", frame.len(), out.len());
        }
        // Messages differ with their number.
        let mut other = Vec::new();
        write_message(&mut other, 3, 77, 1024, true);
        assert_ne!(out[12..], other[12..]);
        // Verified whole: one byte off is unreadable.
        let mut tally = Tally {
            verify: Some((1024, true)),
            ..Tally::raw()
        };
        assert!(tally.deliver(&other).is_some() || tally.out_of_order == 1);
        other[500] ^= 1;
        assert_eq!(tally.deliver(&other), None);
        assert_eq!(tally.garbled, 1);
    }

    #[test]
    fn messages_round_trip() {
        let mut out = Vec::new();
        write_message(&mut out, 42, 123_456, 64, false);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"42 123456 ...."));
        assert_eq!(parse_message(&out, false), Some((42, 123_456)));
        write_message(&mut out, 7, 9, 1, false);
        assert_eq!(parse_message(&out, false), Some((7, 9)));
        assert_eq!(parse_message(b"hello", false), None);
    }

    #[test]
    fn tally_sees_gaps_repeats_and_garbage() {
        let msg = |seq| {
            let mut v = Vec::new();
            write_message(&mut v, seq, 1, 16, false);
            v
        };
        let mut t = Tally::new();
        for seq in 1..=3 {
            t.deliver(&msg(seq));
        }
        assert!(t.complete(3));
        assert!(!t.complete(4));

        let mut gap = Tally::new();
        gap.deliver(&msg(1));
        gap.deliver(&msg(3));
        assert!(!gap.complete(3));
        assert_eq!(gap.out_of_order, 1);

        let mut repeat = Tally::new();
        for seq in [1, 2, 2] {
            repeat.deliver(&msg(seq));
        }
        assert!(!repeat.complete(2));

        let mut garbage = Tally::new();
        garbage.deliver(&msg(1));
        garbage.deliver(b"nonsense");
        assert!(!garbage.complete(1));
    }

    #[test]
    fn raw_subscribers_take_no_envelope() {
        let mut text = Vec::new();
        write_message(&mut text, 1, 345, 40, false);
        let event = format!(
            r#"{{"topic":"chat.t","id":"1-1","event":"message","data":"{}"}}"#,
            String::from_utf8(text.clone()).unwrap()
        );
        let mut raw = Tally::raw();
        raw.deliver(event.as_bytes());
        assert_eq!(raw.garbled, 1);
        let mut raw = Tally::raw();
        raw.deliver(&text);
        assert!(raw.complete(1));
        let mut any = Tally::new();
        any.deliver(event.as_bytes());
        assert!(any.complete(1));
    }

    #[test]
    fn event_ids_must_increase() {
        let mut t = Tally::new();
        t.event_id("1");
        t.event_id("2");
        assert_eq!(t.bad_ids, 0);
        t.event_id("2");
        t.event_id("x");
        assert_eq!(t.bad_ids, 2);

        let mut hub = Tally::new();
        for id in ["1718000000000-9", "1718000000000-10", "1718000000001-1"] {
            hub.event_id(id);
        }
        assert_eq!(hub.bad_ids, 0);
        hub.event_id("1718000000000-11");
        hub.event_id("1718000000001-x");
        assert_eq!(hub.bad_ids, 2);
    }

    #[test]
    fn hub_events_in_json_carry_the_message() {
        let mut text = Vec::new();
        write_message(&mut text, 12, 345, 40, false);
        let event = format!(
            r#"{{"topic":"chat.t","id":"1-12","event":"message","data":"{}"}}"#,
            String::from_utf8(text).unwrap()
        );
        assert_eq!(parse_message(event.as_bytes(), false), Some((12, 345)));
        let gap = br#"{"control":"gap","topic":"chat.t","requested":"1-1","first":null,"resume":"0-0"}"#;
        assert_eq!(parse_message(gap, false), None);
        let mut t = Tally::new();
        t.deliver(gap);
        assert_eq!(
            t.first_garbled.as_deref(),
            Some(std::str::from_utf8(gap).unwrap())
        );
    }

    #[test]
    fn envelopes_carry_the_message_as_data() {
        let mut out = Vec::new();
        write_envelope(&mut out, 9, 1234, 64);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let data = value["data"].as_str().unwrap();
        assert_eq!(data.len(), 64);
        assert_eq!(parse_message(data.as_bytes(), true), Some((9, 1234)));
        assert_eq!(value.as_object().unwrap().len(), 1);
    }

    #[test]
    fn acks_are_timed_in_order_and_their_ids_checked() {
        let mut acks = Acks::new();
        acks.sent(1_000);
        acks.sent(2_000);
        assert_eq!(acks.in_flight(), 2);
        assert!(!acks.take(
            br#"{"topic":"t","id":"5-1","event":"message","data":"1 1 ."}"#,
            9_000
        ));
        assert!(!acks.take(br#"{"control":"error","error":"no"}"#, 9_000));
        assert!(acks.take(br#"{"control":"published","id":"5-1"}"#, 11_000));
        assert!(acks.take(br#"{"control":"published","id":"5-2"}"#, 32_000));
        assert_eq!((acks.count, acks.bad, acks.in_flight()), (2, 0, 0));
        assert_eq!(acks.hist.len(), 2);
        // 10 µs and 30 µs.
        assert!(
            acks.hist.min() >= 9_990 && acks.hist.max() <= 30_100,
            "{:?}",
            acks.hist
        );
        assert_eq!(acks.last_ns, 32_000);
        // One with no publish waiting, one going back, one unreadable.
        assert!(acks.take(br#"{"control":"published","id":"5-3"}"#, 40_000));
        acks.sent(50_000);
        acks.sent(50_000);
        assert!(acks.take(br#"{"control":"published","id":"5-2"}"#, 60_000));
        assert!(acks.take(br#"{"control":"published","id":"x"}"#, 60_000));
        assert_eq!((acks.count, acks.bad), (5, 3));
    }

    #[test]
    fn the_publisher_takes_acks_apart_from_its_own_events() {
        let mut wire = Vec::new();
        let mut push = |text: &[u8]| {
            tether_frame::encode_frame(
                &mut wire,
                tether_frame::FrameHeader::new(true, OpCode::Text, 0),
                text,
            )
            .unwrap();
        };
        push(br#"{"control":"published","id":"7-1"}"#);
        push(br#"{"topic":"chat.t","id":"7-1","event":"message","data":"1 5 ...."}"#);
        push(br#"{"control":"published","id":"7-2"}"#);
        for step in [1, 9, wire.len()] {
            let mut sub = Sub::new(Kind::WebSocket, false);
            let mut acks = Acks::new();
            acks.sent(0);
            acks.sent(0);
            sub.acks = Some(acks);
            assert_eq!(feed_in_steps(&mut sub, &wire, step), 1, "step {step}");
            assert!(sub.tally.complete(1));
            let acks = sub.acks.unwrap();
            assert_eq!((acks.count, acks.bad, acks.in_flight()), (2, 0, 0));
        }
        // Without acks asked for, an acknowledgement is unreadable.
        let mut sub = Sub::new(Kind::WebSocket, false);
        assert_eq!(feed_in_steps(&mut sub, &wire, wire.len()), 3);
        assert_eq!(sub.tally.garbled, 2);
    }

    fn ws_stream(seqs: &[u64]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut text = Vec::new();
        for &seq in seqs {
            write_message(&mut text, seq, 5, 300, false);
            tether_frame::encode_frame(
                &mut wire,
                tether_frame::FrameHeader::new(true, OpCode::Text, 0),
                &text,
            )
            .unwrap();
        }
        wire
    }

    fn feed_in_steps(sub: &mut Sub, bytes: &[u8], step: usize) -> u64 {
        feed_deflated(sub, bytes, step, None).unwrap()
    }

    fn feed_deflated(
        sub: &mut Sub,
        bytes: &[u8],
        step: usize,
        mut deflate: Option<tether_deflate::Deflate>,
    ) -> io::Result<u64> {
        let mut ws = wire::EventReader::new();
        let mut pong = Vec::new();
        let mut hist = report::latency_histogram();
        let mut delivered = 0;
        let start = Instant::now();
        let clock = Clock { start, base_ns: 0 };
        for piece in bytes.chunks(step) {
            consume(
                piece,
                sub,
                &mut ws,
                deflate.as_mut(),
                &mut pong,
                &mut hist,
                clock,
                start,
                &mut delivered,
            )?;
        }
        Ok(delivered)
    }

    #[test]
    fn compressed_messages_are_inflated_and_checked_whole() {
        let mut wire = Vec::new();
        let mut text = Vec::new();
        for seq in 1..=4 {
            write_message(&mut text, seq, 5, 1024, true);
            wire.extend(tether_deflate::shared_frame(OpCode::Text, &text).expect("compressible"));
        }
        let params = tether_deflate::Params {
            server_no_context_takeover: true,
            ..tether_deflate::Params::default()
        };
        let new_sub = || {
            let mut sub = Sub::new(Kind::WebSocket, true);
            sub.tally.verify = Some((1024, true));
            sub
        };
        for step in [1, 100, 333, wire.len()] {
            let mut sub = new_sub();
            let deflate = tether_deflate::ClientOffer::new().extension(params);
            assert_eq!(feed_deflated(&mut sub, &wire, step, Some(deflate)).unwrap(), 4);
            assert!(sub.tally.complete(4), "step {step}: {:?}", sub.tally);
            assert_eq!(sub.compressed, 4);
        }
        // Without permessage-deflate, a compressed message is an error.
        assert!(feed_deflated(&mut new_sub(), &wire, wire.len(), None).is_err());
    }

    #[test]
    fn websocket_subscriber_reads_messages_split_anywhere() {
        let wire = ws_stream(&[1, 2, 3, 4]);
        for step in [1, 7, 150, 302, 1000, wire.len()] {
            let mut sub = Sub::new(Kind::WebSocket, false);
            assert_eq!(feed_in_steps(&mut sub, &wire, step), 4, "step {step}");
            assert!(sub.tally.complete(4), "step {step}: {:?}", sub.tally);
        }
    }

    #[test]
    fn event_stream_subscriber_checks_order_and_ids() {
        let stream =
            b": hi\n\nid: 1\nevent: message\ndata: 1 5 ..\n\nid: 2\nevent: message\ndata: 2 6 ..\n\n";
        for step in [1, 5, stream.len()] {
            let mut sub = Sub::new(Kind::EventStream, false);
            assert_eq!(feed_in_steps(&mut sub, stream, step), 2);
            assert!(sub.tally.complete(2), "{:?}", sub.tally);
        }
        let skipped = b"id: 1\ndata: 1 5\n\nid: 3\ndata: 3 6\n\n";
        let mut sub = Sub::new(Kind::EventStream, false);
        feed_in_steps(&mut sub, skipped, 4);
        assert!(!sub.tally.complete(2));
    }
}
