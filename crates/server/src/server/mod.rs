//! The event loop: one `mio::Poll`, a slab of connections, one shared read
//! buffer, per-connection output only while the socket pushes back, and one
//! timer heap.
//!
//! The loop owns the poll, the listeners and the mailbox, and hands every
//! readiness event, accepted socket and due timer to its connections
//! (`connections::Connections`), which drive each connection's protocol
//! session (`h1::H1Conn`, `h2::H2Session`) through a `env::Call`: the
//! connection's link and socket with the application and the loop's
//! environment, lent for one call. What the application asks for other
//! connections goes through the sink (`sink`). The files below this one
//! never name the loop.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use log::{debug, info};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::app::{Actions, App};
use crate::config::{Config, Handshake};
use crate::loops::{Handle, LoopHandle, Mail, Mailbox, Peers, Poster, Stats};
use crate::output::Pool;
use crate::timers::Timers;

mod accept;
mod body;
mod conn;
mod connections;
mod dispatch;
mod env;
mod fields;
pub(crate) mod guard;
mod h1;
mod h2;
#[cfg(feature = "tls")]
mod h3;
mod hosted;
#[cfg(test)]
#[cfg(feature = "tls")]
mod inject;
mod link;
mod listen;
mod push_target;
mod signals;
mod sink;
pub(crate) mod sockets;
mod websocket;

// Its loop serves TLS and HTTP/3 beside plain TCP. Two attributes, not
// `all(test, ..)`: clippy exempts test code from its lints by `cfg(test)`.
#[cfg(test)]
#[cfg(feature = "tls")]
mod fault_tests;

use accept::{Entry, Listeners};
use connections::Connections;
use env::LoopEnv;
use guard::guarded;
pub(crate) use listen::connection_budget;
use listen::refuse_busy;
#[cfg(feature = "tls")]
use listen::with_alpn;
use signals::{Caught, Signals};
use sockets::{LoopSockets, Sockets};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const ADMIN_LISTENER: Token = Token(usize::MAX - 4);
const TLS_LISTENER: Token = Token(usize::MAX - 5);
#[cfg(feature = "tls")]
const QUIC_SOCKET: Token = Token(usize::MAX - 6);

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
///     type State = ();
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
    listeners: Listeners,
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    /// The connections, the application and the environment lent to
    /// their sessions.
    conns: Connections<A>,
    max_connections: usize,
    signals: Option<Signals>,
    inbox: mpsc::Receiver<Mail<A::Post>>,
    /// Set once a graceful shutdown has begun.
    shutdown: Option<ShuttingDown>,
    /// Loops (this one included) that have said they drained
    /// ([`Mail::Drained`]).
    drained: usize,
    /// This loop has told the others it drained.
    told_drained: bool,
    next_tick: Option<Instant>,
    /// Where HTTP/3 is served, if it is.
    quic_addr: Option<SocketAddr>,
    /// While draining after SIGTERM: when the shutdown begins.
    draining_until: Option<Instant>,
    /// The loops serve the same listening sockets: what this one accepts
    /// goes to the loops in turn (see `sockets.rs`).
    hand_out: bool,
    /// Connections this loop has accepted on shared listeners, to say
    /// whose turn the next one is.
    handed: usize,
}

/// A graceful shutdown under way (see [`App::on_shutdown`] for its two
/// steps).
#[derive(Debug, Clone, Copy)]
struct ShuttingDown {
    /// When the loop stops waiting for its peers and exits.
    deadline: Instant,
}

impl<A: App> Server<A> {
    /// Binds the listening sockets. The loop starts with [`Server::run`].
    /// For several loops on one port, see [`crate::Cluster`].
    ///
    /// An address another socket holds is refused (`AddrInUse`, with a
    /// message naming the address and the listener), unless both this
    /// server and the socket holding it asked to share it
    /// ([`Config::reuse_port`]).
    pub fn bind(config: Config, handshake: Handshake, app: A) -> io::Result<Server<A>> {
        let sockets = Sockets::bind(&config, 1)?;
        Server::bind_shared(config, Arc::new(handshake), app, sockets.for_loop(0)?)
    }

