//! The WebSocket client for an event loop the caller owns (mio or any
//! other readiness loop).

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use tether_ws::{CloseCode, Message, State};

use crate::builder::WebSocketBuilder;
use crate::error::Error;
use crate::event::Event;
use crate::session::Session;

/// Bytes read per `read` call, on the stack: an idle client owns no read
/// buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Written bytes are dropped from the front of the output once this many
/// have accumulated (a partial write otherwise keeps its offset).
const COMPACT_AFTER: usize = 64 * 1024;

/// A WebSocket client over a non-blocking stream that the caller's event
/// loop polls: the opening handshake, then the connection, with no thread,
/// no sleep and no socket loop of its own.
///
/// `S` is any `Read + Write` whose operations return
/// [`ErrorKind::WouldBlock`] instead of blocking, typically a
/// `mio::net::TcpStream`.
///
/// # Calling contract
///
/// 1. Connect the socket yourself ([`resolve`](crate::resolve)
///    gives the addresses), register it for readable and writable events,
///    and make the client with [`NonBlockingClient::new`]: it queues the
///    upgrade request but writes nothing yet (the connection may still be
///    in progress).
/// 2. When the socket is **writable**, call
///    [`on_writable`](Self::on_writable): it writes until the output is
///    flushed or the socket pushes back. Ask for writable events only while
///    [`wants_write`](Self::wants_write) is true.
/// 3. When the socket is **readable**, call
///    [`on_readable`](Self::on_readable): it reads until `WouldBlock` (as
///    edge-triggered polling requires) or until it has read its budget
///    ([`WebSocketBuilder::read_budget`], 256 KiB by default), feeds the
///    bytes to the protocol and writes the automatic replies (pongs, the
///    close echo). While [`wants_read`](Self::wants_read) is true the
///    budget ran out first: the socket may hold more, and no new readiness
///    event will say so, so call `on_readable` again once the loop's other
///    work is done ([`poll_timeout`](Self::poll_timeout) is then due at
///    once, so that the poll does not wait).
/// 4. After either, drain [`poll_event`](Self::poll_event) until `None`:
///    [`Event::Open`] when the handshake completes, then messages, pings,
///    pongs and [`Event::Closed`]; an `Err` means the connection failed
///    (refused handshake, protocol error, lost transport) and is the last
///    item.
/// 5. Pass [`poll_timeout`](Self::poll_timeout) as (part of) the poll
///    timeout and call [`handle_timeout`](Self::handle_timeout) when it has
///    passed: handshake timeout, keepalive ping, idle and close timeouts,
///    and the wait for the server to close TCP after the close handshake.
/// 6. Sending ([`send_text`](Self::send_text), [`close`](Self::close),
///    ...) queues the frame and writes what the socket takes at once; the
///    rest goes on the next `on_writable`. Transport errors met while
///    writing come out of `poll_event`. The automatic answers (pongs, the
///    close echo) may keep at most 1 MiB queued unwritten
///    ([`WebSocketBuilder::max_queued_answers`]): a server that
///    goes on pinging without reading the pongs fails the connection with
///    close code 1008 (what you send yourself is yours to bound, with
///    [`pending_output`](Self::pending_output)).
/// 7. When [`is_finished`](Self::is_finished) is true, deregister and drop
///    the socket: the close handshake is over and either the server closed
///    TCP or the linger time ran out (RFC 6455 section 7.1.1 wants the
///    server to close first), or the connection failed.
///
/// # Example
///
/// ```no_run
/// use std::time::Instant;
/// use mio::{Events, Interest, Poll, Token};
/// use tether_client::{Event, WebSocket};
///
/// let builder = WebSocket::builder("ws://127.0.0.1:9001/echo");
/// let addr = tether_client::resolve(&builder.parse_url()?).unwrap()[0];
/// let mut poll = Poll::new().unwrap();
/// let mut socket = mio::net::TcpStream::connect(addr).unwrap();
/// poll.registry()
///     .register(&mut socket, Token(0), Interest::READABLE | Interest::WRITABLE)
///     .unwrap();
/// let mut client = builder.nonblocking(socket, Instant::now())?;
/// let mut events = Events::with_capacity(16);
/// while !client.is_finished() {
///     let timeout = client.poll_timeout().map(|t| t.saturating_duration_since(Instant::now()));
///     poll.poll(&mut events, timeout).unwrap();
///     for event in events.iter() {
///         if event.is_writable() {
///             client.on_writable();
///         }
///         if event.is_readable() {
///             client.on_readable(Instant::now());
///         }
///     }
///     if client.wants_read() {
///         client.on_readable(Instant::now());
///     }
///     client.handle_timeout(Instant::now());
///     while let Some(event) = client.poll_event() {
///         match event? {
///             Event::Open => client.send_text("hello")?,
///             Event::Message(m) => {
///                 println!("{m:?}");
///                 client.close(tether_client::CloseCode::NORMAL, "done", Instant::now())?;
///             }
///             _ => {}
///         }
///     }
/// }
/// # Ok::<(), tether_client::Error>(())
/// ```
pub struct NonBlockingClient<S> {
    stream: S,
    session: Session,
    /// How much of `session.out` is written.
    written: usize,
    /// The transport is over: the server closed it, or it failed.
    eof: bool,
    close_linger: Duration,
    /// Once the session is done: when to stop waiting for the server to
    /// close TCP.
    linger_deadline: Option<Instant>,
    /// The latest time the caller passed in.
    now: Instant,
    /// Bytes one `on_readable` reads at most.
    read_budget: usize,
    /// The last `on_readable` stopped at its budget, not at `WouldBlock`.
    read_pending: bool,
}

