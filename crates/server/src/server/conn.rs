//! A connection in the loop's slab: its socket, its link (queued output
//! and flags) and the protocol session it speaks, HTTP/1.1 or HTTP/2, or
//! nothing more while it drains.

use std::time::Instant;

use mio::net::TcpStream;
use slab::Slab;

use super::h1::H1Conn;
use super::h2::H2Session;
use super::link::Link;
use crate::app::ConnId;
use crate::timers::Scheduled;

/// A connection in the slab.
pub(super) struct Conn {
    pub(super) socket: TcpStream,
    pub(super) generation: u32,
    pub(super) state: State,
    pub(super) link: Link,
    /// This connection's entry in the timer heap.
    pub(super) scheduled: Scheduled,
    /// Write interest is registered.
    pub(super) writable: bool,
    /// The peer has closed its side.
    pub(super) peer_closed: bool,
}

/// The protocol a connection speaks.
pub(super) enum State {
    /// HTTP/1.1, and what a request turned it into.
    H1(H1Conn),
    /// An HTTP/2 session (see the `h2` module).
    H2(Box<H2Session>),
    /// Our side is shut down; reading until the peer closes.
    Draining { deadline: Instant },
}

impl State {
    /// Puts the keys of the request states the connection holds in
    /// `released`, for a connection whose sessions are done with.
    pub(super) fn release_states(&self, released: &mut Vec<u32>) {
        match self {
            State::H1(h1) => released.extend(h1.state()),
            State::H2(h2) => released.extend(h2.states()),
            State::Draining { .. } => {}
        }
    }
}

impl Conn {
    /// A request on it waits for the application's answer.
    pub(super) fn awaits_answer(&self) -> bool {
        matches!(&self.state, State::H1(h1) if h1.awaits_answer())
    }

    /// Requests on it wait unanswered for its output to drain.
    pub(super) fn stalled(&self) -> bool {
        matches!(&self.state, State::H1(h1) if h1.stalled())
    }

    /// When its timer is next due.
    #[inline]
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::H1(h1) => h1.next_deadline(),
            State::H2(h2) => h2.next_deadline(),
            State::Draining { deadline } => Some(*deadline),
        }
    }
}

/// The connection `id` names, if it is still open (its slot may hold a
/// later connection by now, with another generation).
pub(super) fn live(conns: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.index())
        .filter(|c| c.generation == id.generation())
}

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
