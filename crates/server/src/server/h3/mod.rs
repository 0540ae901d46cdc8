//! HTTP/3 on the loop: one QUIC endpoint per loop ([`tether_quic::QuicServer`],
//! quinn-proto driven sans-IO) on a UDP socket of its own, whose requests
//! go through the same dispatch as HTTP/1.1's and HTTP/2's, and whose
//! event streams, deferred answers and held requests the application
//! reaches by their ids like any other.
//!
//! Each request stream of a QUIC connection is one id for the
//! application: the connection's ([`ConnId::quic`]), with the stream's
//! ordinal among the client's request streams plus one beside it, as an
//! HTTP/2 stream's number is. What a stream is (a body arriving, a
//! deferred answer, an event stream, a WebSocket) is kept here; what it
//! has sent and not yet had acknowledged is kept by the QUIC endpoint,
//! which counts what a stream's client does not take
//! ([`tether_quic::QuicServer::unsent_bytes`]): an event stream or
//! WebSocket a broadcast leaves holding more than
//! [`crate::config::Config::max_output`] is reset with
//! H3_REQUEST_CANCELLED (the slow-consumer policy), and the connection's
//! other streams go on; a WebSocket whose own input (PINGs, messages the
//! application answers) leaves it past that is not read until it has
//! drained to half ([`tether_quic::QuicServer::pause_reading`]).
//!
//! Calling contract: the loop calls [`H3Endpoint::readable`] and
//! [`H3Endpoint::writable`] on the socket's readiness,
//! [`H3Endpoint::turn`] once at the end of every loop turn (timers due,
//! then every datagram the endpoint has to send), and waits no longer than
//! [`H3Endpoint::next_deadline`], and hands it the application's actions
//! for its streams ([`H3Endpoint::apply`]). The five operations of a sink
//! (push, end, answer, let go on, close a WebSocket), which `super::sink`
//! has for the TCP carriers, are methods of the same names in
//! `streams.rs` and `websocket.rs`. What the application asks during any
//! of these is left in the environment's actions, which the caller
//! applies after.
//!
//! In a cluster, the connection IDs each loop's endpoint issues start
//! with the loop's index ([`tether_quic::routing`]), and a datagram read
//! by another loop is handed to the loop that holds its connection
//! through the loops' mailboxes (`Mail::Datagram`), which answers from its
//! own handle on the same address (`route.rs` says which loop that is).
//! On the one UDP socket the loops share (without `reuse_port`), that is
//! most datagrams; on sockets of their own (`SO_REUSEPORT`), whose hash
//! keeps a client address on one socket, only those that come after the
//! client's address changed (connection migration, a NAT rebinding).
//! Between processes that share the port with `reuse_port` nothing is
//! handed over: a datagram the hash sends to another process than the one
//! holding its connection (after the client's address changed, or once a
//! process joined or left the port) is not for it: the connection is
//! lost, and its client connects again.
//!
//! WebSockets ride an extended CONNECT (RFC 9220, `websocket.rs`), as
//! over HTTP/2 (RFC 8441), with the same handshake policy. WebTransport
//! sessions (`:protocol = webtransport`, `webtransport.rs`) are served to
//! the application as the WebSocket their route names, one message a line
//! on a stream the server opens, one message a client stream.
//!
//! The endpoint's counters ([`tether_quic::QuicStats`]) are copied to the
//! loop's [`Stats`] at the end of each turn, for `/metrics`; the
//! datagrams forwarded to another loop and the streams reset by the
//! slow-consumer policy are counted here.
//!
//! A fault costs one QUIC connection at most. Every call into the QUIC
//! endpoint (quinn-proto, rustls and the HTTP/3 session run inside it)
//! and every piece of work done here for one connection (an event of its
//! session, an action for one of its streams, one stream's timer) runs
//! under a guard. After a panic inside the endpoint, the endpoint drops
//! the connection it was working on ([`QuicServer::recover`]: its state
//! is not trusted, so its client learns from a stateless reset or its idle
//! timeout); after a panic here, the connection is closed with
//! H3_INTERNAL_ERROR ([`QuicServer::close_now`]). Either way its streams
//! are forgotten here, the application told, the panic logged once and
//! counted (`quic_panics`), and the loop goes on. A panic in the
//! endpoint's own work, for no connection in particular, costs the
//! datagram being handled.

