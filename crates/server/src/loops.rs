//! The loops of one server as each sees the others, and as other threads
//! see them: per loop a stop flag, a waker and counters ([`LoopHandle`]),
//! and a mailbox of the application's own post type ([`Mailbox`]). The
//! public faces built on them are [`Handle`] (stop the server, read its
//! counters) and [`Poster`] (post typed messages to a loop from any
//! thread). Loops talk only through these mailboxes (a channel and the
//! receiving loop's `mio::Waker`), never through locks on the hot path.

use std::fmt;
#[cfg(feature = "tls")]
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use mio::Waker;
use mio::net::TcpStream;

/// What arrives in a loop's mailbox.
pub(crate) enum Mail<P> {
    /// For the application (`App::on_post`).
    Post(P),
    /// The sending loop is shutting down and has stopped taking work
    /// (its application's `App::on_shutdown` has run): nothing
    /// it posted before is still on its way to this loop, and nothing it
    /// posts after this needs delivering before the loop's sessions close.
    Drained,
    /// A connection another loop accepted on a listener the loops share,
    /// for this one to serve: each loop hands what it accepts to the
    /// loops in turn.
    Adopt {
        /// Its socket, not registered with any poll.
        socket: TcpStream,
        /// Its peer.
        peer: SocketAddr,
        /// It came through a listener that serves TLS.
        tls: bool,
    },
    /// A QUIC datagram that the sending loop's socket received for a
    /// connection this loop holds (its connection ID names this loop) or,
    /// on a socket the loops share, would hold (the client has none of
    /// the server's IDs yet, and its address names this loop). Only loops
    /// serving HTTP/3, which needs TLS, forward them.
    #[cfg(feature = "tls")]
    Datagram {
        /// Its sender.
        from: SocketAddr,
        /// The local address it was sent to, when the kernel said.
        to: Option<IpAddr>,
        /// Its bytes.
        bytes: Box<[u8]>,
    },
}

/// One loop's stop flag, waker and counters, as seen from elsewhere.
#[derive(Debug)]
pub(crate) struct LoopHandle {
    stop: AtomicBool,
    waker: Waker,
    /// Set by the first mail since the loop last took its mail: the mails
    /// after it do not wake the loop again (a wake is a system call, and
    /// a bus thread posts every event it delivers).
    woken: AtomicBool,
    pub(crate) stats: Stats,
    /// The access log, if the server keeps one.
    pub(crate) access: Option<crate::access::Access>,
    /// The process is going away: `/readyz` answers 503 so that a load
    /// balancer stops sending, while the loop still serves.
    draining: AtomicBool,
}

impl LoopHandle {
    pub(crate) fn new(waker: Waker) -> LoopHandle {
        LoopHandle {
            stop: AtomicBool::new(false),
            waker,
            woken: AtomicBool::new(false),
            stats: Stats::default(),
            access: None,
            draining: AtomicBool::new(false),
        }
    }

    /// The same, reporting each answered request to `log`.
    pub(crate) fn with_access_log(self, log: Option<crate::access::AccessLog>) -> LoopHandle {
        LoopHandle {
            access: log.map(crate::access::Access::new),
            ..self
        }
    }

