//! The QUIC server endpoint: datagrams in, events out, responses in,
//! datagrams out, and the next instant at which time matters.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::{ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Transmit};
use tether_h2::hpack::Field;
use tether_h3::ErrorCode;
use tether_h3::session::{SendError as SessionSendError, Target};

use crate::config::{ConfigError, QuicConfig};
use crate::connection::Conn;
pub use crate::event::ServerEvent;
use crate::routing::PrefixedIds;

/// Why a response could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such connection (closed, or never there).
    UnknownConnection(ConnectionHandle),
    /// The session refused it.
    Session(SessionSendError),
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::UnknownConnection(c) => write!(f, "no connection {}", c.0),
            SendError::Session(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}

impl From<SessionSendError> for SendError {
    fn from(e: SessionSendError) -> SendError {
        SendError::Session(e)
    }
}

/// A QUIC endpoint serving HTTP/3, sans-IO: it owns no socket and reads
/// no clock.
///
/// The caller owns a UDP socket. It hands every datagram received to
/// [`QuicServer::handle_datagram`], sends every datagram
/// [`QuicServer::poll_transmit`] gives until it gives none, calls
/// [`QuicServer::handle_timeout`] when [`QuicServer::next_timeout`] is
/// reached, and reads [`QuicServer::poll_event`] after each of these.
/// Responses go in through [`QuicServer::send_head`],
/// [`QuicServer::send_data`] and [`QuicServer::finish`]; what a stream
/// cannot take yet (flow control, congestion) is kept and counted by
/// [`QuicServer::unsent_bytes`], and [`ServerEvent::Writable`] says when
/// it has gone.
pub struct QuicServer {
    endpoint: Endpoint,
    config: QuicConfig,
    server_config: Arc<quinn_proto::ServerConfig>,
    conns: BTreeMap<ConnectionHandle, Conn>,
    events: VecDeque<ServerEvent>,
    /// Datagrams the endpoint answered by itself (Retry, refusals,
    /// version negotiation, stateless resets).
    responses: VecDeque<(Transmit, Vec<u8>)>,
    /// The connections that may have datagrams to send, each once, in
    /// the order they were touched: [`QuicServer::poll_transmit`] asks
    /// only these, and puts one that sent at the back (fairness).
    ready: VecDeque<ConnectionHandle>,
    /// Whether each connection (by handle) is in `ready`.
    queued: Vec<bool>,
    /// The connections still in their handshake.
    handshaking: BTreeSet<ConnectionHandle>,
}

impl QuicServer {
    /// A server with `config`'s limits and `tls`'s certificates (the TCP
    /// listener's configuration: its certificate resolver is shared, its
    /// ALPN list replaced by `h3`).
    pub fn new(config: QuicConfig, tls: &rustls::ServerConfig) -> Result<QuicServer, ConfigError> {
        let server_config = Arc::new(config.server(tls)?);
        let mut endpoint_config = EndpointConfig::default();
        if let Some(prefix) = config.connection_id_prefix {
            endpoint_config.cid_generator(move || Box::new(PrefixedIds::new(prefix)));
        }
        let endpoint = Endpoint::new(
            Arc::new(endpoint_config),
            Some(server_config.clone()),
            false,
            None,
        );
        Ok(QuicServer {
            endpoint,
            config,
            server_config,
            conns: BTreeMap::new(),
            events: VecDeque::new(),
            responses: VecDeque::new(),
            ready: VecDeque::new(),
            queued: Vec::new(),
            handshaking: BTreeSet::new(),
        })
    }