use crate::app::sse_coding::Coding;
use crate::memory::{Burst, release_free_memory};
use crate::server::hosted::Hosted;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use log::error;
use mio::{Registry, Token};
use tether_h2::connection::Request as FieldRequest;
use tether_h3::ErrorCode;
use tether_quic::{ConnectionHandle, QuicServer};

use crate::app::{Action, App, CloseReason, ConnId, Ctx, Response};
use crate::loops::Stats;
use crate::server::env::{Lent, LoopEnv};
use crate::server::guard::{self, Named, Panic, guarded};
use crate::server::websocket::Session;

mod requests;
mod route;
mod socket;
mod streams;
mod websocket;
mod webtransport;

use route::owner_of;
use socket::{Outgoing, QuicSocket};
use webtransport::WtSession;

/// A loop's QUIC endpoint, its socket and the HTTP/3 streams it serves.
pub(in crate::server) struct H3Endpoint {
    socket: QuicSocket,
    server: QuicServer,
    conns: BTreeMap<ConnectionHandle, H3Conn>,
    next_generation: u32,
    /// The connection IDs this endpoint issues name its loop: a datagram
    /// whose ID names another loop is handed to it.
    routed: bool,
    /// The loops read one socket: a datagram without a server-issued
    /// connection ID goes to the loop its sender's address names.
    shared: bool,
    /// No later than the earliest deadline of a stream (a deferred
    /// answer's, a heartbeat's, a WebSocket's timer), so that the streams
    /// are walked only when one may be due; recomputed by each walk,
    /// lowered as streams get deadlines.
    streams_due: Option<Instant>,
    /// The WebSocket configuration of WebTransport sessions: the loop's,
    /// without ping or idle timer (QUIC's own keep the connection).
    wt_config: tether_ws::SharedConfig,
    /// Keys of the request states of streams forgotten or answered,
    /// released by the loop at the end of its turn (after any callback
    /// that tells of the stream's end).
    pub(in crate::server) released: Vec<u32>,
    /// Half-open handshakes in bulk (a flood): once they have timed out,
    /// the memory they held is handed back to the system. Counted as
    /// connections held, not handshakes in progress: a handshake closed
    /// at its timeout stops being one at once, but its connection (and
    /// its memory) is held until its closing period is over.
    burst: Burst,
}

/// QUIC connections at once from which their end gives memory back
/// ([`release_free_memory`]): a half-open handshake holds about 28 KiB,
/// so 7 MiB and more.
const CONNECTION_BURST: usize = 256;

/// The streams of one QUIC connection that the server still serves.
struct H3Conn {
    generation: u32,
    streams: BTreeMap<u64, Kind>,
}

/// What a request stream is, while it is more than a response on its
/// way (an answered stream is forgotten here; the endpoint sends what
/// was queued and then ends it).
enum Kind {
    /// The request's body is arriving.
    Body {
        request: Box<FieldRequest>,
        body: Vec<u8>,
        /// The application was asked whether it refuses the request
        /// before its body is read.
        asked: bool,
        /// The state the application made of its head
        /// ([`crate::BeforeBody::Handler`]): its route once the body is
        /// whole.
        kept: Option<u32>,
    },
    /// Answered before its body was read whole: the rest is dropped.
    Discarding,
    /// The application answers later, or, holding the request, may let
    /// it go on instead.
    Waiting {
        tag: u32,
        head_only: bool,
        deadline: Instant,
        held: Option<Box<(FieldRequest, Vec<u8>)>>,
    },
    /// An event stream.
    Sse {
        tag: u32,
        heartbeat_at: Instant,
        /// Its content coding, if it is compressed.
        coding: Option<Coding>,
    },
    /// A WebSocket (RFC 9220).
    WebSocket(Box<Session>),
    /// A WebTransport session, served as a WebSocket.
    WebTransport(Box<WtSession>),
}

impl Kind {
    /// The key of the request state the stream holds, if any.
    fn state(&self) -> Option<u32> {
        match self {
            Kind::Waiting { tag, .. } | Kind::Sse { tag, .. } => Some(*tag),
            Kind::WebSocket(session) => Some(session.tag),
            Kind::WebTransport(wt) => Some(wt.ws.tag),
            Kind::Body { kept, .. } => *kept,
            Kind::Discarding => None,
        }
    }