    /// Wakes the loop for a mail just sent, unless a wake since it last
    /// took its mail is already on its way.
    fn wake_for_mail(&self) {
        // AcqRel: the mail sent before this is seen by the loop's
        // `taking_mail` that reads what this writes.
        if !self.woken.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    /// The loop is about to take its mail (every mail sent before a wake
    /// that this clears): the next mail wakes it again.
    pub(crate) fn taking_mail(&self) {
        self.woken.swap(false, Ordering::AcqRel);
    }

    /// Whether a shutdown was asked for.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Whether the process drains (see [`Peers::drain_all`]).
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// One loop's mailbox: a channel of `Mail<P>` and the loop's handle, to
/// wake it.
pub(crate) struct Mailbox<P> {
    tx: mpsc::Sender<Mail<P>>,
    handle: Arc<LoopHandle>,
}

impl<P> Mailbox<P> {
    /// A mailbox for the loop of `handle`, and the receiving end the loop
    /// keeps.
    pub(crate) fn new(handle: Arc<LoopHandle>) -> (Mailbox<P>, mpsc::Receiver<Mail<P>>) {
        let (tx, rx) = mpsc::channel();
        (Mailbox { tx, handle }, rx)
    }

    fn send(&self, mail: Mail<P>) {
        if self.tx.send(mail).is_ok() {
            self.handle.wake_for_mail();
        }
    }
}

impl<P> Clone for Mailbox<P> {
    fn clone(&self) -> Mailbox<P> {
        Mailbox {
            tx: self.tx.clone(),
            handle: self.handle.clone(),
        }
    }
}

/// A loop's place among its siblings: its own index, and every loop's
/// handle and mailbox (its own included, at `index`).
pub(crate) struct Peers<P> {
    pub(crate) index: usize,
    own: Arc<LoopHandle>,
    handles: Arc<[Arc<LoopHandle>]>,
    mailboxes: Arc<[Mailbox<P>]>,
}

impl<P> Peers<P> {
    /// The peers of a loop that runs alone.
    pub(crate) fn alone(mailbox: Mailbox<P>) -> Peers<P> {
        let own = mailbox.handle.clone();
        Peers {
            index: 0,
            handles: Arc::new([own.clone()]),
            own,
            mailboxes: Arc::new([mailbox]),
        }
    }

    /// The peers of the loop at `index` among `mailboxes` (all the
    /// server's loops, in order). `None` if there is no such loop.
    pub(crate) fn among(index: usize, mailboxes: &Arc<[Mailbox<P>]>) -> Option<Peers<P>> {
        let own = mailboxes.get(index)?.handle.clone();
        Some(Peers {
            index,
            own,
            handles: mailboxes.iter().map(|m| m.handle.clone()).collect(),
            mailboxes: mailboxes.clone(),
        })
    }

    /// This loop's handle.
    pub(crate) fn own(&self) -> &LoopHandle {
        &self.own
    }

    /// This loop's mailbox.
    pub(crate) fn own_mailbox(&self) -> Option<&Mailbox<P>> {
        self.mailboxes.get(self.index)
    }

    /// How many loops the server runs.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Posts to the loop `to_loop`; nothing if there is no such loop.
    pub(crate) fn post(&self, to_loop: usize, message: P) {
        if let Some(mailbox) = self.mailboxes.get(to_loop) {
            mailbox.send(Mail::Post(message));
        }
    }

    /// Hands a QUIC datagram to the loop `to_loop`; nothing if there is
    /// no such loop.
    #[cfg(feature = "tls")]
    pub(crate) fn forward_datagram(
        &self,
        to_loop: usize,
        from: SocketAddr,
        to: Option<IpAddr>,
        bytes: &[u8],
    ) {
        if let Some(mailbox) = self.mailboxes.get(to_loop) {
            mailbox.send(Mail::Datagram {
                from,
                to,
                bytes: bytes.into(),
            });
        }
    }

    /// Hands a connection accepted on a shared listener to the loop
    /// `to_loop` ([`Mail::Adopt`]); should that loop be gone, the
    /// connection is closed.
    pub(crate) fn hand_over(&self, to_loop: usize, socket: TcpStream, peer: SocketAddr, tls: bool) {
        if let Some(mailbox) = self.mailboxes.get(to_loop) {
            mailbox.send(Mail::Adopt { socket, peer, tls });
        }
    }

    /// Tells every loop (this one included) that this one has drained
    /// (see [`Mail::Drained`]).
    pub(crate) fn drained(&self) {
        for mailbox in self.mailboxes.iter() {
            mailbox.send(Mail::Drained);
        }
    }

    /// Marks every loop as draining: from now on `/readyz` answers 503
    /// on all of them. Nothing else changes, so no loop is woken.
    pub(crate) fn drain_all(&self) {
        for handle in self.handles.iter() {
            handle.draining.store(true, Ordering::Relaxed);
        }
    }

    /// Asks every loop to shut down gracefully.
    pub(crate) fn shutdown_all(&self) {
        for handle in self.handles.iter() {
            handle.shutdown();
        }
    }

    /// The counters of every loop, added up.
    pub(crate) fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::sum(self.handles.iter().map(|h| &h.stats))
    }

    /// A handle on every loop.
    pub(crate) fn handle(&self) -> Handle {
        Handle {
            loops: self.handles.clone(),
        }
    }

    /// A poster to every loop.
    pub(crate) fn poster(&self) -> Poster<P> {
        Poster {
            mailboxes: self.mailboxes.clone(),
        }
    }
}

/// Remote control of a running server (all its loops), usable from any
/// thread: a graceful shutdown, the counters.
#[derive(Debug, Clone)]
pub struct Handle {
    loops: Arc<[Arc<LoopHandle>]>,
}

impl Handle {
    /// Starts a graceful shutdown of every loop, as SIGTERM would.
    pub fn shutdown(&self) {
        for handle in self.loops.iter() {
            handle.shutdown();
        }
    }

