//! Delta updates on this loop: the subscriptions that asked for deltas on
//! a topic whose namespace sends them (`delta=on`), each with the last
//! event it was sent there. An event that directly follows that one goes
//! to it as a delta against it ([`Event::delta_ws_frame`], made once for
//! every subscription in step, on every loop); any other event goes
//! whole: the first, the first after a resume or a gap, and one that
//! follows an event the subscription did not get.
//!
//! The JSON forms have room to say which an event is: a multiplexed
//! socket's subscription (`"delta":true`), a multi-topic stream's
//! (`/events?delta=1`) and a one-topic JSON socket
//! (`/topics/NAME/ws?delta=1`) take deltas; the raw socket, the one-topic
//! event stream and the long polls get whole events.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use tether_hub::{Delivery, Event, EventId, HubMessage};
use tether_server::{Ctx, Encoded};

use super::streams;
use crate::metrics::{HubStats, add};
use crate::multiplex::Muxes;
use crate::subscribers::{SubKey, fan_out as fan_out_whole};

/// Sends `event`, delivered as `delivery` says, to this loop's
/// subscribers: the subscriptions in step a delta against `before` (the
/// topic's event before it), made once and shared; every other one the
/// whole event, as without deltas.
pub(super) fn fan_out(
    ctx: &mut Ctx<'_, HubMessage>,
    stats: &HubStats,
    deltas: &mut Deltas,
    muxes: &mut Muxes,
    event: &Arc<Event>,
    delivery: &Delivery<'_, SubKey>,
    before: EventId,
) {
    let sockets = deltas.split(delivery.websocket, event, before);
    let streams = deltas.split(delivery.event_stream, event, before);
    if let Some(base) = &sockets.base
        && let Some(frame) = event.delta_ws_frame(base)
    {
        add(&stats.sent_websocket, sockets.in_step.len() as u64);
        add(&stats.sent_deltas, sockets.in_step.len() as u64);
        let to = sockets.in_step.iter().map(|key| key.conn);
        // Compressed once, by the first loop with a deflate socket in step.
        let (event, base) = (Arc::clone(event), Arc::clone(base));
        let deflated = move || event.delta_ws_frame_deflated(&base).cloned();
        ctx.send_encoded(to, &Encoded::from(Arc::clone(frame)).with_deflated_lazy(deflated));
    }
    let whole = Delivery {
        websocket: &sockets.whole,
        raw_websocket: delivery.raw_websocket,
        event_stream: &streams.whole,
        waiters: Vec::new(),
        resumed: Vec::new(),
    };
    fan_out_whole(ctx, stats, event, &whole);
    if muxes.has_streams() {
        // The whole form is made only if some stream takes it.
        if streams.whole.iter().any(|key| !key.is_whole()) {
            let whole = crate::sse_encoded::sse_multi(event);
            streams::deliver(ctx, stats, muxes, &streams.whole, event.id(), &whole);
        }
        if let Some(bytes) = streams.base.as_ref().and_then(|base| event.delta_sse_multi(base)) {
            add(&stats.sent_deltas, streams.in_step.len() as u64);
            // Compressed, where a stream is, once for all of them.
            let delta = Encoded::from(Arc::clone(bytes));
            streams::deliver(ctx, stats, muxes, &streams.in_step, event.id(), &delta);
        }
    }
}

/// The subscriptions that take deltas, and the last event each was sent
/// on its topic (`None`: its next event goes whole).
#[derive(Debug)]
pub(super) struct Deltas<K = SubKey> {
    last: HashMap<K, Option<Arc<Event>>>,
}

impl<K> Default for Deltas<K> {
    fn default() -> Self {
        Deltas { last: HashMap::new() }
    }
}

/// A delivery's subscriptions of one transport, split: those sent the
/// delta, and those sent the whole event.
#[derive(Debug)]
pub(super) struct Split<K = SubKey> {
    /// Sent the delta (empty when there is none to send).
    pub(super) in_step: Vec<K>,
    /// Sent the whole event: every other subscription of the delivery.
    pub(super) whole: Vec<K>,
    /// The event the delta is against.
    pub(super) base: Option<Arc<Event>>,
}

impl<K: Copy + Eq + Hash> Deltas<K> {
    pub(super) fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// `key` takes deltas from now on; `sent` is the last event it was
    /// sent whole (its replay's last), if any: the next event is a delta
    /// only if it directly follows that one.
    pub(super) fn take(&mut self, key: K, sent: Option<&Arc<Event>>) {
        self.last.insert(key, sent.cloned());
    }

