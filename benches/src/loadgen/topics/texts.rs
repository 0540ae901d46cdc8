//! The text messages of WebSockets on the hub's `/ws`: read whole from
//! each connection, pings answered; and the subscribes that open a run,
//! sent and waited for until each is answered.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use mio::{Events, Poll};
use tether_frame::OpCode;

use super::super::conn::{Conn, ReadOutcome};
use super::super::wire::{self, Event};

/// Each connection's message that spans reads, and the pongs to send.
#[derive(Debug)]
pub(crate) struct Texts {
    partial: Vec<Vec<u8>>,
    pong: Vec<u8>,
}

impl Texts {
    /// For `conns` connections.
    pub(crate) fn new(conns: usize) -> Texts {
        Texts {
            partial: vec![Vec::new(); conns],
            pong: Vec::with_capacity(256),
        }
    }

    /// Hands each whole text message in `bytes` (of connection `i`) to
    /// `on`, and answers the pings among them. A close frame from the
    /// server, a binary or a compressed message is an error.
    pub(crate) fn take(
        &mut self,
        i: usize,
        conn: &mut Conn,
        bytes: &[u8],
        on: &mut dyn FnMut(&[u8]),
    ) -> io::Result<()> {
        self.pong.clear();
        let (partial, pong) = (&mut self.partial[i], &mut self.pong);
        let mut failed = None;
        conn.ws
            .feed(bytes, &mut |event| match event {
                Event::Data { chunk, .. } => partial.extend_from_slice(chunk),
                Event::End {
                    text: true,
                    compressed: false,
                    ..
                } => {
                    on(partial);
                    partial.clear();
                }
                Event::End { .. } => {
                    failed.get_or_insert_with(|| "a binary or compressed message".to_owned());
                    partial.clear();
                }
                Event::Ping(payload) => wire::push_frame(pong, OpCode::Pong, payload),
                Event::Pong => {}
                Event::Close(code) => {
                    failed.get_or_insert_with(|| format!("close frame from the server: {code:?}"));
                }
            })
            .map_err(|e| io::Error::other(format!("connection {i}: {e}")))?;
        if !self.pong.is_empty() {
            conn.send(&self.pong)?;
        }
        match failed {
            Some(why) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("connection {i}: {why}"),
            )),
            None => Ok(()),
        }
    }

    /// Reads connection `i` until it has nothing more, handing each text
    /// message to `on`; how many bytes it read. A connection the server
    /// closed is an error.
    pub(crate) fn read(
        &mut self,
        i: usize,
        conn: &mut Conn,
        rbuf: &mut [u8],
        on: &mut dyn FnMut(&[u8]),
    ) -> io::Result<u64> {
        let mut read = 0u64;
        loop {
            match conn.read_into(rbuf)? {
                ReadOutcome::Data { len, more } => {
                    read += len as u64;
                    self.take(i, conn, &rbuf[..len], on)?;
                    if !more {
                        return Ok(read);
                    }
                }
                ReadOutcome::Empty => return Ok(read),
                ReadOutcome::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("connection {i}: closed by the server"),
                    ));
                }
            }
        }
    }
}

/// `{"type":"subscribe","topic":"NAME"}` as a client frame, appended.
fn push_subscribe(out: &mut Vec<u8>, topic: &str) {
    let text = serde_json::json!({ "type": "subscribe", "topic": topic }).to_string();
    wire::push_frame(out, OpCode::Text, text.as_bytes());
}

/// The topic a hub message names first (`{"topic":"T",…}` for an event,
/// `{"control":"…","topic":"T",…}` for an answer); topic names need no
/// escaping.
pub(crate) fn topic_of(text: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = br#""topic":""#;
    let at = text.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &text[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
}

/// What the subscribes of a run were answered so far.
struct Answers<'a> {
    index: HashMap<&'a [u8], usize>,
    /// By connection, by topic.
    answered: Vec<Vec<bool>>,
    /// Subscribes not yet answered, in all.
    left: usize,
    failure: Option<String>,
}

impl Answers<'_> {
    fn take(&mut self, i: usize, text: &[u8]) {
        let t = topic_of(text).and_then(|name| self.index.get(name).copied());
        let slot = t.and_then(|t| self.answered.get_mut(i)?.get_mut(t));
        match slot {
            Some(slot @ false) if text.starts_with(br#"{"control":"subscribed""#) => {
                *slot = true;
                self.left -= 1;
            }
            _ => {
                self.failure.get_or_insert_with(|| {
                    format!(
                        "connection {i} subscribing: {}",
                        String::from_utf8_lossy(&text[..text.len().min(300)])
                    )
                });
            }
        }
    }
}

/// Subscribes connection `i` of `conns` to the first `count(i)` of
/// `topics` and waits until every subscribe is answered `subscribed`, by
/// `deadline`. A refusal or an error answer fails the run with the hub's
/// words. Bytes that came with a handshake's response are read first.
pub(crate) fn subscribe_all(
    poll: &mut Poll,
    conns: &mut [Conn],
    texts: &mut Texts,
    topics: &[String],
    count: &dyn Fn(usize) -> usize,
    deadline: Instant,
) -> io::Result<()> {
    let counts: Vec<usize> = (0..conns.len()).map(|i| count(i).min(topics.len())).collect();
    let mut answers = Answers {
        index: topics
            .iter()
            .enumerate()
            .map(|(t, name)| (name.as_bytes(), t))
            .collect(),
        answered: counts.iter().map(|&n| vec![false; n]).collect(),
        left: counts.iter().sum(),
        failure: None,
    };
    let mut frames = Vec::new();
    for (i, conn) in conns.iter_mut().enumerate() {
        let leftover = std::mem::take(&mut conn.leftover);
        texts.take(i, conn, &leftover, &mut |text| answers.take(i, text))?;
        frames.clear();
        for topic in &topics[..counts[i]] {
            push_subscribe(&mut frames, topic);
        }
        conn.send(&frames)?;
    }
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    loop {
        if let Some(why) = answers.failure.take() {
            return Err(io::Error::other(why));
        }
        if answers.left == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} subscribes not answered in time", answers.left),
            ));
        }
        poll.poll(&mut events, Some(deadline - now))?;
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = conns.get_mut(i) else {
                continue;
            };
            texts.read(i, conn, &mut rbuf, &mut |text| answers.take(i, text))?;
            if event.is_writable() && conn.has_pending_output() {
                conn.flush()?;
            }
        }
    }
}
