//! The close handshake and failures: our close frame, the connection
//! failed with a close code, the state once closed.

use std::time::Instant;

use tether_frame::{CloseCode, OpCode, encode_close_payload};

use super::{Connection, Phase};
use crate::error::{Error, Limit};
use crate::event::Event;

impl Connection {
    /// Fails the connection for a limit its caller keeps (such as
    /// [`Limit::SharedMessages`]) as [`receive`](Self::receive) does for
    /// its own: a close frame with the limit's code ([`Error::close_code`]:
    /// 1009, or 1008 for [`Limit::UnreadAnswers`]) and the limit as its reason is
    /// written to `out` unless a close frame was already sent, the message
    /// being received is dropped, and the connection is closed. Returns
    /// the event to hand on, [`Event::Failed`].
    pub fn fail_over_limit(&mut self, limit: Limit, max: u64, out: &mut Vec<u8>) -> Event {
        self.fail(Error::Limit { limit, max }, out)
    }

    /// Starts the close handshake: writes a close frame and waits (up to
    /// the close timeout from `now`) for the peer's.
    ///
    /// The code must be one that may be sent (1000-1003, 1007-1014,
    /// 3000-4999) and the reason at most 123 bytes.
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.sent_close() {
            return Err(Error::AlreadyClosing);
        }
        let mut payload = Vec::with_capacity(2 + reason.len());
        encode_close_payload(&mut payload, code, reason).map_err(Error::InvalidClose)?;
        self.write_control(OpCode::Close, &payload, out)?;
        self.phase = Phase::Closing;
        // From here the timer is the close deadline.
        self.timer = self.shared.offset(now + self.shared.limits().close_timeout());
        Ok(())
    }

    /// Fails the connection: writes a close frame with the error's code
    /// unless one was already sent, and closes.
    pub(super) fn fail(&mut self, error: Error, out: &mut Vec<u8>) -> Event {
        if !self.sent_close()
            && let Some(code) = error.close_code()
        {
            let mut payload = Vec::with_capacity(125);
            let reason = error.to_string();
            let reason = truncate_utf8(&reason, tether_frame::MAX_CLOSE_REASON);
            // The reason fits, but an extension's own code may be one that
            // cannot be sent: the close frame then goes without a payload.
            if encode_close_payload(&mut payload, code, reason).is_err() {
                payload.clear();
            }
            // At most 125 bytes, which a control frame always takes; were
            // it refused, the connection would close all the same.
            let _refused = self.write_control(OpCode::Close, &payload, out);
        }
        self.finish_closed();
        Event::Failed(error)
    }

    pub(super) fn finish_closed(&mut self) {
        self.phase = Phase::Closed;
        self.message = None;
        self.buffer = Vec::new();
        self.take_control();
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    // `get` refuses an end inside a character; one of the four ends at or
    // below `max` is a boundary (0 is one).
    (0..=s.len().min(max))
        .rev()
        .find_map(|end| s.get(..end))
        .unwrap_or_default()
}
