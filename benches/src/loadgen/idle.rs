//! Idle connections: open N WebSockets, hold them (answering pings), and
//! measure how much the server's resident memory grew per connection.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use serde_json::json;
use tether_frame::OpCode;

use super::conn::{Conn, Dial, Group, Kind, ReadOutcome, connect_all};
use super::report::{Report, round3};
use super::topics::{Texts, subscribe_all};
use super::wire::{self, Event};
use super::{h3, sys};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where and how to connect.
    pub dial: Dial,
    /// The WebSocket request target.
    pub target: String,
    /// Connections to hold.
    pub connections: usize,
    /// How long to wait once all are open before reading the server's RSS.
    pub settle: Duration,
    /// How long to hold them after that; all must still be open at the end.
    pub hold: Duration,
    /// The server's pid, for its RSS.
    pub server_pid: Option<u32>,
    /// HTTP/3: QUIC connections (over the https:// address's UDP port)
    /// that open no request stream, instead of WebSockets.
    pub h3: bool,
    /// Topics each WebSocket (a multiplexed one, `/ws`) subscribes, each
    /// answered before the settle starts; empty: none.
    pub subscribe: Vec<String>,
}

/// Runs the idle test.
pub fn run(opts: &Options) -> io::Result<Report> {
    if opts.h3 {
        if !opts.subscribe.is_empty() {
            return Err(io::Error::other(
                "a QUIC connection without a stream subscribes nothing",
            ));
        }
        return run_h3(opts);
    }
    let mut poll = Poll::new()?;
    // The warm-up connection, while it is held.
    let mut held = None;
    if opts.server_pid.is_some() {
        // One WebSocket opened and closed before the baseline: the server
        // then has the code that accepts and serves one paged in, which
        // is memory once per process, not per connection (about 50 B per
        // connection of a 10 000 run otherwise).
        let mut warm_poll = Poll::new()?;
        let warm = connect_all(
            &mut warm_poll,
            &opts.dial,
            &[Group {
                kind: Kind::WebSocket,
                target: &opts.target,
                count: 1,
                deflate: false,
            }],
        )?;
        if opts.subscribe.is_empty() {
            drop(warm);
        } else {
            // It subscribes the topics and stays open: what the server
            // keeps once per topic (its replica, its name) is then there
            // before the baseline, and is not counted per subscription.
            let mut warm = warm;
            subscribe(&mut warm_poll, &mut warm, opts)?;
            held = Some((warm_poll, warm));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_before = opts.server_pid.map(sys::rss_bytes).transpose()?;
    let own_before = sys::rss_bytes(std::process::id())?;
    let started = Instant::now();
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
    let connect_s = started.elapsed().as_secs_f64();
    subscribe(&mut poll, &mut conns, opts)?;
    // For a script that reads the server while they are held: every
    // connection is open (and every subscribe answered) from here on.
    eprintln!(
        "idle: {} connections open, {} subscriptions each: holding",
        conns.len(),
        opts.subscribe.len()
    );
    let mut state = Idle {
        rbuf: vec![0u8; 64 * 1024],
        pong: Vec::with_capacity(256),
        closed: vec![false; conns.len()],
        pings: 0,
        messages: 0,
        events: Events::with_capacity(1024),
    };
    // Anything that arrived after a handshake completed was not read yet.
    for (i, conn) in conns.iter_mut().enumerate() {
        let leftover = std::mem::take(&mut conn.leftover);
        state.take(conn, i, &leftover)?;
        state.read(&mut poll, conn, i)?;
    }
    state.run_for(&mut poll, &mut conns, opts.settle)?;
    let rss_after = opts.server_pid.map(sys::rss_bytes).transpose()?;
    let own_after = sys::rss_bytes(std::process::id())?;
    state.run_for(&mut poll, &mut conns, opts.hold)?;

    let closed = state.closed.iter().filter(|&&c| c).count();
    drop(held);
    Ok(finish(Measured {
        connections: conns.len(),
        connect_s,
        rss_before,
        rss_after,
        own_before,
        own_after,
        pings: Some(state.pings),
        closed,
        what: "conns",
        subscriptions: opts.subscribe.len(),
    }))
}

/// Subscribes each of `conns` to the topics of `opts` (none when it
/// has none), each answered; reads the bytes that came with the
/// handshakes too.
fn subscribe(poll: &mut Poll, conns: &mut [Conn], opts: &Options) -> io::Result<()> {
    if opts.subscribe.is_empty() {
        return Ok(());
    }
    let count = |_| opts.subscribe.len();
    let deadline = Instant::now() + opts.dial.timeout;
    let mut texts = Texts::new(conns.len());
    subscribe_all(poll, conns, &mut texts, &opts.subscribe, &count, deadline)
}

/// Idle QUIC connections (no request stream) instead of WebSockets:
/// the same measure, the same report.
fn run_h3(opts: &Options) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    if opts.server_pid.is_some() {
        // As over TCP: the server's first connection's allocations (its
        // QUIC endpoint's included) are not counted against the others.
        let mut warm_poll = Poll::new()?;
        drop(h3::connect_idle(&mut warm_poll, &opts.dial, 0, 1)?);
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_before = opts.server_pid.map(sys::rss_bytes).transpose()?;
    let own_before = sys::rss_bytes(std::process::id())?;
    let started = Instant::now();
    let mut conns = h3::connect_idle(&mut poll, &opts.dial, 0, opts.connections)?;
    let connect_s = started.elapsed().as_secs_f64();
    h3::hold(&mut poll, &mut conns, 0, opts.settle)?;
    let rss_after = opts.server_pid.map(sys::rss_bytes).transpose()?;
    let own_after = sys::rss_bytes(std::process::id())?;
    h3::hold(&mut poll, &mut conns, 0, opts.hold)?;
    for conn in &mut conns {
        conn.go_away();
    }
    Ok(finish(Measured {
        connections: conns.len(),
        connect_s,
        rss_before,
        rss_after,
        own_before,
        own_after,
        pings: None,
        // A connection that ended fails `hold`.
        closed: 0,
        what: "QUIC conns",
        subscriptions: 0,
    }))
}

/// What an idle run measured.
struct Measured {
    connections: usize,
    connect_s: f64,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    own_before: u64,
    own_after: u64,
    /// WebSocket pings answered (`None` over QUIC).
    pings: Option<u64>,
    closed: usize,
    what: &'static str,
    /// Subscriptions each connection holds.
    subscriptions: usize,
}

fn finish(m: Measured) -> Report {
    let Measured {
        connections,
        connect_s,
        rss_before,
        rss_after,
        own_before,
        own_after,
        pings,
        closed,
        what,
        subscriptions,
    } = m;
    let n = connections.max(1) as f64;
    let mut problems = Vec::new();
    if closed > 0 {
        problems.push(format!(
            "{closed} of {} connections closed by the server",
            connections
        ));
    }
    let per_conn = match (rss_before, rss_after) {
        (Some(before), Some(after)) => Some((after as f64 - before as f64) / n),
        _ => None,
    };
    let own_per_conn = (own_after as f64 - own_before as f64) / n;
    let mut json = serde_json::Map::new();
    json.insert("mode".into(), json!("idle"));
    json.insert("connections".into(), json!(connections));
    json.insert("connect_s".into(), json!(round3(connect_s)));
    json.insert("connects_per_s".into(), json!((n / connect_s.max(1e-9)).round()));
    json.insert("server_rss_before".into(), json!(rss_before));
    json.insert("server_rss_after".into(), json!(rss_after));
    json.insert("rss_per_conn".into(), json!(per_conn.map(|b| b.round())));
    json.insert("loadgen_rss_per_conn".into(), json!(own_per_conn.round()));
    json.insert("subscriptions_per_conn".into(), json!(subscriptions));
    json.insert("pings".into(), json!(pings));
    json.insert("closed".into(), json!(closed));
    json.insert("problems".into(), json!(problems.len()));
    let rss = match (rss_before, rss_after, per_conn) {
        (Some(b), Some(a), Some(p)) => format!(
            "server RSS {:.1} -> {:.1} MiB, {p:.0} B per connection",
            b as f64 / 1048576.0,
            a as f64 / 1048576.0
        ),
        _ => "server RSS unknown (no --pid)".into(),
    };
    json.insert("h3".into(), json!(pings.is_none()));
    let pings = pings.map_or(String::new(), |p| format!("; {p} pings answered"));
    let following = match subscriptions {
        0 => String::new(),
        k => format!(" following {k} topics each"),
    };
    Report {
        human: format!(
            "idle {connections} {what}{following} (opened in {connect_s:.2} s): {rss}{pings}, {closed} closed"
        ),
        json: json.into(),
        problems,
    }
}

struct Idle {
    rbuf: Vec<u8>,
    pong: Vec<u8>,
    closed: Vec<bool>,
    pings: u64,
    messages: u64,
    events: Events,
}

impl Idle {
    fn run_for(&mut self, poll: &mut Poll, conns: &mut [Conn], period: Duration) -> io::Result<()> {
        let until = Instant::now() + period;
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            poll.poll(&mut self.events, Some(until - now))?;
            let ready: Vec<(usize, bool)> = self
                .events
                .iter()
                .map(|e| (e.token().0, e.is_writable()))
                .collect();
            for (i, writable) in ready {
                if self.closed[i] {
                    continue;
                }
                self.read(poll, &mut conns[i], i)?;
                if writable && conns[i].has_pending_output() {
                    conns[i].flush()?;
                }
            }
        }
    }

    fn read(&mut self, poll: &mut Poll, conn: &mut Conn, i: usize) -> io::Result<()> {
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let result = self.read_with(poll, conn, i, &mut rbuf);
        self.rbuf = rbuf;
        result
    }

    fn read_with(&mut self, poll: &mut Poll, conn: &mut Conn, i: usize, rbuf: &mut [u8]) -> io::Result<()> {
        loop {
            match conn.read_into(rbuf) {
                Ok(ReadOutcome::Data { len, more }) => {
                    self.take(conn, i, &rbuf[..len])?;
                    if !more {
                        return Ok(());
                    }
                }
                Ok(ReadOutcome::Empty) => return Ok(()),
                Ok(ReadOutcome::Closed) | Err(_) => {
                    self.closed[i] = true;
                    poll.registry().deregister(&mut conn.stream)?;
                    return Ok(());
                }
            }
        }
    }

    fn take(&mut self, conn: &mut Conn, i: usize, bytes: &[u8]) -> io::Result<()> {
        self.pong.clear();
        let (pong, pings, messages) = (&mut self.pong, &mut self.pings, &mut self.messages);
        let mut closing = false;
        conn.ws
            .feed(bytes, &mut |event| match event {
                Event::Ping(payload) => {
                    *pings += 1;
                    wire::push_frame(pong, OpCode::Pong, payload);
                }
                Event::End { .. } => *messages += 1,
                Event::Close(_) => closing = true,
                Event::Data { .. } | Event::Pong => {}
            })
            .map_err(|e| io::Error::other(format!("connection {i}: {e}")))?;
        if !self.pong.is_empty() {
            conn.send(&self.pong)?;
        }
        if closing {
            self.closed[i] = true;
        }
        Ok(())
    }
}
