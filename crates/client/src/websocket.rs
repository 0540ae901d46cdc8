//! The blocking WebSocket client.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tether_backoff::Attempts;
use tether_client_core::url::Url;
use tether_ws::{CloseCode, CloseFrame, Message, State};

use crate::builder::WebSocketBuilder;
use crate::error::Error;
use crate::event::Event;
use crate::session::Session;
use crate::transport::{Transport, is_timeout};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

impl WebSocketBuilder {
    /// Connects, runs the opening handshake and returns the open
    /// connection.
    pub fn connect(self) -> Result<WebSocket, Error> {
        let url = self.parse_url()?;
        let (stream, session) = establish(&self, &url)?;
        Ok(WebSocket {
            stream,
            session,
            url,
            read_buf: vec![0; READ_CHUNK],
            read_timeout: None,
            lost: false,
            closing_by_us: false,
            attempts: Attempts::new(self.reconnect.unwrap_or_default()),
            opened_at: Instant::now(),
            options: self,
        })
    }
}

/// Opens a TCP connection to `url` and runs the opening handshake.
fn establish(options: &WebSocketBuilder, url: &Url) -> Result<(Transport, Session), Error> {
    let mut stream = Transport::connect(url, options.connect_timeout, &options.tls)?;
    let now = Instant::now();
    let mut session = Session::new(options, url, now)?;
    // One deadline for TLS and the upgrade: a server that accepts TCP and
    // then says nothing (or trickles) must not hold `connect` past it.
    let deadline = now + options.handshake_timeout;
    const STEP: &str = "opening handshake";
    stream.handshake(deadline, STEP)?;
    crate::transport::time_left(stream.tcp(), deadline, STEP)?;
    stream.write_all(&session.out).map_err(|e| {
        if is_timeout(&e) {
            Error::Timeout(STEP)
        } else {
            Error::io("write the upgrade request", e)
        }
    })?;
    session.out.clear();
    let mut buf = vec![0u8; 4096];
    loop {
        match session.next_event(Instant::now()) {
            Some(Ok(Event::Open)) => {
                stream
                    .tcp()
                    .set_write_timeout(options.write_timeout)
                    .map_err(|e| Error::io("set the write timeout", e))?;
                return Ok((stream, session));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(_)) => unreachable!("nothing comes before Open"),
            None => {}
        }
        let now = Instant::now();
        let deadline = session.poll_timeout().unwrap_or(now);
        if deadline <= now {
            session.handle_timeout(now);
            continue;
        }
        stream
            .tcp()
            .set_read_timeout(Some(deadline - now))
            .map_err(|e| Error::io("set the read timeout", e))?;
        match stream.read(&mut buf) {
            Ok(0) => session.on_eof(),
            Ok(n) => session.receive(buf.get(..n).unwrap_or_default()),
            Err(e) if is_timeout(&e) => session.handle_timeout(Instant::now()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => session.fail(Error::io("read the handshake response", e)),
        }
    }
}

fn write_all(stream: &mut Transport, bytes: &[u8]) -> Result<(), Error> {
    stream.write_all(bytes).map_err(|e| {
        if is_timeout(&e) {
            Error::Timeout("write")
        } else {
            Error::io("write", e)
        }
    })
}

/// A blocking WebSocket client connection over `std::net::TcpStream`, or
/// TLS over it for `wss://` (feature `tls`).
///
/// Pongs to the server's pings and the echo of its close frame are sent
/// automatically while [`recv`](Self::recv) reads; keepalive pings and the
/// idle timeout run during `recv` too (a client that does not call `recv`
/// for a while does not answer pings meanwhile).
///
/// ```no_run
/// use tether_client::{Event, WebSocket};
///
/// let mut ws = WebSocket::connect("ws://127.0.0.1:9001/echo")?;
/// ws.send_text("hello")?;
/// match ws.recv()? {
///     Event::Message(message) => assert_eq!(message.as_text(), Some("hello")),
///     other => println!("{other:?}"),
/// }
/// ws.close(tether_client::CloseCode::NORMAL, "bye")?;
/// # Ok::<(), tether_client::Error>(())
/// ```
pub struct WebSocket {
    stream: Transport,
    session: Session,
    options: WebSocketBuilder,
    url: Url,
    read_buf: Vec<u8>,
    /// The read timeout currently set on the socket.
    read_timeout: Option<Duration>,
    /// The transport failed outside `recv` (a write); `recv` reconnects or
    /// reports it.
    lost: bool,
    /// We started the close: never reconnect after it.
    closing_by_us: bool,
    /// Reconnection attempts in a row, kept across reconnections: a server
    /// that lets the client in and closes at once meets growing waits
    /// (and, with a limit, the end). Started over once a connection
    /// proves itself: a message from it, or up as long as the longest
    /// wait.
    attempts: Attempts,
    /// When the current connection opened.
    opened_at: Instant,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.url.to_string())
            .field("state", &self.session.state())
            .field("protocol", &self.session.protocol())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// Connects to a `ws://` URL with the default settings.
    pub fn connect(url: &str) -> Result<WebSocket, Error> {
        WebSocketBuilder::new(url).connect()
    }

    /// A builder for `url`, to change the settings before connecting.
    pub fn builder(url: impl Into<String>) -> WebSocketBuilder {
        WebSocketBuilder::new(url)
    }

    /// The URL connected to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The subprotocol the server selected, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.session.protocol()
    }

    /// The `Sec-WebSocket-Extensions` header the server answered with, if
    /// any (e.g. `permessage-deflate; client_max_window_bits=15`).
    pub fn extensions(&self) -> Option<&str> {
        self.session.extensions()
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        self.session.state()
    }

    /// The socket (e.g. for its addresses).
    pub fn get_ref(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Sends a message.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.session.send(message)?;
        self.flush()
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.session.send_text(text)?;
        self.flush()
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.session.send_binary(data)?;
        self.flush()
    }

    /// Sends a ping (at most 125 bytes); its pong comes back through
    /// [`recv`](Self::recv) as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.session.ping(payload)?;
        self.flush()
    }

    /// Sends an unsolicited pong, a one-way heartbeat.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.session.pong(payload)?;
        self.flush()
    }

    /// Writes what the session has queued.
    fn flush(&mut self) -> Result<(), Error> {
        if self.session.out.is_empty() {
            return Ok(());
        }
        let result = write_all(&mut self.stream, &self.session.out);
        self.session.out.clear();
        if result.is_err() {
            self.lost = true;
            self.session.abandon();
        }
        result
    }

    /// Sends a close frame and runs the close handshake to its end:
    /// waits (up to the close timeout) for the server's close frame,
    /// discarding messages that arrive meanwhile, then briefly for the
    /// server to close TCP. Returns the server's close frame.
    ///
    /// To keep the messages that arrive while closing, use
    /// [`start_close`](Self::start_close) and go on calling `recv` until
    /// [`Event::Closed`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseFrame, Error> {
        self.start_close(code, reason)?;
        loop {
            match self.recv()? {
                Event::Closed(frame) => return Ok(frame),
                _ => continue,
            }
        }
    }

    /// Sends a close frame and returns at once; [`recv`](Self::recv) goes
    /// on returning what arrives until [`Event::Closed`]. Code 1000 is a
    /// normal closure; codes 3000-4999 are the application's.
    pub fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.session.close(code, reason, Instant::now())?;
        self.closing_by_us = true;
        self.flush()
    }

    /// The next data message, skipping pings and pongs; `Ok(None)` once the
    /// close handshake is over.
    pub fn recv_message(&mut self) -> Result<Option<Message>, Error> {
        loop {
            match self.recv() {
                Ok(Event::Message(message)) => return Ok(Some(message)),
                Ok(Event::Closed(_)) | Err(Error::Closed) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The data messages, until the close handshake is over or an error
    /// (which is the last item).
    pub fn messages(&mut self) -> Messages<'_> {
        Messages {
            ws: self,
            done: false,
        }
    }

    /// Blocks until something happens: a message, a ping (already
    /// answered), a pong, the end of the close handshake
    /// ([`Event::Closed`], whichever side started it), or, with
    /// reconnection on, a new connection ([`Event::Open`]).
    ///
    /// After `Event::Closed` or an error, further calls return
    /// [`Error::Closed`].
    pub fn recv(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(item) = self.session.next_event(Instant::now()) {
                // The pong, close echo or failure close frame it wrote.
                let _ = self.flush();
                return self.deliver(item);
            }
            if self.session.is_done() {
                if self.lost {
                    self.lost = false;
                    if self.reconnects() && self.reconnect()? {
                        return Ok(Event::Open);
                    }
                    return Err(Error::ConnectionLost);
                }
                return Err(Error::Closed);
            }
            self.read_once();
            // Pongs, close echoes, keepalive pings, failure close frames. A
            // failed write marks the connection lost, for the next round.
            let _ = self.flush();
        }
    }

    fn reconnects(&self) -> bool {
        self.options.reconnect.is_some() && !self.closing_by_us
    }

    fn deliver(&mut self, item: Result<Event, Error>) -> Result<Event, Error> {
        match item {
            Ok(Event::Closed(frame)) => {
                let _ = self.flush();
                self.linger();
                let code = frame.code.0;
                if self.reconnects() && matches!(code, 1001 | 1011..=1014) && self.reconnect()? {
                    return Ok(Event::Open);
                }
                Ok(Event::Closed(frame))
            }
            Ok(event) => {
                if matches!(event, Event::Message(_)) {
                    self.attempts.reset();
                }
                Ok(event)
            }
            Err(e) => {
                let _ = self.flush();
                self.session.abandon();
                if e.is_network_error() {
                    self.stream.shutdown();
                } else {
                    self.linger();
                }
                if self.reconnects() && e.is_network_error() && self.reconnect()? {
                    return Ok(Event::Open);
                }
                Err(e)
            }
        }
    }

    /// One read (bounded by the next timer), fed to the session.
    fn read_once(&mut self) {
        let now = Instant::now();
        let wait = match self.session.poll_timeout() {
            Some(deadline) if deadline <= now => {
                self.session.handle_timeout(now);
                return;
            }
            Some(deadline) => Some((deadline - now).max(Duration::from_millis(1))),
            None => None,
        };
        if wait != self.read_timeout {
            if let Err(e) = self.stream.tcp().set_read_timeout(wait) {
                return self.session.fail(Error::io("set the read timeout", e));
            }
            self.read_timeout = wait;
        }
        match self.stream.read(&mut self.read_buf) {
            Ok(0) => self.session.on_eof(),
            Ok(n) => self.session.receive(self.read_buf.get(..n).unwrap_or_default()),
            Err(e) if is_timeout(&e) => self.session.handle_timeout(Instant::now()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => self.session.fail(Error::io("read", e)),
        }
    }

    /// After the close handshake: waits up to the linger time for the
    /// server to close TCP, then closes our side.
    fn linger(&mut self) {
        let deadline = Instant::now() + self.options.close_linger;
        loop {
            let now = Instant::now();
            if now >= deadline || self.stream.tcp().set_read_timeout(Some(deadline - now)).is_err() {
                break;
            }
            self.read_timeout = Some(deadline - now);
            match self.stream.read(&mut self.read_buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.stream.shutdown();
    }

    /// Reconnects with backoff; on success the new connection replaces the
    /// old one (true). False, with nothing tried, when the attempts in a
    /// row are used up: the caller reports what ended the connection.
    fn reconnect(&mut self) -> Result<bool, Error> {
        let longest = self.attempts.backoff().delay(u32::MAX);
        if self.opened_at.elapsed() >= longest {
            self.attempts.reset();
        }
        loop {
            if self.attempts.exhausted() {
                return Ok(false);
            }
            std::thread::sleep(self.attempts.next_delay());
            match establish(&self.options, &self.url) {
                Ok((stream, session)) => {
                    self.stream = stream;
                    self.session = session;
                    self.read_timeout = None;
                    self.lost = false;
                    self.opened_at = Instant::now();
                    return Ok(true);
                }
                Err(e) => {
                    let retry = e.is_network_error()
                        || matches!(e, Error::Refused { status, .. } if status >= 500 || status == 429);
                    if !retry || self.attempts.exhausted() {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// The data messages of a [`WebSocket`], from [`WebSocket::messages`].
#[derive(Debug)]
pub struct Messages<'a> {
    ws: &'a mut WebSocket,
    done: bool,
}

impl Iterator for Messages<'_> {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.ws.recv_message() {
            Ok(Some(message)) => Some(Ok(message)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
