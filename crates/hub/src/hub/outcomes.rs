//! What the hub's calls return: whom to send what, and what to tell the
//! broker.

use std::sync::Arc;

use super::transport::Transport;
use crate::backlog::{Backlog, Replay};
use crate::event::Event;
use crate::id::EventId;
use crate::json::Gap;

/// The result of [`Hub::subscribe`](crate::Hub::subscribe).
#[derive(Debug)]
pub enum Subscribed<'a> {
    /// The subscriber is live: send it this replay first (a gap signal if
    /// there is one, then the events), before anything else.
    Live(Replay<'a>),
    /// The subscriber is held, to come back in a [`Resumed`] (from
    /// [`Hub::deliver`](crate::Hub::deliver), [`Hub::ready`](crate::Hub::ready) or [`Hub::tick`](crate::Hub::tick)); send it nothing
    /// until then. Either the topic is not ready (a broker that replicates
    /// topics on demand is fetching its backlog), or the subscriber
    /// resumed from an id this loop has not seen yet (an event still on
    /// its way here, as when a client moves from one loop to another: it
    /// becomes live, with nothing to replay, when that event arrives, or
    /// gets a gap signal if no such event comes within one to two ticks).
    Held {
        /// This is the topic's first subscriber on this loop: ask the broker
        /// to follow the topic ([`crate::Broker::follow`]).
        follow: bool,
    },
}

/// The result of [`Hub::poll`](crate::Hub::poll).
#[derive(Debug)]
pub enum Polled {
    /// Answer now (the poller is not registered): a gap signal, or events
    /// after `since`, or both.
    Now {
        /// The gap signal, if any.
        gap: Option<Gap>,
        /// The events, oldest first.
        events: Vec<Arc<Event>>,
        /// The answer left the topic unwatched and the hub dropped it: a
        /// topic followed on demand must be unfollowed
        /// ([`Broker::unfollow`](crate::Broker::unfollow)), or the broker
        /// and the loop disagree on whether it is followed (the next
        /// follow of it then looks like a repeat).
        unfollow: bool,
    },
    /// Nothing to answer yet: the poller waits for the topic's next event
    /// (it comes in [`Delivery::waiters`]).
    Wait,
    /// Held, as in [`Subscribed::Held`]; a [`Resumed`] answers it, or a
    /// [`Delivery::waiters`] once it is waiting.
    Held {
        /// Ask the broker to follow the topic.
        follow: bool,
    },
}

/// What to do with one delivered event on this loop.
#[derive(Debug)]
pub struct Delivery<'a, S> {
    /// WebSocket subscribers: send them [`Event::ws_frame`].
    pub websocket: &'a [S],
    /// Raw WebSocket subscribers: send them [`Event::ws_raw_frame`].
    pub raw_websocket: &'a [S],
    /// Event-stream subscribers: send them [`Event::sse`].
    pub event_stream: &'a [S],
    /// Long polls to answer with the event; they are no longer registered.
    pub waiters: Vec<S>,
    /// Held subscribers that resumed from an id that turned out not to
    /// exist (the topic went past it): send each its gap signal and
    /// replay, which includes this event.
    pub resumed: Vec<Resumed<S>>,
}

/// A held subscriber (see [`Subscribed::Held`]) that is live now, with
/// what to send it first.
#[derive(Debug)]
pub struct Resumed<S> {
    /// The subscriber.
    pub sub: S,
    /// Its transport. A WebSocket or event-stream subscriber is live now; a
    /// long poll is to be answered with this, and is no longer registered.
    pub transport: Transport,
    /// The gap signal, if any.
    pub gap: Option<Gap>,
    /// The events to send, oldest first.
    pub events: Vec<Arc<Event>>,
}

/// The result of [`Hub::ready`](crate::Hub::ready).
#[derive(Debug)]
pub struct Readied<S> {
    /// Held subscribers, now live (or answered, for long polls).
    pub resumed: Vec<Resumed<S>>,
    /// When the topic was ready already (the broker lost continuity and
    /// resynchronised it): its live subscribers may have missed events.
    /// End their subscriptions (WebSocket close 1012, end the event
    /// stream) so that they resume from their last id, and answer the long
    /// polls among them (no longer registered) as if they had timed out.
    pub resync: Vec<(S, Transport)>,
}

/// A subscriber that left, from [`Hub::unsubscribe`](crate::Hub::unsubscribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// Its topic.
    pub topic: Arc<str>,
    /// Its transport.
    pub transport: Transport,
    /// It was the last on this loop of a topic followed on demand: tell the
    /// broker ([`crate::Broker::unfollow`]); the replica is gone.
    pub unfollow: bool,
}

/// A topic's numbers on this loop, from [`Hub::topics`](crate::Hub::topics) (or
/// [`TopicInfo::of_backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// Events in the backlog.
    pub events: usize,
    /// Bytes in the backlog.
    pub bytes: usize,
    /// The last event's id, or `0-0`.
    pub head: EventId,
    /// WebSocket subscribers on this loop, raw ones included.
    pub websocket: usize,
    /// Event-stream subscribers on this loop.
    pub event_stream: usize,
    /// Long polls waiting on this loop.
    pub waiting: usize,
    /// Subscribers held on this loop.
    pub held: usize,
}

impl TopicInfo {
    /// A topic known by its backlog alone (as a broker holds it), with
    /// no subscriber.
    pub fn of_backlog(backlog: &Backlog) -> TopicInfo {
        TopicInfo {
            events: backlog.len(),
            bytes: backlog.bytes(),
            head: backlog.head(),
            websocket: 0,
            event_stream: 0,
            waiting: 0,
            held: 0,
        }
    }
}
