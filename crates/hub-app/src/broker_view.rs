//! A loop as the hub's broker sees it, over the server's context.

use std::time::{SystemTime, UNIX_EPOCH};

use tether_hub::HubMessage;
use tether_server::Ctx;

/// The broker's view of the loop, over the server's context.
pub(super) struct LoopContext<'c, 'a> {
    pub(super) ctx: &'c mut Ctx<'a, HubMessage>,
}

impl tether_hub::Context for LoopContext<'_, '_> {
    fn loops(&self) -> usize {
        self.ctx.loop_index().1
    }

    fn this_loop(&self) -> usize {
        self.ctx.loop_index().0
    }

    fn post(&mut self, to_loop: usize, message: HubMessage) {
        self.ctx.post(to_loop, message);
    }

    fn unix_ms(&self) -> u64 {
        unix_ms()
    }
}

/// Now, in Unix milliseconds (0 before 1970).
pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