    /// The application's WebSocket session, if the stream is one or a
    /// WebTransport session.
    fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Kind::WebSocket(session) => Some(session),
            Kind::WebTransport(wt) => Some(&mut wt.ws),
            _ => None,
        }
    }

    /// The bytes of WebSocket messages this stream holds while they
    /// arrive (a WebTransport session's: those of its client streams
    /// too), counted against the connection's shared budget
    /// ([`crate::server::websocket::over_shared_budget`]).
    fn held_messages(&self) -> usize {
        match self {
            Kind::WebSocket(session) => session.held(),
            Kind::WebTransport(wt) => wt.held_messages(),
            _ => 0,
        }
    }
}

impl H3Endpoint {
    /// A QUIC endpoint with `env`'s configuration (its TLS configuration,
    /// certificates and all, with ALPN `h3`), on `socket` (bound; `shared`
    /// if the other loops read it too), registered under `token`.
    pub(in crate::server) fn bind<P>(
        env: &LoopEnv<P>,
        tls: &rustls::ServerConfig,
        socket: std::net::UdpSocket,
        shared: bool,
        registry: &Registry,
        token: Token,
    ) -> io::Result<H3Endpoint> {
        let mut quic = env.config.quic.clone();
        let routed = quic.connection_id_prefix.is_some();
        // WebSockets over HTTP/3 (RFC 9220) are served, and WebTransport
        // sessions when the configuration allows any.
        quic.session.enable_connect_protocol = true;
        quic.session.max_field_section_size = quic
            .session
            .max_field_section_size
            .min(env.config.max_request_head);
        let server =
            QuicServer::new(quic, tls).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let socket = QuicSocket::new(socket, registry, token)?;
        let mut wt_config = env.ws_config.config();
        wt_config.ping_interval = None;
        wt_config.idle_timeout = None;
        Ok(H3Endpoint {
            socket,
            server,
            conns: BTreeMap::new(),
            next_generation: 0,
            routed,
            shared: shared && routed,
            streams_due: None,
            wt_config: tether_ws::SharedConfig::new(wt_config, Instant::now()),
            released: Vec::new(),
            burst: Burst::new(CONNECTION_BURST),
        })
    }

