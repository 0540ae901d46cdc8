//! The event loop: one `mio::Poll`, a slab of connections, one shared read
//! buffer, per-connection output only while the socket pushes back, and one
//! timer heap.

use std::io::{self, Read};
use std::mem;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use tether_ws::{CloseCode, Event};

use crate::app::Action;
use crate::app::{App, CloseReason, ConnId, Ctx, Response};
use crate::config::{Config, Handshake};
use crate::output::{OutQueue, Pool};
use crate::timers::{Scheduled, Timers};
use crate::transport::{Stream, TlsSession};

mod dispatch;
mod env;
mod guard;
mod h2;
mod listen;
mod requests;
mod session;
mod sink;
mod websocket;

use crate::loops::{Handle, Poster};
use crate::loops::{LoopHandle, Mail, Mailbox, Peers, Stats};
use env::LoopEnv;
use guard::guarded;
pub(crate) use listen::connection_budget;
#[cfg(feature = "tls")]
use listen::with_alpn;
use listen::{
    alpn_is_h2, extra_listener, listen, open_reserve, out_of_descriptors, refuse_busy, start_tls, tls_addr,
};
use websocket::Session;

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const ADMIN_LISTENER: Token = Token(usize::MAX - 4);
const TLS_LISTENER: Token = Token(usize::MAX - 5);

/// The listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// `Config::addr`: TLS if the configuration has TLS and no listener of
    /// its own for it, else plain TCP.
    Main,
    /// `Config::tls_addr`: TLS.
    Tls,
    /// `Config::admin_addr`: plain TCP, on the first loop.
    Admin,
}

/// Reads per readiness event before the connection goes to the back of
/// the line, so one busy peer cannot starve the rest.
const READS_PER_EVENT: usize = 16;

/// How soon `accept` is tried again after the process ran out of
/// descriptors: readiness is edge-triggered, so without a timer the
/// clients already queued would wait for the next one to connect.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Header lines accepted in a request head.
const MAX_HEADERS: usize = 64;

/// A connection in the slab.
struct Conn {
    socket: TcpStream,
    generation: u32,
    state: State,
    /// Queued output; `None` while everything has been written.
    out: Option<Box<OutQueue>>,
    /// This connection's entry in the timer heap.
    scheduled: Scheduled,
    /// Write interest is registered.
    writable: bool,
    /// Not reading: the connection's own replies exceed the output limit.
    paused: bool,
    /// Close once the output is flushed.
    closing: bool,
    /// The peer has closed its side.
    peer_closed: bool,
    /// In the loop's list of connections to flush.
    dirty: bool,
    /// What the connection counts as in the statistics.
    kind: Kind,
    /// Accepted on the admin listener.
    admin: bool,
}

impl Conn {
    /// An HTTP request on it waits for the application's answer.
    fn awaits_answer(&self) -> bool {
        matches!(self.state, State::Http { waiting: Some(_), .. })
    }
}

/// What a connection is, for the open-connection gauges (a draining
/// connection still counts as what it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    WebSocket,
    EventStream,
}

enum State {
    /// Waiting for a request head (the first, or the next on keep-alive),
    /// or for the application's deferred answer to one.
    Http {
        /// Bytes of requests not yet handled.
        partial: Vec<u8>,
        deadline: Instant,
        /// `100 Continue` was sent for the request being received.
        continued: bool,
        /// The head of the request being received was shown to the
        /// application ([`App::refuse_before_body`]).
        head_checked: bool,
        /// A request the application answers later.
        waiting: Option<Deferred>,
        /// Nothing has been read yet: the first bytes may still be the
        /// HTTP/2 preface, or ALPN may have chosen `h2`.
        fresh: bool,
    },
    WebSocket(Session),
    /// An HTTP/2 session (see the `h2` module).
    H2(Box<h2::H2Session>),
    Sse {
        tag: u32,
        heartbeat_at: Instant,
    },
    /// Our side is shut down; reading until the peer closes.
    Draining {
        deadline: Instant,
    },
}

/// A request whose answer the application gives later.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    tag: u32,
    /// Close the connection after the answer.
    close: bool,
    /// A `HEAD` request: the answer goes without its body.
    head_only: bool,
}

/// What to do after one HTTP request.
enum Next {
    /// Parse the next pipelined request.
    Continue,
    /// The connection is no longer plain HTTP (or is closing).
    Stop,
    /// The application answers this request later: keep what follows.
    Wait,
}

