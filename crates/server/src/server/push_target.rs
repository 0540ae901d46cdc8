//! A session that takes broadcasts, wherever its carrier keeps it: what
//! [`super::sink`] asks each carrier for before it pushes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use super::websocket::Session;
use crate::app::Encoded;
use crate::app::sse_coding::{self, Coding};
use crate::config::Config;
use crate::loops::Stats;

/// A session that takes broadcasts now.
pub(super) enum PushTarget<'a> {
    WebSocket(&'a Session),
    /// An event stream, with when its next heartbeat is due and its
    /// content coding, if it is compressed.
    EventStream(&'a mut Instant, Option<&'a mut Coding>),
}

impl PushTarget<'_> {
    /// What of `encoded` this session is sent: a WebSocket's frame (the
    /// shared compressed twin if it negotiated one), or an event stream's
    /// bytes (their shared compressed piece if it is compressed), which
    /// put its next heartbeat off as a heartbeat would.
    #[inline(always)]
    pub(super) fn bytes<'e>(
        self,
        encoded: &'e Encoded,
        stats: &Stats,
        now: Instant,
        config: &Config,
    ) -> Cow<'e, Arc<[u8]>> {
        match self {
            PushTarget::WebSocket(session) => Cow::Borrowed(session.frame_of(encoded, stats)),
            PushTarget::EventStream(heartbeat_at, coding) => {
                *heartbeat_at = now + config.sse_heartbeat;
                match coding {
                    None => Cow::Borrowed(&encoded.bytes),
                    Some(coding) => Cow::Owned(sse_coding::shared(coding, encoded, config.sse_compress_min)),
                }
            }
        }
    }
}
