//! The event loop: one `mio::Poll`, a slab of connections, one shared read
//! buffer, per-connection output only while the socket pushes back, and one
//! timer heap.

use std::io::{self, Read};
use std::mem;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use tether_handshake::RequestHead;
use tether_ws::{CloseCode, Event, Role};

use crate::app::{Action, Current, Encoded};
use crate::http::{self, SSE_HEAD};
use crate::output::{OutQueue, Pool};
use crate::timers::Timers;
use crate::{App, CloseReason, Config, ConnId, Ctx, Handshake, Request, Route};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// Reads per readiness event before the connection goes to the back of
/// the line, so one busy peer cannot starve the rest.
const READS_PER_EVENT: usize = 16;

/// Descriptors kept back from the connection limit for the loop itself
/// (epoll, the listener, the signal pipe, log files).
const FD_RESERVE: usize = 32;

/// Header lines accepted in a request head.
const MAX_HEADERS: usize = 64;

/// A running loop's remote control: stop it from another thread.
#[derive(Debug, Clone)]
pub struct Handle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Handle {
    /// Starts a graceful shutdown, as SIGTERM would.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// A connection in the slab.
struct Conn {
    socket: TcpStream,
    generation: u32,
    state: State,
    /// Queued output; `None` while everything has been written.
    out: Option<Box<OutQueue>>,
    /// This connection's entry in the timer heap.
    scheduled: Option<Instant>,
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
}

enum State {
    /// Waiting for a request head (the first, or the next on keep-alive).
    Http {
        partial: Vec<u8>,
        deadline: Instant,
    },
    WebSocket(Box<Session>),
    Sse {
        tag: u32,
        heartbeat_at: Instant,
    },
    /// Our side is shut down; reading until the peer closes.
    Draining {
        deadline: Instant,
    },
}

struct Session {
    ws: tether_ws::Connection,
    tag: u32,
    /// The application has been told the session ended.
    notified: bool,
}

/// What to do after one HTTP request.
enum Next {
    /// Parse the next pipelined request.
    Continue,
    /// The connection is no longer plain HTTP (or is closing).
    Stop,
}

/// A tether server: one event loop serving WebSocket, Server-Sent Events
/// and plain HTTP on one port, for the [`App`] it runs.
///
/// ```no_run
/// use tether_server::{apps::Echo, Config, Handshake, Server};
///
/// let config = Config::new("127.0.0.1:8080".parse().unwrap());
/// let server = Server::bind(config, Handshake::new(), Echo::everywhere())?;
/// println!("listening on {}", server.local_addr());
/// server.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server<A: App> {
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    conns: Slab<Conn>,
    next_generation: u32,
    timers: Timers,
    read_buf: Vec<u8>,
    pool: Pool,
    actions: Vec<Action>,
    dirty: Vec<ConnId>,
    backlog: Vec<ConnId>,
    app: A,
    config: Config,
    handshake: Handshake,
    max_connections: usize,
    signals: Option<(mio::net::UnixStream, Vec<signal_hook::SigId>)>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    shutdown_deadline: Option<Instant>,
    next_tick: Option<Instant>,
}

