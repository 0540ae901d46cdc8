//! Replay: how long a client that resumes from the start of a topic's
//! backlog takes to get all of it. Optionally publishes the events first:
//! one WebSocket publisher sends `events` numbered messages (as in
//! [`fanout`](super::fanout)) as the hub's JSON envelopes, at most
//! `window` unacknowledged at once, and waits for every acknowledgement.
//! Then one reader (an event stream, or a WebSocket of the hub's JSON
//! events) asks for the topic with `lastEventId=0-0` ("before the first
//! event") and reads until it has `events` of them, each checked in order
//! (message 1 first; over SSE, ids increasing). Timed from before the TCP
//! connect to the last event read, and to the first.
//!
//! Publishing alone (`replay: false`) fills a topic, or a server's data
//! directory, for a later run; replaying alone reads a topic filled before
//! (say, before the server restarted).

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use serde_json::json;
use tether_frame::OpCode;

use super::conn::{Conn, Dial, Group, Kind, ReadOutcome, connect_all};
use super::fanout::{Acks, Clock, Sub, consume, write_envelope};
use super::report::{self, Report, round3};
use super::wire;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where and how to connect.
    pub dial: Dial,
    /// The topic's path (`/topics/NAME`): the publisher opens
    /// `PATH/ws?envelope=1`, the reader `PATH/events` or `PATH/ws`.
    pub topic: String,
    /// How the reader connects.
    pub transport: Kind,
    /// Events to publish, and to read back.
    pub events: u64,
    /// Publish them first.
    pub publish: bool,
    /// Read them back.
    pub replay: bool,
    /// Message size in bytes.
    pub size: usize,
    /// Most publishes unacknowledged at once.
    pub window: usize,
    /// The longest publishing, and reading, may take each.
    pub timeout: Duration,
}

/// What publishing took.
#[derive(Debug, Default)]
struct Published {
    secs: f64,
    acked: u64,
}

/// What reading back took.
#[derive(Debug, Default)]
struct Replayed {
    /// From before the connect to the last event.
    secs: f64,
    /// From before the connect to the first event.
    first_secs: Option<f64>,
    read: u64,
    bytes: u64,
}

/// Runs the replay test.
pub fn run(opts: &Options) -> io::Result<Report> {
    if opts.events == 0 {
        return Err(io::Error::other("--events must be at least 1"));
    }
    let mut problems = Vec::new();
    let mut json = serde_json::Map::new();
    json.insert("mode".into(), json!("replay"));
    json.insert("events".into(), json!(opts.events));
    json.insert("size".into(), json!(opts.size));
    let mut human = Vec::new();
    if opts.publish {
        let p = publish(opts, &mut problems)?;
        json.insert("publish_s".into(), json!(round3(p.secs)));
        json.insert("acked".into(), json!(p.acked));
        json.insert("published_per_s".into(), json!(per_second(p.acked, p.secs)));
        human.push(format!(
            "{} of {} published and acknowledged in {:.3} s ({:.0}/s)",
            p.acked,
            opts.events,
            p.secs,
            per_second(p.acked, p.secs)
        ));
    }
    if opts.replay && problems.is_empty() {
        let r = replay(opts, &mut problems)?;
        let transport = match opts.transport {
            Kind::WebSocket => "ws",
            Kind::EventStream => "sse",
        };
        json.insert("transport".into(), json!(transport));
        json.insert("replayed".into(), json!(r.read));
        json.insert("replay_ms".into(), json!(round3(r.secs * 1e3)));
        json.insert(
            "first_event_ms".into(),
            json!(r.first_secs.map(|s| round3(s * 1e3))),
        );
        json.insert("replayed_per_s".into(), json!(per_second(r.read, r.secs)));
        json.insert("replay_bytes".into(), json!(r.bytes));
        human.push(format!(
            "{} of {} replayed over {transport} in {:.1} ms ({:.0}/s, {} bytes; first after {})",
            r.read,
            opts.events,
            r.secs * 1e3,
            per_second(r.read, r.secs),
            r.bytes,
            r.first_secs.map_or("-".into(), |s| format!("{:.1} ms", s * 1e3)),
        ));
    }
    json.insert("problems".into(), json!(problems.len()));
    Ok(Report {
        human: format!("replay: {}", human.join("; ")),
        json: json.into(),
        problems,
    })
}

fn per_second(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (count as f64 / secs).round()
    } else {
        0.0
    }
}

/// The target `base` with `param` added to its query.
fn with_param(base: &str, param: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{param}")
}

