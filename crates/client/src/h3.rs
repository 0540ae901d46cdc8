//! HTTP/3: an event stream over a QUIC connection of its own (tether-quic's
//! `QuicClient` on a UDP socket), read with blocking calls like
//! [`crate::EventSource`]'s.

use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_client_core::url::Url;
use tether_h2::hpack::Field;
use tether_quic::{ClientEvent, QuicClient};
use tether_sse::{Item, Limits, MessageEvent, Parser};

use crate::error::Error;

/// How long one wait for a datagram lasts at most, so that QUIC's timers
/// (acknowledgements, retransmissions) run on time.
const SLICE: Duration = Duration::from_millis(5);

/// Bytes of the stream the server may send ahead of what was read.
const STREAM_WINDOW: u32 = 1 << 20;

/// Settings for an [`H3EventStream`].
///
/// | setting | default |
/// | --- | --- |
/// | connect timeout (QUIC handshake and the response head) | 10 s |
/// | read timeout of [`H3EventStream::next_event`] | none |
/// | extra request headers (`last-event-id` to resume) | none |
/// | event stream parser limits ([`Limits`]) | 64 KiB lines, 16 MiB events |
#[derive(Debug, Clone)]
pub struct H3Builder {
    url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    headers: Vec<(String, String)>,
    limits: Limits,
}

impl H3Builder {
    /// The defaults, for an `https://` URL (HTTP/3 is TLS 1.3 inside QUIC,
    /// on the UDP port of the URL's port number).
    pub fn new(url: impl Into<String>) -> H3Builder {
        H3Builder {
            url: url.into(),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: None,
            headers: Vec::new(),
            limits: Limits::new(),
        }
    }

    /// The TLS configuration whose roots decide which certificates are
    /// trusted (e.g. [`crate::tls::roots_from_pem`]); its ALPN is replaced
    /// with `h3`. Default: the system's roots.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> H3Builder {
        self.tls = Some(config);
        self
    }

    /// How long the handshake and the response head may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> H3Builder {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`H3EventStream::next_event`] waits for an event (`None`:
    /// for ever).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> H3Builder {
        self.read_timeout = timeout;
        self
    }

    /// An extra request header, e.g. `last-event-id` to resume.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> H3Builder {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// The event stream parser's limits.
    pub fn limits(mut self, limits: Limits) -> H3Builder {
        self.limits = limits;
        self
    }

    /// Connects, sends the GET and waits for a 200 with
    /// `text/event-stream`.
    pub fn connect(self) -> Result<H3EventStream, Error> {
        let url = Url::parse(&self.url)?;
        if !url.scheme().is_secure() {
            return Err(Error::UnsupportedScheme(format!(
                "{}: HTTP/3 needs https://",
                url.scheme().as_str()
            )));
        }
        let host = url.connect_host();
        let server = (host, url.port())
            .to_socket_addrs()
            .map_err(|source| Error::Io {
                context: format!("resolve {host}"),
                source,
            })?
            .next()
            .ok_or_else(|| Error::InvalidUrl {
                url: self.url.clone(),
                reason: "the host has no address",
            })?;
        let local: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(|source| Error::Io {
            context: "bind a UDP socket".to_owned(),
            source,
        })?;
        let tls = match self.tls {
            Some(tls) => tls,
            None => crate::tls::system_roots()?,
        };
        let quic = QuicClient::connect(&tls, server, host, STREAM_WINDOW, Instant::now())
            .map_err(|e| Error::H3(e.to_string()))?;
        let mut stream = H3EventStream {
            socket,
            quic,
            stream: None,
            parser: Parser::with_limits(self.limits),
            ended: false,
            read_timeout: self.read_timeout,
            buf: vec![0; 65_536],
            pending: Vec::new(),
        };
        let deadline = Instant::now() + self.connect_timeout;
        stream.until(deadline, "QUIC handshake", |s| s.quic.is_connected())?;
        let authority = if url.port() == 443 {
            url.host().to_owned()
        } else {
            format!("{}:{}", url.host(), url.port())
        };
        let mut fields = vec![
            Field::new(":method", "GET"),
            Field::new(":scheme", "https"),
            Field::new(":authority", authority),
            Field::new(":path", url.target()),
            Field::new("accept", "text/event-stream"),
        ];
        for (name, value) in &self.headers {
            fields.push(Field::new(name.as_str(), value.as_str()));
        }
        let id = stream
            .quic
            .request(&fields, b"", true)
            .map_err(|e| Error::H3(e.to_string()))?;
        stream.stream = Some(id);
        stream.until(deadline, "response head", |s| {
            s.pending
                .iter()
                .any(|e| matches!(e, ClientEvent::Response { .. }))
        })?;
        // Only `Connected` can come before the head; what follows it (the
        // first body pieces) stays for `next_event`.
        let head = stream
            .pending
            .iter()
            .position(|e| matches!(e, ClientEvent::Response { .. }))
            .map(|at| stream.pending.drain(..=at).last());
        let Some(Some(ClientEvent::Response { status, fields, .. })) = head else {
            return Err(Error::H3("no response head".to_owned()));
        };
        if status != 200 {
            return Err(Error::Refused {
                status,
                reason: String::new(),
            });
        }
        let content_type = fields
            .iter()
            .find(|f| f.name == b"content-type")
            .map(|f| String::from_utf8_lossy(&f.value).into_owned())
            .unwrap_or_default();
        if !tether_client_core::event_source::is_event_stream(&content_type) {
            return Err(Error::ContentType(content_type));
        }
        Ok(stream)
    }
}