impl<A: App> Server<A> {
    /// Binds the listening socket. The loop starts with [`Server::run`].
    pub fn bind(config: Config, handshake: Handshake, app: A) -> io::Result<Server<A>> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.addr)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let fd_limit = if config.raise_fd_limit {
            rlimit::increase_nofile_limit(u64::MAX)
        } else {
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft)
        }
        .unwrap_or(1024);
        let max_connections = config.max_connections.unwrap_or_else(|| {
            usize::try_from(fd_limit)
                .unwrap_or(usize::MAX)
                .saturating_sub(FD_RESERVE)
                .max(1)
        });
        debug!("open-file limit {fd_limit}, at most {max_connections} connections");
        Ok(Server {
            poll,
            listener: Some(listener),
            local_addr,
            conns: Slab::new(),
            next_generation: 0,
            timers: Timers::default(),
            read_buf: vec![0; config.read_buffer.max(1024)],
            pool: Pool::default(),
            actions: Vec::new(),
            dirty: Vec::new(),
            backlog: Vec::new(),
            app,
            config,
            handshake,
            max_connections,
            signals: None,
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            shutdown_deadline: None,
            next_tick: None,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The most connections served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// A handle that stops the loop from another thread.
    pub fn handle(&self) -> Handle {
        Handle {
            stop: self.stop.clone(),
            waker: self.waker.clone(),
        }
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
                    LISTENER => self.accept(now),
                    SIGNALS => {
                        if self.drain_signals() {
                            if self.shutdown_deadline.is_some() {
                                info!("second signal: exiting now");
                                return Ok(());
                            }
                            self.begin_shutdown(now);
                        }
                    }
                    WAKER => {
                        if self.stop.load(Ordering::Acquire) && self.shutdown_deadline.is_none() {
                            self.begin_shutdown(now);
                        }
                    }
                    Token(index) => {
                        let Some(conn) = self.conns.get(index) else {
                            continue;
                        };
                        let id = ConnId::new(index as u32, conn.generation);
                        if event.is_writable() {
                            self.flush(id, now);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_from(id, now, event.is_read_closed() || event.is_error());
                        }
                    }
                }
            }
            for id in mem::take(&mut self.backlog) {
                // The event that would have said the peer closed may have
                // come while the connection was paused or out of turns.
                self.read_from(id, now, true);
            }
            self.fire_timers(now);
            self.tick(now);
            self.apply_actions(now);
            self.flush_dirty(now);
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() {
                    info!("shutdown complete");
                    return Ok(());
                }
                if now >= deadline {
                    info!(
                        "shutdown deadline passed; dropping {} connections",
                        self.conns.len()
                    );
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.backlog.is_empty() || !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        [self.timers.next(), self.next_tick, self.shutdown_deadline]
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
        self.conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
    }

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset
                    // before it was accepted: the next readiness retries.
                    warn!("accept failed: {e}");
                    return;
                }
            };
            if self.conns.len() >= self.max_connections {
                debug!("{peer}: over the connection limit, 503");
                refuse_busy(socket);
                continue;
            }
            let _ = socket.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let index = entry.key();
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
            let deadline = now + self.config.handshake_timeout;
            entry.insert(Conn {
                socket,
                generation,
                state: State::Http {
                    partial: Vec::new(),
                    deadline,
                },
                out: None,
                scheduled: None,
                writable: false,
                paused: false,
                closing: false,
                peer_closed: false,
                dirty: false,
            });
            let id = ConnId::new(index as u32, generation);
            let conn = &mut self.conns[index];
            self.timers.schedule(id, deadline, &mut conn.scheduled);
        }
    }

    /// Reads and handles what the peer sent. `closed` says the peer may
    /// have closed its side already, so reading goes on until the socket
    /// says so or would block.
    fn read_from(&mut self, id: ConnId, now: Instant, closed: bool) {
        let mut buf = mem::take(&mut self.read_buf);
        for round in 0..READS_PER_EVENT {
            let Some(conn) = self.conn_mut(id) else { break };
            if conn.paused || conn.peer_closed {
                break;
            }
            match conn.socket.read(&mut buf) {
                Ok(0) => {
                    self.on_eof(id, now);
                    break;
                }
                Ok(n) => {
                    self.on_input(id, &buf[..n], now);
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
                    self.remove(id, CloseReason::Dropped);
                    self.apply_actions(now);
                    break;
                }
            }
        }
        self.read_buf = buf;
    }

    fn on_input(&mut self, id: ConnId, data: &[u8], now: Instant) {
        let Some(conn) = self.conn_mut(id) else { return };
        match conn.state {
            // After a response that closes the connection, later requests
            // are not answered.
            State::Http { .. } if conn.closing => {}
            State::Http { .. } => self.http_input(id, data, now),
            State::WebSocket(_) => self.ws_input(id, data, now),
            // Nothing is expected from an event-stream client, and a
            // draining connection's input is discarded.
            State::Sse { .. } | State::Draining { .. } => {}
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
            State::Sse { .. } => self.remove(id, CloseReason::Dropped),
            // A plain HTTP client may half-close after its request: its
            // responses are still written before the connection closes.
            _ => {
                conn.closing = true;
                self.mark_dirty(id);
            }
        }
        self.apply_actions(now);
    }

    fn http_input(&mut self, id: ConnId, data: &[u8], now: Instant) {
        let Some(conn) = self.conn_mut(id) else { return };
        let State::Http { partial, .. } = &mut conn.state else {
            return;
        };
        let owned;
        // How much of an unfinished head was already buffered.
        let owned_len = partial.len();
        let buf: &[u8] = if partial.is_empty() {
            data
        } else {
            partial.extend_from_slice(data);
            owned = mem::take(partial);
            &owned
        };
        let mut pos = 0;
        while pos < buf.len() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[pos..]) {
                Ok(httparse::Status::Complete(len)) if len > self.config.max_request_head => {
                    self.http_error(id, 431);
                    return;
                }
                Ok(httparse::Status::Complete(len)) => {
                    let next = self.handle_request(id, &req, &buf[pos + len..], now);
                    pos += len;
                    match next {
                        Next::Continue => continue,
                        Next::Stop => return,
                    }
                }
                Ok(httparse::Status::Partial) => {
                    let rest = &buf[pos..];
                    if rest.len() > self.config.max_request_head {
                        self.http_error(id, 431);
                    } else {
                        // A request has begun: it must be complete within the
                        // handshake timeout, whether it is the connection's
                        // first or a later keep-alive one.
                        let started = pos > 0 || owned_len == 0;
                        let head_deadline = now + self.config.handshake_timeout;
                        if let Some(State::Http { partial, deadline }) =
                            self.conn_mut(id).map(|c| &mut c.state)
                        {
                            partial.clear();
                            partial.extend_from_slice(rest);
                            if started && head_deadline < *deadline {
                                *deadline = head_deadline;
                            }
                        }
                        self.mark_dirty(id);
                    }
                    return;
                }
                Err(httparse::Error::TooManyHeaders) => {
                    self.http_error(id, 431);
                    return;
                }
                Err(e) => {
                    debug!("bad request: {e}");
                    self.http_error(id, 400);
                    return;
                }
            }
        }
    }

    /// Answers with an error status and closes.
    fn http_error(&mut self, id: ConnId, status: u16) {
        self.respond(id, |out| http::write_error(out, status, &[]), true);
    }

    /// Appends a response to a connection's output, optionally closing
    /// after it.
    fn respond(&mut self, id: ConnId, write: impl FnOnce(&mut Vec<u8>), close: bool) {
        let Self { conns, pool, .. } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| pool.queue());
        let tail = out.tail(pool);
        let before = tail.len();
        write(tail);
        let added = tail.len() - before;
        out.appended(added);
        if close {
            conn.closing = true;
        }
        self.mark_dirty(id);
    }

    fn handle_request(
        &mut self,
        id: ConnId,
        req: &httparse::Request<'_, '_>,
        rest: &[u8],
        now: Instant,
    ) -> Next {
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
            self.http_error(id, 400);
            return Next::Stop;
        };
        let (path, query) = http::split_target(target);
        let request = Request {
            method,
            path,
            query,
            headers: req.headers,
        };
        let has_body = http::has_body(req.headers);
        let keep_alive = http::keep_alive(version, req.headers) && !has_body;
        let head_only = method == "HEAD";
        let route = if path == "/healthz" {
            Route::Page {
                content_type: "text/plain; charset=utf-8",
                body: b"ok\n",
            }
        } else {
            self.app.route(&request)
        };
        match route {
            Route::NotFound => {
                let body = b"404 Not Found\n";
                self.respond(
                    id,
                    |out| {
                        http::write_response(
                            out,
                            404,
                            &[],
                            "text/plain; charset=utf-8",
                            body,
                            head_only,
                            !keep_alive,
                        )
                    },
                    !keep_alive,
                );
            }
            Route::Page { content_type, body } => {
                if method == "GET" || head_only {
                    self.respond(
                        id,
                        |out| {
                            http::write_response(
                                out,
                                200,
                                &[("Cache-Control", "no-cache")],
                                content_type,
                                body,
                                head_only,
                                !keep_alive,
                            )
                        },
                        !keep_alive,
                    );
                } else {
                    self.respond(
                        id,
                        |out| http::write_error(out, 405, &[("Allow", "GET, HEAD")]),
                        true,
                    );
                    return Next::Stop;
                }
            }
            Route::WebSocket(tag) => {
                if method != "GET" {
                    self.respond(id, |out| http::write_error(out, 405, &[("Allow", "GET")]), true);
                    return Next::Stop;
                }
                self.upgrade(id, req, &request, tag, rest, now);
                return Next::Stop;
            }
            Route::EventStream(tag) => {
                if method != "GET" {
                    self.respond(id, |out| http::write_error(out, 405, &[("Allow", "GET")]), true);
                    return Next::Stop;
                }
                self.start_stream(id, &request, tag, now);
                return Next::Stop;
            }
        }
        if !keep_alive {
            return Next::Stop;
        }
        let keep_alive_deadline = now + self.config.keep_alive_timeout;
        if let Some(State::Http { deadline, .. }) = self.conn_mut(id).map(|c| &mut c.state) {
            *deadline = keep_alive_deadline;
        }
        Next::Continue
    }

    fn upgrade(
        &mut self,
        id: ConnId,
        req: &httparse::Request<'_, '_>,
        request: &Request<'_>,
        tag: u32,
        rest: &[u8],
        now: Instant,
    ) {
        let head = match RequestHead::from_httparse(req) {
            Ok(head) => head,
            Err(_) => return self.http_error(id, 400),
        };
        let accepted = match self.handshake.accept(head) {
            Ok(accepted) => accepted,
            Err(rejection) => {
                debug!("upgrade refused: {} {}", rejection.status(), rejection.reason());
                self.respond(id, |out| rejection.write_response(out), true);
                return;
            }
        };
        let mut response = Vec::with_capacity(160);
        if accepted.write_response(&mut response, &[]).is_err() {
            return self.http_error(id, 500);
        }
        let mut ws = tether_ws::Connection::new(Role::Server, self.config.ws, now);
        if let Some(extension) = accepted.into_extension_values().into_iter().next() {
            ws = ws.with_extension(extension);
        }
        self.respond(id, |out| out.extend_from_slice(&response), false);
        let Self {
            conns,
            app,
            actions,
            pool,
            ..
        } = self;
        let Some(conn) = conns.get_mut(id.index()) else {
            return;
        };
        conn.state = State::WebSocket(Box::new(Session {
            ws,
            tag,
            notified: false,
        }));
        let Conn {
            state: State::WebSocket(session),
            out,
            closing,
            ..
        } = conn
        else {
            return;
        };
        let mut ctx = Ctx {
            now,
            current: Some(Current {
                id,
                ws: Some(&mut session.ws),
                out: out.get_or_insert_with(|| pool.queue()),
                closing,
            }),
            actions,
            pool,
        };
        app.on_open(&mut ctx, id, tag, request);
        if !rest.is_empty() {
            self.ws_input(id, rest, now);
        }
    }

    fn start_stream(&mut self, id: ConnId, request: &Request<'_>, tag: u32, now: Instant) {
        let retry = self.config.sse_retry.as_millis() as u64;
        self.respond(
            id,
            |out| {
                out.extend_from_slice(SSE_HEAD);
                tether_sse::retry(retry, out);
                out.push(b'\n');
            },
            false,
        );
        let last_event_id = request
            .header("last-event-id")
            .map(str::to_owned)
            .or_else(|| request.query_param("lastEventId"))
            .filter(|id| !id.is_empty());
        let heartbeat_at = now + self.config.sse_heartbeat;
        let Self {
            conns,
            app,
            actions,
            pool,
            ..
        } = self;
        let Some(conn) = conns.get_mut(id.index()) else {
            return;
        };
        conn.state = State::Sse { tag, heartbeat_at };
        let mut ctx = Ctx {
            now,
            current: Some(Current {
                id,
                ws: None,
                out: conn.out.get_or_insert_with(|| pool.queue()),
                closing: &mut conn.closing,
            }),
            actions,
            pool,
        };
        app.on_subscribe(&mut ctx, id, tag, request, last_event_id.as_deref());
        if conn.closing {
            // The application ended the stream at once.
            app.on_unsubscribe(
                &mut Ctx {
                    now,
                    current: None,
                    actions,
                    pool,
                },
                id,
                tag,
                CloseReason::Ended,
            );
        }
    }

    fn ws_input(&mut self, id: ConnId, data: &[u8], now: Instant) {
        let max_output = self.config.max_output;
        let Self {
            conns,
            app,
            actions,
            pool,
            ..
        } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let Conn {
            state: State::WebSocket(session),
            out,
            closing,
            paused,
            ..
        } = conn
        else {
            return;
        };
        let out = out.get_or_insert_with(|| pool.queue());
        let mut input = data;
        while !input.is_empty() && session.ws.state() != tether_ws::State::Closed {
            let tail = out.tail(pool);
            let before = tail.len();
            let (used, event) = session.ws.receive(input, now, tail);
            let added = tail.len() - before;
            out.appended(added);
            input = &input[used..];
            let Some(event) = event else { continue };
            let tag = session.tag;
            let mut ctx = Ctx {
                now,
                current: Some(Current {
                    id,
                    ws: Some(&mut session.ws),
                    out,
                    closing,
                }),
                actions,
                pool,
            };
            match event {
                Event::Message(message) => app.on_message(&mut ctx, id, tag, message),
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Close(frame) => {
                    session.notified = true;
                    app.on_close(&mut ctx, id, tag, CloseReason::Closed(frame.code));
                }
                Event::Failed(error) => {
                    debug!("websocket failed: {error}");
                    session.notified = true;
                    let reason = error
                        .close_code()
                        .map_or(CloseReason::Dropped, CloseReason::Failed);
                    app.on_close(&mut ctx, id, tag, reason);
                }
            }
        }
        if session.ws.state() == tether_ws::State::Closed {
            *closing = true;
        }
        if out.len() > max_output {
            *paused = true;
        }
        self.mark_dirty(id);
    }

    /// Applies what application callbacks asked for other connections.
    fn apply_actions(&mut self, now: Instant) {
        while !self.actions.is_empty() {
            let mut batch = mem::take(&mut self.actions);
            for action in batch.drain(..) {
                match action {
                    Action::Send(id, encoded) => self.push(id, encoded, now),
                    Action::Close(id, code, reason) => self.close_ws(id, code, &reason, now),
                    Action::EndStream(id) => self.end_stream(id, CloseReason::Ended, now),
                }
            }
            if self.actions.is_empty() {
                self.actions = batch;
            }
        }
    }

    fn push(&mut self, id: ConnId, encoded: Encoded, now: Instant) {
        let max_output = self.config.max_output;
        let heartbeat = self.config.sse_heartbeat;
        let Self { conns, pool, .. } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        if conn.closing {
            return;
        }
        match &mut conn.state {
            State::WebSocket(session) if session.ws.can_send() => {}
            State::Sse { heartbeat_at, .. } => *heartbeat_at = now + heartbeat,
            _ => return,
        }
        let out = conn.out.get_or_insert_with(|| pool.queue());
        out.push_shared(encoded.0);
        if out.len() > max_output {
            // Output is written only once per loop turn, so a burst of
            // broadcasts can queue more than the limit for a peer that
            // reads promptly. Bytes its socket takes now say nothing
            // against it: judge only what the socket refuses.
            if let Err(e) = out.flush(&mut conn.socket, pool) {
                debug!("write error: {e}");
                self.remove(id, CloseReason::Dropped);
                return;
            }
        }
        if out.len() > max_output {
            debug!("slow consumer: {} bytes queued, cutting it loose", out.len());
            self.cut_loose(id, now);
            return;
        }
        self.mark_dirty(id);
    }

    /// The slow-consumer policy for output pushed from elsewhere: what is
    /// queued and not yet begun is dropped; a WebSocket gets close 1008
    /// (the close timeout then bounds how long it may take to read it), an
    /// event stream ends (its client resumes from its last event id).
    fn cut_loose(&mut self, id: ConnId, now: Instant) {
        let linger = self.config.linger;
        let Self {
            conns,
            app,
            actions,
            pool,
            ..
        } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| pool.queue());
        out.keep_started(pool);
        let mut ctx = Ctx {
            now,
            current: None,
            actions,
            pool,
        };
        match &mut conn.state {
            State::WebSocket(session) => {
                let tail = out.tail(ctx.pool);
                let before = tail.len();
                let _ = session.ws.close(CloseCode::POLICY, "slow consumer", now, tail);
                let added = tail.len() - before;
                out.appended(added);
                if !session.notified {
                    session.notified = true;
                    app.on_close(&mut ctx, id, session.tag, CloseReason::SlowConsumer);
                }
            }
            State::Sse { tag, heartbeat_at } => {
                if !conn.closing {
                    app.on_unsubscribe(&mut ctx, id, *tag, CloseReason::SlowConsumer);
                }
                // A closing stream's heartbeat timer is its deadline.
                *heartbeat_at = now + linger;
            }
            _ => {}
        }
        conn.closing = true;
        self.mark_dirty(id);
    }

    fn close_ws(&mut self, id: ConnId, code: CloseCode, reason: &str, now: Instant) {
        let Self { conns, pool, .. } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let State::WebSocket(session) = &mut conn.state else {
            return;
        };
        let out = conn.out.get_or_insert_with(|| pool.queue());
        let tail = out.tail(pool);
        let before = tail.len();
        let _ = session.ws.close(code, reason, now, tail);
        let added = tail.len() - before;
        out.appended(added);
        self.mark_dirty(id);
    }

    fn end_stream(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        let Self {
            conns,
            app,
            actions,
            pool,
            ..
        } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let State::Sse { tag, .. } = conn.state else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.closing = true;
        app.on_unsubscribe(
            &mut Ctx {
                now,
                current: None,
                actions,
                pool,
            },
            id,
            tag,
            reason,
        );
        self.mark_dirty(id);
    }

    fn flush_dirty(&mut self, now: Instant) {
        while !self.dirty.is_empty() {
            for id in mem::take(&mut self.dirty) {
                if let Some(conn) = self.conn_mut(id) {
                    conn.dirty = false;
                    self.flush(id, now);
                }
            }
            self.apply_actions(now);
        }
    }

    /// Writes what is queued; then registers write interest, resumes
    /// reading, or moves on to closing, as the result calls for.
    fn flush(&mut self, id: ConnId, now: Instant) {
        let max_output = self.config.max_output;
        let Self {
            conns, pool, poll, ..
        } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let done = match conn.out.as_mut() {
            None => true,
            Some(out) => match out.flush(&mut conn.socket, pool) {
                Ok(done) => done,
                Err(e) => {
                    debug!("write error: {e}");
                    self.remove(id, CloseReason::Dropped);
                    return;
                }
            },
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
        let linger = self.config.linger;
        let Some(conn) = self.conn_mut(id) else { return };
        if conn.peer_closed || matches!(conn.state, State::Draining { .. }) {
            self.remove(id, CloseReason::Dropped);
            return;
        }
        let _ = conn.socket.shutdown(Shutdown::Write);
        conn.closing = false;
        conn.state = State::Draining {
            deadline: now + linger,
        };
        self.reschedule(id);
    }

    fn reschedule(&mut self, id: ConnId) {
        let Self { conns, timers, .. } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        let next = match &conn.state {
            State::Http { deadline, .. } => Some(*deadline),
            State::WebSocket(session) => session.ws.poll_timeout(),
            State::Sse { heartbeat_at, .. } => Some(*heartbeat_at),
            State::Draining { deadline } => Some(*deadline),
        };
        if let Some(at) = next {
            timers.schedule(id, at, &mut conn.scheduled);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(conn) = self.conn_mut(id) else { continue };
            if conn.scheduled != Some(at) {
                continue;
            }
            conn.scheduled = None;
            self.on_timer(id, now);
            self.apply_actions(now);
            self.reschedule(id);
        }
    }

    fn on_timer(&mut self, id: ConnId, now: Instant) {
        let heartbeat = self.config.sse_heartbeat;
        let Self {
            conns,
            app,
            actions,
            pool,
            ..
        } = self;
        let Some(conn) = conns
            .get_mut(id.index())
            .filter(|c| c.generation == id.generation())
        else {
            return;
        };
        match &mut conn.state {
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
            State::Sse { heartbeat_at, .. } => {
                if now >= *heartbeat_at && conn.closing {
                    debug!("event stream could not flush its end in time; dropping");
                    self.remove(id, CloseReason::Dropped);
                } else if now >= *heartbeat_at {
                    *heartbeat_at = now + heartbeat;
                    let out = conn.out.get_or_insert_with(|| pool.queue());
                    let tail = out.tail(pool);
                    let before = tail.len();
                    tether_sse::heartbeat(tail);
                    let added = tail.len() - before;
                    out.appended(added);
                    self.mark_dirty(id);
                }
            }
            State::WebSocket(session) => {
                let out = conn.out.get_or_insert_with(|| pool.queue());
                let tail = out.tail(pool);
                let before = tail.len();
                let event = session.ws.handle_timeout(now, tail);
                let added = tail.len() - before;
                out.appended(added);
                if let Some(Event::Failed(error)) = event {
                    debug!("websocket timer: {error}");
                    if !session.notified {
                        session.notified = true;
                        let reason = match error {
                            tether_ws::Error::IdleTimeout => CloseReason::Failed(CloseCode::GOING_AWAY),
                            _ => CloseReason::Dropped,
                        };
                        let tag = session.tag;
                        app.on_close(
                            &mut Ctx {
                                now,
                                current: None,
                                actions,
                                pool,
                            },
                            id,
                            tag,
                            reason,
                        );
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
        if now < at || self.shutdown_deadline.is_some() {
            return;
        }
        let interval = self.app.tick_interval().unwrap_or(Duration::from_secs(1));
        // From now, not from when it was due: a late tick (a busy loop) must
        // not be followed by an early one.
        self.next_tick = Some(now + interval);
        let Self {
            app, actions, pool, ..
        } = self;
        app.on_tick(&mut Ctx {
            now,
            current: None,
            actions,
            pool,
        });
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
        if let Some(out) = conn.out.take() {
            self.pool.give_back_queue(out);
        }
        let now = Instant::now();
        let Self {
            app, actions, pool, ..
        } = self;
        let mut ctx = Ctx {
            now,
            current: None,
            actions,
            pool,
        };
        match conn.state {
            State::WebSocket(session) if !session.notified => app.on_close(&mut ctx, id, session.tag, reason),
            State::Sse { tag, .. } if !conn.closing => app.on_unsubscribe(&mut ctx, id, tag, reason),
            _ => {}
        }
        let _ = self.poll.registry().deregister(&mut conn.socket);
    }

    fn begin_shutdown(&mut self, now: Instant) {
        info!("shutting down: {} connections to close", self.conns.len());
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.shutdown_deadline = Some(now + self.config.shutdown_timeout);
        self.next_tick = None;
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .map(|(index, conn)| ConnId::new(index as u32, conn.generation))
            .collect();
        for id in ids {
            let Some(conn) = self.conn_mut(id) else { continue };
            match &conn.state {
                State::Http { .. } => {
                    conn.closing = true;
                    self.mark_dirty(id);
                }
                State::WebSocket(_) => self.close_ws(id, CloseCode::GOING_AWAY, "server shutting down", now),
                State::Sse { .. } => self.end_stream(id, CloseReason::Shutdown, now),
                State::Draining { .. } => {}
            }
        }
        self.apply_actions(now);
    }
}

/// Answers a connection over the limit with 503 and closes it, without
/// ever registering it.
fn refuse_busy(mut socket: TcpStream) {
    use std::io::Write as _;
    let mut response = Vec::new();
    http::write_error(&mut response, 503, &[("Retry-After", "1")]);
    let _ = socket.write(&response);
    let _ = socket.shutdown(Shutdown::Write);
    // Read whatever the client already sent, so that closing does not
    // turn into a reset that could discard the response.
    let mut sink = [0u8; 1024];
    let _ = socket.read(&mut sink);
}
