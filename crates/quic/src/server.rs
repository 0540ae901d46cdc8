//! The QUIC server endpoint: datagrams in, events out, responses in,
//! datagrams out, and the next instant at which time matters.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use quinn_proto::{ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, EndpointEvent, Transmit};
use tether_h2::hpack::Field;
use tether_h3::ErrorCode;
use tether_h3::session::{LocalStream, SendError as SessionSendError, Target};

use crate::config::{ConfigError, QuicConfig};
use crate::connection::Conn;
use crate::deadlines::Deadlines;
pub use crate::event::ServerEvent;
use crate::routing::PrefixedIds;
use crate::send_queue::SendQueue;
use crate::stats::{CloseCause, QuicStats};
use half_open::{HalfOpen, Source};

/// Why a response could not be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No such connection (closed, or never there).
    UnknownConnection(ConnectionHandle),
    /// The session refused it.
    Session(SessionSendError),
    /// QUIC would not take the datagram (too large for the path, or the
    /// client takes none).
    Datagram(quinn_proto::SendDatagramError),
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::UnknownConnection(c) => write!(f, "no connection {}", c.0),
            SendError::Session(e) => e.fmt(f),
            SendError::Datagram(e) => write!(f, "datagram not sent: {e}"),
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
/// it has gone; [`QuicServer::pause_reading`] leaves a stream unread
/// while its response is too far behind.
///
/// A panic inside a method (in quinn-proto, rustls or the HTTP/3
/// session: none should happen on any input, but they are third-party
/// code on the input path) leaves the server usable: the caller catches
/// it and calls [`QuicServer::recover`], which drops the one connection
/// that was being worked on, and goes on.
pub struct QuicServer {
    endpoint: Endpoint,
    config: QuicConfig,
    server_config: Arc<quinn_proto::ServerConfig>,
    /// Each boxed: a connection's state is several KiB, which a map's
    /// nodes would otherwise hold inline for up to eleven slots each, most
    /// of them empty (twice the memory of the connections themselves
    /// under a flood of half-open handshakes).
    conns: BTreeMap<ConnectionHandle, Box<Conn>>,
    events: VecDeque<ServerEvent>,
    /// Datagrams the endpoint answered by itself (Retry, refusals,
    /// version negotiation, stateless resets).
    responses: VecDeque<(Transmit, Vec<u8>)>,
    /// When each connection's next timer (or handshake deadline) is due,
    /// updated whenever the connection is touched.
    deadlines: Deadlines<ConnectionHandle>,
    /// The connections touched since they last had nothing to send.
    to_send: SendQueue<ConnectionHandle>,
    /// The connections whose handshake is in progress, as of when each
    /// was last touched (a handshake ends only when its connection is),
    /// counted per source.
    handshaking: HalfOpen,
    /// The connections whose deadline had come when
    /// [`QuicServer::handle_timeout`] was last called and that it has not
    /// visited yet (none, unless a panic stopped it), and since when.
    due: VecDeque<ConnectionHandle>,
    due_since: Option<Instant>,
    /// The connection being worked on, while one is: the one
    /// [`QuicServer::recover`] drops after a panic.
    in_hand: Option<ConnectionHandle>,
    stats: QuicStats,
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
            deadlines: Deadlines::new(),
            to_send: SendQueue::new(),
            handshaking: HalfOpen::default(),
            due: VecDeque::new(),
            due_since: None,
            in_hand: None,
            stats: QuicStats::default(),
        })
    }

    /// Connections held (handshaking, open or closing).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Handshakes in progress (half-open: a client whose handshake has
    /// not completed), at most [`QuicConfig::max_half_open`].
    pub fn half_open(&self) -> usize {
        self.handshaking.len()
    }

    /// What this server has counted since it was made.
    pub fn stats(&self) -> QuicStats {
        self.stats
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
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        let mut buf = Vec::new();
        let event = self
            .endpoint
            .handle(now, remote, local_ip, None, BytesMut::from(data), &mut buf);
        match event {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => self.holding(handle, |server| {
                if let Some(conn) = server.conns.get_mut(&handle) {
                    conn.quic.handle_event(event);
                    server.drive(handle, now);
                }
            }),
            Some(DatagramEvent::NewConnection(incoming)) => self.incoming(now, incoming, buf),
            Some(DatagramEvent::Response(transmit)) => self.respond(transmit, buf),
            None => {}
        }
    }

    fn respond(&mut self, transmit: Transmit, buf: Vec<u8>) {
        self.responses.push_back((transmit, buf));
    }

    /// A new client: refused past the connection limit or the bounds on
    /// handshakes in progress (from its source, and in all), sent a Retry
    /// when many handshakes are in progress and its address is not
    /// validated, accepted otherwise.
    fn incoming(&mut self, now: Instant, incoming: quinn_proto::Incoming, mut buf: Vec<u8>) {
        let source = Source::of(incoming.remote_address().ip());
        let half_open = self.handshaking.from(source) >= self.config.max_half_open_per_source
            || self.handshaking.len() >= self.config.max_half_open;
        if half_open {
            self.stats.refused_half_open += 1;
        }
        if half_open || self.conns.len() >= self.config.max_connections {
            self.stats.refused += 1;
            let transmit = self.endpoint.refuse(incoming, &mut buf);
            self.respond(transmit, buf);
            return;
        }
        if !incoming.remote_address_validated()
            && incoming.may_retry()
            && self.handshaking.len() >= self.config.retry_above_handshakes
        {
            match self.endpoint.retry(incoming, &mut buf) {
                Ok(transmit) => {
                    self.stats.retries += 1;
                    self.respond(transmit, buf);
                }
                Err(e) => self.endpoint.ignore(e.into_incoming()),
            }
            return;
        }
        match self
            .endpoint
            .accept(incoming, now, &mut buf, Some(self.server_config.clone()))
        {
            Ok((handle, quic)) => self.holding(handle, |server| {
                server
                    .conns
                    .insert(handle, Box::new(Conn::new(quic, &server.config, now)));
                server.drive(handle, now);
            }),
            Err(e) => {
                if let Some(transmit) = e.response {
                    self.respond(transmit, buf);
                }
            }
        }
    }

    /// Runs a connection's events through the session, exchanges its
    /// events with the endpoint, and forgets it once drained; otherwise
    /// its deadline is updated and it is asked for datagrams to send.
    /// Every path that touches a connection ends here, which is what lets
    /// the timers and the send queue skip the connections left alone.
    fn drive(&mut self, handle: ConnectionHandle, now: Instant) {
        let Some(conn) = self.conns.get_mut(&handle) else {
            return;
        };
        #[cfg(test)]
        tests::injected(handle);
        let seen = self.events.len();
        conn.drive(handle, now, &mut self.events);
        while let Some(event) = conn.quic.poll_endpoint_events() {
            if let Some(event) = self.endpoint.handle_event(handle, event) {
                conn.quic.handle_event(event);
            }
        }
        // Events the endpoint's answers caused (new connection IDs).
        conn.drive(handle, now, &mut self.events);
        if conn.quic.is_drained() {
            conn.report_closed(handle, "drained".to_owned(), &mut self.events);
        }
        for event in self.events.range(seen..) {
            match event {
                ServerEvent::Connected { .. } => self.stats.handshakes += 1,
                ServerEvent::Closed { .. } => self.stats.closed(conn.cause.unwrap_or(CloseCause::Normal)),
                _ => {}
            }
        }
        if conn.quic.is_drained() {
            self.conns.remove(&handle);
            self.deadlines.remove(handle);
            self.handshaking.remove(&handle);
            return;
        }
        if conn.quic.is_handshaking() {
            self.handshaking
                .insert(handle, Source::of(conn.quic.remote_address().ip()));
        } else {
            self.handshaking.remove(&handle);
        }
        self.deadlines
            .set(handle, deadline(conn, self.config.handshake_timeout));
        self.to_send.push(handle);
    }

    /// The earliest instant at which [`QuicServer::handle_timeout`] must be
    /// called: a connection's loss, idle or pacing timer, or a handshake
    /// deadline.
    ///
    /// Read from a heap of the connections' deadlines: the cost does not
    /// grow with the connections held.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        [self.deadlines.next(), self.due_since]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time has come to `now`: timers fire, handshakes past their deadline
    /// are closed. Only the connections with a deadline due are visited.
    pub fn handle_timeout(&mut self, now: Instant) {
        // The due connections wait in `due` while they are visited, so
        // that the ones a panic left unvisited are visited next time.
        let due = self.deadlines.take_due(now);
        if !due.is_empty() {
            self.due_since.get_or_insert(now);
            self.due.extend(due);
        }
        while let Some(handle) = self.due.pop_front() {
            self.holding(handle, |server| {
                let Some(conn) = server.conns.get_mut(&handle) else {
                    return;
                };
                if conn.quic.is_handshaking() && now >= conn.accepted_at + server.config.handshake_timeout {
                    conn.cause.get_or_insert(CloseCause::HandshakeTimeout);
                    conn.close(now, ErrorCode::H3_NO_ERROR, "handshake timeout");
                }
                if conn.quic.poll_timeout().is_some_and(|t| t <= now) {
                    conn.quic.handle_timeout(now);
                }
                server.drive(handle, now);
            });
        }
        self.due_since = None;
    }

    /// The next datagram to send, written to `buf` (cleared first), or
    /// `None` when there is nothing to send now. With `max_datagrams`
    /// above 1 (a socket with GSO), it may be a run of datagrams of one
    /// connection of [`Transmit::segment_size`] bytes each, the last
    /// possibly shorter.
    ///
    /// Only the connections touched since they last had nothing to send
    /// are asked, one transmit each in turn.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        buf.clear();
        if let Some((transmit, bytes)) = self.responses.pop_front() {
            self.stats.datagrams_out += 1;
            self.stats.bytes_out += transmit.size as u64;
            buf.extend_from_slice(&bytes);
            return Some(transmit);
        }
        while let Some(handle) = self.to_send.pop() {
            let sent = self.holding(handle, |server| server.transmit(handle, now, max_datagrams, buf));
            if sent.is_some() {
                return sent;
            }
        }
        None
    }

    /// The next transmit of connection `handle`, if it has one.
    fn transmit(
        &mut self,
        handle: ConnectionHandle,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        let conn = self.conns.get_mut(&handle)?;
        if let Some(transmit) = conn.quic.poll_transmit(now, max_datagrams.max(1), buf) {
            self.stats.datagrams_out += transmit
                .segment_size
                .map_or(1, |size| transmit.size.div_ceil(size.max(1)))
                as u64;
            self.stats.bytes_out += transmit.size as u64;
            // Sending can free stream capacity or finish a close; the
            // connection goes back in the queue, behind the others.
            self.drive(handle, now);
            return Some(transmit);
        }
        // Nothing to send may have set a pacing timer.
        self.deadlines
            .set(handle, deadline(conn, self.config.handshake_timeout));
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
        self.holding(conn, |server| {
            let c = server
                .conns
                .get_mut(&conn)
                .ok_or(SendError::UnknownConnection(conn))?;
            let result = f(c)?;
            c.write_session_output();
            server.drive(conn, now);
            Ok(result)
        })
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

    /// The client's current address on connection `conn` (it changes when
    /// the client migrates), `None` for a connection this server does not
    /// hold.
    pub fn remote_address(&self, conn: ConnectionHandle) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.quic.remote_address())
    }

    /// Resets a response and stops reading its request, with `code` (for
    /// a slow consumer, H3_REQUEST_CANCELLED or H3_EXCESSIVE_LOAD).
    pub fn reset(&mut self, now: Instant, conn: ConnectionHandle, stream_id: u64, code: ErrorCode) {
        self.holding(conn, |server| {
            if let Some(c) = server.conns.get_mut(&conn) {
                c.reset(stream_id, code);
                server.drive(conn, now);
            }
        });
    }

    /// Opens a unidirectional stream of this server's for the live
    /// WebTransport session `session_id` (its prefix queued); QUIC opens
    /// it when the client allows one more stream.
    pub fn open_webtransport_stream(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        session_id: u64,
    ) -> Result<LocalStream, SendError> {
        self.with_conn(conn, now, |c| c.h3.open_webtransport_stream(session_id))
    }

    /// Sends raw bytes on a WebTransport stream (one this server opened,
    /// or a client bidirectional one); `fin` ends it.
    pub fn send_webtransport(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        target: Target,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.with_conn(conn, now, |c| c.h3.send_webtransport(target, data, fin))
    }

    /// Closes a WebTransport session from the server's side
    /// (CLOSE_WEBTRANSPORT_SESSION with `code` and `reason`).
    pub fn close_webtransport(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        session_id: u64,
        code: u32,
        reason: &str,
    ) -> Result<(), SendError> {
        self.with_conn(conn, now, |c| c.h3.close_webtransport(session_id, code, reason))
    }

    /// Sends an HTTP datagram for a live WebTransport session: lossy, and
    /// refused when it does not fit in one QUIC datagram
    /// ([`QuicServer::max_datagram_payload`]).
    pub fn send_datagram(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        session_id: u64,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.holding(conn, |server| {
            let c = server
                .conns
                .get_mut(&conn)
                .ok_or(SendError::UnknownConnection(conn))?;
            let bytes = c.h3.datagram(session_id, payload)?;
            c.send_datagram(bytes).map_err(SendError::Datagram)?;
            server.drive(conn, now);
            Ok(())
        })
    }

    /// The largest HTTP datagram payload for `session_id` that fits in one
    /// QUIC datagram on `conn` now; `None` when the client takes no
    /// datagrams.
    pub fn max_datagram_payload(&mut self, conn: ConnectionHandle, session_id: u64) -> Option<usize> {
        let max = self.holding(conn, |server| server.conns.get_mut(&conn)?.max_datagram_size())?;
        max.checked_sub(tether_h3::webtransport::datagram::overhead(session_id))
    }

    /// Bytes queued for `target` on `conn` that its stream has not taken
    /// yet (a WebTransport stream's backpressure).
    pub fn unsent_on(&self, conn: ConnectionHandle, target: Target) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.unsent_bytes(target))
    }

    /// Bytes of a response that its stream has not taken yet (the
    /// backpressure a slow consumer shows).
    pub fn unsent_bytes(&self, conn: ConnectionHandle, stream_id: u64) -> usize {
        self.conns
            .get(&conn)
            .map_or(0, |c| c.unsent_bytes(Target::Request(stream_id)))
    }

    /// Stops reading request stream `stream_id` of `conn` until no more
    /// than `resume_at` of its response's bytes are unsent
    /// ([`QuicServer::unsent_bytes`]): the backpressure for output that the
    /// stream's own input causes (a WebSocket's PONGs and echoes). What the
    /// client sends meanwhile stays in quinn-proto, whose credit for the
    /// stream is not given back, so the client can send at most one
    /// stream window more; once the response has drained to `resume_at`
    /// the stream is read again, what was left first, with no need for
    /// more to arrive.
    pub fn pause_reading(&mut self, conn: ConnectionHandle, stream_id: u64, resume_at: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pause_reading(stream_id, resume_at);
        }
    }

    /// Sends GOAWAY on every connection: requests already seen are
    /// served, later ones refused.
    pub fn goaway(&mut self, now: Instant) {
        let handles: Vec<ConnectionHandle> = self.conns.keys().copied().collect();
        for handle in handles {
            self.holding(handle, |server| {
                if let Some(c) = server.conns.get_mut(&handle) {
                    c.h3.goaway();
                    c.write_session_output();
                }
                server.drive(handle, now);
            });
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
        self.holding(conn, |server| {
            if let Some(c) = server.conns.get_mut(&conn) {
                c.close(now, code, "asked");
                server.drive(conn, now);
            }
        });
    }

    /// Runs `work` on connection `handle`, which [`QuicServer::recover`]
    /// drops if a panic stops it.
    #[inline]
    fn holding<R>(&mut self, handle: ConnectionHandle, work: impl FnOnce(&mut QuicServer) -> R) -> R {
        let outer = self.in_hand.replace(handle);
        let result = work(self);
        self.in_hand = outer;
        result
    }

    /// After a panic escaped one of this server's methods (caught by the
    /// caller, `std::panic::catch_unwind`): drops the connection that was
    /// being worked on when it did, if one was, and returns its handle and
    /// its client's address. Call it before anything else.
    ///
    /// The connection's state, which the unwind may have left half-way
    /// through a change, is not used again: it is forgotten here and by
    /// quinn-proto (its connection IDs retired), with the events it had
    /// queued, and counted as closed by an error. Its client is not told
    /// (that would take the connection's own state): it learns from a
    /// stateless reset when it next sends, or at its idle timeout. Every
    /// other table of the server names connections by handle and skips a
    /// handle it no longer holds (the send queue), or had the handle
    /// removed here (deadlines, handshakes), so the other connections go
    /// on untouched. `None` if the panic happened outside the work for
    /// one connection (in quinn-proto's endpoint itself): the datagram
    /// being handled is lost, nothing else.
    pub fn recover(&mut self) -> Option<(ConnectionHandle, Option<SocketAddr>)> {
        let handle = self.in_hand.take()?;
        // The handle may be given to a new connection from now on: no
        // event of the old one may be taken for one of the new.
        self.events.retain(|event| event.conn() != handle);
        self.deadlines.remove(handle);
        self.handshaking.remove(&handle);
        let remote = self.conns.remove(&handle).map(|conn| {
            self.endpoint.handle_event(handle, EndpointEvent::drained());
            self.stats.closed(CloseCause::Error);
            conn.quic.remote_address()
        });
        Some((handle, remote))
    }

    /// Closes a connection with `code` at once, dropping the events it
    /// queued that were not taken yet: its caller's own state for it is
    /// gone (a panic in the caller's work for it), so that nothing more
    /// of it is handed out but its [`ServerEvent::Closed`].
    pub fn close_now(&mut self, now: Instant, conn: ConnectionHandle, code: ErrorCode) {
        self.events.retain(|event| event.conn() != conn);
        self.close(now, conn, code);
    }
}

/// The earliest instant `conn` needs the server: its loss, idle or pacing
/// timer, or its handshake deadline while it handshakes.
fn deadline(conn: &mut Conn, handshake_timeout: Duration) -> Option<Instant> {
    let timer = conn.quic.poll_timeout();
    let handshake = conn
        .quic
        .is_handshaking()
        .then(|| conn.accepted_at + handshake_timeout);
    [timer, handshake].into_iter().flatten().min()
}

mod half_open;
#[cfg(test)]
mod tests;