/// Publishes the events and waits for every acknowledgement.
fn publish(opts: &Options, problems: &mut Vec<String>) -> io::Result<Published> {
    let mut poll = Poll::new()?;
    let target = with_param(&format!("{}/ws", opts.topic), "envelope=1");
    let mut conns = connect_all(
        &mut poll,
        &opts.dial,
        &[Group {
            kind: Kind::WebSocket,
            target: &target,
            count: 1,
            deflate: false,
        }],
    )?;
    let Some(conn) = conns.first_mut() else {
        return Err(io::Error::other("no publisher connection"));
    };
    let clock = Clock::start()?;
    let deadline = clock.started() + opts.timeout;
    let mut sub = Sub::new(Kind::WebSocket, false);
    sub.acks = Some(Acks::new());
    let mut reader = Reader::new();
    let leftover = std::mem::take(&mut conn.leftover);
    reader.take(&leftover, &mut sub, &mut conn.ws, clock)?;
    reader.answer(conn)?;
    let mut sent = 0u64;
    let mut text = Vec::with_capacity(opts.size + 16);
    let mut frame = Vec::with_capacity(opts.size + 32);
    let mut events = Events::with_capacity(64);
    loop {
        let acks = sub
            .acks
            .as_mut()
            .ok_or_else(|| io::Error::other("no acknowledgements"))?;
        while sent < opts.events && acks.in_flight() < opts.window.max(1) {
            sent += 1;
            let ns = clock.ns(Instant::now());
            write_envelope(&mut text, sent, ns, opts.size);
            frame.clear();
            wire::push_frame(&mut frame, OpCode::Text, &text);
            acks.sent(ns);
            conn.send(&frame)?;
        }
        if acks.count >= opts.events || sub.tally.garbled > 0 {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        poll.poll(&mut events, Some(deadline - now))?;
        for event in events.iter() {
            if event.is_writable() && conn.has_pending_output() {
                conn.flush()?;
            }
        }
        if reader.drain(conn, &mut sub, clock)? {
            problems.push("the publisher's connection was closed".into());
            break;
        }
        reader.answer(conn)?;
    }
    let secs = clock.started().elapsed().as_secs_f64();
    let acks = sub
        .acks
        .as_ref()
        .ok_or_else(|| io::Error::other("no acknowledgements"))?;
    if let Some(text) = &sub.tally.first_garbled {
        problems.push(format!(
            "the publisher got a message that is not one of its own: {text}"
        ));
    }
    if acks.count != opts.events || acks.bad > 0 {
        problems.push(format!(
            "{} of {} publishes acknowledged within {:?} ({} out of order or unexpected)",
            acks.count, opts.events, opts.timeout, acks.bad
        ));
    }
    Ok(Published {
        secs,
        acked: acks.count,
    })
}

/// Reads the topic back from its start.
fn replay(opts: &Options, problems: &mut Vec<String>) -> io::Result<Replayed> {
    let mut poll = Poll::new()?;
    let path = match opts.transport {
        Kind::EventStream => format!("{}/events", opts.topic),
        Kind::WebSocket => format!("{}/ws", opts.topic),
    };
    let target = with_param(&path, "lastEventId=0-0");
    let clock = Clock::start()?;
    let start = clock.started();
    let deadline = start + opts.timeout;
    let mut conns = connect_all(
        &mut poll,
        &opts.dial,
        &[Group {
            kind: opts.transport,
            target: &target,
            count: 1,
            deflate: false,
        }],
    )?;
    let Some(conn) = conns.first_mut() else {
        return Err(io::Error::other("no reader connection"));
    };
    let mut sub = Sub::new(opts.transport, false);
    let mut reader = Reader::new();
    let mut out = Replayed::default();
    let leftover = std::mem::take(&mut conn.leftover);
    out.bytes += leftover.len() as u64;
    reader.take(&leftover, &mut sub, &mut conn.ws, clock)?;
    reader.answer(conn)?;
    let mut events = Events::with_capacity(64);
    let mut closed = false;
    loop {
        let seen = sub.tally.in_order + sub.tally.out_of_order + sub.tally.garbled;
        if seen > 0 && out.first_secs.is_none() {
            out.first_secs = Some(start.elapsed().as_secs_f64());
        }
        if seen >= opts.events || closed {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        poll.poll(&mut events, Some(deadline - now))?;
        let before = reader.bytes;
        closed = reader.drain(conn, &mut sub, clock)?;
        out.bytes += reader.bytes - before;
        reader.answer(conn)?;
    }
    out.secs = start.elapsed().as_secs_f64();
    let t = &sub.tally;
    out.read = t.in_order + t.out_of_order + t.garbled;
    if !t.complete(opts.events) {
        problems.push(format!(
            "{} of {} replayed in order within {:?}, {} out of order, {} unreadable{}, {} bad ids{}",
            t.in_order,
            opts.events,
            opts.timeout,
            t.out_of_order,
            t.garbled,
            t.first_garbled
                .as_ref()
                .map_or(String::new(), |g| format!(" (first: {g})")),
            t.bad_ids,
            if closed {
                "; the server closed the connection"
            } else {
                ""
            },
        ));
    }
    Ok(out)
}

/// Reads a connection's bytes into a [`Sub`], and holds the pongs owed.
struct Reader {
    rbuf: Vec<u8>,
    pong: Vec<u8>,
    hist: hdrhistogram::Histogram<u64>,
    delivered: u64,
    bytes: u64,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            rbuf: vec![0u8; 256 * 1024],
            pong: Vec::with_capacity(256),
            hist: report::latency_histogram(),
            delivered: 0,
            bytes: 0,
        }
    }

    fn take(
        &mut self,
        bytes: &[u8],
        sub: &mut Sub,
        ws: &mut wire::EventReader,
        clock: Clock,
    ) -> io::Result<()> {
        consume(
            bytes,
            sub,
            ws,
            None,
            &mut self.pong,
            &mut self.hist,
            clock,
            Instant::now(),
            &mut self.delivered,
        )
    }

    /// Reads what the socket holds; whether the server closed it.
    fn drain(&mut self, conn: &mut Conn, sub: &mut Sub, clock: Clock) -> io::Result<bool> {
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let mut pongs = Vec::new();
        let result = loop {
            match conn.read_into(&mut rbuf) {
                Ok(ReadOutcome::Data { len, more }) => {
                    self.bytes += len as u64;
                    if let Err(e) = self.take(&rbuf[..len], sub, &mut conn.ws, clock) {
                        break Err(e);
                    }
                    pongs.extend_from_slice(&self.pong);
                    if !more {
                        break Ok(false);
                    }
                }
                Ok(ReadOutcome::Empty) => break Ok(false),
                Ok(ReadOutcome::Closed) => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        self.rbuf = rbuf;
        self.pong = pongs;
        result
    }

    /// Sends the pongs owed.
    fn answer(&mut self, conn: &mut Conn) -> io::Result<()> {
        if !self.pong.is_empty() {
            conn.send(&self.pong)?;
            self.pong.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;

    /// A server that answers one request with `body` after an event-stream
    /// response head, and keeps the connection open for a while.
    fn sse_server(body: impl Into<String>) -> (Dial, std::thread::JoinHandle<String>) {
        let body: String = body.into();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let response = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n{body}");
            socket.write_all(response.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            String::from_utf8(head).unwrap()
        });
        let dial = Dial {
            addr,
            host: addr.to_string(),
            tls: None,
            concurrency: 1,
            timeout: Duration::from_secs(5),
            sources: Vec::new(),
            half_tls: None,
        };
        (dial, server)
    }

    fn options(dial: Dial, events: u64) -> Options {
        Options {
            dial,
            topic: "/topics/t".into(),
            transport: Kind::EventStream,
            events,
            publish: false,
            replay: true,
            size: 64,
            window: 1,
            timeout: Duration::from_millis(300),
        }
    }

    const THREE: &str =
        "id: 5-1\ndata: 1 10 ....\n\nid: 5-2\ndata: 2 20 ....\n\nid: 5-3\ndata: 3 30 ....\n\n";

    #[test]
    fn reads_the_backlog_from_its_start() {
        let (dial, server) = sse_server(THREE);
        let report = run(&options(dial, 3)).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.json["replayed"], 3);
        assert!(report.json["replay_ms"].as_f64().unwrap() < 300.0);
        let head = server.join().unwrap();
        assert!(
            head.starts_with("GET /topics/t/events?lastEventId=0-0 HTTP/1.1\r\n"),
            "{head}"
        );
    }

    #[test]
    fn a_backlog_longer_than_any_head_may_come_with_the_head() {
        let events = 8000u64;
        let body: String = (1..=events)
            .map(|i| format!("id: 5-{i}\ndata: {i} 10 ....\n\n"))
            .collect();
        assert!(body.len() > 2 * MAX_HEAD_FOR_TEST);
        let (dial, server) = sse_server(body);
        let report = run(&options(dial, events)).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.json["replayed"], events);
        server.join().unwrap();
    }

    /// conn.rs's limit on a response head.
    const MAX_HEAD_FOR_TEST: usize = 64 * 1024;

    #[test]
    fn a_short_or_disordered_backlog_is_a_problem() {
        let (dial, server) = sse_server(THREE);
        let report = run(&options(dial, 4)).unwrap();
        assert_eq!(report.json["replayed"], 3);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        server.join().unwrap();

        let (dial, server) = sse_server("id: 5-1\ndata: 1 10 ..\n\nid: 5-3\ndata: 3 30 ..\n\n");
        let report = run(&options(dial, 2)).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        server.join().unwrap();

        let gap = "event: gap\nid: 0-0\ndata: {\"topic\":\"t\",\"requested\":\"0-0\",\"first\":\"5-2\",\"resume\":\"0-0\"}\n\n\
                   id: 5-2\ndata: 2 20 ..\n\n";
        let (dial, server) = sse_server(gap);
        let report = run(&options(dial, 2)).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        server.join().unwrap();
    }

    #[test]
    fn params_join_the_query() {
        assert_eq!(
            with_param("/topics/t/ws", "envelope=1"),
            "/topics/t/ws?envelope=1"
        );
        assert_eq!(
            with_param("/topics/t/ws?x=1", "lastEventId=0-0"),
            "/topics/t/ws?x=1&lastEventId=0-0"
        );
    }
}