    /// How many event loops the server runs.
    pub fn loops(&self) -> usize {
        self.loops.len()
    }

    /// The counters of every loop, added up.
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::sum(self.loops.iter().map(|h| &h.stats))
    }
}

/// Posts messages of the application's type `P` (`App::Post`)
/// to the loops of a running server from any thread (a thread that
/// bridges an external broker, say), where `App::on_post`
/// receives them. Messages from one sender to one loop arrive in the
/// order they were posted.
pub struct Poster<P> {
    mailboxes: Arc<[Mailbox<P>]>,
}

impl<P> Poster<P> {
    /// Posts a message to one loop (by index); nothing if there is no such
    /// loop or it has stopped.
    pub fn post(&self, to_loop: usize, message: P) {
        if let Some(mailbox) = self.mailboxes.get(to_loop) {
            mailbox.send(Mail::Post(message));
        }
    }

    /// How many event loops the server runs.
    pub fn loops(&self) -> usize {
        self.mailboxes.len()
    }
}

impl<P> Clone for Poster<P> {
    fn clone(&self) -> Poster<P> {
        Poster {
            mailboxes: self.mailboxes.clone(),
        }
    }
}

impl<P> fmt::Debug for Poster<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poster").field("loops", &self.loops()).finish()
    }
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// One loop's counters: plain atomics written by that loop only
        /// (relaxed; no contention) and read by whoever reports them.
        #[derive(Debug, Default)]
        pub(crate) struct Stats {
            $(pub(crate) $name: AtomicU64,)*
        }

        /// Counters of a server, added up over its loops.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl StatsSnapshot {
            pub(crate) fn sum<'a>(stats: impl Iterator<Item = &'a Stats>) -> StatsSnapshot {
                let mut total = StatsSnapshot::default();
                for s in stats {
                    $(total.$name += s.$name.load(Ordering::Relaxed);)*
                }
                total
            }
        }
    };
}

