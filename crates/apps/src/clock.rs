//! A feed of numbered ticks, one a second, over Server-Sent Events.

use std::time::{SystemTime, UNIX_EPOCH};

use tether_hub::json_string;
use tether_server::{ConnId, Ctx, Encoded};

/// Numbered ticks for event-stream subscribers.
///
/// Each tick is an event of type `tick` whose id is its number and whose
/// data is `{"n":N,"unix_ms":T}`. A subscriber that comes back with a
/// `Last-Event-ID` ahead of the count (say, after a server restart) moves
/// the count forward, so ids never go backwards for it (they stop at
/// `u64::MAX`); it is first sent a
/// `welcome` event whose data says which id it resumed from
/// (`{"resumed_from":"5"}`, or `null`).
#[derive(Debug, Default)]
pub struct Clock {
    count: u64,
    subscribers: Vec<ConnId>,
}

impl Clock {
    /// A clock at zero with no subscribers.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// Adds a subscriber.
    pub fn subscribe<P>(&mut self, ctx: &mut Ctx<'_, P>, conn: ConnId, last_event_id: Option<&str>) {
        if let Some(resumed) = last_event_id.and_then(|id| id.parse::<u64>().ok()) {
            self.count = self.count.max(resumed);
        }
        let data = match last_event_id {
            Some(id) => format!("{{\"resumed_from\":{}}}", json_string(id)),
            None => "{\"resumed_from\":null}".to_owned(),
        };
        // No id on the welcome: it must not change the client's last id.
        let _ = ctx.send_event(conn, &tether_sse::Event::new().event("welcome").data(&data));
        self.subscribers.push(conn);
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&mut self, conn: ConnId) {
        self.subscribers.retain(|&c| c != conn);
    }

    /// Sends the next tick to every subscriber.
    pub fn tick<P>(&mut self, ctx: &mut Ctx<'_, P>) {
        if self.subscribers.is_empty() {
            return;
        }
        // A client's Last-Event-ID may have set the count to u64::MAX: the
        // ids stop there rather than overflow (and go back to 0).
        self.count = self.count.saturating_add(1);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let id = self.count.to_string();
        let data = format!("{{\"n\":{},\"unix_ms\":{unix_ms}}}", self.count);
        let event = tether_sse::Event::new().id(&id).event("tick").data(&data);
        if let Ok(encoded) = Encoded::sse(&event) {
            ctx.send_encoded(self.subscribers.iter().copied(), &encoded);
        }
    }

    /// The number of the last tick sent.
    pub fn count(&self) -> u64 {
        self.count
    }
}
