//! The pub/sub core of tether: topics, per-topic event ids, bounded
//! backlogs for `Last-Event-ID` replay, events encoded once for every wire
//! format, the broker interface and the in-process broker, and tickets for
//! clients that cannot send headers.
//!
//! Sans-IO, like the protocol crates: no sockets, no files, no threads
//! or locks, no clock reads (time is passed in), no randomness (passed in
//! too), and no dependency on the server. A broker that needs IO lives in
//! a crate of its own (the durable one in `tether-hub-durable`). `tether-apps`' `HubApp` drives it on
//! its event loops; see the README beside this crate for the routes and
//! message formats it serves.
//!
//! # The parts
//!
//! - [`EventId`]: `(ms, seq)` ids, written `ms-seq`, the shape of Redis
//!   stream ids.
//! - [`Event`]: one sequenced event with its WebSocket frame, its
//!   event-stream bytes and its JSON, made once and shared (`Arc`) by every
//!   subscriber on every loop.
//! - [`Cursor`]: every topic's position in one id, for the `id:` lines of
//!   a multi-topic event stream and the `since` of a multi-topic poll.
//! - [`Backlog`]: a topic's recent events, bounded by count and bytes;
//!   [`Backlog::replay`] gives exactly the events after an id, or a
//!   [`Gap`] ("you missed events") when it cannot.
//! - [`Hub`]: one event loop's replica of every topic and its local
//!   subscribers; subscribing replays and registers in one step.
//! - [`Broker`]: sequences publishes and delivers events to every loop in
//!   one order per topic; its contract is on the trait. [`LocalBroker`] is
//!   the in-process one: each topic is sequenced by one loop.
//! - [`Sequencer`]: the topics one loop sequences, numbered (ids, publish
//!   keys, the topic limit, idle topics), without IO; the in-process
//!   broker is one, and a broker that stores its events writes each one in
//!   the step that numbers it: the durable broker (the crate
//!   `tether-hub-durable`, over `tether-log`, where its thread, files and
//!   clock live) is one too.
//! - [`Publish::with_key`]: a publisher's own id for a publish (a *publish
//!   key*), which makes retries safe: the topic's sequencer remembers the
//!   key while the event is in the backlog, and a publish with a key it
//!   remembers is answered [`HubMessage::Duplicate`] with the first
//!   event's id instead of being published again.
//! - [`Presence`]: who is present on each topic (members counted by
//!   connection, held by the topic's sequencer loop, shared across nodes
//!   by a broker that can), and the join and leave changes.
//! - [`Tickets`] and [`secret_matches`]: access control.
//!
//! # One publish, start to end
//!
//! ```
//! use std::sync::Arc;
//! use tether_hub::{
//!     Broker, Config, Context, Hub, HubMessage, LocalBroker, Publish, Replay, Subscribed, Transport,
//! };
//!
//! struct OneLoop(Vec<HubMessage>);
//! impl Context for OneLoop {
//!     fn loops(&self) -> usize { 1 }
//!     fn this_loop(&self) -> usize { 0 }
//!     fn post(&mut self, _to: usize, message: HubMessage) { self.0.push(message) }
//!     fn unix_ms(&self) -> u64 { 1_000 }
//! }
//!
//! let config = Config::default();
//! let mut hub: Hub<u32> = Hub::new(config.clone(), true);
//! let mut broker = LocalBroker::new(config.clone());
//! let mut cx = OneLoop(Vec::new());
//!
//! // Subscriber 1 listens over SSE; a publish goes through the broker.
//! assert!(matches!(hub.subscribe("news", 1, Transport::EventStream, None)?, Subscribed::Live(_)));
//! broker.publish(Publish::new("news", Some("update"), "hello", &config)?, &mut cx)?;
//! for message in cx.0.drain(..) {
//!     if let HubMessage::Deliver(event) = message {
//!         let delivery = hub.deliver(event.clone())?;
//!         assert_eq!(delivery.event_stream, [1]);
//!         assert_eq!(&event.sse()[..], b"id: 1000-1\nevent: update\ndata: hello\n\n");
//!     }
//! }
//! // A later subscriber resuming from 0-0 gets it replayed.
//! let Subscribed::Live(Replay::Events(mut replay)) =
//!     hub.subscribe("news", 2, Transport::WebSocket, Some("0-0"))?
//! else { panic!() };
//! assert_eq!(replay.next().unwrap().json(),
//!     r#"{"topic":"news","id":"1000-1","event":"update","data":"hello"}"#);
//! # Ok::<(), tether_hub::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

// Everything here handles bytes and numbers from the network: nothing may
// panic on them. These lints make every exception visible, each `allow`
// with its reason beside it (tests are exempt).
mod backlog;
mod broker;
mod config;
mod control;
mod cursor;
mod decision;
mod delta;
mod error;
mod event;
pub mod histogram;
mod history;
mod hub;
mod id;
mod json;
mod key;
mod local;
mod member;
mod node_limits;
mod payload;
mod presence;
mod reply;
mod sequencer;
mod tickets;

pub use backlog::{Backlog, Events, Replay};
pub use broker::{
    Broker, BrokerMessage, BrokerState, Context, HubMessage, Publish, PublishAnswer, post_to_all,
    sequencer_of,
};
pub use config::{Config, TopicLimits};
pub use control::{
    ConnectionReport, ControlMessage, MAX_LISTED_CONNECTIONS, TopicReport, UserAction, merge_topics,
};
pub use cursor::{Cursor, MAX_CURSOR_LEN};
pub use decision::{Allowed, Decision};
pub use delta::shared_deltas;
pub use error::{BadCursor, Error};
pub use event::{
    DEFAULT_EVENT_TYPE, Event, MAX_EVENT_TYPE_LEN, is_valid_event_type, shared_compressions,
    shared_sse_compressions,
};
pub use history::{HistoryAnswer, HistoryQuery, MAX_HISTORY, history_json, history_json_of};
pub use hub::{Delivery, Hub, Left, Polled, Readied, Resumed, Start, Subscribed, TopicInfo, Transport};
pub use id::EventId;
pub use json::{GAP_EVENT_TYPE, Gap, json_string};
pub use key::{MAX_PUBLISH_KEY_LEN, is_valid_publish_key};
pub use local::LocalBroker;
pub use member::{
    Change, ConnectionMember, MAX_LISTED_MEMBERS, MAX_MEMBER_LEN, MAX_REMOTE_MEMBERS, Member, Members,
    Outcome, PRESENCE_LINGER_MS, PresenceMessage, is_valid_member,
};
pub use node_limits::NodeLimits;
pub use payload::Payload;
pub use presence::Presence;
pub use reply::ReplyTo;
pub use sequencer::{Numbered, Sequence, Sequenced, Sequencer};
/// Topic names: the rule the hub applies, shared with tether-auth.
pub use tether_topic::{MAX_TOPIC_LEN, is_valid_topic};
pub use tickets::{Grant, Tickets, secret_matches};
