//! What the handles of one connection share behind its lock: the socket,
//! the HTTP/2 connection, and what each stream received and waits to send;
//! whichever handle waits reads the socket for all of them.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use tether_h2::ErrorCode;
use tether_h2::client::{ClientConnection, Event as H2Event};
use tether_h2::hpack::Field;

use crate::error::Error;
use crate::transport::{Transport, is_timeout};

/// Why the connection cannot be used any more.
#[derive(Debug, Clone, Copy)]
pub(super) enum Failure {
    Lost,
    Io(ErrorKind),
    H2(tether_h2::client::ConnectionError),
    Closed,
}

impl Failure {
    pub(super) fn to_error(self) -> Error {
        match self {
            Failure::Lost => Error::ConnectionLost,
            Failure::Io(kind) => Error::io("HTTP/2 connection", kind.into()),
            Failure::H2(e) => Error::H2(e),
            Failure::Closed => Error::Closed,
        }
    }
}

/// What a stream received and what waits to be sent on it.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) head: Option<(u16, Vec<Field>)>,
    /// Received, not yet taken by the handle (nor released).
    pub(super) data: Vec<u8>,
    /// The server ended the stream.
    ended: bool,
    pub(super) reset: Option<ErrorCode>,
    /// Our bytes waiting for window.
    pub(super) pending: Vec<u8>,
    pub(super) end_pending: bool,
}

pub(super) struct Inner {
    pub(super) io: Transport,
    pub(super) h2: ClientConnection,
    /// Received, not yet taken by the HTTP/2 connection.
    pub(super) input: Vec<u8>,
    pub(super) out: Vec<u8>,
    pub(super) read_buf: Vec<u8>,
    pub(super) streams: HashMap<u32, Slot>,
    pub(super) failure: Option<Failure>,
}

impl Inner {
    pub(super) fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.io.write_all(&self.out).and_then(|()| self.io.flush());
        self.out.clear();
        written.map_err(|e| {
            self.failure.get_or_insert(Failure::Io(e.kind()));
            Error::io("write", e)
        })
    }

    /// Writes what is queued, reads once (waiting up to `wait`) and takes
    /// what the server sent.
    pub(super) fn pump(&mut self, wait: Duration) {
        if self.flush().is_err() {
            return;
        }
        if let Err(e) = self
            .io
            .tcp()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
        {
            self.failure.get_or_insert(Failure::Io(e.kind()));
            return;
        }
        match self.io.read(&mut self.read_buf) {
            Ok(0) => {
                self.failure.get_or_insert(Failure::Lost);
            }
            Ok(n) => {
                let Inner { input, read_buf, .. } = self;
                input.extend_from_slice(read_buf.get(..n).unwrap_or_default());
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                self.failure.get_or_insert(Failure::Io(e.kind()));
            }
        }
        let mut events = Vec::new();
        let used = self.h2.receive(&self.input, &mut self.out, &mut events);
        self.input.drain(..used);
        for event in events {
            self.on_event(event);
        }
        let _ = self.flush();
    }

    fn on_event(&mut self, event: H2Event) {
        match event {
            H2Event::Response {
                stream,
                status,
                fields,
                end_stream,
            } => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    slot.head = Some((status, fields));
                    slot.ended |= end_stream;
                }
            }
            H2Event::Data {
                stream,
                data,
                end_stream,
            } => match self.streams.get_mut(&stream) {
                Some(slot) => {
                    slot.data.extend_from_slice(&data);
                    slot.ended |= end_stream;
                }
                // A handle that is gone: nobody will read it.
                None => self.h2.release(stream, data.len(), &mut self.out),
            },
            H2Event::Trailers { stream, .. } => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    slot.ended = true;
                }
            }
            H2Event::Reset { stream, code, .. } => {
                if let Some(slot) = self.streams.get_mut(&stream) {
                    slot.reset = Some(code);
                }
            }
            H2Event::WindowOpened { stream: 0 } => {
                let waiting: Vec<u32> = self
                    .streams
                    .iter()
                    .filter(|(_, s)| !s.pending.is_empty() || s.end_pending)
                    .map(|(&id, _)| id)
                    .collect();
                for stream in waiting {
                    self.send_pending(stream);
                }
            }
            H2Event::WindowOpened { stream } => self.send_pending(stream),
            H2Event::ConnectionError(e) => {
                self.failure.get_or_insert(Failure::H2(e));
            }
            _ => {}
        }
    }

    pub(super) fn send_pending(&mut self, stream: u32) {
        let Inner { h2, out, streams, .. } = self;
        let Some(slot) = streams.get_mut(&stream) else {
            return;
        };
        if slot.pending.is_empty() && !slot.end_pending {
            return;
        }
        match h2.send_data(stream, &slot.pending, slot.end_pending, out) {
            Ok(n) => {
                slot.pending.drain(..n);
                if slot.pending.is_empty() {
                    slot.end_pending = false;
                }
            }
            Err(_) => {
                slot.pending.clear();
                slot.end_pending = false;
            }
        }
    }

    /// What `stream` received, handed to its handle: the connection's
    /// window opens again by as much.
    pub(super) fn take(&mut self, stream: u32) -> Option<(Vec<u8>, bool, Option<ErrorCode>)> {
        let slot = self.streams.get_mut(&stream)?;
        let data = std::mem::take(&mut slot.data);
        let (ended, reset) = (slot.ended, slot.reset);
        if !data.is_empty() {
            self.h2.release(stream, data.len(), &mut self.out);
        }
        Some((data, ended, reset))
    }
}