impl<S> std::fmt::Debug for NonBlockingClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonBlockingClient")
            .field("state", &self.session.state())
            .field("handshaking", &self.session.is_handshaking())
            .field("pending_output", &(self.session.out.len() - self.written))
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> NonBlockingClient<S> {
    /// Wraps `stream` (connected, or with the connection in progress) and
    /// queues the upgrade request that `options` describe. `now` starts the
    /// handshake timeout. Only `ws:` URLs; reconnection settings do not
    /// apply here (the caller owns the socket, so the caller reconnects).
    pub fn new(stream: S, options: &WebSocketBuilder, now: Instant) -> Result<NonBlockingClient<S>, Error> {
        let url = options.parse_url()?;
        let session = Session::new(options, &url, now)?;
        Ok(NonBlockingClient {
            stream,
            session,
            written: 0,
            eof: false,
            close_linger: options.close_linger,
            linger_deadline: None,
            now,
            read_budget: options.read_budget.max(1),
            read_pending: false,
        })
    }

    /// Reads until the stream would block, or until this call has read
    /// its budget ([`WebSocketBuilder::read_budget`]; then
    /// [`wants_read`](Self::wants_read) is true), and processes what
    /// arrived.
    pub fn on_readable(&mut self, now: Instant) {
        self.now = now;
        self.read_pending = false;
        let mut buf = [0u8; READ_CHUNK];
        let mut left = self.read_budget;
        while !self.eof {
            if left == 0 {
                self.read_pending = true;
                break;
            }
            let room = left.min(buf.len());
            match self.stream.read(buf.get_mut(..room).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    self.session.on_eof();
                }
                Ok(n) => {
                    left = left.saturating_sub(n);
                    self.session.receive(buf.get(..n).unwrap_or_default());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    self.session.fail(Error::io("read", e));
                }
            }
        }
        self.flush();
        self.after(now);
    }

    /// Writes queued output until it is flushed or the stream would block.
    pub fn on_writable(&mut self) {
        self.flush();
    }

    /// Whether the last [`on_readable`](Self::on_readable) stopped at its
    /// budget rather than at `WouldBlock`: the socket may hold more, which
    /// edge-triggered polling will not announce again, so call
    /// `on_readable` again.
    pub fn wants_read(&self) -> bool {
        self.read_pending && !self.eof
    }

    /// Whether output is waiting for the socket to become writable.
    pub fn wants_write(&self) -> bool {
        !self.eof && self.written < self.session.out.len()
    }

    /// The next event, in order; `None` when there is nothing more until
    /// the next readiness or timeout. An `Err` ends the connection.
    ///
    /// Received bytes are processed here, one event at a time, so that
    /// what the caller sends in answer to an event goes out before any
    /// automatic reply to what came after it (the pong to a later ping, or
    /// the close frame of a later protocol error).
    pub fn poll_event(&mut self) -> Option<Result<Event, Error>> {
        let event = self.session.next_event(self.now);
        self.flush();
        self.after(self.now);
        event
    }

    /// The next moment [`handle_timeout`](Self::handle_timeout) has work to
    /// do, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        if self.wants_read() {
            // Input waits in the socket: the poll should not.
            return Some(self.now);
        }
        match (self.session.poll_timeout(), self.linger_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Acts on the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.session.handle_timeout(now);
        self.flush();
        self.after(now);
        if self.linger_deadline.is_some_and(|deadline| now >= deadline) {
            self.eof = true;
        }
    }

    /// Whether the opening handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether messages can be sent (the handshake completed and no close
    /// frame was sent).
    pub fn is_open(&self) -> bool {
        self.session.is_open()
    }

    /// Where the close handshake stands (`Closed` before the opening
    /// handshake completes, too).
    pub fn state(&self) -> State {
        self.session.state()
    }

    /// Whether the caller can drop the socket: the connection is over, its
    /// output flushed (or undeliverable), and the server closed TCP or the
    /// linger time passed.
    pub fn is_finished(&self) -> bool {
        self.session.is_done() && !self.wants_write() && self.eof
    }

    /// The subprotocol the server selected, once open.
    pub fn protocol(&self) -> Option<&str> {
        self.session.protocol()
    }

    /// The `Sec-WebSocket-Extensions` the server answered with, once open.
    pub fn extensions(&self) -> Option<&str> {
        self.session.extensions()
    }

    /// Sends a message.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.session.send(message)?;
        self.flush();
        Ok(())
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.session.send_text(text)?;
        self.flush();
        Ok(())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.session.send_binary(data)?;
        self.flush();
        Ok(())
    }

    /// Sends a ping of at most 125 bytes.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.session.ping(payload)?;
        self.flush();
        Ok(())
    }

    /// Sends an unsolicited pong, a one-way heartbeat.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.session.pong(payload)?;
        self.flush();
        Ok(())
    }

    /// Starts the close handshake; [`Event::Closed`] follows when the
    /// server answers (or an error on the close timeout).
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), Error> {
        self.session.close(code, reason, now)?;
        self.flush();
        Ok(())
    }

    /// Output queued but not yet written, in bytes.
    pub fn pending_output(&self) -> usize {
        self.session.out.len() - self.written
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, e.g. to register it with a `mio::Registry`. Reading or
    /// writing it directly breaks the protocol.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn flush(&mut self) {
        while !self.eof && self.written < self.session.out.len() {
            match self
                .stream
                .write(self.session.out.get(self.written..).unwrap_or_default())
            {
                Ok(0) => {
                    self.eof = true;
                    self.session.fail(Error::ConnectionLost);
                }
                Ok(n) => self.written += n,
                // NotConnected: a connect still in progress on some systems.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    self.session.fail(Error::io("write", e));
                }
            }
        }
        self.session.written(self.session.out.len() - self.written);
        if self.written == self.session.out.len() {
            self.session.out.clear();
            self.written = 0;
        } else if self.written >= COMPACT_AFTER {
            self.session.out.drain(..self.written);
            self.written = 0;
        }
    }

    /// Starts the linger timer once the connection is over.
    fn after(&mut self, now: Instant) {
        if self.session.is_done() && self.linger_deadline.is_none() {
            if self.session.was_opened() {
                self.linger_deadline = Some(now + self.close_linger);
            } else {
                // The handshake failed: no close handshake to wait out.
                self.eof = true;
            }
        }
    }
}

impl WebSocketBuilder {
    /// Wraps a socket (connected or connecting, typically non-blocking,
    /// such as a `mio::net::TcpStream`) in a [`NonBlockingClient`]; same as
    /// [`NonBlockingClient::new`].
    pub fn nonblocking<S: Read + Write>(
        &self,
        stream: S,
        now: Instant,
    ) -> Result<NonBlockingClient<S>, Error> {
        NonBlockingClient::new(stream, self, now)
    }
}
