//! Faults injected by the unit tests (`crate::server::fault_tests`): a panic at
//! one point of the loop's work for the connection from one port, as a
//! bug in rustls or a session would raise there. Compiled only for them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::net::TcpStream;

/// Where the loop panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// Just after a read from the socket (inside TLS, say).
    Read,
    /// At the start of a flush.
    Flush,
    /// When a timer fires.
    Timer,
    /// When a broadcast is queued for it.
    Push,
}

static ARMED: Mutex<Vec<(Point, u16)>> = Mutex::new(Vec::new());
static ANY: AtomicBool = AtomicBool::new(false);
static ARMED_H3: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// The next session event of the QUIC connection from port `port`
/// panics in its HTTP/3 handling (in the loop, not in the endpoint).
pub(crate) fn arm_h3(port: u16) {
    ARMED_H3.lock().unwrap().push(port);
}

pub(crate) fn check_h3(peer: Option<std::net::SocketAddr>) {
    let Some(peer) = peer else { return };
    let hit = {
        let mut armed = ARMED_H3.lock().unwrap();
        let found = armed.iter().position(|&port| port == peer.port());
        found.map(|at| armed.remove(at))
    };
    if hit.is_some() {
        panic!("injected in an HTTP/3 event of {peer}");
    }
}

/// The next time the loop does `point`'s work for the connection
/// whose peer is on port `port` (the client's own port), it panics.
pub(crate) fn arm(point: Point, port: u16) {
    ARMED.lock().unwrap().push((point, port));
    ANY.store(true, Ordering::SeqCst);
}

pub(crate) fn check(point: Point, socket: &TcpStream) {
    if !ANY.load(Ordering::SeqCst) {
        return;
    }
    let Ok(peer) = socket.peer_addr() else {
        return;
    };
    let hit = {
        let mut armed = ARMED.lock().unwrap();
        let found = armed.iter().position(|&armed| armed == (point, peer.port()));
        found.map(|at| armed.remove(at))
    };
    if hit.is_some() {
        panic!("injected at {point:?} for {peer}");
    }
}
