//! A WebSocket over any tokio `AsyncRead + AsyncWrite`, driving
//! [`tether_ws::Connection`].

use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use tether_ws::{
    CloseCode, CloseFrame, Config, Connection, Event, Incoming, Limit, Message, MessageKind, MessageRef,
    State,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Error;
use crate::queue::Queue;
use crate::received::{Lent, Received};

mod end;
mod timer;

use timer::Timer;
pub(crate) use timer::now;

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones, closes TCP first.
    Server,
    /// Masks what it sends (keys from the operating system's random
    /// source), waits for the server to close TCP.
    Client,
}

/// Settings of a [`WebSocket`]: tether-ws's limits and timers, and the
/// adapter's own buffers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Limits, keepalive ping, idle and close timeouts (tether-ws's
    /// defaults: 16 MiB frames, 64 MiB messages, ping after 30 s of
    /// silence, given up after 60 s, 5 s for the close handshake).
    pub config: Config,
    /// Bytes of output that may queue (default 1 MiB, the design's
    /// per-connection bound). Over it, a [`Sink`](futures_sink::Sink)
    /// waits for the socket before it takes another message, and receiving
    /// reads nothing more from the socket, so that answers to a peer that
    /// does not read cannot pile up. Messages already read still come out:
    /// answering them may pass the bound by about one read's worth.
    pub max_queued: usize,
    /// The read buffer, allocated at the first read and reused for every
    /// read after it (default 64 KiB). Messages that lie whole in it are
    /// unmasked in place and lent out.
    pub read_buffer: usize,
    /// How long the opening handshake may take (default 10 s, the design's
    /// limit): [`Acceptor::accept`](crate::Acceptor::accept) from the
    /// first byte it waits for to the 101 written, a client from its
    /// request written to the server's answer read. A peer that sends its
    /// head slowly, or not at all, is dropped with
    /// [`Error::Timeout`] when it passes.
    pub handshake_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            config: Config::default(),
            max_queued: 1 << 20,
            read_buffer: 64 << 10,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// Sets tether-ws's limits and timers.
    pub fn config(mut self, config: Config) -> Options {
        self.config = config;
        self
    }

    /// Sets the bound on queued output bytes ([`Options::max_queued`]).
    pub fn max_queued(mut self, bytes: usize) -> Options {
        self.max_queued = bytes;
        self
    }

    /// Sets the size of the read buffer (at least 1 KiB).
    pub fn read_buffer(mut self, bytes: usize) -> Options {
        self.read_buffer = bytes.max(1024);
        self
    }

    /// Sets how long the opening handshake may take
    /// ([`Options::handshake_timeout`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Options {
        self.handshake_timeout = timeout;
        self
    }
}

/// What the next step of receiving found.
enum Found {
    /// A message unmasked where it lies in the read buffer.
    InPlace { kind: MessageKind, range: Range<usize> },
    /// A message assembled by the connection (fragmented, compressed, or
    /// split across reads).
    Owned(Message),
    /// The close handshake is over and the transport shut down.
    End,
}

/// Where the connection's end stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Open, or closing by the close handshake.
    No,
    /// The close handshake is over: flush, (client) wait for the server's
    /// FIN until this deadline, then shut the transport down.
    Flushing,
    /// The connection failed (`failure`): its close frame is flushed and
    /// the transport shut down, within the close timeout, then the failure
    /// is reported.
    Failing,
    /// Shut down; nothing more to do.
    Done,
}