/// A tether server: one event loop serving WebSocket, Server-Sent Events
/// and plain HTTP on one port, for the [`App`] it runs.
///
/// ```no_run
/// use tether_server::{App, Config, Handshake, Request, Route, Server};
///
/// struct Hello;
///
/// impl App for Hello {
///     type Post = ();
///
///     fn route(&mut self, _: &Request<'_>) -> Route {
///         Route::Page { content_type: "text/plain", body: b"hello\n" }
///     }
/// }
///
/// let config = Config::new("127.0.0.1:8080".parse().unwrap());
/// let server = Server::bind(config, Handshake::new(), Hello)?;
/// println!("listening on {}", server.local_addr());
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server<A: App> {
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    /// The TLS listener beside the main one ([`Config::tls_addr`]).
    tls_listener: Option<TcpListener>,
    tls_addr: Option<SocketAddr>,
    /// The admin listener ([`Config::admin_addr`]), on the first loop.
    admin_listener: Option<TcpListener>,
    admin_addr: Option<SocketAddr>,
    conns: Slab<Conn>,
    next_generation: u32,
    read_buf: Vec<u8>,
    dirty: Vec<ConnId>,
    backlog: Vec<ConnId>,
    /// The TLS session of each connection, by slab index, kept beside
    /// the connections so that plain ones do not carry its room: empty
    /// unless the server serves TLS.
    tls: Vec<Option<Box<TlsSession>>>,
    app: A,
    /// The pool, timers, peers, configuration and pending actions, lent
    /// to the session code.
    env: LoopEnv<A::Post>,
    /// `config.ws`, kept once for every WebSocket session of the loop.
    ws_config: tether_ws::SharedConfig,
    handshake: Arc<Handshake>,
    max_connections: usize,
    signals: Option<(mio::net::UnixStream, Vec<signal_hook::SigId>)>,
    inbox: mpsc::Receiver<Mail<A::Post>>,
    /// Set once a graceful shutdown has begun.
    shutdown: Option<ShuttingDown>,
    /// Loops (this one included) that have said they drained
    /// ([`Mail::Drained`]).
    drained: usize,
    next_tick: Option<Instant>,
    /// A descriptor held back (an open `/dev/null`) so that a client can
    /// still be told 503 when the process has no other (see `accept`).
    reserve: Option<std::fs::File>,
    /// Out of descriptors since then, as far as `accept` knows.
    exhausted_since: Option<Instant>,
    /// When to try `accept` again, while clients may be queued that could
    /// not be accepted.
    accept_retry_at: Option<Instant>,
}

/// A graceful shutdown under way (see [`App::on_shutdown`] for its two
/// steps).
#[derive(Debug, Clone, Copy)]
struct ShuttingDown {
    /// When the loop stops waiting for its peers and exits.
    deadline: Instant,
    /// Every loop has drained: sessions are closing, and the loop exits
    /// once its last connection is gone.
    closing: bool,
}

impl<A: App> Server<A> {
    /// Binds the listening socket. The loop starts with [`Server::run`].
    /// For several loops on one port, see [`crate::Cluster`].
    pub fn bind(config: Config, handshake: Handshake, app: A) -> io::Result<Server<A>> {
        Server::bind_shared(config, Arc::new(handshake), app, false, true)
    }

