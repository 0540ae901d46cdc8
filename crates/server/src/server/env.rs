//! What the loop lends to the sessions it drives: the session code takes
//! it by `&mut` beside the connection it works on, so that a session's
//! methods need not reach into the loop ([`super::Server`]) for it.

use crate::app::Action;
use crate::config::Config;
use crate::loops::{Peers, Stats};
use crate::output::Pool;
use crate::timers::Timers;

/// The loop's environment: buffers, deadlines, the other loops and the
/// configuration, shared by every session of the loop.
pub(super) struct LoopEnv<P> {
    pub(super) timers: Timers,
    /// Buffers and output queues, reused across connections.
    pub(super) pool: Pool,
    /// What the application asked during a callback, applied after it.
    pub(super) actions: Vec<Action>,
    /// This loop's mailbox and counters, and the other loops'.
    pub(crate) peers: Peers<P>,
    pub(super) config: Config,
}

impl<P> LoopEnv<P> {
    /// This loop's counters.
    pub(super) fn stats(&self) -> &Stats {
        &self.peers.own().stats
    }
}
