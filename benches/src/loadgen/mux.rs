//! Streams of multiplexed connections, over HTTP/2 ([`h2`]) or HTTP/3
//! ([`h3`]), behind one type so that a mode drives either the same way:
//! readiness and timers in, each stream's bytes out.

use std::io;
use std::time::Instant;

use mio::Poll;

use super::conn::{Dial, Kind};
use super::h2::{self, H2Conn};
use super::h3::{self, H3Conn};

/// Which HTTP version carries the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/2 over TCP (h2c with prior knowledge).
    H2,
    /// HTTP/3 over QUIC (UDP, TLS 1.3).
    H3,
}

/// One multiplexed connection.
#[derive(Debug)]
pub enum MuxConn {
    /// An HTTP/2 connection.
    H2(Box<H2Conn>),
    /// An HTTP/3 connection.
    H3(Box<H3Conn>),
}

impl MuxConn {
    /// Reads what the connection's socket has, hands each stream's bytes
    /// to `on_data` (stream index, bytes) and sends what the connection
    /// answers.
    pub fn on_readable(&mut self, rbuf: &mut [u8], on_data: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        match self {
            MuxConn::H2(c) => c.on_readable(rbuf, on_data),
            MuxConn::H3(c) => c.on_readable(rbuf, on_data),
        }
    }

    /// Sends `bytes` on stream `index` (a WebSocket's frames; event
    /// streams send nothing).
    pub fn send(&mut self, index: usize, bytes: &[u8]) -> io::Result<()> {
        match self {
            MuxConn::H2(c) => c.send(index, bytes),
            MuxConn::H3(_) => Err(io::Error::other(
                "over HTTP/3 the load generator runs event streams, which send nothing",
            )),
        }
    }

    /// When [`MuxConn::on_timers`] is due next (HTTP/2 has no timers).
    pub fn next_timeout(&mut self) -> Option<Instant> {
        match self {
            MuxConn::H2(_) => None,
            MuxConn::H3(c) => c.next_timeout(),
        }
    }

    /// Runs the timers due at `now`. Stream bytes arrive only with
    /// datagrams, which [`MuxConn::on_readable`] reads; a timer that
    /// delivers some is a fault of the driver, reported as an error.
    pub fn on_timers(&mut self, now: Instant) -> io::Result<()> {
        let MuxConn::H3(c) = self else {
            return Ok(());
        };
        let mut stray = 0usize;
        c.on_timers(now, &mut |_, data| stray += data.len())?;
        if stray > 0 {
            return Err(io::Error::other(format!(
                "{stray} stream bytes delivered by a timer, outside a read"
            )));
        }
        Ok(())
    }

    /// Ends the connection politely.
    pub fn go_away(&mut self) {
        match self {
            MuxConn::H2(c) => c.go_away(),
            MuxConn::H3(c) => c.go_away(),
        }
    }
}

/// Opens `streams` streams of `kind` to `target` over `version`,
/// `per_conn` on each connection, and waits until every one is answered
/// 200. Connection `i` gets token [`h2::TOKEN_BASE`]` + i`; stream `s` of
/// the run is stream `s % per_conn` of connection `s / per_conn`.
pub fn connect_all(
    poll: &mut Poll,
    dial: &Dial,
    version: Version,
    kind: Kind,
    target: &str,
    streams: usize,
    per_conn: usize,
) -> io::Result<Vec<MuxConn>> {
    Ok(match version {
        Version::H2 => h2::connect_all(poll, dial, kind, target, streams, per_conn)?
            .into_iter()
            .map(|c| MuxConn::H2(Box::new(c)))
            .collect(),
        Version::H3 if kind == Kind::EventStream => {
            h3::connect_all(poll, dial, h2::TOKEN_BASE, target, streams, per_conn)?
                .into_iter()
                .map(|c| MuxConn::H3(Box::new(c)))
                .collect()
        }
        Version::H3 => {
            return Err(io::Error::other(
                "over HTTP/3 the subscribers are event streams: give --transport sse",
            ));
        }
    })
}
