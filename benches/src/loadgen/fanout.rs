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

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use serde_json::json;
use tether_frame::OpCode;

use super::conn::{Dial, Group, Kind, ReadOutcome, connect_all};
use super::mux::{self, MuxConn, Version};
use super::report::{self, Report, Window};
use super::spread::Spread;
use super::wire;
use super::{h2, sys};

mod subscriber;

pub(crate) use super::messages::Clock;
pub use super::messages::{Acks, Tally, write_envelope, write_message};
pub(crate) use subscriber::{Sub, consume};

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
    let server_split_start = opts.server_pid.map(sys::rss_split).transpose()?;
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
        // the end. A process that only counts (another one publishes)
        // counts every message due before the end, also when it was not
        // scheduled until after it: on a machine with more processes than
        // cores, one that slept through the end counted fewer than were
        // published and stopped reading its subscribers early.
        let counting_only = !opts.publish && subs[publisher].acks.is_none();
        while is_due(next_due, now, send_end, counting_only) && room(&subs) {
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
    let server_split_end = opts.server_pid.map(sys::rss_split).transpose()?;
    if opts.child {
        // The parent looks at the servers now, before the connections
        // close (closing a million costs the servers more than their
        // deliveries did).
        report::hold_until_released()?;
    }
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
    // The RSS in two parts: file-backed (code, constant) and anonymous
    // (what the subscribers and their queues take), at both ends.
    json.insert(
        "server_rss_file_start".into(),
        json!(server_split_start.map(|s| s.file)),
    );
    json.insert(
        "server_rss_anon_start".into(),
        json!(server_split_start.map(|s| s.anon)),
    );
    json.insert(
        "server_rss_file_end".into(),
        json!(server_split_end.map(|s| s.file)),
    );
    json.insert(
        "server_rss_anon_end".into(),
        json!(server_split_end.map(|s| s.anon)),
    );
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
             ({} missing, {} out of order, {incomplete} subscribers incomplete); {}; latency {}{}{}{}",
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
            server_split_end.map_or(String::new(), |s| format!(
                " (at the end {:.1} MiB file-backed, {:.1} MiB anonymous)",
                s.file as f64 / (1024.0 * 1024.0),
                s.anon as f64 / (1024.0 * 1024.0)
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

/// Whether the message due at `due` is published (or, in a process that
/// only counts, counted) now: its time has come and is before the end;
/// a publisher that wakes after the end publishes nothing more, a process
/// that only counts still counts what was due before it.
fn is_due(due: Instant, now: Instant, send_end: Instant, counting_only: bool) -> bool {
    due <= now && due < send_end && (now < send_end || counting_only)
}

#[cfg(test)]
mod tests;