    /// Binds one loop; `admin` says it is the loop that takes the admin
    /// listener, if the configuration has one.
    pub(crate) fn bind_shared(
        config: Config,
        handshake: Arc<Handshake>,
        app: A,
        reuse_port: bool,
        admin: bool,
    ) -> io::Result<Server<A>> {
        #[cfg(feature = "tls")]
        let config = {
            let mut config = config;
            config.tls = config.tls.as_ref().map(|tls| with_alpn(tls, config.http2));
            config
        };
        let poll = Poll::new()?;
        let mut listener = listen(config.addr, reuse_port)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let (admin_listener, admin_addr) =
            extra_listener(&poll, config.admin_addr.filter(|_| admin), false, ADMIN_LISTENER)?;
        let (tls_listener, tls_addr) = extra_listener(&poll, tls_addr(&config), reuse_port, TLS_LISTENER)?;
        let own = Arc::new(LoopHandle::new(Waker::new(poll.registry(), WAKER)?));
        let (mailbox, inbox) = Mailbox::new(own);
        let max_connections = config
            .max_connections
            .unwrap_or_else(|| connection_budget(&config, 1));
        debug!("at most {max_connections} connections");
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            tls_listener,
            tls_addr,
            admin_listener,
            admin_addr,
            conns: Slab::new(),
            next_generation: 0,
            read_buf: vec![0; config.read_buffer.max(1024)],
            dirty: Vec::new(),
            backlog: Vec::new(),
            tls: Vec::new(),
            app,
            ws_config: tether_ws::SharedConfig::new(config.ws, Instant::now()),
            env: LoopEnv {
                timers: Timers::default(),
                pool: Pool::default(),
                actions: Vec::new(),
                peers: Peers::alone(mailbox),
                config,
            },
            handshake,
            max_connections,
            signals: None,
            inbox,
            shutdown: None,
            drained: 0,
            next_tick: None,
            reserve: open_reserve(),
            exhausted_since: None,
            accept_retry_at: None,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the admin listener, if there is one
    /// ([`Config::admin_addr`]; useful after binding port 0).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The address of the TLS listener beside the main one, if there is
    /// one (`Config::tls_addr`; useful after binding port 0).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The most connections served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// A handle that stops the loop, or reads its counters, from another
    /// thread.
    pub fn handle(&self) -> Handle {
        self.env.peers.handle()
    }

    /// A poster to the loop ([`App::on_post`]), for other threads.
    pub fn poster(&self) -> Poster<A::Post> {
        self.env.peers.poster()
    }

    /// Shuts down gracefully on SIGINT and SIGTERM; a second signal during
    /// the shutdown exits at once. Signal handlers are process-wide, so only
    /// the process's main server should ask for this.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut read = mio::net::UnixStream::from_std(read);
        self.poll
            .registry()
            .register(&mut read, SIGNALS, Interest::READABLE)?;
        let mut ids = Vec::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(
                signal,
                write.try_clone()?,
            )?);
        }
        self.signals = Some((read, ids));
        Ok(())
    }

    /// Runs the loop until a graceful shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        if let Some(interval) = self.app.tick_interval() {
            self.next_tick = Some(Instant::now() + interval);
        }
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now, Entry::Main),
                    TLS_LISTENER => self.accept(now, Entry::Tls),
                    ADMIN_LISTENER => self.accept(now, Entry::Admin),
                    SIGNALS => {
                        if self.drain_signals() {
                            if self.shutdown.is_some() {
                                info!("second signal: exiting now");
                                return Ok(());
                            }
                            self.begin_shutdown(now);
                        }
                    }
                    WAKER => {
                        self.receive_posts(now);
                        if self.env.peers.own().stop_requested() && self.shutdown.is_none() {
                            self.begin_shutdown(now);
                        }
                    }
                    Token(index) => {
                        let Some(conn) = self.conns.get(index) else {
                            continue;
                        };
                        let id = ConnId::new(index, conn.generation);
                        if event.is_writable() {
                            self.flush(id, now);
                        }
                        let hangup = event.is_read_closed() || event.is_error();
                        if event.is_readable() || hangup {
                            self.read_from(id, now, hangup, hangup);
                        }
                    }
                }
            }
            for id in mem::take(&mut self.backlog) {
                // The event that would have said the peer closed may have
                // come while the connection was paused or out of turns.
                self.read_from(id, now, true, false);
            }
            if self.accept_retry_at.is_some_and(|at| now >= at) {
                self.accept_retry_at = None;
                for entry in [Entry::Main, Entry::Tls, Entry::Admin] {
                    self.accept(now, entry);
                }
            }
            self.fire_timers(now);
            self.tick(now);
            self.apply_actions(now);
            self.flush_dirty(now);
            if let Some(shutdown) = self.shutdown {
                if shutdown.closing && self.conns.is_empty() {
                    info!("shutdown complete");
                    return Ok(());
                }
                if now >= shutdown.deadline {
                    info!(
                        "shutdown deadline passed; dropping {} connections",
                        self.conns.len()
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Hands what other loops (or threads) posted to the application, and
    /// counts the loops that have drained.
    fn receive_posts(&mut self, now: Instant) {
        while let Ok(mail) = self.inbox.try_recv() {
            match mail {
                Mail::Post(message) => {
                    let (app, mut ctx) = self.detached(now);
                    let peers = ctx.peers;
                    guarded(&peers.own().stats, "on_post", || app.on_post(&mut ctx, message));
                    self.apply_actions(now);
                }
                Mail::Drained => {
                    self.drained += 1;
                    self.close_sessions_once_drained(now);
                }
            }
        }
    }

    /// The borrows a callback needs, split off the server at once: the
    /// connection `id` (if it still exists), the application, and a context
    /// for the callback (acting on no connection until `current` is set).
    fn split(&mut self, id: ConnId, now: Instant) -> Option<(&mut Conn, &mut A, Ctx<'_, A::Post>)> {
        self.split_with_tls(id, now)
            .map(|(conn, _, app, ctx)| (conn, app, ctx))
    }

    /// As [`Server::split`], with the connection's TLS session if it has
    /// one (to write to its stream).
    fn split_with_tls(&mut self, id: ConnId, now: Instant) -> Option<WithTls<'_, A>> {
        let Self {
            conns, tls, app, env, ..
        } = self;
        let LoopEnv {
            actions, pool, peers, ..
        } = env;
        let conn = live(conns, id)?;
        let tls = session(tls, id.index());
        Some((conn, tls, app, Ctx::new(now, actions, pool, peers)))
    }

    /// The application and a context that acts on no connection in
    /// particular.
    fn detached(&mut self, now: Instant) -> (&mut A, Ctx<'_, A::Post>) {
        let Self { app, env, .. } = self;
        let LoopEnv {
            actions, pool, peers, ..
        } = env;
        (app, Ctx::new(now, actions, pool, peers))
    }

    /// This loop's mailbox and the other loops', for a cluster to join.
    pub(crate) fn peers(&self) -> &Peers<A::Post> {
        &self.env.peers
    }

    /// Joins this loop to the others of a cluster.
    pub(crate) fn set_peers(&mut self, peers: Peers<A::Post>) {
        self.env.peers = peers;
    }

    fn stats(&self) -> &Stats {
        self.env.stats()
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.backlog.is_empty() || !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        [
            self.env.timers.next(),
            self.next_tick,
            self.shutdown.map(|s| s.deadline),
            self.accept_retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(now))
    }

    fn drain_signals(&mut self) -> bool {
        let Some((read, _)) = self.signals.as_mut() else {
            return false;
        };
        let mut any = false;
        let mut buf = [0u8; 64];
        loop {
            match read.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        any
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        live(&mut self.conns, id)
    }

    /// A connection and its TLS session, if it has one.
    fn conn_and_tls(&mut self, id: ConnId) -> Option<(&mut Conn, Option<&mut TlsSession>)> {
        let conn = live(&mut self.conns, id)?;
        Some((conn, session(&mut self.tls, id.index())))
    }

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Accepts every connection the kernel has queued, on the main
    /// listener or the admin one.
    ///
    /// When the process runs out of descriptors (`EMFILE`, `ENFILE`, or the
    /// kernel out of memory for a socket: `ENOBUFS`, `ENOMEM`), the clients
    /// in the listen queue are not lost but not served either, and no new
    /// readiness event comes for them. The policy:
    ///
    /// - `accept` is retried every [`ACCEPT_RETRY`] (100 ms, in the loop's
    ///   poll timeout), and at once when a connection of this loop closes,
    ///   so queued clients are served as soon as descriptors are freed: a
    ///   short shortage only delays them.
    /// - Once descriptors have been short continuously for longer than
    ///   [`Config::accept_patience`] (1 s), queued clients are shed: the
    ///   loop closes its reserve descriptor, accepts one client into it,
    ///   answers `503` with `Retry-After`, closes it and reopens the
    ///   reserve (the trick of libuv and nginx), until the queue is empty.
    ///   Later clients are shed at once, for as long as the shortage lasts,
    ///   so that nobody hangs on a server that cannot take them. Shed
    ///   clients count in `refused_busy`.
    /// - The shortage is logged once when it starts and once when it ends
    ///   (the first accept that succeeds), never per attempt.
    fn accept(&mut self, now: Instant, entry: Entry) {
        loop {
            let Some(listener) = self.listener(entry) else {
                return;
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A client that reset before it was accepted: the next one
                // may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue;
                }
                Err(e) if out_of_descriptors(&e) => {
                    self.short_of_descriptors(now, &e, entry);
                    return;
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
            };
            if let Some(since) = self.exhausted_since.take() {
                info!(
                    "descriptors available again after {:.1} s; accepting",
                    now.saturating_duration_since(since).as_secs_f64()
                );
            }
            if self.reserve.is_none() {
                self.reserve = open_reserve();
            }
            if self.conns.len() >= self.max_connections {
                debug!("{peer}: over the connection limit, 503");
                Stats::add(&self.stats().refused_busy, 1);
                refuse_busy(socket, self.serves_tls(entry));
                continue;
            }
            let _ = socket.set_nodelay(true);
            let tls = self.serves_tls(entry);
            let vacant = self.conns.vacant_entry();
            let index = vacant.key();
            if let Err(e) = start_tls(&self.env.config, &mut self.tls, index, tls) {
                warn!("{peer}: no TLS session: {e}");
                continue;
            }
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, Token(index), Interest::READABLE)
            {
                warn!("{peer}: register failed: {e}");
                continue;
            }
            self.next_generation = self.next_generation.wrapping_add(1);
            let generation = self.next_generation;
            let deadline = now + self.env.config.handshake_timeout;
            vacant.insert(Conn {
                socket,
                generation,
                state: State::Http {
                    partial: Vec::new(),
                    deadline,
                    continued: false,
                    head_checked: false,
                    waiting: None,
                    fresh: true,
                },
                out: None,
                scheduled: Scheduled::default(),
                writable: false,
                paused: false,
                closing: false,
                peer_closed: false,
                dirty: false,
                kind: Kind::Http,
                admin: entry == Entry::Admin,
            });
            let stats = &self.env.peers.own().stats;
            Stats::add(&stats.accepted, 1);
            Stats::add(&stats.open_http, 1);
            let id = ConnId::new(index, generation);
            if let Some(conn) = self.conns.get_mut(index) {
                self.env.timers.schedule(id, deadline, &mut conn.scheduled);
            }
        }
    }

    /// `accept` failed for lack of descriptors: retry soon, and shed the
    /// queue once the shortage has lasted beyond the patience (see
    /// [`Server::accept`]).
    fn short_of_descriptors(&mut self, now: Instant, error: &io::Error, entry: Entry) {
        let patience = self.env.config.accept_patience;
        let since = *self.exhausted_since.get_or_insert_with(|| {
            warn!(
                "out of descriptors ({error}): queued clients wait, and get 503 if this lasts {:.1} s",
                patience.as_secs_f64()
            );
            now
        });
        self.accept_retry_at = Some(now + ACCEPT_RETRY);
        if now.saturating_duration_since(since) >= patience {
            self.shed(now, entry);
        }
    }

    /// Answers queued clients 503 through the reserve descriptor until the
    /// queue is empty (or the reserve cannot be had back).
    fn shed(&mut self, now: Instant, entry: Entry) {
        loop {
            if self.listener(entry).is_none() {
                return;
            }
            // Closing the reserve frees the one descriptor the accept below
            // needs.
            if self.reserve.take().is_none() {
                self.reserve = open_reserve();
                if self.reserve.is_none() {
                    // Another loop of the process may have taken it: the
                    // retry timer comes back.
                    return;
                }
                continue;
            }
            let Some(accepted) = self.listener(entry).map(TcpListener::accept) else {
                return;
            };
            self.reserve = open_reserve();
            match accepted {
                Ok((socket, peer)) => {
                    debug!("{peer}: out of descriptors, 503");
                    Stats::add(&self.stats().refused_busy, 1);
                    refuse_busy(socket, self.serves_tls(entry));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_retry_at = None;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) => {}
                // ENFILE (the system's table is full) and the like: freeing
                // our one descriptor did not help; the retry timer comes
                // back.
                Err(_) => {
                    self.accept_retry_at = Some(now + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// Reads and handles what the peer sent. `closed` says the peer may
    /// have closed its side already, so reading goes on until the socket
    /// says so or would block. `hangup` says the socket reported it: a
    /// connection waiting for the application's answer is read then too
    /// (only to learn that its client is gone), and otherwise not at all.
    fn read_from(&mut self, id: ConnId, now: Instant, closed: bool, hangup: bool) {
        let mut buf = mem::take(&mut self.read_buf);
        for round in 0..READS_PER_EVENT {
            let Some((conn, tls)) = self.conn_and_tls(id) else {
                break;
            };
            // A request waiting for its answer holds back the ones
            // pipelined behind it in the socket (TCP backpressure) instead
            // of their piling up here; the answer resumes reading.
            if conn.paused || conn.peer_closed || (conn.awaits_answer() && !hangup) {
                break;
            }
            let mut stream = Stream {
                socket: &mut conn.socket,
                tls,
            };
            let read = stream.read(&mut buf);
            if stream.wants_write() {
                // A TLS handshake answer the socket did not take at once.
                self.mark_dirty(id);
            }
            match read {
                Ok(0) => {
                    self.on_eof(id, now);
                    break;
                }
                Ok(n) => {
                    Stats::add(&self.stats().bytes_in, n as u64);
                    self.on_input(id, buf.get_mut(..n).unwrap_or_default(), now);
                    self.apply_actions(now);
                    // A short read drained the socket: with edge-triggered
                    // readiness, data arriving later raises a new event,
                    // so a read that would only say WouldBlock is skipped.
                    // Not so an end of stream that had already arrived with
                    // the data: it raises no new event, and only another
                    // read sees it.
                    if n < buf.len() && !closed {
                        break;
                    }
                    if round == READS_PER_EVENT - 1 {
                        self.backlog.push(id);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("read error: {e}");
                    if e.kind() == io::ErrorKind::InvalidData {
                        // TLS refused what the peer sent (not TLS at all,
                        // say); rustls has sent its alert.
                        Stats::add(&self.stats().tls_errors, 1);
                    }
                    self.remove(id, CloseReason::Dropped);
                    self.apply_actions(now);
                    break;
                }
            }
        }
        self.read_buf = buf;
        // Answer at once, with everything this read produced for this
        // connection in one write: waiting for the end of the loop turn
        // would hold every reply until all ready connections were read, and
        // a peer on another core would sit idle meanwhile. Output for other
        // connections (broadcasts) still goes out once per turn.
        self.flush_if_dirty(id, now);
    }

    fn on_input(&mut self, id: ConnId, data: &mut [u8], now: Instant) {
        let http2 = self.env.config.http2;
        let Some(conn) = self.conn_mut(id) else { return };
        match conn.state {
            // After a response that closes the connection, later requests
            // are not answered.
            State::Http { .. } if conn.closing => {}
            State::Http { fresh: true, .. } if http2 => self.first_input(id, data, now),
            State::Http { .. } => self.http_input(id, data, now),
            State::H2(_) => self.h2_input(id, data, now),
            State::WebSocket(_) => self.ws_input(id, data, now),
            // Nothing is expected from an event-stream client, and a
            // draining connection's input is discarded.
            State::Sse { .. } | State::Draining { .. } => {}
        }
    }

    /// The first bytes of a connection, with HTTP/2 on: a TLS connection
    /// whose ALPN chose `h2`, or a plain one that starts with the client
    /// preface, becomes an HTTP/2 session; any other is HTTP/1.1 from its
    /// first byte that differs from the preface (so a request is never
    /// held back, and one starting `P` waits for at most 23 bytes).
    fn first_input(&mut self, id: ConnId, data: &mut [u8], now: Instant) {
        let tls = session(&mut self.tls, id.index()).map(|tls| alpn_is_h2(tls));
        let Some(conn) = self.conn_mut(id) else { return };
        let State::Http { partial, fresh, .. } = &mut conn.state else {
            return;
        };
        let preface: &[u8] = tether_h2::frame::PREFACE;
        let h2 = match tls {
            Some(h2) => h2,
            None => {
                let seen = partial.len() + data.len();
                let mut bytes = partial.iter().chain(data.iter());
                let same = preface.iter().zip(&mut bytes).all(|(a, b)| a == b);
                if same && seen < preface.len() {
                    // Could still be either: wait for more (within the
                    // handshake timeout that runs already).
                    partial.extend_from_slice(data);
                    return;
                }
                same
            }
        };
        *fresh = false;
        if !h2 {
            return self.http_input(id, data, now);
        }
        let mut buffered = mem::take(partial);
        buffered.extend_from_slice(data);
        if self.start_h2(id, now) {
            self.h2_input(id, &buffered, now);
        } else {
            self.remove(id, CloseReason::Dropped);
        }
    }

    fn on_eof(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conn_mut(id) else { return };
        conn.peer_closed = true;
        match &conn.state {
            State::Draining { .. } => self.remove(id, CloseReason::Dropped),
            State::WebSocket(session) if session.ws.state() != tether_ws::State::Closed => {
                self.remove(id, CloseReason::Dropped)
            }
            State::Sse { .. } | State::H2(_) => self.remove(id, CloseReason::Dropped),
            // A plain HTTP client may half-close after its request: its
            // responses are still written before the connection closes.
            _ => {
                conn.closing = true;
                self.mark_dirty(id);
            }
        }
        self.apply_actions(now);
    }

    /// Applies what application callbacks asked for other connections.
    fn apply_actions(&mut self, now: Instant) {
        while !self.env.actions.is_empty() {
            let mut batch = mem::take(&mut self.env.actions);
            for action in batch.drain(..) {
                match action {
                    Action::Send(id, encoded) => self.push(id, encoded, now),
                    Action::Close(id, code, reason) => self.close_ws(id, code, &reason, now),
                    Action::EndStream(id) => self.end_stream(id, CloseReason::Ended, now),
                    Action::Respond(id, response) => self.respond_later(id, &response, now),
                }
            }
            if self.env.actions.is_empty() {
                self.env.actions = batch;
            }
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        while !self.dirty.is_empty() {
            for id in mem::take(&mut self.dirty) {
                self.flush_if_dirty(id, now);
            }
            self.apply_actions(now);
        }
    }

    /// Flushes a connection marked dirty (and not flushed since).
    fn flush_if_dirty(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = self.conn_mut(id)
            && conn.dirty
        {
            conn.dirty = false;
            self.flush(id, now);
        }
    }

    /// Writes what is queued; then registers write interest, resumes
    /// reading, or moves on to closing, as the result calls for.
    fn flush(&mut self, id: ConnId, now: Instant) {
        let max_output = self.env.config.max_output;
        let Self {
            conns,
            poll,
            tls,
            env,
            ..
        } = self;
        let LoopEnv { pool, peers, .. } = env;
        let Some(conn) = live(conns, id) else {
            return;
        };
        let mut stream = Stream {
            socket: &mut conn.socket,
            tls: session(tls, id.index()),
        };
        let written = match conn.out.as_mut() {
            None => Ok(true),
            Some(out) => {
                let before = out.len();
                let result = out.flush(&mut stream, pool);
                Stats::add(&peers.own().stats.bytes_out, (before - out.len()) as u64);
                result
            }
        };
        // What TLS still holds counts as queued too.
        let done = match written.and_then(|all| Ok(all && stream.flush_pending()?)) {
            Ok(done) => done,
            Err(e) => {
                debug!("write error: {e}");
                self.remove(id, CloseReason::Dropped);
                return;
            }
        };
        if done {
            if let Some(out) = conn.out.take() {
                pool.give_back_queue(out);
            }
            if conn.writable {
                conn.writable = false;
                let _ = poll
                    .registry()
                    .reregister(&mut conn.socket, Token(id.index()), Interest::READABLE);
            }
            if conn.paused {
                conn.paused = false;
                self.backlog.push(id);
            }
            if conn.closing {
                self.finish_connection(id, now);
                return;
            }
        } else {
            if !conn.writable {
                conn.writable = true;
                let _ = poll.registry().reregister(
                    &mut conn.socket,
                    Token(id.index()),
                    Interest::READABLE | Interest::WRITABLE,
                );
            }
            if conn.paused && conn.out.as_ref().is_some_and(|o| o.len() <= max_output / 2) {
                conn.paused = false;
                self.backlog.push(id);
            }
        }
        self.reschedule(id);
    }

    /// Everything is written and the connection is done: shut down our
    /// side and drain the peer's, or just drop it if the peer has closed.
    fn finish_connection(&mut self, id: ConnId, now: Instant) {
        let linger = self.env.config.linger;
        let Some((conn, tls)) = self.conn_and_tls(id) else {
            return;
        };
        if conn.peer_closed || matches!(conn.state, State::Draining { .. }) {
            self.remove(id, CloseReason::Dropped);
            return;
        }
        Stream {
            socket: &mut conn.socket,
            tls,
        }
        .shutdown_write();
        conn.closing = false;
        conn.state = State::Draining {
            deadline: now + linger,
        };
        self.reschedule(id);
    }

    fn reschedule(&mut self, id: ConnId) {
        let Self { conns, env, .. } = self;
        let LoopEnv { timers, .. } = env;
        let Some(conn) = live(conns, id) else {
            return;
        };
        let next = match &conn.state {
            State::Http { deadline, .. } => Some(*deadline),
            State::WebSocket(session) => session.ws.poll_timeout(),
            State::Sse { heartbeat_at, .. } => Some(*heartbeat_at),
            State::Draining { deadline } => Some(*deadline),
            State::H2(h2) => h2.next_deadline(),
        };
        if let Some(at) = next {
            timers.schedule(id, at, &mut conn.scheduled);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((entry, slot)) = self.env.timers.pop_due(now) {
            let Self { conns, env, .. } = self;
            let LoopEnv { timers, .. } = env;
            let Some(conn) = conns.get_mut(slot) else {
                continue;
            };
            if !timers.take_if_current(entry, &mut conn.scheduled) {
                continue;
            }
            let id = ConnId::new(slot, conn.generation);
            self.on_timer(id, now);
            self.apply_actions(now);
            self.reschedule(id);
        }
    }

    fn on_timer(&mut self, id: ConnId, now: Instant) {
        let heartbeat = self.env.config.sse_heartbeat;
        let Some((conn, app, mut ctx)) = self.split(id, now) else {
            return;
        };
        match &mut conn.state {
            State::Http {
                deadline,
                waiting: Some(deferred),
                ..
            } => {
                if now >= *deadline {
                    let tag = deferred.tag;
                    self.request_timed_out(id, tag, now);
                }
            }
            State::Http { deadline, .. } => {
                if now >= *deadline {
                    debug!("request head not complete in time; dropping");
                    self.remove(id, CloseReason::Dropped);
                }
            }
            State::Draining { deadline } => {
                if now >= *deadline {
                    self.remove(id, CloseReason::Dropped);
                }
            }
            State::H2(_) => self.h2_timer(id, now),
            State::Sse { heartbeat_at, .. } => {
                if now >= *heartbeat_at && conn.closing {
                    debug!("event stream could not flush its end in time; dropping");
                    self.remove(id, CloseReason::Dropped);
                } else if now >= *heartbeat_at {
                    *heartbeat_at = now + heartbeat;
                    let out = conn.out.get_or_insert_with(|| ctx.pool.queue());
                    out.write_with(ctx.pool, tether_sse::heartbeat);
                    self.mark_dirty(id);
                }
            }
            State::WebSocket(session) => {
                let out = conn.out.get_or_insert_with(|| ctx.pool.queue());
                let event = out.write_with(ctx.pool, |out| session.ws.handle_timeout(now, out));
                if let Some(Event::Failed(error)) = event {
                    debug!("websocket timer: {error}");
                    if !session.notified {
                        session.notified = true;
                        let reason = match error {
                            tether_ws::Error::IdleTimeout => CloseReason::Failed(CloseCode::GOING_AWAY),
                            _ => CloseReason::Dropped,
                        };
                        let (tag, peers) = (session.tag, ctx.peers);
                        guarded(&peers.own().stats, "on_close", || {
                            app.on_close(&mut ctx, id, tag, reason)
                        });
                    }
                    if matches!(error, tether_ws::Error::CloseTimeout) {
                        self.remove(id, CloseReason::Dropped);
                        return;
                    }
                    conn.closing = true;
                }
                self.mark_dirty(id);
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        let Some(at) = self.next_tick else { return };
        if now < at || self.shutdown.is_some() {
            return;
        }
        let interval = self.app.tick_interval().unwrap_or(Duration::from_secs(1));
        // From now, not from when it was due: a late tick (a busy loop) must
        // not be followed by an early one.
        self.next_tick = Some(now + interval);
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_tick", || app.on_tick(&mut ctx));
    }

    /// Drops a connection now, telling the application if it had not been
    /// told its session ended.
    fn remove(&mut self, id: ConnId, reason: CloseReason) {
        let Some(conn) = self.conns.get(id.index()) else {
            return;
        };
        if conn.generation != id.generation() {
            return;
        }
        let mut conn = self.conns.remove(id.index());
        if let Some(slot) = self.tls.get_mut(id.index()) {
            *slot = None;
        }
        if let Some(out) = conn.out.take() {
            self.env.pool.give_back_queue(out);
        }
        let now = Instant::now();
        let (app, mut ctx) = self.detached(now);
        let stats = &ctx.peers.own().stats;
        Stats::sub(
            match conn.kind {
                Kind::Http => &stats.open_http,
                Kind::WebSocket => &stats.open_websocket,
                Kind::EventStream => &stats.open_event_stream,
            },
            1,
        );
        let peers = ctx.peers;
        guarded(&peers.own().stats, "the end of a connection", || {
            match conn.state {
                State::WebSocket(session) if !session.notified => {
                    app.on_close(&mut ctx, id, session.tag, reason)
                }
                State::Sse { tag, .. } if !conn.closing => app.on_unsubscribe(&mut ctx, id, tag, reason),
                State::Http {
                    waiting: Some(deferred),
                    ..
                } => app.on_request_abandoned(&mut ctx, id, deferred.tag),
                State::H2(session) => h2::notify_removed(app, &mut ctx, id, *session, reason),
                _ => {}
            }
        });
        let _ = self.poll.registry().deregister(&mut conn.socket);
        // A descriptor is freed (when `conn` goes out of scope): a client queued for lack of one can be
        // accepted now rather than at the next retry.
        if self.accept_retry_at.is_some() {
            self.accept_retry_at = Some(now);
        }
    }

    /// The first step of a graceful shutdown: no new connections, the
    /// application told to take no more work it could not finish, idle
    /// keep-alive connections closed, and every loop told this one has
    /// drained. Sessions stay open until every loop has drained
    /// ([`Server::close_sessions_once_drained`]), so that what one loop
    /// sequenced and another acknowledged before the shutdown still
    /// reaches every subscriber.
    fn begin_shutdown(&mut self, now: Instant) {
        info!("shutting down: {} connections to close", self.conns.len());
        for mut listener in [
            self.listener.take(),
            self.tls_listener.take(),
            self.admin_listener.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.shutdown = Some(ShuttingDown {
            deadline: now + self.env.config.shutdown_timeout,
            closing: false,
        });
        self.next_tick = None;
        // The other loops of a cluster follow (a signal reaches only one).
        self.env.peers.shutdown_all();
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_shutdown", || app.on_shutdown(&mut ctx));
        self.apply_actions(now);
        // After on_shutdown, so that nothing this loop accepts from now on
        // is posted behind the mark.
        self.env.peers.drained();
        let mut sessions = Vec::new();
        for id in self.conn_ids() {
            let Some(conn) = self.conn_mut(id) else { continue };
            // Idle: nothing to answer. A request under way gets its
            // answer, which closes the connection.
            let idle = match &mut conn.state {
                State::Http {
                    waiting: Some(deferred),
                    ..
                } => {
                    deferred.close = true;
                    false
                }
                State::Http { partial, .. } => partial.is_empty(),
                State::H2(_) => {
                    sessions.push(id);
                    false
                }
                State::WebSocket(_) | State::Sse { .. } | State::Draining { .. } => false,
            };
            if idle {
                conn.closing = true;
                self.mark_dirty(id);
            }
        }
        for id in sessions {
            self.h2_begin_shutdown(id);
        }
    }

    /// The second step of a graceful shutdown, once every loop has
    /// drained (this one included): waiting requests get their answer,
    /// WebSockets close with 1001, event streams end.
    fn close_sessions_once_drained(&mut self, now: Instant) {
        let loops = self.env.peers.len();
        let Some(shutdown) = self.shutdown.as_mut() else {
            return;
        };
        if shutdown.closing || self.drained < loops {
            return;
        }
        shutdown.closing = true;
        debug!("every loop has drained: closing sessions");
        for id in self.conn_ids() {
            let Some(conn) = self.conn_mut(id) else { continue };
            match &conn.state {
                State::Http {
                    waiting: Some(deferred),
                    ..
                } => {
                    let tag = deferred.tag;
                    self.answer_at_shutdown(id, tag, now);
                }
                State::Http { partial, .. } => {
                    if partial.is_empty() {
                        conn.closing = true;
                        self.mark_dirty(id);
                    }
                }
                State::WebSocket(_) => self.close_ws(id, CloseCode::GOING_AWAY, "server shutting down", now),
                State::Sse { .. } => self.end_stream(id, CloseReason::Shutdown, now),
                State::H2(_) => self.h2_close_sessions(id, now),
                State::Draining { .. } => {}
            }
        }
        self.apply_actions(now);
    }

    /// Asks the application for the answer to a request still waiting as
    /// the sessions close.
    fn answer_at_shutdown(&mut self, id: ConnId, tag: u32, now: Instant) {
        let (app, mut ctx) = self.detached(now);
        let peers = ctx.peers;
        let answer = guarded(&peers.own().stats, "on_request_shutdown", || {
            app.on_request_shutdown(&mut ctx, id, tag)
        })
        .unwrap_or_else(|| Some(Response::text(500, "500 Internal Server Error\n")));
        if let Some(response) = answer {
            self.respond_later(id, &response, now);
        }
    }

    fn conn_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .map(|(index, conn)| ConnId::new(index, conn.generation))
            .collect()
    }

    /// The listener of `entry`, while it is open.
    fn listener(&self, entry: Entry) -> Option<&TcpListener> {
        match entry {
            Entry::Main => self.listener.as_ref(),
            Entry::Tls => self.tls_listener.as_ref(),
            Entry::Admin => self.admin_listener.as_ref(),
        }
    }

    /// Whether connection `id` speaks TLS.
    fn is_tls(&self, id: ConnId) -> bool {
        self.tls.get(id.index()).is_some_and(Option::is_some)
    }

    /// Whether connections through `entry` speak TLS.
    fn serves_tls(&self, entry: Entry) -> bool {
        match entry {
            Entry::Tls => true,
            Entry::Admin => false,
            Entry::Main => {
                #[cfg(feature = "tls")]
                return self.env.config.tls.is_some() && self.env.config.tls_addr.is_none();
                #[cfg(not(feature = "tls"))]
                return false;
            }
        }
    }

    /// Whether every loop has drained and sessions are closing.
    fn closing_sessions(&self) -> bool {
        self.shutdown.is_some_and(|s| s.closing)
    }

    /// Routes a complete request on connection (or stream) `id`: the one
    /// request path, whichever version carried it.
    fn dispatch(
        &mut self,
        id: ConnId,
        head: &dispatch::Head<'_>,
        body: &[u8],
        now: Instant,
    ) -> dispatch::Decision {
        let closing_sessions = self.closing_sessions();
        let (app, mut ctx) = self.detached(now);
        dispatch::dispatch(app, &mut ctx, id, head, body, closing_sessions)
    }
}

impl<A: App> Drop for Server<A> {
    fn drop(&mut self) {
        // Signal handlers are process-wide: a server that is gone must not
        // leave its own behind (an embedder may start another).
        if let Some((_, ids)) = self.signals.take() {
            for id in ids {
                signal_hook::low_level::unregister(id);
            }
        }
    }
}

/// The connection `id` names, if it is still open (its slot may hold a
/// later connection by now, with another generation).
fn live(conns: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.index())
        .filter(|c| c.generation == id.generation())
}

/// The TLS session of the connection in slot `index`, if it has one.
fn session(sessions: &mut [Option<Box<TlsSession>>], index: usize) -> Option<&mut TlsSession> {
    sessions.get_mut(index).and_then(|s| s.as_deref_mut())
}

/// A connection with its TLS session, the application and a context: what
/// [`Server::split_with_tls`] gives.
type WithTls<'s, A> = (
    &'s mut Conn,
    Option<&'s mut TlsSession>,
    &'s mut A,
    Ctx<'s, <A as App>::Post>,
);

#[cfg(test)]
mod tests {
    /// What an idle connection costs is mostly this: keep it small (the
    /// target is 200 bytes of RSS per idle WebSocket, all included). The
    /// socket is left out of the count: mio keeps a selector id beside
    /// the descriptor in debug builds (16 bytes there, 4 in release,
    /// where a `Conn` takes 128).
    #[test]
    fn a_connection_stays_small() {
        let conn = std::mem::size_of::<super::Conn>() - std::mem::size_of::<mio::net::TcpStream>();
        assert!(conn <= 128, "Conn is {conn} bytes besides its socket");
    }
}