    /// Connections held (handshaking, open or closing).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A datagram arrived from `remote` (to `local_ip`, where the socket
    /// tells).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
        data: &[u8],
    ) {
        let mut buf = Vec::new();
        let event = self
            .endpoint
            .handle(now, remote, local_ip, None, BytesMut::from(data), &mut buf);
        match event {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(conn) = self.conns.get_mut(&handle) {
                    conn.quic.handle_event(event);
                    self.drive(handle, now);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => self.incoming(now, incoming, buf),
            Some(DatagramEvent::Response(transmit)) => self.respond(transmit, buf),
            None => {}
        }
    }

    fn respond(&mut self, transmit: Transmit, buf: Vec<u8>) {
        self.responses.push_back((transmit, buf));
    }

    /// A new client: refused past the connection limit, sent a Retry when
    /// many handshakes are in progress and its address is not validated,
    /// accepted otherwise.
    fn incoming(&mut self, now: Instant, incoming: quinn_proto::Incoming, mut buf: Vec<u8>) {
        if self.conns.len() >= self.config.max_connections {
            let transmit = self.endpoint.refuse(incoming, &mut buf);
            self.respond(transmit, buf);
            return;
        }
        if !incoming.remote_address_validated()
            && incoming.may_retry()
            && self.handshaking.len() >= self.config.retry_above_handshakes
        {
            match self.endpoint.retry(incoming, &mut buf) {
                Ok(transmit) => self.respond(transmit, buf),
                Err(e) => self.endpoint.ignore(e.into_incoming()),
            }
            return;
        }
        match self
            .endpoint
            .accept(incoming, now, &mut buf, Some(self.server_config.clone()))
        {
            Ok((handle, quic)) => {
                self.conns
                    .insert(handle, Conn::new(quic, self.config.session.clone(), now));
                self.handshaking.insert(handle);
                self.drive(handle, now);
            }
            Err(e) => {
                if let Some(transmit) = e.response {
                    self.respond(transmit, buf);
                }
            }
        }
    }

    /// Runs a connection's events through the session, exchanges its
    /// events with the endpoint, and forgets it once drained.
    fn drive(&mut self, handle: ConnectionHandle, now: Instant) {
        let Some(conn) = self.conns.get_mut(&handle) else {
            return;
        };
        conn.drive(handle, now, &mut self.events);
        while let Some(event) = conn.quic.poll_endpoint_events() {
            if let Some(event) = self.endpoint.handle_event(handle, event) {
                conn.quic.handle_event(event);
            }
        }
        // Events the endpoint's answers caused (new connection IDs).
        conn.drive(handle, now, &mut self.events);
        let drained = conn.quic.is_drained();
        if (drained || !conn.quic.is_handshaking()) && !self.handshaking.is_empty() {
            self.handshaking.remove(&handle);
        }
        if drained {
            conn.report_closed(handle, "drained".to_owned(), &mut self.events);
            self.conns.remove(&handle);
            return;
        }
        // Whatever touched it may have given it something to send.
        self.mark_ready(handle);
    }

    /// Puts `handle` in the queue of connections to ask for datagrams,
    /// unless it is there already.
    fn mark_ready(&mut self, handle: ConnectionHandle) {
        if self.queued.len() <= handle.0 {
            self.queued.resize(handle.0 + 1, false);
        }
        if let Some(queued) = self.queued.get_mut(handle.0)
            && !*queued
        {
            *queued = true;
            self.ready.push_back(handle);
        }
    }

    /// The earliest instant at which [`QuicServer::handle_timeout`] must be
    /// called: a connection's loss, idle or pacing timer, or a handshake
    /// deadline.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let handshake = self.config.handshake_timeout;
        self.conns
            .values_mut()
            .filter_map(|c| {
                let quic = c.quic.poll_timeout();
                let deadline = c.quic.is_handshaking().then(|| c.accepted_at + handshake);
                match (quic, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }

    /// Time has come to `now`: timers fire, handshakes past their deadline
    /// are closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
        for handle in handles {
            let Some(conn) = self.conns.get_mut(&handle) else {
                continue;
            };
            if conn.quic.is_handshaking() && now >= conn.accepted_at + self.config.handshake_timeout {
                conn.close(now, ErrorCode::H3_NO_ERROR, "handshake timeout");
            }
            if conn.quic.poll_timeout().is_some_and(|t| t <= now) {
                conn.quic.handle_timeout(now);
            }
            self.drive(handle, now);
        }
    }

    /// The next datagram to send, written to `buf` (cleared first), or
    /// `None` when there is nothing to send now. With `max_datagrams`
    /// above 1 (a socket with GSO), it may be a run of datagrams of one
    /// connection of [`Transmit::segment_size`] bytes each, the last
    /// possibly shorter.
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
        // Each connection touched since it last had nothing to send is
        // asked once; one that sends goes to the back of the queue (by
        // `drive`), so that every connection with datagrams gets its turn.
        while let Some(handle) = self.ready.pop_front() {
            if let Some(queued) = self.queued.get_mut(handle.0) {
                *queued = false;
            }
            let Some(conn) = self.conns.get_mut(&handle) else {
                continue;
            };
            if let Some(transmit) = conn.quic.poll_transmit(now, max_datagrams.max(1), buf) {
                // Sending can free stream capacity or finish a close.
                self.drive(handle, now);
                return Some(transmit);
            }
        }
        None
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    fn with_conn<T>(
        &mut self,
        conn: ConnectionHandle,
        now: Instant,
        f: impl FnOnce(&mut Conn) -> Result<T, SessionSendError>,
    ) -> Result<T, SendError> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or(SendError::UnknownConnection(conn))?;
        let result = f(c)?;
        c.write_session_output();
        self.drive(conn, now);
        Ok(result)
    }

    /// Sends a response head on a request stream.
    pub fn send_head(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        stream_id: u64,
        status: u16,
        fields: &[Field],
    ) -> Result<(), SendError> {
        self.with_conn(conn, now, |c| c.h3.send_head(stream_id, status, fields))
    }

    /// Sends a piece of a response body.
    pub fn send_data(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        stream_id: u64,
        data: &[u8],
    ) -> Result<(), SendError> {
        self.with_conn(conn, now, |c| c.h3.send_data(stream_id, data))
    }

    /// Ends a response.
    pub fn finish(&mut self, now: Instant, conn: ConnectionHandle, stream_id: u64) -> Result<(), SendError> {
        self.with_conn(conn, now, |c| c.h3.finish(stream_id))
    }

    /// Resets a response and stops reading its request, with `code` (for
    /// a slow consumer, H3_REQUEST_CANCELLED or H3_EXCESSIVE_LOAD).
    pub fn reset(&mut self, now: Instant, conn: ConnectionHandle, stream_id: u64, code: ErrorCode) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.reset(stream_id, code);
            self.drive(conn, now);
        }
    }

    /// Bytes of a response that its stream has not taken yet (the
    /// backpressure a slow consumer shows).
    pub fn unsent_bytes(&self, conn: ConnectionHandle, stream_id: u64) -> usize {
        self.conns
            .get(&conn)
            .map_or(0, |c| c.unsent_bytes(Target::Request(stream_id)))
    }

    /// Sends GOAWAY on every connection: requests already seen are
    /// served, later ones refused.
    pub fn goaway(&mut self, now: Instant) {
        let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
        for handle in handles {
            if let Some(c) = self.conns.get_mut(&handle) {
                c.h3.goaway();
                c.write_session_output();
            }
            self.drive(handle, now);
        }
    }

    /// Closes every connection with `code` (the server is going away:
    /// each client is told at once instead of at its idle timeout).
    pub fn close_all(&mut self, now: Instant, code: ErrorCode) {
        let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
        for handle in handles {
            self.close(now, handle, code);
        }
    }

    /// Closes a connection with `code` (H3_NO_ERROR for a graceful end).
    pub fn close(&mut self, now: Instant, conn: ConnectionHandle, code: ErrorCode) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.close(now, code, "asked");
            self.drive(conn, now);
        }
    }
}