counters! {
    /// Connections accepted.
    accepted,
    /// Connections refused with 503: at the connection limit, or shed
    /// while the process was out of descriptors.
    refused_busy,
    /// Open connections that are plain HTTP (or not yet anything else).
    open_http,
    /// Open WebSocket sessions.
    open_websocket,
    /// Open event streams.
    open_event_stream,
    /// Open HTTP/2 sessions (connections; not counted in `open_http`:
    /// their streams count as what each is, WebSockets and event
    /// streams in `open_websocket` and `open_event_stream`).
    open_h2,
    /// WebSocket messages received.
    messages_in,
    /// WebSocket messages and SSE events sent.
    messages_out,
    /// WebSocket messages sent as a shared compressed frame (counted in
    /// `messages_out` too): see `Encoded`.
    deflated_out,
    /// Bytes read from sockets.
    bytes_in,
    /// Bytes written to sockets.
    bytes_out,
    /// Connections cut loose by the slow-consumer policy.
    slow_consumers,
    /// HTTP requests answered (any route).
    http_requests,
    /// Panics caught at the application boundary (each closed its
    /// connection with 500 or 1011): `tether_panics_total{where="app"}`.
    app_panics,
    /// Panics caught in the work a loop does for one TCP connection
    /// below the application (its TLS session, its HTTP/1.1 or HTTP/2
    /// session, its output): each dropped that connection alone.
    connection_panics,
    /// Panics caught in a loop's QUIC endpoint (quinn-proto, rustls, the
    /// HTTP/3 session and streams): each dropped the QUIC connection being
    /// handled, if one was.
    quic_panics,
    /// TLS connections closed because what the peer sent was not valid
    /// TLS (or the handshake failed).
    tls_errors,
    /// Connections that became HTTP/2 sessions.
    h2_connections,
    /// HTTP/2 streams opened by clients (each request, event stream or
    /// WebSocket).
    h2_streams,
    /// Bytes held for HTTP/2 request bodies still arriving (the capacity
    /// of their buffers), over all connections; each connection holds at
    /// most [`crate::config::Config::request_bodies_per_connection`].
    h2_request_body_bytes,
    /// HTTP/2 streams reset with REFUSED_STREAM because their connection's
    /// request bodies were at [`crate::config::Config::request_bodies_per_connection`].
    h2_refused_bodies,
    /// HTTP/3 request streams reset with H3_REQUEST_REJECTED because their
    /// connection's request bodies were at
    /// [`crate::config::Config::request_bodies_per_connection`].
    h3_refused_bodies,
    /// QUIC connections held (handshaking, open or closing; not counted
    /// in `open_http`: their streams count as what each is, as HTTP/2's).
    open_h3,
    /// QUIC handshakes completed.
    quic_handshakes,
    /// New QUIC clients sent a Retry (address validation under load).
    quic_retries,
    /// New QUIC clients refused at the connection limit or a bound on
    /// half-open handshakes.
    quic_refused,
    /// Of `quic_refused`, those refused at a bound on half-open
    /// handshakes (per source, or in all).
    quic_refused_half_open,
    /// QUIC handshakes in progress (half-open), counted in `open_h3`.
    quic_half_open,
    /// UDP datagrams received on the QUIC sockets (forwarded ones counted
    /// by the loop that handled them).
    quic_datagrams_in,
    /// Their bytes.
    quic_bytes_in,
    /// UDP datagrams sent by the QUIC endpoints.
    quic_datagrams_out,
    /// Their bytes.
    quic_bytes_out,
    /// QUIC connections dropped at the idle timeout.
    quic_closed_idle,
    /// QUIC handshakes closed at the handshake timeout.
    quic_closed_handshake_timeout,
    /// QUIC connections ended by an error, either side's.
    quic_closed_error,
    /// QUIC connections closed without an error.
    quic_closed_normally,
    /// HTTP/3 streams reset by the slow-consumer policy (counted in
    /// `slow_consumers` too).
    h3_slow_consumer_resets,
    /// Datagrams a loop's socket received for a QUIC connection another
    /// loop holds, handed to that loop (connection migration, a NAT
    /// rebinding).
    quic_datagrams_forwarded,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Sets a counter that one owner keeps in full elsewhere (a loop's
    /// QUIC endpoint's).
    #[cfg(feature = "tls")]
    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mio::{Events, Poll, Token};

    use super::*;

    /// The wake-ups a poll sees within a short wait.
    fn wakes(poll: &mut Poll) -> usize {
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_millis(50))).unwrap();
        events.iter().count()
    }

    #[test]
    fn mail_wakes_the_loop_once_until_it_takes_its_mail() {
        let mut poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(7)).unwrap();
        let (mailbox, inbox) = Mailbox::<u32>::new(Arc::new(LoopHandle::new(waker)));
        let peers = Peers::alone(mailbox);
        for n in 0..100 {
            peers.post(0, n);
        }
        assert!(peers.own().woken.load(Ordering::Acquire));
        assert_eq!(wakes(&mut poll), 1);
        // Taken: every mail is there, and the next one wakes the loop.
        peers.own().taking_mail();
        assert_eq!(inbox.try_iter().count(), 100);
        assert_eq!(wakes(&mut poll), 0);
        peers.post(0, 100);
        assert_eq!(wakes(&mut poll), 1);
        peers.own().taking_mail();
        assert_eq!(inbox.try_iter().count(), 1);
        // Mail sent from another thread while the loop takes its mail is
        // never left without a wake: once the sender is done and no wake
        // comes, every mail has been taken.
        let poster = peers.poster();
        let sender = std::thread::spawn(move || {
            for n in 0..10_000 {
                poster.post(0, n);
            }
        });
        let mut taken = 0;
        loop {
            let done = sender.is_finished();
            if wakes(&mut poll) > 0 {
                peers.own().taking_mail();
                taken += inbox.try_iter().count();
            } else if done {
                break;
            }
        }
        assert_eq!(taken, 10_000);
        sender.join().unwrap();
    }
}
