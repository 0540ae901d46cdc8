//! What every echo run shares, whatever carries it (one connection a
//! WebSocket, permessage-deflate, streams of HTTP/2 connections): its
//! options and payload, the warm-up and measured window, the report, and
//! the checking of what comes back. The modes build on it, and it on
//! nothing of theirs.

use std::io;
use std::time::{Duration, Instant};

use serde_json::json;
use tether_frame::OpCode;

use super::conn::Dial;
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
    /// Compare every echoed byte with what was sent (else only the length
    /// and type).
    pub verify: bool,
    /// Offer permessage-deflate (and fail if the server declines it); the
    /// message, compressed once, is JSON-like text (see the deflate echo's
    /// `payload`).
    pub deflate: bool,
    /// Messages in flight on each connection: 1 sends, waits for the echo
    /// and sends again; N keeps N sent and not yet echoed, so a server
    /// reads several in one read and may write several echoes at once.
    pub pipeline: usize,
    /// Echoes before the measurement starts are not counted.
    pub warmup: Duration,
    /// How long to measure.
    pub duration: Duration,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// Part of a multi-process run: wait at the start gate, and put the
    /// latency histograms' counts in the JSON line.
    pub child: bool,
}

/// The payload every message carries: printable ASCII, so it is valid
/// text, and not one repeated byte, so a mix-up shows when verifying.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The warm-up, then the measured window of an echo run.
pub(crate) struct Measure {
    measure_from: Instant,
    end: Instant,
    window: Option<Window>,
    server_pid: Option<u32>,
}

impl Measure {
    pub(crate) fn new(start: Instant, opts: &Options) -> Measure {
        let measure_from = start + opts.warmup;
        Measure {
            measure_from,
            end: measure_from + opts.duration,
            window: None,
            server_pid: opts.server_pid,
        }
    }

    /// The measured window has started.
    pub(crate) fn measuring(&self) -> bool {
        self.window.is_some()
    }

    /// How long to wait for events now, or `None` once the run is over.
    /// When the measurement starts, `count` and `hist` start again.
    pub(crate) fn next(
        &mut self,
        count: &mut u64,
        hist: &mut hdrhistogram::Histogram<u64>,
    ) -> io::Result<Option<Duration>> {
        let now = Instant::now();
        if self.window.is_none() && now >= self.measure_from {
            self.window = Some(Window::start(self.server_pid)?);
            *count = 0;
            hist.reset();
        }
        if now >= self.end {
            return Ok(None);
        }
        let wake = if self.window.is_some() {
            self.end
        } else {
            self.measure_from
        };
        Ok(Some(wake - now))
    }
}

/// The report of an echo run; `h2` gives the streams and connections of a
/// run over HTTP/2.
pub(crate) fn finish(
    opts: &Options,
    clock: Measure,
    count: u64,
    hist: &hdrhistogram::Histogram<u64>,
    mut problems: Vec<String>,
    what: &str,
    h2: Option<usize>,
) -> io::Result<Report> {
    let span = clock
        .window
        .ok_or_else(|| io::Error::other("the run ended before its window"))?
        .stop()?;
    problems.truncate(10);
    let mut json = serde_json::Map::new();
    json.insert("mode".into(), json!("echo"));
    json.insert("connections".into(), json!(h2.unwrap_or(opts.connections)));
    if h2.is_some() {
        json.insert("h2".into(), json!(true));
        json.insert("streams".into(), json!(opts.connections));
    }
    json.insert("size".into(), json!(opts.size));
    json.insert("binary".into(), json!(opts.binary));
    json.insert("messages".into(), json!(count));
    json.extend(span.rates("msg", count));
    json.insert("rtt_us".into(), report::percentiles_us(hist));
    if opts.child {
        json.insert("hist".into(), json!({ "rtt_us": report::histogram_counts(hist) }));
    }
    json.insert("problems".into(), json!(problems.len()));
    Ok(Report {
        human: format!(
            "{what} x {} B: {count} messages in {:.2} s: {}; round trip {}",
            opts.size,
            span.wall,
            span.rates_human("msg", count),
            report::percentiles_human(hist)
        ),
        json: json.into(),
        problems,
    })
}

/// Feeds bytes of one WebSocket through its reader: returns how many
/// echoes they completed, sets `mismatch` if verified bytes differ, and
/// appends pongs to `pong`.
pub(crate) fn take_echoes(
    reader: &mut wire::EventReader,
    bytes: &[u8],
    mismatch: &mut bool,
    body: &[u8],
    opts: &Options,
    pong: &mut Vec<u8>,
) -> io::Result<u32> {
    let mut done = 0u32;
    let mut bad: Option<String> = None;
    let verify = opts.verify;
    reader
        .feed(bytes, &mut |event| match event {
            Event::Data { chunk, offset } => {
                if verify {
                    let at = offset as usize;
                    if body.get(at..at + chunk.len()) != Some(chunk) {
                        *mismatch = true;
                    }
                }
            }
            Event::End {
                text,
                len,
                compressed,
            } => {
                if compressed {
                    bad = Some("a compressed echo without permessage-deflate".to_owned());
                } else if let Some(why) = end_problem(text, len, body, opts) {
                    bad = Some(why);
                }
                done += 1;
            }
            Event::Ping(payload) => wire::push_frame(pong, OpCode::Pong, payload),
            Event::Pong => {}
            Event::Close(code) => bad = Some(format!("close frame from the server: {code:?}")),
        })
        .map_err(io::Error::other)?;
    match bad {
        Some(why) => Err(io::Error::other(why)),
        None => Ok(done),
    }
}

/// What is wrong with an echo of `len` bytes, text or binary, of `body`.
pub(crate) fn end_problem(text: bool, len: u64, body: &[u8], opts: &Options) -> Option<String> {
    (len != body.len() as u64 || text == opts.binary).then(|| {
        format!(
            "echo of {len} bytes ({}), sent {} bytes",
            if text { "text" } else { "binary" },
            body.len()
        )
    })
}

/// Options for the unit tests of an echo's reading: one connection to a
/// port nothing listens on, `size` bytes of text, every byte verified.
#[cfg(test)]
pub(crate) fn test_options(size: usize, deflate: bool) -> Options {
    Options {
        dial: Dial {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
            host: "127.0.0.1:9".into(),
            tls: None,
            concurrency: 1,
            timeout: Duration::ZERO,
            sources: Vec::new(),
            half_tls: None,
        },
        target: "/".into(),
        connections: 1,
        size,
        binary: false,
        verify: true,
        deflate,
        pipeline: 1,
        warmup: Duration::ZERO,
        duration: Duration::ZERO,
        server_pid: None,
        child: false,
    }
}
