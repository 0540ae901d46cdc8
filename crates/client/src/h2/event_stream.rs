//! Event streams on an HTTP/2 connection: opened with a GET, read as
//! `text/event-stream`.

use tether_h2::hpack::Field;
use tether_sse::{Item, MessageEvent, Parser};

use super::{H2Connection, field, push_headers};
use crate::error::Error;

impl H2Connection {
    /// Opens an event stream: a GET for `path` (with its query) that must
    /// be answered 200 with `text/event-stream`.
    pub fn event_stream(&self, path: &str) -> Result<H2EventStream, Error> {
        self.event_stream_with(path, &[])
    }

    /// [`event_stream`](Self::event_stream) with request headers of one's
    /// own (`last-event-id`, `authorization`...; names are sent in
    /// lowercase).
    pub fn event_stream_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<H2EventStream, Error> {
        let mut fields = self.pseudo("GET", path, false)?;
        fields.push(Field::new("accept", "text/event-stream"));
        fields.push(Field::new("cache-control", "no-cache"));
        push_headers(&mut fields, headers)?;
        let stream = self.open(&fields, true)?;
        let (status, head) = match self.response(stream) {
            Ok(response) => response,
            Err(e) => {
                self.forget(stream);
                return Err(e);
            }
        };
        let content_type = field(&head, "content-type").unwrap_or_default();
        let failure = if status != 200 {
            Some(Error::Refused {
                status,
                reason: String::new(),
            })
        } else if !tether_client_core::event_source::is_event_stream(&content_type) {
            Some(Error::ContentType(content_type))
        } else {
            None
        };
        if let Some(e) = failure {
            self.forget(stream);
            return Err(e);
        }
        Ok(H2EventStream {
            conn: self.clone(),
            stream,
            parser: Parser::with_limits(self.options.limits),
            ended: false,
        })
    }
}

/// An event stream on an [`H2Connection`]. It does not reconnect: when
/// the server ends the stream, [`next_event`](Self::next_event) returns
/// `None`; open a new one with the `last-event-id` header to resume.
/// Dropping it resets the stream (CANCEL).
pub struct H2EventStream {
    conn: H2Connection,
    stream: u32,
    parser: Parser,
    ended: bool,
}

impl std::fmt::Debug for H2EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2EventStream")
            .field("stream", &self.stream)
            .field("last_event_id", &self.parser.last_event_id())
            .finish_non_exhaustive()
    }
}

impl H2EventStream {
    /// The HTTP/2 stream identifier.
    pub fn stream_id(&self) -> u32 {
        self.stream
    }

    /// The last event ID the stream set.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The next event, waiting for it; `None` once the server has ended
    /// the stream and every event before the end was returned.
    pub fn next_event(&mut self) -> Result<Option<MessageEvent>, Error> {
        let deadline = self.conn.read_deadline();
        loop {
            match self.parser.poll() {
                Some(Ok(Item::Event(event))) => return Ok(Some(event)),
                Some(Ok(Item::Retry(_))) => continue,
                Some(Err(e)) => return Err(Error::Sse(e)),
                None => {}
            }
            if self.ended {
                return Ok(None);
            }
            let stream = self.stream;
            let (data, ended, reset) = self.conn.wait(deadline, "read", |inner| {
                let taken = inner.take(stream)?;
                let (data, ended, reset) = &taken;
                (!data.is_empty() || *ended || reset.is_some()).then_some(Ok(taken))
            })?;
            self.parser.feed(&data);
            if let Some(code) = reset {
                self.ended = true;
                return Err(Error::StreamReset(code));
            }
            if ended {
                self.parser.finish();
                self.ended = true;
            }
        }
    }
}

impl Drop for H2EventStream {
    fn drop(&mut self) {
        self.conn.forget(self.stream);
    }
}
