//! An HTTP/3 client connection: a `quinn-proto` client endpoint of one
//! connection, driven sans-IO, with tether-h3's client session on its
//! streams.
//!
//! [`QuicClient`] owns no socket and reads no clock, like the server: the
//! caller hands it each datagram its UDP socket received from the server
//! and the current instant, sends the datagrams
//! [`QuicClient::poll_transmit`] gives back, and calls
//! [`QuicClient::handle_timeout`] at the instant
//! [`QuicClient::next_timeout`] names. Requests go in as header fields
//! (and a body); responses come out as [`ClientEvent`]s, their body
//! pieces as shared [`Bytes`] cut from what QUIC delivered, not copied.
//!
//! It is the client the tests, the load generator and the client crate
//! share; it opens the HTTP/3 control stream by itself once the
//! handshake is done.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use quinn_proto::crypto::rustls::QuicClientConfig;
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event,
    ReadError, StreamEvent, StreamId, Transmit, TransportConfig, VarInt,
};
use tether_h2::hpack::Field;
use tether_h3::ErrorCode;
use tether_h3::client::{ClientEvent as H3Event, ClientLimits, ClientSession};

/// What happened on a client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake is done: requests may be sent.
    Connected,
    /// The final response head of the request on `stream`.
    Response {
        /// The request stream's ID.
        stream: u64,
        /// The status, 200 to 599.
        status: u16,
        /// The fields, `:status` first.
        fields: Vec<Field>,
    },
    /// A piece of a response body.
    Data {
        /// The request stream's ID.
        stream: u64,
        /// The bytes.
        data: Bytes,
    },
    /// The response on `stream` ended.
    Finished {
        /// The request stream's ID.
        stream: u64,
    },
    /// The server reset the response on `stream` with this code.
    Reset {
        /// The request stream's ID.
        stream: u64,
        /// The application error code.
        code: u64,
    },
    /// The trailers of the response on `stream`.
    Trailers {
        /// The request stream's ID.
        stream: u64,
        /// The fields.
        fields: Vec<Field>,
    },
    /// The server will process no request from this stream ID up.
    Goaway(u64),
    /// The connection is over (closed by either side, timed out, or closed
    /// here for an HTTP/3 error of the server's): why.
    Closed(String),
}

