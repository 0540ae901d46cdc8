//! Multiplexed fan-out (`loadgen topics`): N WebSockets on the hub's
//! multiplexed route (`/ws`), each following the same K topics
//! (`PREFIX.0` to `PREFIX.K-1`) by `subscribe` messages; one more `/ws`
//! socket publishes (`{"type":"publish",…}`) at a fixed rate, in turn to
//! the first P of those topics (it follows them too, which is what lets
//! it publish where `--ws-publish` opens the topics to their
//! subscribers, and it reads its own events and the acknowledgements).
//!
//! Every topic numbers its messages from 1 (the text is the fan-out's
//! `"<seq> <ns> "` padded with dots), so each subscriber checks every
//! topic apart: each message once and in order, and nothing at all on a
//! topic that nobody publishes to. The figure per delivery is what
//! `loadgen fanout` reports, so that a connection following ten topics
//! reads beside one following one.

mod texts;

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use serde_json::json;
use tether_frame::OpCode;

use super::conn::{Dial, Group, Kind, connect_all};
use super::fanout::per_delivery;
use super::messages::{Clock, Tally, write_message};
use super::report::{self, Report, Window};
use super::{sys, wire};

pub(crate) use texts::{Texts, subscribe_all, topic_of};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where and how to connect.
    pub dial: Dial,
    /// The multiplexed WebSocket's request target (`/ws`).
    pub target: String,
    /// Subscribing sockets.
    pub subscribers: usize,
    /// The topics each of them follows.
    pub topics: Vec<String>,
    /// How many of them (the first ones) are published to.
    pub published: usize,
    /// Messages per second, over all the published topics.
    pub rate: f64,
    /// Message size in bytes.
    pub size: usize,
    /// How long to publish.
    pub duration: Duration,
    /// How long to wait for the last deliveries after publishing stops.
    pub drain: Duration,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
}

/// `PREFIX.0` to `PREFIX.K-1`.
pub fn topic_names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|t| format!("{prefix}.{t}")).collect()
}