/// A WebSocket connection over `S`, in either role: messages in with
/// [`recv`](Self::recv) (or, without a copy, [`recv_ref`](Self::recv_ref)),
/// out with [`send`](Self::send); also a [`Stream`](futures_core::Stream)
/// of messages and a [`Sink`](futures_sink::Sink) of them.
///
/// Pings are answered and the close handshake run while receiving; the
/// keepalive ping, the idle timeout and the close timeout run on the
/// connection's own deadlines (a tokio timer; the runtime needs its time
/// driver). A negotiated permessage-deflate is applied both ways.
///
/// **Receive to make progress.** As with any WebSocket, control frames
/// arrive among messages: a connection whose owner stops calling
/// `recv` stops answering pings and finishing close handshakes. Use
/// `tokio::select!` to receive and send in one task: `recv`, `recv_ref`
/// and `send` are cancel-safe (all their state is in the `WebSocket`; a
/// message `send` had queued when cancelled goes out with the next call).
/// A send that waits for the socket keeps the keepalive ping and the idle
/// timeout itself: a peer that neither reads nor sends ends it with
/// [`tether_ws::Error::IdleTimeout`]. After the close handshake, what is
/// left to write is given up at the close timeout.
///
/// **Backpressure.** `send` returns once the socket has taken everything
/// queued; the `Sink` lets [`Options::max_queued`] bytes queue before it
/// waits; and receiving stops reading while an echo framed in the read
/// buffer is still unwritten, or more than that bound is queued. While a
/// sender waits, receiving goes on over the bound (the peer may be
/// waiting for us to read); a peer that meanwhile sends pings and reads
/// none of the pongs fails with 1008 once they reach the bound.
pub struct WebSocket<S> {
    io: S,
    conn: Connection,
    role: Role,
    read_buffer: Vec<u8>,
    read_size: usize,
    /// The unread input is `read_buffer[start..end]`.
    start: usize,
    end: usize,
    queue: Queue,
    max_queued: usize,
    close_timeout: Duration,
    timer: Timer,
    /// When the unread input was read: its arrival time, for the
    /// connection's idle timer.
    read_at: Instant,
    ending: Ending,
    /// When the end gives up: writing what is left (a peer that does not
    /// read) and, for a client, waiting for the server's FIN share one
    /// close timeout from when the close handshake was over.
    end_deadline: Option<Instant>,
    close_frame: Option<CloseFrame>,
    failure: Option<tether_ws::Error>,
    protocol: Option<String>,
    /// The tasks waiting for the socket to take output, receiving and
    /// sending: with the halves of a `split` in two tasks, the socket
    /// keeps one writer's waker only, so whichever writes wakes the other.
    write_waiters: [Option<Waker>; 2],
    /// A sender is waiting for the socket (its last flush was pending).
    /// Unlike its waker, which progress takes to wake it, this stays set
    /// until its flush completes: reading must go on meanwhile.
    sending: bool,
    /// Bytes of answers (pongs) the connection queued while the output was
    /// over its bound and reading went on only because a sender waits: a
    /// peer that pings without reading fails at `max_queued` of them.
    unread_answers: usize,
}

