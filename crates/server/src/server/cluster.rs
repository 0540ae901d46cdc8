//! Several event loops on one port: one thread each, sharing the
//! listening address through `SO_REUSEPORT` and nothing else. Loops talk
//! only through posted messages (a channel and the receiving loop's
//! `mio::Waker`), never through locks on the hot path.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use mio::Waker;

use super::Server;
use crate::app::Post;
use crate::{App, Config, Handshake};

/// What arrives in a loop's mailbox.
pub(crate) enum Mail {
    /// For the application ([`App::on_post`]).
    Post(Post),
    /// The sending loop is shutting down and has stopped taking work
    /// (its application's [`App::on_shutdown`] has run): nothing it posted
    /// before is still on its way to this loop, and nothing it posts
    /// after this needs delivering before the loop's sessions close.
    Drained,
}

/// One loop's mailbox and stop flag, as seen from elsewhere.
#[derive(Debug)]
pub(crate) struct LoopHandle {
    pub(crate) stop: AtomicBool,
    pub(crate) waker: Waker,
    pub(crate) posts: mpsc::Sender<Mail>,
    pub(crate) stats: Stats,
}

impl LoopHandle {
    pub(crate) fn post(&self, message: Post) {
        self.send(Mail::Post(message));
    }

    /// Tells this loop that the calling loop has drained (see
    /// [`Mail::Drained`]).
    pub(crate) fn drained(&self) {
        self.send(Mail::Drained);
    }

    fn send(&self, mail: Mail) {
        if self.posts.send(mail).is_ok() {
            let _ = self.waker.wake();
        }
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// A loop's place among its siblings: its own index and everyone's
/// handle (its own included).
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    pub(crate) index: usize,
    /// The loop's own handle (`handles[index]`).
    pub(crate) own: Arc<LoopHandle>,
    pub(crate) handles: Arc<[Arc<LoopHandle>]>,
}

impl Peers {
    /// The peers of a loop that runs alone.
    pub(crate) fn alone(own: Arc<LoopHandle>) -> Peers {
        Peers {
            index: 0,
            handles: Arc::new([own.clone()]),
            own,
        }
    }

    pub(crate) fn own(&self) -> &LoopHandle {
        &self.own
    }

    /// Asks every loop to shut down gracefully.
    pub(crate) fn shutdown_all(&self) {
        for handle in self.handles.iter() {
            handle.shutdown();
        }
    }
}

/// Remote control of a running server (all its loops), usable from any
/// thread.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) loops: Arc<[Arc<LoopHandle>]>,
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

    /// Posts a message to one loop, where [`App::on_post`] receives it
    /// (e.g. from a thread that bridges an external broker). Messages from
    /// one sender to one loop arrive in order.
    pub fn post(&self, to_loop: usize, message: Post) {
        if let Some(handle) = self.loops.get(to_loop) {
            handle.post(message);
        }
    }

    /// The counters of every loop, added up.
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::sum(self.loops.iter().map(|h| &h.stats))
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
    /// WebSocket messages received.
    messages_in,
    /// WebSocket messages and SSE events sent.
    messages_out,
    /// Bytes read from sockets.
    bytes_in,
    /// Bytes written to sockets.
    bytes_out,
    /// Connections cut loose by the slow-consumer policy.
    slow_consumers,
    /// HTTP requests answered (any route).
    http_requests,
    /// Panics caught at the application boundary (each closed its
    /// connection with 500 or 1011).
    app_panics,
    /// TLS connections closed because what the peer sent was not valid
    /// TLS (or the handshake failed).
    tls_errors,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A server of several event loops on one port, one thread each.
///
/// Each loop runs its own [`App`] (made by the factory given to
/// [`Cluster::bind`]); loops share nothing and talk through
/// [`crate::Ctx::post`]. The kernel spreads new connections among the
/// loops (`SO_REUSEPORT`).
///
/// ```no_run
/// use tether_server::{apps::Echo, Cluster, Config, Handshake};
///
/// let config = Config::new("127.0.0.1:8080".parse().unwrap());
/// let mut cluster = Cluster::bind(config, Handshake::new(), 4, |_loop_index| Echo::everywhere())?;
/// cluster.handle_signals()?;
/// cluster.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Cluster<A: App> {
    /// The loop that runs on the caller's thread (and takes signals).
    first: Server<A>,
    others: Vec<Server<A>>,
}

impl<A: App + Send + 'static> Cluster<A> {
    /// Binds `threads` loops (at least one) to `config.addr`. With port 0
    /// the first loop picks the port and the others join it.
    pub fn bind(
        mut config: Config,
        handshake: Handshake,
        threads: usize,
        mut make_app: impl FnMut(usize) -> A,
    ) -> io::Result<Cluster<A>> {
        let threads = threads.max(1);
        if config.max_connections.is_none() {
            config.max_connections = Some(super::connection_budget(&config, threads));
        }
        let handshake = Arc::new(handshake);
        let mut first =
            Server::bind_shared(config.clone(), handshake.clone(), make_app(0), threads > 1, true)?;
        config.addr = first.local_addr();
        let mut others = Vec::with_capacity(threads - 1);
        for index in 1..threads {
            others.push(Server::bind_shared(
                config.clone(),
                handshake.clone(),
                make_app(index),
                true,
                false,
            )?);
        }
        let handles: Arc<[Arc<LoopHandle>]> = std::iter::once(&first)
            .chain(&others)
            .map(|s| s.peers.own.clone())
            .collect();
        for (index, server) in std::iter::once(&mut first).chain(&mut others).enumerate() {
            server.peers = Peers {
                index,
                own: server.peers.own.clone(),
                handles: handles.clone(),
            };
        }
        Ok(Cluster { first, others })
    }

    /// The address every loop listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.first.local_addr()
    }

    /// The address of the admin listener (on the first loop), if there is
    /// one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.first.admin_addr()
    }

    /// How many connections each loop serves at most (with the limit left
    /// to the open-file limit, the loops share it).
    pub fn max_connections(&self) -> usize {
        self.first.max_connections()
    }

    /// A handle on all loops.
    pub fn handle(&self) -> Handle {
        self.first.handle()
    }

    /// SIGINT and SIGTERM shut every loop down gracefully (see
    /// [`Server::handle_signals`]).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        self.first.handle_signals()
    }

    /// Runs every loop, the first on this thread, until all have shut
    /// down. Returns the first error any loop hit.
    pub fn run(self) -> io::Result<()> {
        let Cluster { first, others } = self;
        let others: Vec<_> = others
            .into_iter()
            .enumerate()
            .map(|(i, server)| {
                thread::Builder::new()
                    .name(format!("tether-loop-{}", i + 1))
                    .spawn(move || server.run())
            })
            .collect::<io::Result<_>>()?;
        let mut result = first.run();
        for thread in others {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("an event loop panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}