/// `{"type":"publish","topic":"T","data":"<text>"}`: the text is the
/// fan-out's (digits, spaces and dots), which needs no escaping.
fn write_publish(out: &mut Vec<u8>, topic: &str, text: &[u8]) {
    out.clear();
    out.extend_from_slice(br#"{"type":"publish","topic":""#);
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(br#"","data":""#);
    out.extend_from_slice(text);
    out.extend_from_slice(br#""}"#);
}

/// What the subscribers saw, topic by topic.
struct Seen {
    topics: usize,
    /// Subscriber `i`'s topic `t` is `tallies[i * topics + t]`.
    tallies: Vec<Tally>,
    /// Messages that named no topic of the run, or a control message
    /// while publishing.
    unreadable: u64,
    first_unreadable: Option<String>,
    delivered: u64,
}

impl Seen {
    fn take(
        &mut self,
        i: usize,
        text: &[u8],
        index: &HashMap<&[u8], usize>,
        hist: &mut hdrhistogram::Histogram<u64>,
        now_ns: u64,
    ) {
        let topic = (!text.starts_with(br#"{"control""#))
            .then(|| topic_of(text))
            .flatten()
            .and_then(|name| index.get(name).copied());
        let Some(t) = topic else {
            self.unreadable += 1;
            if self.first_unreadable.is_none() {
                let shown = &text[..text.len().min(200)];
                self.first_unreadable = Some(String::from_utf8_lossy(shown).into_owned());
            }
            return;
        };
        self.delivered += 1;
        if let Some(sent_ns) = self.tallies[i * self.topics + t].deliver(text) {
            report::record(hist, Duration::from_nanos(now_ns.saturating_sub(sent_ns)));
        }
    }

    /// Whether every subscriber has a message (in order or not) for
    /// every one `sent` says each topic was published.
    fn all_in(&self, sent: &[u64]) -> bool {
        self.tallies.chunks(self.topics).all(|tallies| {
            tallies
                .iter()
                .zip(sent)
                .all(|(t, &n)| t.in_order + t.out_of_order >= n)
        })
    }
}

/// The publisher's side: its acknowledgements, and what else it got.
#[derive(Default)]
struct Publisher {
    acks: u64,
    /// Its own events back.
    echoes: u64,
    /// An `error`, `refused` or unexpected answer.
    failure: Option<String>,
}

impl Publisher {
    fn take(&mut self, text: &[u8]) {
        if text.starts_with(br#"{"control":"published""#) {
            self.acks += 1;
        } else if text.starts_with(br#"{"topic":"#) {
            self.echoes += 1;
        } else {
            self.failure
                .get_or_insert_with(|| String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned());
        }
    }
}

/// Runs the multiplexed fan-out.
pub fn run(opts: &Options) -> io::Result<Report> {
    if opts.rate.is_nan() || opts.rate <= 0.0 {
        return Err(io::Error::other("--rate must be positive"));
    }
    if opts.topics.is_empty() || opts.published == 0 || opts.published > opts.topics.len() {
        return Err(io::Error::other(
            "--published must be from 1 to the number of --topics",
        ));
    }
    let (k, p) = (opts.topics.len(), opts.published);
    let mut poll = Poll::new()?;
    // Subscribers first, then the publisher (the last token).
    let mut conns = connect_all(
        &mut poll,
        &opts.dial,
        &[Group {
            kind: Kind::WebSocket,
            target: &opts.target,
            count: opts.subscribers + 1,
            deflate: false,
        }],
    )?;
    let publisher = opts.subscribers;
    let mut texts = Texts::new(conns.len());
    let subscribe_started = Instant::now();
    let count = |i: usize| if i == publisher { p } else { k };
    subscribe_all(
        &mut poll,
        &mut conns,
        &mut texts,
        &opts.topics,
        &count,
        subscribe_started + opts.dial.timeout,
    )?;
    let subscribe_s = subscribe_started.elapsed().as_secs_f64();

    let index: HashMap<&[u8], usize> = opts
        .topics
        .iter()
        .enumerate()
        .map(|(t, name)| (name.as_bytes(), t))
        .collect();
    let mut seen = Seen {
        topics: k,
        tallies: (0..opts.subscribers * k).map(|_| Tally::new()).collect(),
        unreadable: 0,
        first_unreadable: None,
        delivered: 0,
    };
    let mut publishing = Publisher::default();
    let mut hist = report::latency_histogram();
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut text = Vec::with_capacity(opts.size.max(64));
    let mut message = Vec::with_capacity(opts.size.max(64) + 64);
    let mut frame = Vec::with_capacity(opts.size.max(64) + 80);
    // Messages published to each topic (the last one's number).
    let mut sent = vec![0u64; k];
    // Bytes the subscribers read.
    let mut wire_bytes = 0u64;

    let interval_ns = 1e9 / opts.rate;
    let window = Window::start(opts.server_pid)?;
    let start = window.started();
    let clock = Clock {
        start,
        base_ns: sys::monotonic_ns()?,
    };
    let send_end = start + opts.duration;
    let due_at = |n: u64| start + Duration::from_nanos((n as f64 * interval_ns) as u64);
    let mut published = 0u64;
    let mut drain_until = None;
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        let mut next_due = due_at(published);
        while next_due <= now && next_due < send_end && now < send_end {
            let t = (published % p as u64) as usize;
            published += 1;
            sent[t] += 1;
            write_message(&mut text, sent[t], clock.ns(now), opts.size, false);
            write_publish(&mut message, &opts.topics[t], &text);
            frame.clear();
            wire::push_frame(&mut frame, OpCode::Text, &message);
            conns[publisher].send(&frame)?;
            next_due = due_at(published);
        }
        if now >= send_end && drain_until.is_none() {
            drain_until = Some(now + opts.drain);
        }
        let wake = match drain_until {
            Some(until) => {
                if now >= until || (seen.all_in(&sent) && publishing.acks >= published) {
                    break;
                }
                until
            }
            None => next_due.min(send_end),
        };
        poll.poll(&mut events, Some(wake.saturating_duration_since(now)))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i) else {
                continue;
            };
            let now_ns = clock.ns(Instant::now());
            if i == publisher {
                texts.read(i, conn, &mut rbuf, &mut |text| publishing.take(text))?;
            } else {
                wire_bytes += texts.read(i, conn, &mut rbuf, &mut |text| {
                    seen.take(i, text, &index, &mut hist, now_ns);
                })?;
            }
            if event.is_writable() && conn.has_pending_output() {
                conn.flush()?;
            }
        }
    }
    let span = window.stop()?;
    Ok(finish(
        opts,
        &seen,
        &publishing,
        &sent,
        published,
        &hist,
        span,
        subscribe_s,
        wire_bytes,
    ))
}

/// The report of a run.
#[allow(clippy::too_many_arguments)]
fn finish(
    opts: &Options,
    seen: &Seen,
    publishing: &Publisher,
    sent: &[u64],
    published: u64,
    hist: &hdrhistogram::Histogram<u64>,
    span: report::Span,
    subscribe_s: f64,
    wire_bytes: u64,
) -> Report {
    let k = opts.topics.len();
    let mut problems = Vec::new();
    if let Some(why) = &publishing.failure {
        problems.push(format!("the publisher was answered: {why}"));
    }
    if publishing.acks != published {
        problems.push(format!(
            "{} of {published} publishes acknowledged",
            publishing.acks
        ));
    }
    if let Some(text) = &seen.first_unreadable {
        problems.push(format!(
            "{} messages named no topic of the run (first: {text})",
            seen.unreadable
        ));
    }
    let (mut missing, mut out_of_order, mut incomplete) = (0u64, 0u64, 0usize);
    for (i, tallies) in seen.tallies.chunks(k.max(1)).enumerate() {
        let mut whole = true;
        for (t, tally) in tallies.iter().enumerate() {
            missing += sent[t].saturating_sub(tally.in_order);
            out_of_order += tally.out_of_order + tally.garbled;
            if !tally.complete(sent[t]) {
                whole = false;
                if problems.len() < 10 {
                    problems.push(format!(
                        "subscriber {i}, topic {}: {} of {} in order, {} out of order, {} unreadable",
                        opts.topics[t], tally.in_order, sent[t], tally.out_of_order, tally.garbled
                    ));
                }
            }
        }
        incomplete += usize::from(!whole);
    }
    let delivered = seen.delivered;
    let mut json = serde_json::Map::new();
    json.insert("mode".into(), json!("topics"));
    json.insert("subscribers".into(), json!(opts.subscribers));
    json.insert("topics".into(), json!(k));
    json.insert("published_topics".into(), json!(opts.published));
    json.insert("size".into(), json!(opts.size));
    json.insert("rate".into(), json!(opts.rate));
    json.insert("subscribe_s".into(), json!(report::round3(subscribe_s)));
    json.insert("published".into(), json!(published));
    json.insert("published_by_topic".into(), json!(sent));
    json.insert("delivered".into(), json!(delivered));
    json.insert("acked".into(), json!(publishing.acks));
    json.insert("publisher_echoes".into(), json!(publishing.echoes));
    json.insert("wire_bytes".into(), json!(wire_bytes));
    json.extend(span.rates("events", delivered));
    json.extend(per_delivery(wire_bytes, span.server_cpu, delivered));
    json.insert("latency_us".into(), report::percentiles_us(hist));
    json.insert("missing".into(), json!(missing));
    json.insert("out_of_order".into(), json!(out_of_order));
    json.insert("unreadable".into(), json!(seen.unreadable));
    json.insert("incomplete_subscribers".into(), json!(incomplete));
    json.insert("problems".into(), json!(problems.len()));
    Report {
        human: format!(
            "topics {} sockets x {k} topics ({} published), {} msg/s x {} B: {published} published, \
             {delivered} delivered ({missing} missing, {out_of_order} out of order, {incomplete} \
             subscribers incomplete); {}; latency {}",
            opts.subscribers,
            opts.published,
            opts.rate,
            opts.size,
            span.rates_human("events", delivered),
            report::percentiles_human(hist),
        ),
        json: json.into(),
        problems,
    }
}

#[cfg(test)]
mod tests;