/// Which side of a [`WebSocket`] flushes: its index in `write_waiters`.
#[derive(Clone, Copy)]
enum Side {
    Recv = 0,
    Send = 1,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("state", &self.conn.state())
            .field("queued", &self.queue.len())
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// Masking keys for one client connection, drawn 64 at a time from the
/// operating system (RFC 6455 section 10.3: keys must not be predictable).
pub(crate) fn mask_source() -> tether_ws::MaskSource {
    let mut pool = [0u8; 256];
    let mut used = pool.len();
    Box::new(move || {
        if used + 4 > pool.len() {
            // A failing random source leaves the old (random) bytes: better
            // than failing a send half way.
            let _ = getrandom::fill(&mut pool);
            used = 0;
        }
        let key = pool
            .get(used..used + 4)
            .and_then(|k| <[u8; 4]>::try_from(k).ok())
            .unwrap_or_default();
        used += 4;
        key
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A WebSocket over `io` whose opening handshake is already done, with
    /// no extension. `leftover` is whatever was read after the handshake's
    /// head (the first frames), handled before anything is read from `io`.
    pub fn from_raw(io: S, role: Role, options: &Options, leftover: &[u8]) -> WebSocket<S> {
        let ws_role = match role {
            Role::Server => tether_ws::Role::Server,
            Role::Client => tether_ws::Role::Client(mask_source()),
        };
        let conn = Connection::new(ws_role, options.config, timer::now());
        WebSocket::from_connection(io, conn, role, options, leftover)
    }

    /// As [`from_raw`](Self::from_raw), with a [`Connection`] set up by the
    /// caller (an extension installed, a shared configuration).
    pub fn from_connection(
        io: S,
        conn: Connection,
        role: Role,
        options: &Options,
        leftover: &[u8],
    ) -> WebSocket<S> {
        let read_size = options.read_buffer.max(leftover.len());
        let read_buffer = if leftover.is_empty() {
            Vec::new()
        } else {
            leftover.to_vec()
        };
        WebSocket {
            io,
            role,
            close_timeout: conn.config().close_timeout,
            conn,
            end: read_buffer.len(),
            read_buffer,
            read_size,
            start: 0,
            queue: Queue::default(),
            max_queued: options.max_queued,
            timer: Timer::default(),
            read_at: timer::now(),
            ending: Ending::No,
            end_deadline: None,
            close_frame: None,
            failure: None,
            protocol: None,
            write_waiters: [None, None],
            sending: false,
            unread_answers: 0,
        }
    }

    /// Installs a negotiated extension (such as tether-deflate's
    /// `Deflate`); call it before any frame is exchanged.
    pub fn with_extension(mut self, extension: Box<dyn tether_ws::Extension>) -> WebSocket<S> {
        let conn = std::mem::replace(
            &mut self.conn,
            Connection::new(tether_ws::Role::Server, Config::default(), timer::now()),
        );
        self.conn = conn.with_extension(extension);
        self
    }

    pub(crate) fn set_protocol(&mut self, protocol: Option<String>) {
        self.protocol = protocol;
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The peer's close frame, once it has arrived.
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        self.close_frame.as_ref()
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The transport (reading or writing it directly breaks the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The next message, owned; `Ok(None)` once the close handshake is
    /// over (see [`close_frame`](Self::close_frame)). Pings are answered
    /// meanwhile. An error means the connection failed (the close frame
    /// with its code was sent) or the transport did.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        let found = poll_fn(|cx| self.poll_found(cx)).await?;
        Ok(self.own(found))
    }

    /// The next message, lent without a copy where it lies whole in the
    /// read buffer (unmasked there), with a way to answer it: the answer
    /// is queued and goes out with the next call that writes
    /// ([`recv`](Self::recv), `recv_ref`, [`send`](Self::send),
    /// [`flush`](Self::flush)).
    ///
    /// ```no_run
    /// # async fn echo(mut ws: tether_tokio::WebSocket<tokio::net::TcpStream>) -> Result<(), tether_tokio::Error> {
    /// while let Some(message) = ws.recv_ref().await? {
    ///     message.echo()?; // framed where it lies: no copy
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv_ref(&mut self) -> Result<Option<Received<'_>>, Error> {
        let found = poll_fn(|cx| self.poll_found(cx)).await?;
        let message = match found {
            Found::End => return Ok(None),
            Found::Owned(message) => Lent::Owned(message),
            Found::InPlace { kind, range } => Lent::InPlace {
                kind,
                range,
                buffer: &mut self.read_buffer,
            },
        };
        Ok(Some(Received {
            message,
            conn: &mut self.conn,
            queue: &mut self.queue,
        }))
    }

    fn own(&self, found: Found) -> Option<Message> {
        match found {
            Found::End => None,
            Found::Owned(message) => Some(message),
            Found::InPlace { kind, range } => {
                let bytes = self.read_buffer.get(range).unwrap_or_default();
                Some(match kind {
                    MessageKind::Binary => Message::binary(bytes),
                    // The connection validated these bytes: checking again
                    // is the price of having no `unsafe` here.
                    MessageKind::Text => Message::text(String::from_utf8_lossy(bytes)),
                })
            }
        }
    }

    /// Sends a message and waits until the socket has taken everything
    /// queued (it waits while the socket pushes back).
    pub async fn send<'m>(&mut self, message: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        self.queue_message(message)?;
        self.flush().await
    }

    /// Queues a message without waiting; [`flush`](Self::flush) (or the
    /// next `send` or receive) writes it.
    pub fn queue_message<'m>(&mut self, message: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        self.conn
            .send(message, &mut self.queue.out)
            .map_err(Error::from_ws)
    }

    /// Queues an owned message; a large payload is written from where it
    /// is (a vectored write after its header), not copied.
    pub fn queue_owned(&mut self, message: Message) -> Result<(), Error> {
        if let Some(payload) = self
            .conn
            .send_owned(message, &mut self.queue.out)
            .map_err(Error::from_ws)?
        {
            self.queue.push_payload(payload);
        }
        Ok(())
    }

    /// Sends a ping (at most 125 bytes of payload) and flushes.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn
            .ping(payload, &mut self.queue.out)
            .map_err(Error::from_ws)?;
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_queue(cx)).await?;
        Ok(())
    }

    /// Starts the close handshake and finishes it: sends a close frame,
    /// reads (and drops) messages until the peer's close frame or the close
    /// timeout, then shuts the transport down.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.conn.can_send() {
            self.conn
                .close(code, reason, timer::now(), &mut self.queue.out)
                .map_err(Error::from_ws)?;
            self.arm_close_deadline();
        }
        loop {
            match poll_fn(|cx| self.poll_found(cx)).await {
                Ok(Found::End) => return Ok(()),
                Ok(_) => {}
                Err(Error::Protocol(tether_ws::Error::CloseTimeout)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn poll_write_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.ending == Ending::Failing {
            return self.poll_end(Side::Send, cx).map_ok(|_| ());
        }
        if self.flush_as(Side::Send, cx)?.is_pending() {
            return self.deadlines_while_sending(cx);
        }
        Poll::Ready(Ok(ready!(Pin::new(&mut self.io).poll_flush(cx))?))
    }

    /// The connection's deadlines while a send waits for the socket: a task
    /// that receives and then sends (as most do) receives nothing while
    /// its send waits, and a peer that neither reads nor sends would keep
    /// it there for good. The keepalive ping is queued and the idle
    /// timeout fails the connection, as receiving would. Pending (with the
    /// timer set) until one of them does; left to the receiving task when
    /// another task's receive holds the timer (the halves of a `split`).
    fn deadlines_while_sending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.ending == Ending::Failing {
            return self.poll_end(Side::Send, cx).map_ok(|_| ());
        }
        if self.timer.held_by_another(cx) {
            return Poll::Pending;
        }
        loop {
            let Some(deadline) = self.conn.poll_timeout() else {
                return Poll::Pending;
            };
            let now = timer::now();
            if now < deadline {
                self.timer.arm(deadline);
                ready!(self.timer.poll(cx));
                continue;
            }
            match self.conn.handle_timeout(now, &mut self.queue.out) {
                Some(event @ Event::Failed(_)) => {
                    let _ = self.event(event, cx);
                    return self.poll_end(Side::Send, cx).map_ok(|_| ());
                }
                // The keepalive ping, queued behind what waits.
                Some(_) | None => {
                    if self.conn.poll_timeout().is_some_and(|next| next <= now) {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Writes what is queued, for `side`; progress wakes the other side
    /// if it waits, and waiting registers this side.
    #[inline]
    fn flush_as(&mut self, side: Side, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.queue.is_empty() {
            if let Side::Send = side {
                self.sending = false;
            }
            return Poll::Ready(Ok(()));
        }
        self.flush_queued(side, cx)
    }

    /// [`flush_as`](Self::flush_as) with something queued.
    fn flush_queued(&mut self, side: Side, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let before = self.queue.len();
        let result = self.queue.poll_flush(&mut self.io, &self.read_buffer, cx);
        if self.queue.len() < before {
            let other = match side {
                Side::Recv => Side::Send,
                Side::Send => Side::Recv,
            };
            if let Some(waker) = self.write_waiters.get_mut(other as usize).and_then(Option::take) {
                waker.wake();
            }
        }
        if let Side::Send = side {
            self.sending = result.is_pending();
        }
        if result.is_pending()
            && let Some(slot) = self.write_waiters.get_mut(side as usize)
            && !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        {
            *slot = Some(cx.waker().clone());
        }
        result
    }

    /// Everything receiving does: timers, frames already read, the end of
    /// the connection, writing what is queued, reading more.
    fn poll_found(&mut self, cx: &mut Context<'_>) -> Poll<Result<Found, Error>> {
        if self.ending == Ending::Done
            && let Some(e) = &self.failure
        {
            return Poll::Ready(Err(Error::Protocol(e.clone())));
        }
        // The connection's deadlines are looked at before the task waits
        // (when nothing is left to read), after a read that finds the timer
        // passed, and when the timer fires: not once a message (they cost
        // more to work out than a small message costs to receive). The
        // clock is read after every read (the arrival time, for the idle
        // timer) and before waiting, not on every call.
        let mut now = self.read_at;
        let mut timers_due = false;
        loop {
            if self.ending != Ending::No {
                return self.poll_end(Side::Recv, cx);
            }
            if timers_due {
                timers_due = false;
                if self.conn.poll_timeout().is_some_and(|deadline| now >= deadline)
                    && let Some(event) = self.conn.handle_timeout(now, &mut self.queue.out)
                    && let Poll::Ready(found) = self.event(event, cx)
                {
                    return Poll::Ready(found);
                }
                continue;
            }
            if self.start < self.end {
                let Some(input) = self.read_buffer.get_mut(self.start..self.end) else {
                    self.start = self.end;
                    continue;
                };
                let base = input.as_ptr() as usize;
                let offset = self.start;
                // Over the bound, reading goes on only for a waiting
                // sender's sake; what the connection answers meanwhile is
                // counted, and a peer that never reads it fails.
                let over_bound = self
                    .sending
                    .then(|| self.queue.len())
                    .filter(|&queued| queued > self.max_queued);
                let (used, incoming) = self
                    .conn
                    .receive_in_place(input, self.read_at, &mut self.queue.out);
                self.start += used;
                if let Some(queued) = over_bound {
                    self.unread_answers += self.queue.len().saturating_sub(queued);
                    if self.unread_answers > self.max_queued {
                        let max = self.max_queued as u64;
                        let event = self
                            .conn
                            .fail_over_limit(Limit::UnreadAnswers, max, &mut self.queue.out);
                        if let Poll::Ready(found) = self.event(event, cx) {
                            return Poll::Ready(found);
                        }
                        continue;
                    }
                } else {
                    self.unread_answers = 0;
                }
                match incoming {
                    None => {}
                    Some(Incoming::Borrowed(message)) => {
                        let bytes = message.as_bytes();
                        let at = offset + (bytes.as_ptr() as usize - base);
                        return Poll::Ready(Ok(Found::InPlace {
                            kind: message.kind(),
                            range: at..at + bytes.len(),
                        }));
                    }
                    Some(Incoming::Event(event)) => {
                        if let Poll::Ready(found) = self.event(event, cx) {
                            return Poll::Ready(found);
                        }
                    }
                }
                continue;
            }
            if self.conn.state() == State::Closed {
                self.ending = Ending::Flushing;
                continue;
            }
            // Everything read is handled: write what is queued (pongs,
            // answers), then read more, unless the output must drain first.
            let blocked = match self.flush_as(Side::Recv, cx) {
                Poll::Ready(Ok(())) => false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                // Over the bound, reading stops, so that answers to what
                // is read cannot pile up; but not while a sender waits for
                // the socket: the peer may be waiting for us to read before
                // it reads, and both would wait forever.
                Poll::Pending => {
                    self.queue.holds_read_buffer() || (self.queue.len() > self.max_queued && !self.sending)
                }
            };
            if !blocked {
                if self.read_buffer.len() < self.read_size {
                    self.read_buffer.resize(self.read_size, 0);
                }
                let mut buf = ReadBuf::new(&mut self.read_buffer);
                match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        let n = buf.filled().len();
                        if n == 0 {
                            return Poll::Ready(Err(Error::Dropped));
                        }
                        self.start = 0;
                        self.end = n;
                        now = timer::now();
                        self.read_at = now;
                        timers_due = self.timer.is_due(now);
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::Io(e))),
                    Poll::Pending => {}
                }
            }
            // The timer already waits for this task, set no later than
            // the connection's next deadline: nothing to work out.
            if self.timer.waits_for(cx) {
                return Poll::Pending;
            }
            let Some(deadline) = self.conn.poll_timeout() else {
                return Poll::Pending;
            };
            now = timer::now();
            if now < deadline {
                self.timer.arm(deadline);
                if self.timer.poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            timers_due = true;
        }
    }

    /// Handles an event other than a lent message: `Pending` means "go on".
    fn event(&mut self, event: Event, _cx: &mut Context<'_>) -> Poll<Result<Found, Error>> {
        match event {
            Event::Message(message) => Poll::Ready(Ok(Found::Owned(message))),
            Event::Ping(_) | Event::Pong(_) => Poll::Pending,
            Event::Close(frame) => {
                self.close_frame = Some(frame);
                self.ending = Ending::Flushing;
                Poll::Pending
            }
            // The failure's close frame is written before the failure is
            // reported (see `poll_failing`).
            Event::Failed(e) => {
                self.failure = Some(e);
                self.ending = Ending::Failing;
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ending == Ending::Done && this.failure.is_none() {
            return Poll::Ready(None);
        }
        match ready!(this.poll_found(cx)) {
            Ok(found) => Poll::Ready(this.own(found).map(Ok)),
            Err(e) => {
                if this.failure.is_none() {
                    this.ending = Ending::Done;
                }
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_sink::Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.queue.len() >= this.max_queued && this.flush_as(Side::Send, cx)?.is_pending() {
            return this.deadlines_while_sending(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().queue_owned(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(ready!(self.get_mut().poll_write_queue(cx))?))
    }

    /// Starts the close handshake (1000) if it has not begun, and flushes;
    /// the handshake finishes while the stream is read.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.conn.can_send() {
            this.conn
                .close(CloseCode::NORMAL, "", timer::now(), &mut this.queue.out)
                .map_err(Error::from_ws)?;
            this.arm_close_deadline();
        }
        Poll::Ready(Ok(ready!(this.poll_write_queue(cx))?))
    }
}
