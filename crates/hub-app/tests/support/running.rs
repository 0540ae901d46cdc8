//! A server running on a thread of its own for one test: shut down when
//! the test drops it, and then checked to have ended cleanly (unless the
//! test is failing already, whose own message matters more).

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use tether_server::{App, Cluster, Handle, Server};

/// The running server's handle and thread; see the module.
pub(crate) struct Running {
    handle: Handle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Runs the loops of `cluster`, bound already: its address, and it
    /// running.
    pub(crate) fn cluster<A: App + Send + 'static>(cluster: Cluster<A>) -> (SocketAddr, Running) {
        let addr = cluster.local_addr();
        let handle = cluster.handle();
        let thread = Some(thread::spawn(move || cluster.run()));
        (addr, Running { handle, thread })
    }

    /// Runs the one loop `bind` binds, on the thread it runs on (where
    /// the application is made): its address, and it running.
    pub(crate) fn server<A, F>(bind: F) -> (SocketAddr, Running)
    where
        A: App + 'static,
        F: FnOnce() -> io::Result<Server<A>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let server = bind()?;
            tx.send((server.local_addr(), server.handle()))
                .expect("the test waits");
            server.run()
        });
        let (addr, handle) = rx.recv().expect("the server binds");
        let thread = Some(thread);
        (addr, Running { handle, thread })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let outcome = thread.join();
            if !thread::panicking() {
                outcome.expect("no panic").expect("the server shut down cleanly");
            }
        }
    }
}
