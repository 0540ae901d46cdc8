//! HTTP/2: event streams and RFC 8441 WebSockets as streams of one
//! connection.
//!
//! The connection handle and the requests it makes are here; beside it,
//! `builder.rs` holds the settings and connecting, `shared.rs` what the
//! handles share behind the lock, `event_stream.rs` and `websocket.rs` the
//! two kinds of stream.

mod builder;
mod event_stream;
mod shared;
mod websocket;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tether_h2::ErrorCode;
use tether_h2::client::SendError;
use tether_h2::hpack::Field;

pub use builder::H2Builder;
pub use event_stream::H2EventStream;
use shared::{Failure, Inner, Slot};
use tether_client_core::url::Url;
pub use websocket::{H2WebSocket, WsOptions};

use crate::error::Error;

/// How long one wait for the socket lasts before the lock is given up, so
/// that handles on other threads get their turn.
const SLICE: Duration = Duration::from_millis(20);
/// The most a stream keeps queued waiting for the server's flow-control
/// window (the per-connection bound on queued output, per stream here): a
/// send past it waits for room, up to the connect timeout, and a WebSocket
/// whose automatic answers (pongs) the server leaves unread past it fails
/// with 1008.
pub(crate) const MAX_PENDING: usize = 1024 * 1024;

/// An HTTP/2 connection to a server, carrying event streams and
/// WebSockets (RFC 8441) on streams of their own.
///
/// Each [`event_stream`](Self::event_stream) and
/// [`websocket`](Self::websocket) opens a stream and returns a handle;
/// handles are blocking, and may be used from several threads (the
/// connection is shared behind a lock, and whichever handle waits reads
/// the socket for all of them). What a stream receives waits for its
/// handle; a handle that does not read keeps the server from sending more
/// on its stream (flow control), not on the others.
///
/// ```no_run
/// use tether_client::{Event, H2Connection};
///
/// let h2 = H2Connection::connect("http://127.0.0.1:8080")?;
/// let mut clock = h2.event_stream("/clock")?;
/// let mut echo = h2.websocket("/echo")?;
/// echo.send_text("hello")?;
/// if let Event::Message(reply) = echo.recv()? {
///     println!("echo: {reply:?}");
/// }
/// if let Some(event) = clock.next_event()? {
///     println!("{}: {}", event.event_type(), event.data());
/// }
/// # Ok::<(), tether_client::Error>(())
/// ```
#[derive(Clone)]
pub struct H2Connection {
    inner: Arc<Mutex<Inner>>,
    url: Url,
    options: H2Builder,
}

