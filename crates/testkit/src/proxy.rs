//! A TCP proxy in front of a server, for fault tests: every connection
//! it carries can be cut at once (both ends closed, as a network that
//! drops them, or a server restarted, looks to each side), and while it
//! is down the connections it is given are closed as soon as they come,
//! so that the client finds the server gone until it is up again; while
//! it is silent, the connections stay open and nothing crosses them
//! either way (a partition, or a host gone without a reset: no end of
//! stream, no error, no answer).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A proxy on a loopback port of its own, forwarding to a target set
/// once known ([`Proxy::forward_to`]: the target may need the proxy's
/// address first, as a broker advertising it does). Stopped, with every
/// connection it carries, when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    target: Mutex<Option<String>>,
    /// Both ends of every connection carried now.
    open: Mutex<Vec<TcpStream>>,
    down: AtomicBool,
    /// What is read is dropped, not forwarded.
    silent: AtomicBool,
    /// Connections closed at once, the proxy down.
    refused: AtomicU64,
    closed: AtomicBool,
}

impl Proxy {
    /// Listens on a free loopback port; nothing is forwarded (each
    /// connection closed at once) until [`Proxy::forward_to`].
    pub fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let addr = listener.local_addr().expect("its address");
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        thread::spawn(move || accept(&listener, &accepting));
        Proxy { addr, shared }
    }

    /// A proxy forwarding to `target` (`HOST:PORT`).
    pub fn start(target: &str) -> Proxy {
        let proxy = Proxy::bind();
        proxy.forward_to(target);
        proxy
    }

    /// Forwards the connections that come from now on to `target`.
    pub fn forward_to(&self, target: &str) {
        *lock(&self.shared.target) = Some(target.to_owned());
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection carried now, both ends (the client and the
    /// server each read the end of the stream).
    pub fn cut(&self) {
        for stream in lock(&self.shared.open).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Down: the connections that come are closed at once; up again:
    /// forwarded.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Silent: every connection, carried now or to come, stays open and
    /// what either end sends is dropped; not silent again: forwarded
    /// (what was dropped stays lost: the protocol on a connection
    /// carried through is broken, as after a partition, and the test
    /// [`cut`](Self::cut)s it).
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    /// How many connections were closed at once, the proxy down: the
    /// client's attempts to reach the server while it was away.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the accepting thread, which then sees it is closed.
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let target = lock(&shared.target).clone();
        let server = match target {
            Some(target) if !shared.down.load(Ordering::SeqCst) => TcpStream::connect(target),
            Some(_) => {
                shared.refused.fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            None => {
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
        };
        let Ok(server) = server else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let clones = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        );
        let (Ok(client_read), Ok(server_write), Ok(client_kept), Ok(server_kept)) = clones else {
            continue;
        };
        lock(&shared.open).extend([client_kept, server_kept]);
        let (upstream, downstream) = (shared.clone(), shared.clone());
        thread::spawn(move || copy(client_read, server_write, &upstream));
        thread::spawn(move || copy(server, client, &downstream));
    }
}

/// Copies `from` to `to` until either ends (dropping what comes while
/// the proxy is silent), then closes both.
fn copy(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) if shared.silent.load(Ordering::SeqCst) => {}
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