/// Why a connection could not be started or a request not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The TLS configuration cannot carry QUIC (it must allow TLS 1.3).
    Tls(String),
    /// quinn-proto refused to start the connection.
    Connect(String),
    /// The handshake is not done, or the server's stream limit is reached:
    /// no request stream can be opened now.
    NoStream,
    /// The connection is over.
    Closed,
    /// The request cannot be encoded (a body longer than a QUIC
    /// variable-length integer can say).
    Request(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Tls(why) => write!(f, "TLS configuration: {why}"),
            ClientError::Connect(why) => write!(f, "cannot connect: {why}"),
            ClientError::NoStream => f.write_str("no request stream may be opened now"),
            ClientError::Closed => f.write_str("the connection is closed"),
            ClientError::Request(why) => write!(f, "cannot encode the request: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// One HTTP/3 connection to a server, sans-IO.
///
/// The calling contract, as in every tether sans-IO crate: datagrams in
/// ([`QuicClient::handle_datagram`]), events out
/// ([`QuicClient::poll_events`]), datagrams to send out
/// ([`QuicClient::poll_transmit`]), time passed in, the next deadline out
/// ([`QuicClient::next_timeout`]).
pub struct QuicClient {
    endpoint: Endpoint,
    handle: ConnectionHandle,
    conn: Connection,
    session: ClientSession,
    /// Bytes of a stream that its window did not take yet, and whether to
    /// end the stream after them.
    unsent: HashMap<StreamId, (Vec<u8>, bool)>,
    connected: bool,
    closed: bool,
    /// Datagrams the endpoint answered by itself, to send first.
    responses: VecDeque<(Transmit, Vec<u8>)>,
    /// Events made while reading streams (the connection closed for the
    /// server's error), handed out last by `poll_events`.
    pending: Vec<ClientEvent>,
}

impl fmt::Debug for QuicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicClient")
            .field("remote", &self.conn.remote_address())
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl QuicClient {
    /// Starts a connection to `server`, whose certificate must be valid
    /// for `server_name` under `tls` (whose ALPN is replaced with `h3`).
    /// `stream_window` is how many bytes of each response the server may
    /// send ahead of what was read.
    pub fn connect(
        tls: &rustls::ClientConfig,
        server: SocketAddr,
        server_name: &str,
        stream_window: u32,
        now: Instant,
    ) -> Result<QuicClient, ClientError> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![crate::config::ALPN_H3.to_vec()];
        let crypto =
            QuicClientConfig::try_from(Arc::new(tls)).map_err(|e| ClientError::Tls(e.to_string()))?;
        let mut config = ClientConfig::new(Arc::new(crypto));
        let mut transport = TransportConfig::default();
        transport.stream_receive_window(VarInt::from_u32(stream_window));
        config.transport_config(Arc::new(transport));
        let mut endpoint = Endpoint::new(Arc::new(EndpointConfig::default()), None, true, None);
        let (handle, conn) = endpoint
            .connect(now, config, server, server_name)
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        Ok(QuicClient {
            endpoint,
            handle,
            conn,
            session: ClientSession::new(ClientLimits::default()),
            unsent: HashMap::new(),
            connected: false,
            closed: false,
            pending: Vec::new(),
            responses: VecDeque::new(),
        })
    }

    /// Whether the handshake is done (and the connection not over).
    pub fn is_connected(&self) -> bool {
        self.connected && !self.closed
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The server's address, as the connection knows it.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// Hands in a datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let mut response = Vec::new();
        let event = self
            .endpoint
            .handle(now, from, None, None, BytesMut::from(datagram), &mut response);
        match event {
            Some(DatagramEvent::ConnectionEvent(handle, event)) if handle == self.handle => {
                self.conn.handle_event(event);
            }
            // The endpoint's own answer (a stateless reset) goes out with
            // the connection's datagrams.
            Some(DatagramEvent::Response(transmit)) => {
                response.truncate(transmit.size);
                self.responses.push_back((transmit, response));
            }
            _ => {}
        }
    }

    /// The next datagram (or, with `max_datagrams` above 1, several of the
    /// same size for one GSO send) to send: written into `buf` (cleared
    /// first); where and how it goes in the [`Transmit`].
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        buf.clear();
        if let Some((transmit, bytes)) = self.responses.pop_front() {
            buf.extend_from_slice(&bytes);
            return Some(transmit);
        }
        self.conn.poll_transmit(now, max_datagrams.max(1), buf)
    }

    /// When [`QuicClient::handle_timeout`] is due next, if ever.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.conn.poll_timeout()
    }

    /// Runs the timers due at `now` (retransmissions, acknowledgements,
    /// the idle timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.conn.handle_timeout(now);
        }
    }

    /// Opens a request stream and sends a request with `fields` and
    /// `body`, ending the stream if `fin`; its ID, for the events of its
    /// response.
    pub fn request(&mut self, fields: &[Field], body: &[u8], fin: bool) -> Result<u64, ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        if !self.connected {
            return Err(ClientError::NoStream);
        }
        let id = self.conn.streams().open(Dir::Bi).ok_or(ClientError::NoStream)?;
        let mut wire = Vec::new();
        let mut encoded = self.session.request(u64::from(id), fields, &mut wire);
        if encoded.is_ok() && !body.is_empty() {
            encoded = tether_h3::frame::encode_data(body, &mut wire);
        }
        encoded.map_err(|e| ClientError::Request(e.to_string()))?;
        self.write(id, wire, fin);
        Ok(u64::from(id))
    }

    /// Stops reading the response on `stream` (STOP_SENDING with
    /// H3_REQUEST_CANCELLED) and forgets it.
    pub fn cancel(&mut self, stream: u64) {
        let id = StreamId::from(VarInt::from_u64(stream).unwrap_or(VarInt::MAX));
        self.session.abandon(stream);
        let _ = self
            .conn
            .recv_stream(id)
            .stop(VarInt::from_u64(ErrorCode::H3_REQUEST_CANCELLED.value()).unwrap_or(VarInt::MAX));
    }

    /// Closes the connection with H3_NO_ERROR.
    pub fn close(&mut self, now: Instant) {
        if !self.closed {
            let code = VarInt::from_u64(ErrorCode::H3_NO_ERROR.value()).unwrap_or(VarInt::MAX);
            self.conn.close(now, code, Bytes::new());
        }
    }

    /// Appends what happened since the last call to `out`: the
    /// connection's state, and each response's head, body pieces and end.
    pub fn poll_events(&mut self, now: Instant, out: &mut Vec<ClientEvent>) {
        while let Some(event) = self.conn.poll_endpoint_events() {
            if let Some(event) = self.endpoint.handle_event(self.handle, event) {
                self.conn.handle_event(event);
            }
        }
        while let Some(event) = self.conn.poll() {
            match event {
                Event::Connected => {
                    self.connected = true;
                    self.open_control(now);
                    out.push(ClientEvent::Connected);
                }
                Event::ConnectionLost { reason } if !self.closed => {
                    self.closed = true;
                    out.push(ClientEvent::Closed(reason.to_string()));
                }
                Event::Stream(StreamEvent::Opened { dir }) => {
                    while let Some(id) = self.conn.streams().accept(dir) {
                        self.read(now, id, out);
                    }
                }
                Event::Stream(StreamEvent::Readable { id }) => self.read(now, id, out),
                Event::Stream(StreamEvent::Writable { id }) => {
                    if let Some((bytes, fin)) = self.unsent.remove(&id) {
                        self.write(id, bytes, fin);
                    }
                }
                _ => {}
            }
        }
        out.append(&mut self.pending);
    }

    fn open_control(&mut self, now: Instant) {
        let Some(id) = self.conn.streams().open(Dir::Uni) else {
            self.fail(
                now,
                ErrorCode::H3_STREAM_CREATION_ERROR,
                "no room for a control stream",
            );
            return;
        };
        let mut wire = Vec::new();
        if self.session.control_stream(&mut wire).is_ok() {
            self.write(id, wire, false);
        }
    }

    /// Writes what the stream's window takes, keeping the rest for its
    /// next Writable event.
    fn write(&mut self, id: StreamId, bytes: Vec<u8>, fin: bool) {
        let mut send = self.conn.send_stream(id);
        let written = send.write(&bytes).unwrap_or(0);
        if written < bytes.len() {
            self.unsent
                .insert(id, (bytes.get(written..).unwrap_or_default().to_vec(), fin));
        } else if fin {
            let _ = send.finish();
        }
    }

    fn read(&mut self, now: Instant, id: StreamId, out: &mut Vec<ClientEvent>) {
        let stream = u64::from(id);
        let mut recv = self.conn.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            return;
        };
        let mut failure = None;
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) => {
                    let mut events = Vec::new();
                    if let Err(e) = self.session.receive(stream, &chunk.bytes, false, &mut events) {
                        failure = Some(e);
                        break;
                    }
                    out.extend(events.drain(..).filter_map(|e| own(e, &chunk.bytes)));
                }
                Ok(None) => {
                    let mut events = Vec::new();
                    if let Err(e) = self.session.receive(stream, &[], true, &mut events) {
                        failure = Some(e);
                    }
                    out.extend(events.drain(..).filter_map(|e| own(e, &Bytes::new())));
                    break;
                }
                Err(ReadError::Blocked) => break,
                Err(ReadError::Reset(code)) => {
                    if let Err(e) = self.session.reset(stream) {
                        failure = Some(e);
                    }
                    out.push(ClientEvent::Reset {
                        stream,
                        code: code.into_inner(),
                    });
                    break;
                }
            }
        }
        let _ = chunks.finalize();
        if let Some(error) = failure {
            self.fail(now, error.code, &error.to_string());
        }
    }

    /// Closes the connection for an HTTP/3 error of the server's.
    fn fail(&mut self, now: Instant, code: ErrorCode, why: &str) {
        if self.closed {
            return;
        }
        let code = VarInt::from_u64(code.value()).unwrap_or(VarInt::MAX);
        self.conn.close(now, code, Bytes::copy_from_slice(why.as_bytes()));
        self.closed = true;
        self.pending.push(ClientEvent::Closed(why.to_owned()));
    }
}

/// The event with its body piece as a slice of the chunk it came in.
fn own(event: H3Event<'_>, chunk: &Bytes) -> Option<ClientEvent> {
    Some(match event {
        H3Event::Data { stream_id, data } => ClientEvent::Data {
            stream: stream_id,
            data: chunk.slice_ref(data),
        },
        H3Event::Response {
            stream_id,
            status,
            fields,
        } => ClientEvent::Response {
            stream: stream_id,
            status,
            fields,
        },
        H3Event::Finished { stream_id } => ClientEvent::Finished { stream: stream_id },
        H3Event::Goaway(id) => ClientEvent::Goaway(id),
        H3Event::Trailers { stream_id, fields } => ClientEvent::Trailers {
            stream: stream_id,
            fields,
        },
        // The server's settings change nothing for this client: it sends
        // no extended CONNECT and uses no dynamic table.
        H3Event::Settings(_) => return None,
    })
}