    /// The UDP address bound.
    pub(in crate::server) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The socket has datagrams: each goes to the endpoint, or to the loop
    /// that holds its connection (see [`owner_of`]); then what the
    /// endpoint says is handled.
    pub(in crate::server) fn readable<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        now: Instant,
    ) {
        let server = &mut self.server;
        let peers = &env.peers;
        let (routed, shared) = (self.routed, self.shared);
        let mut forwarded = 0;
        let mut faults = Vec::new();
        self.socket.receive(|from, to, datagram| {
            let owner = if routed {
                owner_of(datagram, from, shared, peers.len())
            } else {
                None
            };
            match owner {
                Some(owner) if owner != peers.index => {
                    peers.forward_datagram(owner, from, to, datagram);
                    forwarded += 1;
                }
                _ => {
                    let handled = guard::catch(None, || server.handle_datagram(now, from, to, datagram));
                    if let Err(panic) = handled {
                        // At once: the next datagram may be for a new
                        // connection given the dropped one's handle.
                        faults.push(caught(server, None, "a datagram", panic));
                    }
                }
            }
        });
        Stats::add(&env.stats().quic_datagrams_forwarded, forwarded);
        // Before the events: a new connection may have the handle of one
        // dropped here, whose streams must be forgotten first.
        for fault in faults {
            self.settle_fault(app, env, fault, now);
        }
        self.handle_events(app, env, now);
    }

    /// A datagram another loop's socket received for a connection of this
    /// one.
    pub(in crate::server) fn forwarded<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        from: SocketAddr,
        to: Option<IpAddr>,
        datagram: &[u8],
        now: Instant,
    ) {
        let handled = guard::catch(None, || self.server.handle_datagram(now, from, to, datagram));
        if let Err(panic) = handled {
            let fault = caught(&mut self.server, None, "a forwarded datagram", panic);
            self.settle_fault(app, env, fault, now);
        }
        self.handle_events(app, env, now);
    }

    /// The socket takes datagrams again.
    pub(in crate::server) fn writable<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        registry: &Registry,
        now: Instant,
    ) {
        self.send(app, env, registry, now);
    }

    /// The end of a loop turn: datagrams left unread, the endpoint's
    /// timers and the streams' (deferred answers, heartbeats) when due,
    /// then every datagram the endpoint has to send.
    pub(in crate::server) fn turn<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        registry: &Registry,
        now: Instant,
    ) {
        if self.socket.more_to_read {
            self.readable(app, env, now);
        }
        if self.server.next_timeout().is_some_and(|at| at <= now) {
            // After a panic the connections not yet visited stay due,
            // for the next turn.
            let handled = guard::catch(None, || self.server.handle_timeout(now));
            if let Err(panic) = handled {
                let fault = caught(&mut self.server, None, "a QUIC timer", panic);
                self.settle_fault(app, env, fault, now);
            }
            self.handle_events(app, env, now);
        }
        if self.streams_due.is_some_and(|at| at <= now) {
            self.on_timer(app, env, now);
        }
        self.send(app, env, registry, now);
        self.publish_stats(env.stats());
        if self.burst.passed(self.server.connections()) {
            release_free_memory();
        }
    }

    /// Copies the endpoint's counters to the loop's, which `/metrics`
    /// adds up over the loops.
    fn publish_stats(&self, stats: &Stats) {
        let quic = self.server.stats();
        for (counter, value) in [
            (&stats.open_h3, self.server.connections() as u64),
            (&stats.quic_handshakes, quic.handshakes),
            (&stats.quic_retries, quic.retries),
            (&stats.quic_refused, quic.refused),
            (&stats.quic_refused_half_open, quic.refused_half_open),
            (&stats.quic_half_open, self.server.half_open() as u64),
            (&stats.quic_datagrams_in, quic.datagrams_in),
            (&stats.quic_bytes_in, quic.bytes_in),
            (&stats.quic_datagrams_out, quic.datagrams_out),
            (&stats.quic_bytes_out, quic.bytes_out),
            (&stats.quic_closed_idle, quic.closed_idle),
            (
                &stats.quic_closed_handshake_timeout,
                quic.closed_handshake_timeout,
            ),
            (&stats.quic_closed_error, quic.closed_error),
            (&stats.quic_closed_normally, quic.closed_normally),
        ] {
            Stats::set(counter, value);
        }
    }

    /// Whether the loop should come back at once (datagrams left unread).
    pub(in crate::server) fn busy(&self) -> bool {
        self.socket.more_to_read
    }

    /// The earliest instant at which [`H3Endpoint::turn`] has something to
    /// do.
    pub(in crate::server) fn next_deadline(&mut self) -> Option<Instant> {
        [self.server.next_timeout(), self.streams_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// A stream has something to do at `at`: the streams' timers are
    /// walked no later than then.
    fn due_by(&mut self, at: Option<Instant>) {
        self.streams_due = [self.streams_due, at].into_iter().flatten().min();
    }

    fn send<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        registry: &Registry,
        now: Instant,
    ) {
        let server = &mut self.server;
        let mut faults = Vec::new();
        self.socket.send(registry, |buf, max_segments| {
            loop {
                match guard::catch(None, || server.poll_transmit(now, max_segments, buf)) {
                    Ok(transmit) => {
                        return transmit.map(|transmit| Outgoing {
                            to: transmit.destination,
                            len: transmit.size,
                            segment_size: transmit.segment_size,
                            from: transmit.src_ip,
                        });
                    }
                    Err(panic) => {
                        let fault = caught(server, None, "sending", panic);
                        // The connection that panicked is gone: the others
                        // may send on. A panic for none stops this round.
                        let dropped = fault.dropped;
                        faults.push(fault);
                        if !dropped {
                            return None;
                        }
                    }
                }
            }
        });
        for fault in faults {
            self.settle_fault(app, env, fault, now);
        }
    }

    /// Runs `work`, done for QUIC connection `conn` alone, under a guard:
    /// a panic in it costs that connection (see the module's
    /// documentation), and `None` is returned.
    pub(in crate::server) fn contained<A: App, R>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        conn: ConnectionHandle,
        what: &'static str,
        now: Instant,
        work: impl FnOnce(&mut H3Endpoint, &mut Hosted<A>, &mut LoopEnv<A::Post>) -> R,
    ) -> Option<R> {
        let id = self.named(conn);
        match guard::catch(Some(id), || work(self, app, env)) {
            Ok(result) => Some(result),
            Err(panic) => {
                let fault = caught(&mut self.server, Some(conn), what, panic);
                self.settle_fault(app, env, fault, now);
                None
            }
        }
    }

    /// Carries out an action the application asked for one of the
    /// endpoint's streams, under its connection's guard.
    pub(in crate::server) fn apply<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        action: Action,
        now: Instant,
    ) {
        let conn = ConnectionHandle(action.id().quic_index());
        self.contained(app, env, conn, "an action", now, |endpoint, app, env| {
            endpoint.act(app, env, action, now);
        });
    }

    /// Carries out an action for a request stream (an id with
    /// [`ConnId::is_quic`]), as `super::sink` does for the TCP carriers: a
    /// broadcast queued on its event stream (reset with
    /// H3_REQUEST_CANCELLED by the slow-consumer policy when its client
    /// leaves more than [`crate::config::Config::max_output`] unread), its
    /// event stream ended, its WebSocket's close handshake begun, its
    /// deferred answer sent, its held request let go on.
    fn act<A: App>(&mut self, app: &mut Hosted<A>, env: &mut LoopEnv<A::Post>, action: Action, now: Instant) {
        match action {
            Action::Send(id, encoded) => {
                if self.push(env, id, encoded, now) {
                    self.cut_loose(app, env, id, now);
                }
            }
            Action::EndStream(id) => self.end_stream(app, env, id, CloseReason::Ended, now),
            Action::Respond(id, response) => self.respond_later(id, &response, now),
            Action::Proceed(id, route) => self.proceed(app, env, id, route, now),
            Action::Close(id, code, reason) => self.close_ws(&mut Lent { app, env, now }, id, code, &reason),
        }
    }

    /// Whatever a panic cost: logged once, counted, and the connection's
    /// streams forgotten (the application told); a connection the
    /// endpoint still holds is closed with H3_INTERNAL_ERROR.
    #[cold]
    pub(super) fn settle_fault<A: App>(
        &mut self,
        app: &mut Hosted<A>,
        env: &mut LoopEnv<A::Post>,
        fault: Fault,
        now: Instant,
    ) {
        Stats::add(&env.stats().quic_panics, 1);
        let Fault {
            conn,
            peer,
            dropped,
            what,
            panic,
        } = fault;
        let Some(conn) = conn else {
            error!("a panic in the QUIC endpoint's {what}, for no connection in particular: {panic}");
            return;
        };
        let id = self.named(conn);
        let outcome = if dropped {
            "it is dropped"
        } else {
            "it is closed with H3_INTERNAL_ERROR"
        };
        match peer {
            Some(peer) => error!(
                "a panic in {what} for {} from {peer} ({outcome}): {panic}",
                Named(id)
            ),
            None => error!("a panic in {what} for {} ({outcome}): {panic}", Named(id)),
        }
        let told = guard::catch(Some(id), || self.closed(app, env, conn, now));
        if let Err(panic) = told {
            // What is left of it goes untold.
            if let Some(gone) = self.conns.remove(&conn) {
                self.released
                    .extend(gone.streams.values().filter_map(Kind::state));
            }
            error!("a panic in the end of {}: {panic}", Named(id));
        }
        if !dropped {
            let closed = guard::catch(Some(id), || {
                self.server.close_now(now, conn, ErrorCode::H3_INTERNAL_ERROR)
            });
            if let Err(panic) = closed {
                let _ = self.server.recover();
                error!("a panic closing {} (it is dropped): {panic}", Named(id));
            }
        }
    }

    /// The id of connection `conn` as the application knows it (for the
    /// log).
    fn named(&self, conn: ConnectionHandle) -> ConnId {
        let generation = self.conns.get(&conn).map_or(0, |c| c.generation);
        ConnId::quic(conn.0, generation)
    }

    /// The id the application knows request stream `stream_id` of `conn`
    /// by, if the stream is a client's request stream with an ordinal that
    /// fits.
    fn id_of(&self, conn: ConnectionHandle, stream_id: u64) -> Option<ConnId> {
        let generation = self.conns.get(&conn)?.generation;
        // Client-initiated bidirectional streams are 0, 4, 8, ...
        let ordinal = u32::try_from(stream_id / 4).ok()?.checked_add(1)?;
        stream_id
            .is_multiple_of(4)
            .then(|| ConnId::quic(conn.0, generation).with_stream(ordinal))
    }

    /// The connection and request stream an id names, if the connection
    /// is still the one the id was given for.
    fn stream_of(&self, id: ConnId) -> Option<(ConnectionHandle, u64)> {
        let conn = ConnectionHandle(id.quic_index());
        let held = self.conns.get(&conn)?;
        (held.generation == id.generation() && id.stream() > 0)
            .then(|| (conn, u64::from(id.stream() - 1) * 4))
    }

    /// What the request stream is, if it is still kept.
    fn kind_mut(&mut self, conn: ConnectionHandle, stream_id: u64) -> Option<&mut Kind> {
        self.conns.get_mut(&conn)?.streams.get_mut(&stream_id)
    }

    /// Forgets a stream without telling the application, keeping the
    /// open-session gauges right.
    fn forget<P>(&mut self, env: &LoopEnv<P>, conn: ConnectionHandle, stream_id: u64) -> Option<Kind> {
        let kind = self.conns.get_mut(&conn)?.streams.remove(&stream_id)?;
        self.released.extend(kind.state());
        match kind {
            Kind::Sse { .. } => Stats::sub(&env.stats().open_event_stream, 1),
            Kind::WebSocket(_) | Kind::WebTransport(_) => Stats::sub(&env.stats().open_websocket, 1),
            _ => {}
        }
        Some(kind)
    }

    /// The connection `conn`, known from now if it was not.
    fn conn(&mut self, conn: ConnectionHandle) -> &mut H3Conn {
        let next = &mut self.next_generation;
        self.conns.entry(conn).or_insert_with(|| {
            *next = next.wrapping_add(1);
            H3Conn {
                generation: *next,
                streams: BTreeMap::new(),
            }
        })
    }
}

