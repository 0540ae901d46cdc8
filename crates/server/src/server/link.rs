//! A connection's link to the loop: its queued output and the flags the
//! loop reads after every call into a session (close once flushed, stop
//! reading, flush me), apart from the socket and the protocol state, so
//! that a session's methods can take it by `&mut` beside themselves.
//!
//! Calling contract: a session writes its output into [`Link::queue`] and
//! sets the flags; it never writes to the socket itself (the loop flushes
//! the connections marked dirty, [`super::env::LoopEnv::mark_dirty`]).

use crate::output::{OutQueue, Pool};

/// What a connection counts as in the open-connection gauges (a draining
/// connection still counts as what it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Http,
    WebSocket,
    EventStream,
    /// An HTTP/2 session (its streams are counted by what they are).
    H2,
}

/// The part of a connection that sessions write to.
pub(super) struct Link {
    /// Queued output; `None` while everything has been written.
    pub(super) out: Option<Box<OutQueue>>,
    /// Not reading: the connection's own replies exceed the output limit.
    pub(super) paused: bool,
    /// Close once the output is flushed.
    pub(super) closing: bool,
    /// In the loop's list of connections to flush.
    pub(super) dirty: bool,
    /// What the connection counts as in the statistics.
    pub(super) kind: Kind,
    /// Accepted on the admin listener.
    pub(super) admin: bool,
    /// Speaks TLS.
    pub(super) secure: bool,
}

impl Link {
    /// A fresh HTTP connection's link.
    pub(super) fn new(admin: bool, secure: bool) -> Link {
        Link {
            out: None,
            paused: false,
            closing: false,
            dirty: false,
            kind: Kind::Http,
            admin,
            secure,
        }
    }

    /// The output queue, taken from the pool if there is none.
    pub(super) fn queue(&mut self, pool: &mut Pool) -> &mut OutQueue {
        self.out.get_or_insert_with(|| pool.queue())
    }

    /// Bytes queued and not yet written.
    pub(super) fn queued(&self) -> usize {
        self.out.as_ref().map_or(0, |out| out.len())
    }
}

/// What the loop does with a connection after a session's call.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NextStep {
    /// Nothing more.
    Keep,
    /// Flush it (its output grew, or it is closing).
    Flush,
    /// Drop it now.
    Drop,
}
