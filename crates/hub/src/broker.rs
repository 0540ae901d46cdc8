//! The broker interface, what flows between brokers and hubs, and the
//! in-process broker.

use std::fmt;
use std::sync::Arc;

use tether_topic::is_valid_topic;

use crate::config::Config;
use crate::control::{ControlMessage, UserAction};
use crate::error::Error;
use crate::event::{DEFAULT_EVENT_TYPE, Event, is_valid_event_type};
use crate::id::EventId;
use crate::key::is_valid_publish_key;
use crate::member::PresenceMessage;
use crate::payload::Payload;
use crate::reply::ReplyTo;

/// A publish on its way to be sequenced: checked, not yet numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The topic (valid).
    pub topic: Arc<str>,
    /// The event type (valid).
    pub event_type: String,
    /// The data, text or binary (within [`Config::max_event_size`]).
    pub data: Payload,
    /// The publisher's own id for this publish (valid, see
    /// [`Publish::with_key`]), if it gave one.
    pub key: Option<Arc<str>>,
    /// Where to send the outcome ([`HubMessage::Published`]), if anyone
    /// waits for it.
    pub reply: Option<ReplyTo>,
}

impl Publish {
    /// Checks a publish against the names' rules and `config`; without an
    /// event type it is [`DEFAULT_EVENT_TYPE`].
    ///
    /// ```
    /// use tether_hub::{Config, Error, Publish};
    ///
    /// let config = Config::default();
    /// let publish = Publish::new("news", None, "hello", &config)?;
    /// assert_eq!(publish.event_type, "message");
    /// assert_eq!(Publish::new("a b", None, "x", &config), Err(Error::InvalidTopic));
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`], [`Error::InvalidEventType`],
    /// [`Error::EventTooLarge`].
    pub fn new(
        topic: &str,
        event_type: Option<&str>,
        data: impl Into<Payload>,
        config: &Config,
    ) -> Result<Publish, Error> {
        if !is_valid_topic(topic) {
            return Err(Error::InvalidTopic);
        }
        let event_type = event_type.unwrap_or(DEFAULT_EVENT_TYPE);
        if !is_valid_event_type(event_type) {
            return Err(Error::InvalidEventType);
        }
        let data = data.into();
        if data.len() > config.max_event_size {
            return Err(Error::EventTooLarge {
                size: data.len(),
                max: config.max_event_size,
            });
        }
        Ok(Publish {
            topic: Arc::from(topic),
            event_type: event_type.to_owned(),
            data,
            key: None,
            reply: None,
        })
    }

    /// The same publish with a *publish key*: the publisher's own id for
    /// it, which makes publishing again safe. The broker remembers the
    /// keys of each topic (at least while their events are in the topic's
    /// backlog); a publish whose key the topic remembers is not published
    /// again but answered with [`HubMessage::Duplicate`] and the id of the
    /// event first published with it. Keys are per topic.
    ///
    /// ```
    /// use tether_hub::{Config, Error, Publish};
    ///
    /// let config = Config::default();
    /// let publish = Publish::new("news", None, "hello", &config)?.with_key("req-1")?;
    /// assert_eq!(publish.key.as_deref(), Some("req-1"));
    /// assert_eq!(
    ///     Publish::new("news", None, "hello", &config)?.with_key("req 1"),
    ///     Err(Error::InvalidPublishKey)
    /// );
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPublishKey`] unless the key is 1 to 128 visible
    /// ASCII characters ([`crate::is_valid_publish_key`]).
    pub fn with_key(mut self, key: &str) -> Result<Publish, Error> {
        if !is_valid_publish_key(key) {
            return Err(Error::InvalidPublishKey);
        }
        self.key = Some(Arc::from(key));
        Ok(self)
    }

    /// The same publish, answered to `reply`.
    pub fn reply_to(mut self, reply: ReplyTo) -> Publish {
        self.reply = Some(reply);
        self
    }
}

/// A message to one event loop's hub, from a broker (or from the same
/// broker on another loop). The server posts it between loops; the
/// application hands it to its hub and broker.
#[non_exhaustive]
pub enum HubMessage {
    /// A sequenced event, for [`crate::Hub::deliver`].
    Deliver(Arc<Event>),
    /// The outcome of a publish, for the loop that asked
    /// ([`Publish::reply`]).
    Published {
        /// [`ReplyTo::token`].
        token: u64,
        /// The event's id, or why it was refused.
        result: Result<EventId, Error>,
    },
    /// The outcome of a publish whose key ([`Publish::key`]) its topic
    /// remembered: nothing was published; `id` is the event first
    /// published with that key. For the loop that asked, instead of
    /// [`HubMessage::Published`].
    Duplicate {
        /// [`ReplyTo::token`].
        token: u64,
        /// The id of the event first published with the key.
        id: EventId,
    },
    /// The backlog of a topic followed on demand, for [`crate::Hub::ready`].
    Ready {
        /// The topic.
        topic: Arc<str>,
        /// Its recent events, oldest first.
        history: Vec<Arc<Event>>,
        /// The id of the event just before `history`, if there was one.
        dropped: Option<EventId>,
    },
    /// The broker forgot a topic, for [`crate::Hub::forget`].
    Forget(Arc<str>),
    /// Something a broker sends to itself on another loop, for
    /// [`Broker::receive`].
    Broker(BrokerMessage),
    /// Who is present on a topic (see [`crate::Presence`]).
    Presence(PresenceMessage),
    /// An action on a user's connections, or a question to every loop
    /// (see [`crate::ControlMessage`]).
    Control(ControlMessage),
    /// A publish made outside the server's loops (by a thread of the
    /// embedding application, through the server's poster), for the
    /// loop's application to submit as its own and to answer through
    /// `answer` when its outcome comes, where it would answer an HTTP
    /// publisher.
    External {
        /// The publish (checked by [`Publish::new`]).
        publish: Publish,
        /// Called once with the outcome: the event's id and whether the
        /// publish was a duplicate, or why it was refused. Dropped
        /// uncalled if the publish never gets an outcome (its loop
        /// stopped first).
        answer: PublishAnswer,
    },
}

/// Where the outcome of [`HubMessage::External`] goes: called once, from
/// the loop that submitted the publish (so it must not block).
pub type PublishAnswer = Box<dyn FnOnce(Result<(EventId, bool), Error>) + Send>;

impl fmt::Debug for HubMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubMessage::Deliver(event) => f.debug_tuple("Deliver").field(&event.id()).finish(),
            HubMessage::Published { token, result } => f
                .debug_struct("Published")
                .field("token", token)
                .field("result", result)
                .finish(),
            HubMessage::Duplicate { token, id } => f
                .debug_struct("Duplicate")
                .field("token", token)
                .field("id", id)
                .finish(),
            HubMessage::Ready {
                topic,
                history,
                dropped,
            } => f
                .debug_struct("Ready")
                .field("topic", topic)
                .field("events", &history.len())
                .field("dropped", dropped)
                .finish(),
            HubMessage::Forget(topic) => f.debug_tuple("Forget").field(topic).finish(),
            HubMessage::Broker(message) => f.debug_tuple("Broker").field(message).finish(),
            HubMessage::Presence(message) => f.debug_tuple("Presence").field(message).finish(),
            HubMessage::Control(message) => f.debug_tuple("Control").field(message).finish(),
            HubMessage::External { publish, .. } => f
                .debug_struct("External")
                .field("topic", &publish.topic)
                .field("bytes", &publish.data.len())
                .finish_non_exhaustive(),
        }
    }
}

/// What a broker posts to itself on another loop ([`HubMessage::Broker`],
/// [`Broker::receive`]): the work that has to happen on the loop that
/// owns a topic ([`sequencer_of`]). One closed type, so that a message is
/// matched where it arrives, never downcast, and the loops' channel carries
/// nothing a broker could fail to recognise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerMessage {
    /// A publish made on another loop, for its topic's sequencer.
    Forward(Publish),
    /// A loop began following a topic ([`Broker::follow`]).
    Follow {
        /// The topic.
        topic: Arc<str>,
        /// The loop that follows it.
        loop_index: usize,
    },
    /// A loop stopped following a topic ([`Broker::unfollow`]).
    Unfollow {
        /// The topic.
        topic: Arc<str>,
        /// The loop that no longer follows it.
        loop_index: usize,
    },
}

/// What a broker may do from inside an event loop: know the loops, post
/// to them, read the wall clock. The server implements it over its
/// context (`Ctx::post`).
pub trait Context {
    /// How many event loops the server runs.
    fn loops(&self) -> usize;
    /// The loop this call runs on.
    fn this_loop(&self) -> usize;
    /// Posts to a loop (this one included: delivered after the current
    /// callback). Messages from one loop to another arrive in the order
    /// they were posted.
    fn post(&mut self, to_loop: usize, message: HubMessage);
    /// Milliseconds since the Unix epoch.
    fn unix_ms(&self) -> u64;
}

/// The state of a broker's connection, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerState {
    /// Taking publishes and delivering.
    Up,
    /// (Re)connecting; publishes are refused or queued.
    Connecting,
    /// Not connected and not trying.
    Down,
}

impl BrokerState {
    /// The state as a lower-case word (a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerState::Up => "up",
            BrokerState::Connecting => "connecting",
            BrokerState::Down => "down",
        }
    }
}

/// What sequences publishes and delivers the events to every event loop.
///
/// Each loop holds one broker value (its own, or a handle on a shared
/// one); the application calls it from the loop's thread. Publishes come
/// in through [`Broker::publish`]; events reach each loop's hub as
/// [`HubMessage`]s, posted between loops ([`Context::post`]) or from a
/// broker thread (the server's `Handle::post`).
///
/// # The contract
///
/// For every topic:
///
/// 1. **One order.** The broker gives each event an [`EventId`] greater
///    than every earlier id of the topic, and delivers the topic's events
///    ([`HubMessage::Deliver`]) to each loop in id order, from one sender
///    (so that no two loops can see two events in different orders).
/// 2. **Nothing lost, nothing twice.** Each loop that follows the topic
///    gets every event exactly once, from the point it started following.
///    A broker that cannot guarantee that (it lost its connection and the
///    events in between are gone) posts [`HubMessage::Ready`] again with
///    the topic's current backlog: the hub then ends its subscribers'
///    subscriptions so that they resume from their last ids, with a gap
///    signal if they did miss something.
/// 3. **Following.** If [`Broker::complete`] is true (the default), every
///    event of every topic goes to every loop, and loops follow all
///    topics from the start. Otherwise a loop follows a topic from its
///    first subscriber ([`Broker::follow`]) to its last
///    ([`Broker::unfollow`]); after `follow`, the broker posts that loop
///    one [`HubMessage::Ready`] (the backlog: the last events, oldest
///    first, and the id of the one before them, if any), and then every
///    later event. The history plus the deliveries after it must be
///    contiguous. A `follow` repeated without an `unfollow` between is
///    answered with a `Ready` too (the loop wants the backlog again).
/// 4. **Outcomes.** A publish with a [`Publish::reply`] gets exactly one
///    [`HubMessage::Published`] (or [`HubMessage::Duplicate`]), posted to
///    that loop after the event's delivery to it (so that a publisher that
///    is also a subscriber sees its event no later than the answer). A
///    publish refused at once returns the error from [`Broker::publish`]
///    instead.
/// 5. **Publish keys.** A publish with a [`Publish::key`] that the topic
///    remembers is not published: its outcome is
///    [`HubMessage::Duplicate`] with the id of the event first published
///    with that key. The check and the numbering are one atomic step (two
///    publishes with the same key, from anywhere, give one event). The
///    topic remembers a key at least while its event is in the topic's
///    backlog (both bounds, [`Config::max_backlog_events`] and
///    [`Config::max_backlog_bytes`]), and forgets it when the topic is
///    forgotten; keys are per topic. A broker that cannot keep keys
///    refuses keyed publishes rather than ignoring the key.
///
/// Ids: an id is only ever compared with ids of the same topic. The
/// in-process broker uses `(topic epoch, counter)`; a Redis stream broker
/// uses the stream's own entry ids (`XADD` with `*`).
///
/// [`crate::LocalBroker`] is the in-process implementation.
pub trait Broker {
    /// Takes a checked publish (see [`Publish::new`]) made on this loop.
    ///
    /// # Errors
    ///
    /// A refusal known at once ([`Error::BrokerUnavailable`], say); no
    /// [`HubMessage::Published`] follows then.
    fn publish(&mut self, publish: Publish, cx: &mut dyn Context) -> Result<(), Error>;

    /// A [`HubMessage::Broker`] arrived on this loop.
    fn receive(&mut self, message: BrokerMessage, cx: &mut dyn Context) {
        let _ = (message, cx);
    }

    /// Called now and then (about once a second) on every loop.
    fn tick(&mut self, cx: &mut dyn Context) {
        let _ = cx;
    }

    /// The loop is shutting down. From now on the broker refuses every
    /// publish with [`Error::ShuttingDown`], those made on this loop
    /// ([`Broker::publish`]) and those other loops hand it to sequence:
    /// whatever it sequenced before was posted to every loop ahead of the
    /// loop's "drained" mark, so every event it acknowledges reaches
    /// every loop's subscribers before their sessions close. The default
    /// does nothing (a broker whose acknowledged events are durable
    /// elsewhere may go on).
    fn shutdown(&mut self, cx: &mut dyn Context) {
        let _ = cx;
    }

    /// Whether every event of every topic reaches every loop without
    /// asking (see the contract). Must not change.
    fn complete(&self) -> bool {
        true
    }

    /// The backlog of `topic` held by this loop's broker, where it is the
    /// topic's sequencer and keeps backlogs of its own (a broker that is
    /// not [`Broker::complete`] but holds what it sequences, as the
    /// durable one does); `None` otherwise. `Some` of an empty backlog is
    /// not needed for a topic it never sequenced: see
    /// [`Broker::holds_backlogs`].
    fn backlog(&self, topic: &str) -> Option<&crate::backlog::Backlog> {
        let _ = topic;
        None
    }

    /// Whether [`Broker::backlog`] answers for the topics this loop
    /// sequences (a topic it has not is then one without events).
    fn holds_backlogs(&self) -> bool {
        false
    }

    /// On a topic's sequencer loop, for a broker whose backlogs are kept
    /// outside this process (a bus) and are not [`Broker::backlog`]: reads
    /// the page `query` asks for from there, off the loop, and posts
    /// [`ControlMessage::HistoryOf`](crate::ControlMessage::HistoryOf) to
    /// `reply` (the page as [`crate::history_json`] writes it from the
    /// backlog a follow would get, or [`HistoryAnswer::Unavailable`]
    /// within a bounded time when the bus cannot be read). False (the
    /// default) when it does not: nothing is posted then.
    ///
    /// [`HistoryAnswer::Unavailable`]: crate::HistoryAnswer::Unavailable
    fn history(&mut self, query: &crate::HistoryQuery, reply: ReplyTo, cx: &mut dyn Context) -> bool {
        let _ = (query, reply, cx);
        false
    }

    /// The topics whose backlogs this loop's broker holds
    /// ([`Broker::holds_backlogs`]), with them; none by default.
    fn backlogs(&self) -> Box<dyn Iterator<Item = (&Arc<str>, &crate::backlog::Backlog)> + '_> {
        Box::new(std::iter::empty())
    }

    /// The first subscriber of `topic` on this loop arrived (only called
    /// when not [`Broker::complete`]).
    fn follow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        let _ = (topic, cx);
    }

    /// The last subscriber of `topic` on this loop left (only called when
    /// not [`Broker::complete`]); the loop dropped its replica.
    fn unfollow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        let _ = (topic, cx);
    }

    /// Whether a topic's ids form one increasing sequence across the runs
    /// of every node and of the broker itself, so that an id this loop
    /// has not seen yet can only be one it has not read yet (it is
    /// behind, or the event was lost in a failover), never one of another
    /// history. True for a bus (a Redis stream's ids, a JetStream
    /// stream's epoch and sequence); false for the in-process and durable
    /// brokers, whose ids are one node's (a client may bring an id from
    /// another node with a history of its own). See
    /// [`crate::Hub::with_one_sequence`]. Must not change.
    fn ids_one_sequence(&self) -> bool {
        false
    }

    /// The connection state, for the metrics.
    fn state(&self) -> BrokerState {
        BrokerState::Up
    }

    /// A short name for the metrics (`local`, `redis`).
    fn kind(&self) -> &'static str;

    /// What the last failure to reach the bus said (which connection,
    /// and why: a refused certificate, a reset connection), for `/readyz`
    /// while the broker is not up; `None` (the default) for a broker with
    /// no bus, or before any failure.
    fn last_error(&self) -> Option<String> {
        None
    }

    /// Which bus this is beyond its kind, for `/readyz` (Redis Sentinel
    /// names its master and where it was found); `None` (the default)
    /// when the kind says it all.
    fn detail(&self) -> Option<String> {
        None
    }

    /// The round trips to the bus of a broker over one (bounds
    /// [`crate::histogram::ROUND_TRIP`]), as the bus times them; `None`
    /// (the default) for a broker with no bus.
    fn round_trip(&self) -> Option<&crate::histogram::Histogram> {
        None
    }

    /// Whether this broker shares presence with other nodes (see
    /// [`crate::Presence`]): it is told of this node's members
    /// ([`Broker::presence`]) and posts the other nodes' members of the
    /// topics it watches ([`Broker::watch_presence`]) to each topic's
    /// sequencer as [`PresenceMessage::Remote`], now and then. False by
    /// default: presence is this process's alone.
    fn shares_presence(&self) -> bool {
        false
    }

    /// On `topic`'s sequencer loop, for a broker that shares presence:
    /// `member`'s first connection on this node arrived (`present`), or
    /// its last left.
    fn presence(&mut self, topic: &Arc<str>, member: &Arc<str>, present: bool, cx: &mut dyn Context) {
        let _ = (topic, member, present, cx);
    }

    /// On `topic`'s sequencer loop, for a broker that shares presence:
    /// start (`watch`) or stop posting the other nodes' members of
    /// `topic` to this loop.
    fn watch_presence(&mut self, topic: &Arc<str>, watch: bool, cx: &mut dyn Context) {
        let _ = (topic, watch, cx);
    }

    /// Whether user actions ([`Broker::user_action`]) reach the other
    /// nodes. False by default: they reach this process's loops only.
    fn shares_user_actions(&self) -> bool {
        false
    }

    /// On the loop that took it, for a broker that connects nodes: an
    /// action on a user's connections, for the other nodes, whose brokers
    /// post it to one of their loops as [`ControlMessage::Relay`]. (This
    /// node's loops have it from the application.) Nothing by default.
    fn user_action(&mut self, action: &UserAction, cx: &mut dyn Context) {
        let _ = (action, cx);
    }

    /// Appends the broker's own metrics (its connection, say) to what
    /// `/metrics` answers, in the Prometheus text format: `# HELP` and
    /// `# TYPE` lines, then samples, each line ending in `\n`. Nothing by
    /// default.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// The loop that sequences `topic` among `loops` loops: a stable hash of
/// the name (FNV-1a), so that every loop agrees.
///
/// ```
/// let owner = tether_hub::sequencer_of("news", 4);
/// assert!(owner < 4);
/// assert_eq!(owner, tether_hub::sequencer_of("news", 4));
/// assert_eq!(tether_hub::sequencer_of("news", 1), 0);
/// ```
pub fn sequencer_of(topic: &str, loops: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let loops = loops.max(1);
    // Below `loops`, so it fits a usize.
    usize::try_from(hash % u64::try_from(loops).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// Posts `message` to every loop of the node, this one included (its copy
/// arrives after the current callback): the number of loops, the answers
/// to wait for.
pub fn post_to_all(cx: &mut dyn Context, message: &ControlMessage) -> usize {
    let loops = cx.loops().max(1);
    for index in 0..loops {
        cx.post(index, HubMessage::Control(message.clone()));
    }
    loops
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Loops(usize, Vec<(usize, HubMessage)>);

    impl Context for Loops {
        fn loops(&self) -> usize {
            self.0
        }
        fn this_loop(&self) -> usize {
            0
        }
        fn post(&mut self, to: usize, message: HubMessage) {
            self.1.push((to, message));
        }
        fn unix_ms(&self) -> u64 {
            0
        }
    }

    #[test]
    fn actions_go_to_every_loop() {
        let mut cx = Loops(3, Vec::new());
        let action = UserAction::Refresh {
            user: Arc::from("alice"),
            expires_at: 5,
        };
        assert_eq!(action.user().as_ref(), "alice");
        let message = ControlMessage::Act { action, reply: None };
        assert_eq!(post_to_all(&mut cx, &message), 3);
        let to: Vec<usize> = cx.1.iter().map(|(to, _)| *to).collect();
        assert_eq!(to, [0, 1, 2]);
        assert!(
            cx.1.iter()
                .all(|(_, m)| matches!(m, HubMessage::Control(c) if *c == message))
        );
    }
}
