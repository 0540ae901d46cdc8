//! A session that takes broadcasts, wherever its carrier keeps it: what
//! [`super::sink`] asks each carrier for before it pushes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::websocket::Session;
use crate::app::Encoded;
use crate::loops::Stats;

/// A session that takes broadcasts now.
pub(super) enum PushTarget<'a> {
    WebSocket(&'a Session),
    /// An event stream, with when its next heartbeat is due.
    EventStream(&'a mut Instant),
}

impl PushTarget<'_> {
    /// What of `encoded` this session is sent: a WebSocket's frame (the
    /// shared compressed twin if it negotiated one), or an event stream's
    /// bytes, which put its next heartbeat off as a heartbeat would.
    #[inline(always)]
    pub(super) fn bytes<'e>(
        self,
        encoded: &'e Encoded,
        stats: &Stats,
        now: Instant,
        heartbeat: Duration,
    ) -> &'e Arc<[u8]> {
        match self {
            PushTarget::WebSocket(session) => session.frame_of(encoded, stats),
            PushTarget::EventStream(heartbeat_at) => {
                *heartbeat_at = now + heartbeat;
                &encoded.bytes
            }
        }
    }
}