    /// A replay was sent to `key` (held until its topic's history came):
    /// its last event, if any, is what the next delta is against; a replay
    /// of nothing leaves it where it was.
    pub(super) fn replayed(&mut self, key: K, sent: Option<&Arc<Event>>) {
        if let (Some(last), Some(sent)) = (self.last.get_mut(&key), sent) {
            *last = Some(Arc::clone(sent));
        }
    }

    /// `key` no longer takes deltas (it ended).
    pub(super) fn forget(&mut self, key: K) {
        self.last.remove(&key);
    }

    /// `event`, just delivered to `to`, whose topic's event before it was
    /// `before`: the subscriptions whose last event was that one are in
    /// step and get the delta, if it is smaller than the event; the others
    /// get it whole. Every subscription's last event is `event` after.
    pub(super) fn split(&mut self, to: &[K], event: &Arc<Event>, before: EventId) -> Split<K> {
        let mut split = Split {
            in_step: Vec::new(),
            whole: Vec::new(),
            base: None,
        };
        for &key in to {
            let Some(last) = self.last.get_mut(&key) else {
                split.whole.push(key);
                continue;
            };
            let was = last.replace(Arc::clone(event));
            match was {
                Some(was) if was.id() == before && was.id() != EventId::ZERO => {
                    split.base.get_or_insert(was);
                    split.in_step.push(key);
                }
                _ => split.whole.push(key),
            }
        }
        // No delta smaller than the event: every one gets it whole.
        if split
            .base
            .as_ref()
            .is_none_or(|base| event.delta_ws_frame(base).is_none())
        {
            split.whole.append(&mut split.in_step);
            split.base = None;
        }
        split
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> u16 {
        n
    }

    fn event(seq: u64) -> Arc<Event> {
        let data = format!(
            "{{\"state\":\"{}\",\"seq\":{seq}}}",
            "a long unchanging part ".repeat(8)
        );
        Event::new(Arc::from("t"), EventId::new(5, seq), "message", &data).unwrap()
    }

    #[test]
    fn those_that_had_the_event_before_get_the_delta_and_the_others_it_whole() {
        let mut deltas = Deltas::default();
        let (first, second, third) = (event(1), event(2), event(3));
        // 1 had the first event, 2 nothing yet, 3 an older one; 4 did not
        // ask for deltas.
        deltas.take(key(1), Some(&first));
        deltas.take(key(2), None);
        deltas.take(key(3), Some(&event(0)));
        let to = [key(1), key(2), key(3), key(4)];
        let split = deltas.split(&to, &second, first.id());
        assert_eq!(split.in_step, [key(1)]);
        assert_eq!(split.whole, [key(2), key(3), key(4)]);
        assert_eq!(split.base.map(|b| b.id()), Some(first.id()));
        // All in step now, those that took deltas.
        let split = deltas.split(&to, &third, second.id());
        assert_eq!(split.in_step, [key(1), key(2), key(3)]);
        assert_eq!(split.whole, [key(4)]);
        // One that skips an event is out of step, and back after.
        let fifth = event(5);
        let split = deltas.split(&[key(1)], &fifth, event(4).id());
        assert_eq!((split.in_step.len(), split.whole.len()), (0, 1));
        let split = deltas.split(&[key(1)], &event(6), fifth.id());
        assert_eq!(split.in_step, [key(1)]);
        deltas.forget(key(1));
        let split = deltas.split(&[key(1)], &event(7), EventId::new(5, 6));
        assert_eq!(split.whole, [key(1)]);
    }

    #[test]
    fn a_replay_moves_where_the_next_delta_starts_from() {
        let mut deltas = Deltas::default();
        deltas.take(key(1), None);
        deltas.replayed(key(1), Some(&event(4)));
        // Not one that takes deltas: nothing kept.
        deltas.replayed(key(2), Some(&event(4)));
        assert_eq!(deltas.last.len(), 1);
        let split = deltas.split(&[key(1)], &event(5), EventId::new(5, 4));
        assert_eq!(split.in_step, [key(1)]);
    }

    #[test]
    fn a_delta_that_does_not_shrink_goes_whole_to_all() {
        let mut deltas = Deltas::default();
        let short = |seq| Event::new(Arc::from("t"), EventId::new(5, seq), "message", "x").unwrap();
        deltas.take(key(1), Some(&short(1)));
        let split = deltas.split(&[key(1)], &short(2), EventId::new(5, 1));
        assert_eq!((split.in_step.len(), split.whole.len()), (0, 1));
        assert!(split.base.is_none());
    }
}
