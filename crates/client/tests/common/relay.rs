//! A TCP relay between a client and a server that can cut every
//! connection it carries: a network failure in the middle of a stream,
//! with the server still up and keeping its state.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Relays each connection accepted on `addr` to the server it was
/// started for, byte for byte, both ways.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    /// Both ends of every connection relayed, to cut them.
    open: Arc<Mutex<Vec<TcpStream>>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub(crate) fn start(server: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let open = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (open, done) = (open.clone(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => relay(client, server, &open),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            })
        };
        Relay {
            addr,
            open,
            done,
            thread: Some(thread),
        }
    }

    /// Cuts every connection relayed so far: each side reads its end.
    /// New connections are relayed as before.
    pub(crate) fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn relay(client: TcpStream, server: SocketAddr, open: &Mutex<Vec<TcpStream>>) {
    client.set_nonblocking(false).expect("blocking stream");
    let Ok(upstream) = TcpStream::connect(server) else {
        return;
    };
    let mut open = open.lock().unwrap();
    for (from, to) in [(&client, &upstream), (&upstream, &client)] {
        let (from, to) = (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
        thread::spawn(move || copy(from, to));
    }
    open.push(client);
    open.push(upstream);
}

/// Copies until either side ends, then ends the other.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