/// A panic caught in the endpoint's work, and the connection it costs.
pub(super) struct Fault {
    /// The connection, if the panic happened in work for one.
    pub(super) conn: Option<ConnectionHandle>,
    /// Its client's address, when known.
    peer: Option<SocketAddr>,
    /// The endpoint has dropped it already.
    pub(super) dropped: bool,
    /// What was being done, for the log.
    what: &'static str,
    panic: Panic,
}

/// The cost of a panic caught around a call into `server`: the
/// connection it was working on, which it drops at once
/// ([`QuicServer::recover`]), or else `conn`, the one the caller was
/// working for, if any.
pub(super) fn caught(
    server: &mut QuicServer,
    conn: Option<ConnectionHandle>,
    what: &'static str,
    panic: Panic,
) -> Fault {
    match server.recover() {
        Some((handle, peer)) => Fault {
            conn: Some(handle),
            peer,
            dropped: true,
            what,
            panic,
        },
        None => Fault {
            conn,
            peer: conn.and_then(|c| server.remote_address(c)),
            dropped: false,
            what,
            panic,
        },
    }
}

/// The application and a context that acts on no connection in
/// particular.
fn detached<'a, A: App>(
    app: &'a mut Hosted<A>,
    env: &'a mut LoopEnv<A::Post>,
    now: Instant,
) -> (&'a mut Hosted<A>, Ctx<'a, A::Post>) {
    let LoopEnv {
        actions, pool, peers, ..
    } = env;
    (app, Ctx::new(now, actions, pool, peers))
}

/// The application's answer to a request still waiting as the sessions
/// close, if it gives one now (a 500 if the callback panicked).
fn shutdown_answer<A: App>(
    app: &mut Hosted<A>,
    env: &mut LoopEnv<A::Post>,
    sid: ConnId,
    tag: u32,
    now: Instant,
) -> Option<Response> {
    let (app, mut ctx) = detached(app, env, now);
    let peers = ctx.peers;
    let response = guarded(&peers.own().stats, "on_request_shutdown", || {
        app.on_request_shutdown(&mut ctx, sid, tag)
    })
    .unwrap_or_else(|| Some(Response::text(500, "500 Internal Server Error\n")));
    if let (Some(response), Some(access)) = (&response, &peers.own().access) {
        access.deferred_answer(sid, response.status, response.body.len());
    }
    response
}
