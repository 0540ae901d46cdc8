//! Several event loops on one port: one thread each, sharing the
//! listening sockets (see `server::sockets` for how) and nothing else.
//! Loops talk only through their mailboxes ([`crate::loops`]).

use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;

use crate::app::App;
use crate::config::{Config, Handshake};
use crate::loops::{Handle, Poster};
use crate::loops::{Mailbox, Peers};
use crate::server::sockets::Sockets;
use crate::server::{Server, connection_budget};

/// A server of several event loops on one port, one thread each.
///
/// Each loop runs its own [`App`] (made by the factory given to
/// [`Cluster::bind`]); loops share nothing and talk through
/// [`crate::Ctx::post`]. New connections are spread over the loops: by
/// default the loops serve one listening socket per address, which no
/// other process can listen beside, and whichever loop accepts a
/// connection hands it to the loops in turn; with
/// [`Config::reuse_port`] each loop listens on a socket of its own with
/// `SO_REUSEPORT` and the kernel spreads them (over the loops of every
/// process that asked the same).
///
/// ```no_run
/// use tether_server::{App, Cluster, Config, Handshake, Request, Route};
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
/// let mut cluster = Cluster::bind(config, Handshake::new(), 4, |_loop_index| Hello)?;
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
    /// the port is picked once, for every loop.
    ///
    /// An address another socket holds is refused (`AddrInUse`, with a
    /// message naming the address and the listener), whatever the loop
    /// count, unless both this server and the socket holding it asked to
    /// share it ([`Config::reuse_port`]).
    pub fn bind(
        mut config: Config,
        handshake: Handshake,
        threads: usize,
        mut make_app: impl FnMut(usize) -> A,
    ) -> io::Result<Cluster<A>> {
        let threads = threads.max(1);
        if config.max_connections.is_none() {
            config.max_connections = Some(connection_budget(&config, threads));
        }
        let sockets = Sockets::bind(&config, threads)?;
        config.addr = sockets.local_addr()?;
        #[cfg(feature = "tls")]
        if let Some(tls_addr) = sockets.tls_addr()? {
            config.tls_addr = Some(tls_addr);
        }
        let handshake = Arc::new(handshake);
        let mut first = Server::bind_shared(
            with_loop_index(&config, 0),
            handshake.clone(),
            make_app(0),
            sockets.for_loop(0)?,
        )?;
        let mut others = Vec::with_capacity(threads - 1);
        for index in 1..threads {
            others.push(Server::bind_shared(
                with_loop_index(&config, index),
                handshake.clone(),
                make_app(index),
                sockets.for_loop(index)?,
            )?);
        }
        let mailboxes: Arc<[Mailbox<A::Post>]> = std::iter::once(&first)
            .chain(&others)
            .filter_map(|s| s.peers().own_mailbox().cloned())
            .collect();
        for (index, server) in std::iter::once(&mut first).chain(&mut others).enumerate() {
            if let Some(peers) = Peers::among(index, &mailboxes) {
                server.set_peers(peers);
            }
        }
        Ok(Cluster { first, others })
    }

    /// The address every loop listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.first.local_addr()
    }

    /// The address of the TLS listener beside the main one (on every
    /// loop), if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.first.tls_addr()
    }

    /// The UDP address HTTP/3 is served on (every loop's socket has it),
    /// if it is.
    #[cfg(feature = "tls")]
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.first.quic_addr()
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

    /// A poster to every loop ([`App::on_post`]), for other threads.
    pub fn poster(&self) -> Poster<A::Post> {
        self.first.poster()
    }

    /// SIGINT and SIGTERM shut every loop down gracefully (see
    /// [`Server::handle_signals`]).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        self.first.handle_signals()
    }

    /// Runs every loop, the first on this thread, until all have shut
    /// down. Returns the first error any loop hit.
    ///
    /// A loop that stops with an error, or dies of a panic outside the
    /// work for any one connection (which costs that connection alone),
    /// shuts the others down: `run` then returns its error, so that the
    /// process can exit non-zero rather than keep serving with a loop
    /// gone (its share of the connections reset, its QUIC connections
    /// unreachable, the hub's sequencing waiting for it).
    pub fn run(self) -> io::Result<()> {
        let Cluster { first, others } = self;
        let others: Vec<_> = others
            .into_iter()
            .enumerate()
            .map(|(i, server)| {
                thread::Builder::new()
                    .name(format!("tether-loop-{}", i + 1))
                    .spawn(move || run_loop(server, i + 1))
            })
            .collect::<io::Result<_>>()?;
        let mut result = run_loop(first, 0);
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

/// Runs one loop of a cluster. [`Server::run`] returns a panic of the
/// loop's as an error after telling the other loops to shut down; should
/// one escape even so (from its last steps), they are told here.
fn run_loop<A: App>(server: Server<A>, index: usize) -> io::Result<()> {
    let handle = server.handle();
    panic::catch_unwind(AssertUnwindSafe(|| server.run())).unwrap_or_else(|_| {
        handle.shutdown();
        Err(io::Error::other(format!("event loop {index} panicked")))
    })
}

/// The configuration of the loop at `index`: with HTTP/3, the QUIC
/// connection IDs it issues start with its index, so that a datagram
/// another loop's socket receives (after the client's address changed) is
/// handed to it.
fn with_loop_index(config: &Config, index: usize) -> Config {
    #[cfg(feature = "tls")]
    {
        let mut config = config.clone();
        config.quic.connection_id_prefix = u8::try_from(index).ok();
        config
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = index;
        config.clone()
    }
}