/// An event stream over HTTP/3, on a QUIC connection of its own. It does
/// not reconnect: when the server ends the stream,
/// [`next_event`](Self::next_event) returns `None`; open a new one with
/// the `last-event-id` header ([`H3Builder::header`]) to resume. Dropping
/// it closes the connection.
///
/// ```no_run
/// # fn main() -> Result<(), tether_client::Error> {
/// let mut events = tether_client::H3EventStream::builder("https://localhost:8443/topics/news/events")
///     .connect()?;
/// while let Some(event) = events.next_event()? {
///     println!("{}: {}", event.event_type(), event.data());
/// }
/// # Ok(())
/// # }
/// ```
pub struct H3EventStream {
    socket: UdpSocket,
    quic: QuicClient,
    stream: Option<u64>,
    parser: Parser,
    ended: bool,
    read_timeout: Option<Duration>,
    buf: Vec<u8>,
    /// Events of the stream not handled yet.
    pending: Vec<ClientEvent>,
}

impl std::fmt::Debug for H3EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3EventStream")
            .field("stream", &self.stream)
            .field("last_event_id", &self.parser.last_event_id())
            .finish_non_exhaustive()
    }
}

impl H3EventStream {
    /// Settings for an event stream from `url` (`https://`).
    pub fn builder(url: impl Into<String>) -> H3Builder {
        H3Builder::new(url)
    }

    /// The last event ID the stream set.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The next event, waiting for it; `None` once the server has ended
    /// the stream and every event before the end was returned.
    pub fn next_event(&mut self) -> Result<Option<MessageEvent>, Error> {
        let deadline = self.read_timeout.map(|t| Instant::now() + t);
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
            let fed = !self.pending.is_empty();
            for event in std::mem::take(&mut self.pending) {
                match event {
                    ClientEvent::Data { stream, data } if Some(stream) == self.stream => {
                        self.parser.feed(&data)
                    }
                    ClientEvent::Finished { stream } if Some(stream) == self.stream => {
                        self.parser.finish();
                        self.ended = true;
                    }
                    ClientEvent::Reset { stream, code } if Some(stream) == self.stream => {
                        self.ended = true;
                        return Err(Error::H3(format!("the server reset the stream ({code:#x})")));
                    }
                    ClientEvent::Closed(why) => {
                        self.ended = true;
                        return Err(Error::H3(format!("the connection ended: {why}")));
                    }
                    _ => {}
                }
            }
            // What was fed is parsed first; with nothing new, wait.
            if !fed {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout("read"));
                }
                self.step()?;
            }
        }
    }

    /// Steps until `done`, or fails past `deadline`.
    fn until(
        &mut self,
        deadline: Instant,
        step: &'static str,
        mut done: impl FnMut(&H3EventStream) -> bool,
    ) -> Result<(), Error> {
        while !done(self) {
            if let Some(ClientEvent::Closed(why)) =
                self.pending.iter().find(|e| matches!(e, ClientEvent::Closed(_)))
            {
                return Err(Error::H3(format!("the connection ended: {why}")));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(step));
            }
            self.step()?;
        }
        Ok(())
    }

    /// One round: datagrams out, a wait of at most [`SLICE`] (or until the
    /// next QUIC timer) for datagrams in, timers, events.
    fn step(&mut self) -> Result<(), Error> {
        self.flush()?;
        let now = Instant::now();
        let wait = self
            .quic
            .next_timeout()
            .map_or(SLICE, |at| at.saturating_duration_since(now).min(SLICE))
            .max(Duration::from_millis(1));
        let io = |source| Error::Io {
            context: "receive a UDP datagram".to_owned(),
            source,
        };
        self.socket.set_read_timeout(Some(wait)).map_err(io)?;
        let mut got = self.socket.recv_from(&mut self.buf);
        self.socket.set_nonblocking(true).map_err(io)?;
        loop {
            match got {
                Ok((n, from)) => {
                    let datagram = self.buf.get(..n).unwrap_or_default();
                    self.quic.handle_datagram(Instant::now(), from, datagram);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
            got = self.socket.recv_from(&mut self.buf);
        }
        self.socket.set_nonblocking(false).map_err(io)?;
        self.quic.handle_timeout(Instant::now());
        self.quic.poll_events(Instant::now(), &mut self.pending);
        self.flush()
    }

    fn flush(&mut self) -> Result<(), Error> {
        let mut buf = Vec::new();
        while let Some(t) = self.quic.poll_transmit(Instant::now(), 1, &mut buf) {
            let datagram = buf.get(..t.size).unwrap_or_default();
            self.socket
                .send_to(datagram, t.destination)
                .map_err(|source| Error::Io {
                    context: format!("send a UDP datagram to {}", t.destination),
                    source,
                })?;
        }
        Ok(())
    }
}

impl Drop for H3EventStream {
    fn drop(&mut self) {
        self.quic.close(Instant::now());
        let _ = self.flush();
    }
}
