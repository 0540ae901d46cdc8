//! The timers: the keepalive ping, the idle timeout and the close
//! timeout, kept as offsets from the shared epoch.

use std::time::Instant;

use tether_frame::OpCode;

use super::{Connection, Phase};
use crate::error::Error;
use crate::event::Event;

impl Connection {
    /// The next moment [`handle_timeout`](Self::handle_timeout) has work
    /// to do: a keepalive ping, the idle timeout or the close timeout.
    /// `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline().map(|at| self.shared.instant(at))
    }

    /// [`poll_timeout`](Self::poll_timeout) as an offset from the shared
    /// epoch: worked out in integers, and turned into an `Instant` once.
    fn deadline(&self) -> Option<i64> {
        match self.phase {
            Phase::Closed => None,
            Phase::Closing => Some(self.timer),
            Phase::Open | Phase::Pinged => {
                let limits = self.shared.limits();
                let ping = match self.phase {
                    Phase::Open => after_ms(self.timer, limits.ping_ms),
                    _ => None,
                };
                match (ping, after_ms(self.timer, limits.idle_ms)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }

    /// Acts on timers that are due at `now`: sends the keepalive ping
    /// (into `out`), or fails the connection on the idle or close timeout.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Event> {
        let now = self.shared.offset(now);
        let limits = *self.shared.limits();
        match self.phase {
            Phase::Closed => None,
            Phase::Closing if now >= self.timer => {
                self.finish_closed();
                Some(Event::Failed(Error::CloseTimeout))
            }
            Phase::Closing => None,
            Phase::Open | Phase::Pinged => {
                if after_ms(self.timer, limits.idle_ms).is_some_and(|idle| now >= idle) {
                    return Some(self.fail(Error::IdleTimeout, out));
                }
                if self.phase == Phase::Open
                    && after_ms(self.timer, limits.ping_ms).is_some_and(|ping| now >= ping)
                {
                    if let Err(e) = self.write_control(OpCode::Ping, &[], out) {
                        return Some(self.fail(e, out));
                    }
                    self.phase = Phase::Pinged;
                }
                None
            }
        }
    }
}

/// The offset `ms` milliseconds after `timer` (both as
/// [`SharedConfig::offset`](super::SharedConfig::offset) counts them), or
/// `None` for a timer that is off (0).
fn after_ms(timer: i64, ms: u32) -> Option<i64> {
    (ms > 0).then(|| timer.saturating_add(i64::from(ms) * 1_000_000))
}
