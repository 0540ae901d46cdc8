//! Echo latency at a fixed offered rate (open loop).
//!
//! Messages are due at fixed times (`rate` per second in all, round-robin
//! over the connections) whether or not earlier echoes have come back, and
//! each round trip is timed from when its message was due, not from when it
//! was written: a stalled server then shows as the latency its users would
//! see instead of slowing the load down ("coordinated omission"). The
//! round trips timed from the actual write are reported beside them: where
//! the two differ, messages left late, which on a busy machine can be the
//! load generator's own fault (descheduled while messages fell due).

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use serde_json::json;
use tether_frame::OpCode;

use super::conn::{Dial, Group, Kind, ReadOutcome, connect_all};
use super::echoes::payload;
use super::report::{self, Report, Window};
use super::wire::{self, Event};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where and how to connect.
    pub dial: Dial,
    /// The WebSocket request target.
    pub target: String,
    /// Connections.
    pub connections: usize,
    /// Message payload size in bytes.
    pub size: usize,
    /// Binary messages (else text).
    pub binary: bool,
    /// Messages per second, over all connections.
    pub rate: f64,
    /// Round trips of messages due before this are not counted.
    pub warmup: Duration,
    /// How long to send after the warm-up.
    pub duration: Duration,
    /// How long to wait for the last echoes after sending stops.
    pub drain: Duration,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// Part of a multi-process run: wait at the start gate, and put the
    /// latency histograms' counts in the JSON line.
    pub child: bool,
}

/// Runs the latency test.
pub fn run(opts: &Options) -> io::Result<Report> {
    if opts.rate.is_nan() || opts.rate <= 0.0 {
        return Err(io::Error::other("--rate must be positive"));
    }
    let mut poll = Poll::new()?;
    let mut conns = connect_all(
        &mut poll,
        &opts.dial,
        &[Group {
            kind: Kind::WebSocket,
            target: &opts.target,
            count: opts.connections,
            deflate: false,
        }],
    )?;
    if opts.child {
        report::wait_for_start()?;
    }
    let n = conns.len();
    let body = payload(opts.size);
    let frame = wire::frame(if opts.binary { OpCode::Binary } else { OpCode::Text }, &body);
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut pong = Vec::with_capacity(256);
    // When each message in flight on a connection was due and when it was
    // written, oldest first (a connection's echoes come back in order).
    let mut due: Vec<VecDeque<(Instant, Instant)>> = (0..n).map(|_| VecDeque::with_capacity(1024)).collect();
    let mut hist = report::latency_histogram();
    let mut from_write = report::latency_histogram();
    let mut problems = Vec::new();

    let interval_ns = 1e9 / opts.rate;
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let send_end = measure_from + opts.duration;
    let due_at = |k: u64| start + Duration::from_nanos((k as f64 * interval_ns) as u64);
    let mut next_k = 0u64;
    let mut window: Option<Window> = None;
    let mut span = None;
    let mut measured = 0u64;
    let mut sent_measured = 0u64;
    let mut drain_until = None;
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        if window.is_none() && now >= measure_from {
            window = Some(Window::start(opts.server_pid)?);
        }
        let mut next_due = due_at(next_k);
        while next_due <= now && next_due < send_end {
            let c = (next_k % n as u64) as usize;
            due[c].push_back((next_due, now));
            conns[c].send(&frame)?;
            if next_due >= measure_from {
                sent_measured += 1;
            }
            next_k += 1;
            next_due = due_at(next_k);
        }
        if now >= send_end && span.is_none() {
            span = Some(window.expect("the window starts before sending ends").stop()?);
            drain_until = Some(now + opts.drain);
        }
        let wake = match drain_until {
            Some(until) => {
                if now >= until || due.iter().all(VecDeque::is_empty) {
                    break;
                }
                until
            }
            None if window.is_none() => next_due.min(measure_from),
            None => next_due.min(send_end),
        };
        // epoll waits in whole milliseconds: sleep through all but the last
        // one, then spin, so that messages leave when they are due.
        let left = wake.saturating_duration_since(now);
        let timeout = if left >= Duration::from_millis(2) {
            Duration::from_millis(left.as_millis() as u64 - 1)
        } else {
            Duration::ZERO
        };
        poll.poll(&mut events, Some(timeout))?;
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            let queue = &mut due[i];
            loop {
                let (len, more) = match conn.read_into(&mut rbuf)? {
                    ReadOutcome::Data { len, more } => (len, more),
                    ReadOutcome::Empty => break,
                    ReadOutcome::Closed => return Err(io::Error::other(format!("connection {i}: closed"))),
                };
                let mut bad = None;
                pong.clear();
                conn.ws
                    .feed(&rbuf[..len], &mut |event| match event {
                        Event::Data { .. } | Event::Pong => {}
                        Event::End { len, .. } => {
                            let arrived = Instant::now();
                            match queue.pop_front() {
                                Some((was_due, written)) if len == body.len() as u64 => {
                                    if was_due >= measure_from && was_due < send_end {
                                        report::record(&mut hist, arrived - was_due);
                                        report::record(&mut from_write, arrived - written);
                                        measured += 1;
                                    }
                                }
                                Some(_) => bad = Some(format!("echo of {len} bytes, sent {}", body.len())),
                                None => bad = Some("an echo of nothing sent".into()),
                            }
                        }
                        Event::Ping(payload) => wire::push_frame(&mut pong, OpCode::Pong, payload),
                        Event::Close(code) => bad = Some(format!("close frame from the server: {code:?}")),
                    })
                    .map_err(|e| io::Error::other(format!("connection {i}: {e}")))?;
                if let Some(why) = bad {
                    return Err(io::Error::other(format!("connection {i}: {why}")));
                }
                if !pong.is_empty() {
                    conn.send(&pong)?;
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
    let span = span.expect("sending ended");
    let missing: usize = due.iter().map(VecDeque::len).sum();
    if missing > 0 {
        problems.push(format!(
            "{missing} echoes missing {:?} after sending stopped",
            opts.drain
        ));
    }
    let mut json = serde_json::Map::new();
    json.insert("mode".into(), json!("latency"));
    json.insert("connections".into(), json!(opts.connections));
    json.insert("size".into(), json!(opts.size));
    json.insert("offered_rate".into(), json!(opts.rate));
    json.insert("sent".into(), json!(sent_measured));
    json.insert("messages".into(), json!(measured));
    json.extend(span.rates("msg", measured));
    json.insert("latency_us".into(), report::percentiles_us(&hist));
    json.insert(
        "latency_from_write_us".into(),
        report::percentiles_us(&from_write),
    );
    if opts.child {
        json.insert(
            "hist".into(),
            json!({
                "latency_us": report::histogram_counts(&hist),
                "latency_from_write_us": report::histogram_counts(&from_write),
            }),
        );
    }
    json.insert("missing".into(), json!(missing));
    json.insert("problems".into(), json!(problems.len()));
    Ok(Report {
        human: format!(
            "latency {} conns x {} B at {} msg/s: {measured} of {sent_measured} echoed; from when due: {}; \
             from the write: {}; {}",
            opts.connections,
            opts.size,
            opts.rate,
            report::percentiles_human(&hist),
            report::percentiles_human(&from_write),
            span.rates_human("msg", measured),
        ),
        json: json.into(),
        problems,
    })
}