impl std::fmt::Debug for H2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Connection")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl H2Connection {
    /// Connects to `url` with the defaults: see [`H2Builder::new`].
    pub fn connect(url: &str) -> Result<H2Connection, Error> {
        H2Builder::new(url).connect()
    }

    /// Settings for a connection to `url`.
    pub fn builder(url: impl Into<String>) -> H2Builder {
        H2Builder::new(url)
    }

    /// How many streams are open on the connection.
    pub fn active_streams(&self) -> usize {
        self.lock().h2.active_streams()
    }

    /// Ends the connection: GOAWAY, then the socket is shut down. Every
    /// handle fails from then on.
    pub fn close(&self) {
        let mut inner = self.lock();
        let mut out = std::mem::take(&mut inner.out);
        inner.h2.go_away(ErrorCode::NO_ERROR, &mut out);
        inner.out = out;
        let _ = inner.flush();
        inner.io.shutdown();
        inner.failure.get_or_insert(Failure::Closed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pseudo-header fields of a request on this connection.
    fn pseudo(&self, method: &str, path: &str, websocket: bool) -> Result<Vec<Field>, Error> {
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(Error::InvalidArgument(format!(
                "{path:?} is not a path (it starts with / and has no spaces or control characters)"
            )));
        }
        let scheme = if self.url.scheme().is_secure() {
            "https"
        } else {
            "http"
        };
        let mut fields = vec![Field::new(":method", method)];
        if websocket {
            fields.push(Field::new(":protocol", "websocket"));
        }
        fields.push(Field::new(":scheme", scheme));
        fields.push(Field::new(":path", path));
        fields.push(Field::new(":authority", self.url.host_header()));
        Ok(fields)
    }

    /// Opens a stream, waiting for a free slot if the server's concurrency
    /// limit is reached.
    fn open(&self, fields: &[Field], end_stream: bool) -> Result<u32, Error> {
        let deadline = Instant::now() + self.options.connect_timeout;
        self.wait(Some(deadline), "a free HTTP/2 stream", |inner| {
            let mut out = std::mem::take(&mut inner.out);
            let opened = inner.h2.open_stream(fields, end_stream, &mut out);
            inner.out = out;
            match opened {
                Ok(stream) => {
                    inner.streams.insert(stream, Slot::default());
                    Some(inner.flush().map(|()| stream))
                }
                Err(SendError::StreamLimit) => None,
                Err(SendError::ExtendedConnectDisabled) => Some(Err(Error::Refused {
                    status: 0,
                    reason: "the server does not take WebSockets over HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL)"
                        .to_owned(),
                })),
                Err(_) => Some(Err(Error::Closed)),
            }
        })
    }

    /// Waits for the response head on `stream`.
    fn response(&self, stream: u32) -> Result<(u16, Vec<Field>), Error> {
        let deadline = Instant::now() + self.options.connect_timeout;
        self.wait(Some(deadline), "the response head", |inner| {
            let slot = inner.streams.get_mut(&stream)?;
            if let Some(head) = slot.head.take() {
                return Some(Ok(head));
            }
            slot.reset.map(|code| Err(Error::StreamReset(code)))
        })
    }

    /// Resets `stream` if still open and forgets it, giving back to the
    /// connection's window what it had received.
    fn forget(&self, stream: u32) {
        let mut inner = self.lock();
        let Inner { h2, out, streams, .. } = &mut *inner;
        if let Some(slot) = streams.remove(&stream) {
            let _ = h2.reset(stream, ErrorCode::CANCEL, out);
            h2.release(stream, slot.data.len(), out);
        }
        let _ = inner.flush();
    }

    /// Runs `check` under the lock until it answers, reading the socket in
    /// between; fails at `deadline` with [`Error::Timeout`] naming `what`,
    /// or when the connection has failed.
    fn wait<T>(
        &self,
        deadline: Option<Instant>,
        what: &'static str,
        mut check: impl FnMut(&mut Inner) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        loop {
            let mut inner = self.lock();
            if let Some(answer) = check(&mut inner) {
                return answer;
            }
            if let Some(failure) = &inner.failure {
                return Err(failure.to_error());
            }
            let slice = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::Timeout(what));
                    }
                    SLICE.min(deadline - now)
                }
                None => SLICE,
            };
            inner.pump(slice);
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        self.options.read_timeout.map(|t| Instant::now() + t)
    }

    /// Bytes queued on `stream` waiting for the server's window.
    fn pending(&self, stream: u32) -> usize {
        self.lock()
            .streams
            .get(&stream)
            .map_or(0, |slot| slot.pending.len())
    }

    /// [`send`](Self::send), first waiting (up to the connect timeout,
    /// reading meanwhile) until what is queued on `stream` leaves room for
    /// `bytes` under [`MAX_PENDING`] (or nothing is queued): a server that
    /// never opens its window gets [`Error::Timeout`], not an ever longer
    /// queue.
    fn send_with_room(&self, stream: u32, bytes: &[u8], end: bool) -> Result<(), Error> {
        let deadline = Instant::now() + self.options.connect_timeout;
        self.wait(
            Some(deadline),
            "send: the server's HTTP/2 flow-control window stayed shut",
            |inner| {
                let Some(slot) = inner.streams.get(&stream) else {
                    return Some(Err(Error::Closed));
                };
                let room =
                    slot.pending.is_empty() || slot.pending.len().saturating_add(bytes.len()) <= MAX_PENDING;
                room.then_some(Ok(()))
            },
        )?;
        self.send(stream, bytes, end)
    }

    /// Queues `bytes` (and END_STREAM after them, if `end`) on `stream`
    /// and sends what the windows allow.
    fn send(&self, stream: u32, bytes: &[u8], end: bool) -> Result<(), Error> {
        let mut inner = self.lock();
        if let Some(failure) = &inner.failure {
            return Err(failure.to_error());
        }
        let Some(slot) = inner.streams.get_mut(&stream) else {
            return Err(Error::Closed);
        };
        if let Some(code) = slot.reset {
            return Err(Error::StreamReset(code));
        }
        slot.pending.extend_from_slice(bytes);
        slot.end_pending |= end;
        inner.send_pending(stream);
        inner.flush()
    }
}

/// The value of the first field named `name`, as text.
fn field(fields: &[Field], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|f| f.name == name.as_bytes())
        .map(|f| String::from_utf8_lossy(&f.value).into_owned())
}

/// Appends request headers, names in lowercase, refusing what HTTP/2 may
/// not carry.
fn push_headers(fields: &mut Vec<Field>, headers: &[(&str, &str)]) -> Result<(), Error> {
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let bad_name = name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b':');
        let bad_value = value.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n');
        let connection_specific = matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "host"
        );
        if bad_name || bad_value || connection_specific {
            return Err(Error::InvalidArgument(format!(
                "the header {name:?} cannot be sent over HTTP/2"
            )));
        }
        fields.push(Field::new(name, value.trim()));
    }
    Ok(())
}