    /// Makes one loop on its handles of the server's sockets.
    pub(crate) fn bind_shared(
        config: Config,
        handshake: Arc<Handshake>,
        app: A,
        sockets: LoopSockets,
    ) -> io::Result<Server<A>> {
        #[cfg(feature = "tls")]
        let config = {
            let mut config = config;
            config.tls = config.tls.as_ref().map(|tls| with_alpn(tls, config.http2));
            config
        };
        let poll = Poll::new()?;
        let LoopSockets {
            main: mut listener,
            tls: mut tls_listener,
            admin: mut admin_listener,
            quic,
            shared,
        } = sockets;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let tls_addr = register(&poll, tls_listener.as_mut(), TLS_LISTENER)?;
        let admin_addr = register(&poll, admin_listener.as_mut(), ADMIN_LISTENER)?;
        let own = Arc::new(
            LoopHandle::new(Waker::new(poll.registry(), WAKER)?).with_access_log(config.access_log.clone()),
        );
        let (mailbox, inbox) = Mailbox::new(own);
        let max_connections = config
            .max_connections
            .unwrap_or_else(|| connection_budget(&config, 1));
        debug!("at most {max_connections} connections");
        #[cfg(feature = "tls")]
        let main_is_tls = config.tls.is_some() && config.tls_addr.is_none();
        #[cfg(not(feature = "tls"))]
        let main_is_tls = false;
        let registry = poll.registry().try_clone()?;
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))] // HTTP/3 binds below, with TLS only
        let mut server = Server {
            poll,
            listeners: Listeners::new(listener, tls_listener, admin_listener, main_is_tls),
            local_addr,
            tls_addr,
            admin_addr,
            conns: Connections::new(
                registry,
                app,
                LoopEnv {
                    timers: Timers::default(),
                    pool: Pool::default(),
                    actions: Actions::default(),
                    peers: Peers::alone(mailbox),
                    ws_config: tether_ws::SharedConfig::new(config.ws, Instant::now()),
                    config,
                    handshake,
                    dirty: Vec::new(),
                    backlog: Vec::new(),
                    shutting_down: false,
                    closing_sessions: false,
                    alt_svc: None,
                    released: Vec::new(),
                },
            ),
            max_connections,
            signals: None,
            inbox,
            shutdown: None,
            drained: 0,
            told_drained: false,
            next_tick: None,
            quic_addr: None,
            draining_until: None,
            hand_out: shared,
            handed: 0,
        };
        #[cfg(feature = "tls")]
        if let Some(socket) = quic {
            server.serve_quic(socket, shared)?;
        }
        #[cfg(not(feature = "tls"))]
        let _ = quic;
        Ok(server)
    }

    /// Serves HTTP/3 on the loop's handle of the server's UDP socket
    /// (`shared` if the other loops read the same socket), and has TCP
    /// answers advertise it.
    #[cfg(feature = "tls")]
    fn serve_quic(&mut self, socket: std::net::UdpSocket, shared: bool) -> io::Result<()> {
        let Some(tls) = self.conns.env.config.tls.clone() else {
            return Err(sockets::http3_needs_tls());
        };
        let bound = self.conns.bind_quic(&tls, socket, shared, QUIC_SOCKET)?;
        info!("HTTP/3 on UDP {bound}");
        self.conns.env.alt_svc = Some(format!("h3=\":{}\"", bound.port()).into());
        self.quic_addr = Some(bound);
        Ok(())
    }

    /// The UDP address HTTP/3 is served on, if it is (the `http3` field of
    /// [`Config`], feature `http3`).
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic_addr
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
        self.conns.env.peers.handle()
    }

    /// A poster to the loop ([`App::on_post`]), for other threads.
    pub fn poster(&self) -> Poster<A::Post> {
        self.conns.env.peers.poster()
    }

    /// Shuts down gracefully on SIGINT and SIGTERM; a second signal during
    /// the shutdown exits at once. Signal handlers are process-wide, so only
    /// the process's main server should ask for this.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        self.signals = Some(Signals::register(self.poll.registry(), SIGNALS)?);
        Ok(())
    }

    /// Runs the loop until a graceful shutdown completes.
    ///
    /// A panic in the work for one connection costs that connection alone
    /// (see `guard.rs`). One that escapes the loop's own code ends the
    /// loop: it is returned as an error (the panic hook has printed it),
    /// as is an error of the poll, and either way every other loop of the
    /// cluster is told to shut down, so that the process does not go on
    /// with a loop missing.
    pub fn run(mut self) -> io::Result<()> {
        guard::install_hook();
        let index = self.conns.env.peers.index;
        let result = match panic::catch_unwind(AssertUnwindSafe(|| self.serve())) {
            Ok(result) => result,
            Err(payload) => Err(io::Error::other(format!(
                "event loop {index} panicked: {}",
                guard::message(&*payload)
            ))),
        };
        if let Err(e) = &result {
            log::error!("event loop {index} stopped: {e}; shutting the other loops down");
            let peers = &self.conns.env.peers;
            peers.shutdown_all();
            // The others wait for every loop's word before closing their
            // sessions: a loop that stopped has nothing more on its way.
            if !mem::replace(&mut self.told_drained, true) {
                peers.drained();
            }
        }
        #[cfg(feature = "tls")]
        self.conns.quic_close(Instant::now());
        result
    }

    /// The loop itself, until a graceful shutdown completes (or a second
    /// signal, or an error of the poll).
    fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        if let Some(interval) = self.conns.app.tick_interval() {
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
                    #[cfg(feature = "tls")]
                    QUIC_SOCKET => self
                        .conns
                        .quic_ready(event.is_readable(), event.is_writable(), now),
                    SIGNALS => {
                        let caught = self.signals.as_mut().map_or(Caught::Nothing, Signals::drain);
                        if caught == Caught::Nothing {
                            continue;
                        }
                        if self.shutdown.is_some() {
                            info!("second signal: exiting now");
                            return Ok(());
                        }
                        let delay = self.conns.env.config.drain_delay;
                        if caught == Caught::Terminate && !delay.is_zero() && self.draining_until.is_none() {
                            self.begin_drain(now, delay);
                        } else {
                            self.begin_shutdown(now);
                        }
                    }
                    WAKER => {
                        self.conns.env.peers.own().taking_mail();
                        self.receive_posts(now);
                        if self.conns.env.peers.own().stop_requested() && self.shutdown.is_none() {
                            self.begin_shutdown(now);
                        }
                    }
                    Token(index) => {
                        let Some(id) = self.conns.id_at(index) else {
                            continue;
                        };
                        if event.is_writable() {
                            self.conns.flush(id, now);
                        }
                        let hangup = event.is_read_closed() || event.is_error();
                        if event.is_readable() || hangup {
                            self.conns.read_from(id, now, hangup, hangup);
                        }
                    }
                }
            }
            for id in mem::take(&mut self.conns.env.backlog) {
                // The event that would have said the peer closed may have
                // come while the connection was paused or out of turns.
                self.conns.read_from(id, now, true, false);
            }
            if mem::take(&mut self.conns.freed) {
                self.listeners.descriptor_freed(now);
            }
            if self.listeners.retry_at.is_some_and(|at| now >= at) {
                self.listeners.retry_at = None;
                for entry in [Entry::Main, Entry::Tls, Entry::Admin] {
                    self.accept(now, entry);
                }
            }
            // What this turn posted (the hub's sequencer posts each event
            // it numbers to every loop, this one too) is taken now, so that
            // its sends go out with this turn's flush rather than after the
            // next wait. The wake it sent stays pending and finds the
            // mailbox empty, or holding what came since.
            self.receive_posts(now);
            self.conns.fire_timers(now);
            self.tick(now);
            self.conns.apply_actions(now);
            self.conns.flush_dirty(now);
            #[cfg(feature = "tls")]
            self.conns.quic_turn(now);
            self.conns.release_ended();
            self.conns.env.pool.end_turn();
            if mem::take(&mut self.conns.freed) {
                self.listeners.descriptor_freed(now);
            }
            if self.draining_until.is_some_and(|at| now >= at) && self.shutdown.is_none() {
                self.begin_shutdown(now);
            }
            if let Some(shutdown) = self.shutdown {
                if self.conns.env.closing_sessions && self.conns.len() == 0 {
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

    /// Hands what other loops (or threads) posted to the application,
    /// serves the connections and datagrams they handed over, and counts
    /// the loops that have drained.
    fn receive_posts(&mut self, now: Instant) {
        while let Ok(mail) = self.inbox.try_recv() {
            match mail {
                Mail::Post(message) => {
                    let (app, mut ctx) = self.conns.detached(now);
                    let peers = ctx.peers;
                    guarded(&peers.own().stats, "on_post", || app.on_post(&mut ctx, message));
                    self.conns.apply_actions(now);
                }
                Mail::Drained => {
                    self.drained += 1;
                    self.close_sessions_once_drained(now);
                }
                Mail::Adopt { socket, peer, tls } => self.take(socket, peer, tls, false, now),
                #[cfg(feature = "tls")]
                Mail::Datagram { from, to, bytes } => self.conns.quic_forwarded(from, to, &bytes, now),
            }
        }
    }

    /// This loop's mailbox and the other loops', for a cluster to join.
    pub(crate) fn peers(&self) -> &Peers<A::Post> {
        &self.conns.env.peers
    }

    /// Joins this loop to the others of a cluster.
    pub(crate) fn set_peers(&mut self, peers: Peers<A::Post>) {
        self.conns.env.peers = peers;
    }

    fn poll_timeout(&mut self, now: Instant) -> Option<Duration> {
        if !self.conns.env.backlog.is_empty() || !self.conns.env.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        #[cfg(feature = "tls")]
        let quic = self.conns.quic_deadline(now);
        #[cfg(not(feature = "tls"))]
        let quic = None;
        [
            quic,
            self.conns.env.timers.next(),
            self.next_tick,
            self.shutdown.map(|s| s.deadline),
            self.listeners.retry_at,
            self.draining_until.filter(|_| self.shutdown.is_none()),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(now))
    }

    /// Accepts every connection the kernel has queued on `entry`'s
    /// listener (see `accept.rs` for what happens when descriptors run
    /// short); on listeners the loops share, each goes to the loop whose
    /// turn it is.
    fn accept(&mut self, now: Instant, entry: Entry) {
        let patience = self.conns.env.config.accept_patience;
        while let Some((socket, peer)) = self
            .listeners
            .accept(entry, now, patience, self.conns.env.stats())
        {
            let tls = self.listeners.serves_tls(entry);
            let admin = entry == Entry::Admin;
            let peers = &self.conns.env.peers;
            if self.hand_out && !admin && peers.len() > 1 {
                // Whichever loop was free to accept, connections spread
                // evenly; each loop starts its turns at itself.
                let to = (peers.index + self.handed) % peers.len();
                self.handed = self.handed.wrapping_add(1);
                if to != peers.index {
                    peers.hand_over(to, socket, peer, tls);
                    continue;
                }
            }
            self.take(socket, peer, tls, admin, now);
        }
    }

    /// Serves a connection this loop accepted or was handed, or answers
    /// it 503 when the loop is full or shutting down.
    fn take(&mut self, socket: mio::net::TcpStream, peer: SocketAddr, tls: bool, admin: bool, now: Instant) {
        if self.conns.len() >= self.max_connections || self.shutdown.is_some() {
            debug!("{peer}: over the connection limit or shutting down, 503");
            Stats::add(&self.conns.env.stats().refused_busy, 1);
            refuse_busy(socket, tls);
            return;
        }
        self.conns.admit(socket, peer, tls, admin, now);
    }

    fn tick(&mut self, now: Instant) {
        let Some(at) = self.next_tick else { return };
        if now < at || self.shutdown.is_some() {
            return;
        }
        let interval = self.conns.app.tick_interval().unwrap_or(Duration::from_secs(1));
        // From now, not from when it was due: a late tick (a busy loop) must
        // not be followed by an early one.
        self.next_tick = Some(now + interval);
        let (app, mut ctx) = self.conns.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_tick", || app.on_tick(&mut ctx));
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
        self.conns.env.peers.drain_all();
        self.listeners.close(&self.poll);
        self.shutdown = Some(ShuttingDown {
            deadline: now + self.conns.env.config.shutdown_timeout,
        });
        self.conns.env.shutting_down = true;
        self.next_tick = None;
        // The other loops of a cluster follow (a signal reaches only one).
        self.conns.env.peers.shutdown_all();
        let (app, mut ctx) = self.conns.detached(now);
        let peers = ctx.peers;
        guarded(&peers.own().stats, "on_shutdown", || app.on_shutdown(&mut ctx));
        self.conns.apply_actions(now);
        // After on_shutdown, so that nothing this loop accepts from now on
        // is posted behind the mark.
        self.conns.env.peers.drained();
        self.told_drained = true;
        self.conns.begin_shutdown();
    }

    /// Before the shutdown after SIGTERM: every loop answers `/readyz`
    /// with 503 and goes on serving (and accepting) for `delay`, so that
    /// a load balancer stops sending first; then
    /// [`Server::begin_shutdown`]. A second signal starts the shutdown at
    /// once.
    fn begin_drain(&mut self, now: Instant, delay: Duration) {
        info!(
            "SIGTERM: draining for {:.1} s (/readyz answers 503), then shutting down",
            delay.as_secs_f64()
        );
        self.conns.env.peers.drain_all();
        self.draining_until = Some(now + delay);
    }

    /// The second step of a graceful shutdown, once every loop has
    /// drained (this one included): waiting requests get their answer,
    /// WebSockets close with 1001, event streams end.
    fn close_sessions_once_drained(&mut self, now: Instant) {
        let loops = self.conns.env.peers.len();
        if self.shutdown.is_none() || self.conns.env.closing_sessions || self.drained < loops {
            return;
        }
        self.conns.env.closing_sessions = true;
        debug!("every loop has drained: closing sessions");
        self.conns.close_sessions(now);
        self.conns.apply_actions(now);
    }
}

/// Registers `listener`, if there is one, under `token`; its address.
fn register(
    poll: &Poll,
    listener: Option<&mut mio::net::TcpListener>,
    token: Token,
) -> io::Result<Option<SocketAddr>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    poll.registry().register(listener, token, Interest::READABLE)?;
    listener.local_addr().map(Some)
}
