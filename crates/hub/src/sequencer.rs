//! The numbering of topics on their sequencer loop, shared by the brokers
//! that sequence in process.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::broker::{BrokerMessage, Context, HubMessage, Publish, sequencer_of};
use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::id::EventId;
use crate::key::KeyWindow;
use crate::reply::ReplyTo;

/// One topic's numbering on its sequencer: its epoch and counter, when it
/// was last published to, the publish keys it remembers, and `T`, what
/// the broker keeps beside them (nothing for [`crate::LocalBroker`]).
#[derive(Debug, Clone)]
pub struct Sequence<T = ()> {
    epoch: u64,
    seq: u64,
    last_publish_ms: u64,
    /// Restored by [`Sequencer::restore`]: the next event starts a new
    /// epoch, so that no id that might have been handed out before (and
    /// lost) is ever given to another event.
    restored: bool,
    /// The publish keys of the events still in the backlog.
    keys: KeyWindow,
    state: T,
}

impl<T> Sequence<T> {
    /// `topic`, whose last event was `(epoch, seq)` (`seq` 0: none yet),
    /// never published to, remembering no key, with the backlog bounds
    /// `config` gives the topic ([`Config::backlog_bounds`]) for its keys.
    pub fn new(config: &Config, topic: &str, epoch: u64, seq: u64, state: T) -> Sequence<T> {
        let (events, bytes) = config.backlog_bounds(topic);
        Sequence {
            epoch,
            seq,
            last_publish_ms: 0,
            restored: false,
            keys: KeyWindow::new(events, bytes),
            state,
        }
    }

    /// The epoch of the topic's ids (the first half of an [`EventId`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The counter of the topic's last event in its epoch.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the topic was last published to (Unix milliseconds).
    pub fn last_publish_ms(&self) -> u64 {
        self.last_publish_ms
    }

    /// Takes `id`, published at `unix_ms`, as the topic's last event
    /// (its epoch and counter), as a broker replaying what it stored does.
    /// The last publish time only grows.
    pub fn advance(&mut self, id: EventId, unix_ms: u64) {
        self.epoch = id.ms();
        self.seq = id.seq();
        self.last_publish_ms = self.last_publish_ms.max(unix_ms);
    }

    /// Remembers `event`'s publish key, if it has one, and moves the keys'
    /// window by the event (every event of the topic, keyed or not, in id
    /// order, as the topic's backlog takes it): a key is remembered
    /// exactly while its event would be in a backlog with the bounds of
    /// [`Sequence::new`]'s config. [`Sequencer::sequence`] does this for
    /// the events it numbers.
    pub fn remember(&mut self, event: &Event) {
        let key: Option<Arc<str>> = event.key().map(Arc::from);
        self.keys.push(event.id(), event.cost(), key.as_ref());
    }

    /// Forgets every publish key (the events they came with are gone).
    pub fn forget_keys(&mut self) {
        self.keys.clear();
    }

    /// What the broker keeps beside the numbering.
    pub fn state(&self) -> &T {
        &self.state
    }

    /// What the broker keeps beside the numbering.
    pub fn state_mut(&mut self) -> &mut T {
        &mut self.state
    }
}

/// An event [`Sequencer::sequence`] numbered, before it is taken.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Numbered<'a> {
    /// The event, numbered and encoded.
    pub event: &'a Arc<Event>,
    /// It is the first of a new epoch of a topic restored by
    /// [`Sequencer::restore`]: the topic goes on, its history stays (a
    /// topic that starts over, new or forgotten, does not).
    pub continues: bool,
}

/// What became of a publish given to [`Sequencer::sequence`].
#[derive(Debug)]
#[must_use = "the event is to be delivered, and the publisher answered (`Sequenced::answer`)"]
pub enum Sequenced<W = ()> {
    /// Numbered and taken, with what the write returned: the broker
    /// delivers the event, then answers.
    Event(Arc<Event>, W),
    /// The topic remembers the publish's key: nothing was published; the
    /// id is the event first published with it.
    Duplicate(EventId),
    /// Refused; nothing changed.
    Refused(Error),
}

impl<W> Sequenced<W> {
    /// Posts the outcome to the loop that waits for it, if one does
    /// ([`Publish::reply`]): [`HubMessage::Published`] with the event's id
    /// or the refusal, or [`HubMessage::Duplicate`]. Call it after
    /// delivering the event (the broker contract's outcomes).
    pub fn answer(self, reply: Option<ReplyTo>, cx: &mut dyn Context) {
        let Some(reply) = reply else { return };
        let token = reply.token;
        let message = match self {
            Sequenced::Event(event, _) => HubMessage::Published {
                token,
                result: Ok(event.id()),
            },
            Sequenced::Duplicate(id) => HubMessage::Duplicate { token, id },
            Sequenced::Refused(error) => HubMessage::Published {
                token,
                result: Err(error),
            },
        };
        cx.post(reply.loop_index, message);
    }
}

/// The topics one loop sequences, numbered: the part of a broker that
/// sits on a topic's sequencer loop ([`sequencer_of`]), without any IO.
/// [`crate::LocalBroker`] is one and delivers what it numbers; a broker
/// that stores its events (`tether-hub-durable`) writes each one in the
/// step that numbers it, and replays what it stored with
/// [`Sequencer::restore`].
///
/// - **Ids.** `(epoch, n)`: a topic's epoch is the time its first event
///   was numbered, in Unix milliseconds, made strictly increasing on each
///   sequencer (a topic forgotten and created again within a millisecond
///   still gets a new one); `n` counts from 1. A restored topic's next
///   event starts a new epoch too.
/// - **Publish keys.** Checked in the step that numbers the event, so two
///   publishes with one key make one event; remembered exactly while
///   their event would be in the topic's backlog ([`Config`]'s bounds,
///   event by event), forgotten with the topic.
/// - **Limits.** [`Config::max_topics`] counts the topics of every
///   sequencer made with [`Sequencer::sibling`]; topics idle for
///   [`Config::topic_ttl`] are forgotten by [`Sequencer::expire`].
/// - **Shutdown.** After [`Sequencer::shut_down`] every publish is
///   refused with [`Error::ShuttingDown`].
///
/// `T` is what the broker keeps for each topic beside its numbering
/// ([`Sequence::state`]), made by the function given to
/// [`Sequencer::with_state`] when a topic is created.
///
/// ```
/// use tether_hub::{Config, Publish, Sequenced, Sequencer};
///
/// let config = Config::default();
/// let mut sequencer: Sequencer = Sequencer::new(config.clone());
/// let publish = Publish::new("news", None, "hi", &config)?.with_key("k")?;
/// let Sequenced::Event(event, ()) = sequencer.sequence(&publish, 1_000, |_| Ok(())) else { panic!() };
/// assert_eq!(event.id().to_string(), "1000-1");
/// // The key is remembered: a retry publishes nothing.
/// assert!(matches!(sequencer.sequence(&publish, 1_001, |_| Ok(())), Sequenced::Duplicate(id) if id == event.id()));
/// # Ok::<(), tether_hub::Error>(())
/// ```
pub struct Sequencer<T = ()> {
    config: Config,
    topics: HashMap<Arc<str>, Sequence<T>>,
    new_state: fn(&Config, &str) -> T,
    /// Topics with events, over all the siblings.
    topic_count: Arc<AtomicUsize>,
    last_epoch: u64,
    /// [`Sequencer::shut_down`] was called: every publish is refused.
    shutting_down: bool,
}

impl<T> fmt::Debug for Sequencer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequencer")
            .field("topics", &self.topics.len())
            .field("topic_count", &self.topic_count.load(Ordering::Relaxed))
            .field("last_epoch", &self.last_epoch)
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

impl<T: Default> Sequencer<T> {
    /// A sequencer with its own topic count, whose topics' state starts
    /// as `T::default()`.
    pub fn new(config: Config) -> Sequencer<T> {
        Sequencer::with_state(config, |_, _| T::default())
    }
}

impl<T> Sequencer<T> {
    /// A sequencer with its own topic count, whose topics' state starts
    /// as `new_state(&config, topic)`.
    pub fn with_state(config: Config, new_state: fn(&Config, &str) -> T) -> Sequencer<T> {
        Sequencer {
            config,
            topics: HashMap::new(),
            new_state,
            topic_count: Arc::new(AtomicUsize::new(0)),
            last_epoch: 0,
            shutting_down: false,
        }
    }

    /// A sequencer for another loop: same limits, no topics, and the
    /// topic limit counted over both.
    pub fn sibling(&self) -> Sequencer<T> {
        Sequencer {
            config: self.config.clone(),
            topics: HashMap::new(),
            new_state: self.new_state,
            topic_count: self.topic_count.clone(),
            last_epoch: 0,
            shutting_down: false,
        }
    }

    /// The limits it was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Topics with events, over all siblings.
    pub fn topic_count(&self) -> usize {
        self.topic_count.load(Ordering::Relaxed)
    }

    /// One of this sequencer's topics.
    pub fn get(&self, topic: &str) -> Option<&Sequence<T>> {
        self.topics.get(topic)
    }

    /// One of this sequencer's topics.
    pub fn get_mut(&mut self, topic: &str) -> Option<&mut Sequence<T>> {
        self.topics.get_mut(topic)
    }

    /// This sequencer's topics, in no order.
    pub fn topics(&self) -> impl ExactSizeIterator<Item = (&Arc<str>, &Sequence<T>)> {
        self.topics.iter()
    }

    /// Takes topics rebuilt from what a broker stored (their ids, keys and
    /// state), counted against [`Config::max_topics`] though they may pass
    /// it. Each one's next event starts a new epoch ([`Numbered::continues`]),
    /// later than `last_epoch` and than any of theirs.
    pub fn restore(&mut self, topics: impl IntoIterator<Item = (Arc<str>, Sequence<T>)>, last_epoch: u64) {
        self.last_epoch = self.last_epoch.max(last_epoch);
        for (name, mut topic) in topics {
            topic.restored = true;
            self.last_epoch = self.last_epoch.max(topic.epoch);
            if self.topics.insert(name, topic).is_none() {
                self.topic_count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Where a publish made on this loop goes: `Some` if this loop
    /// sequences its topic (give it to [`Sequencer::sequence`]), `None` if
    /// it was posted to the loop that does ([`BrokerMessage::Forward`]).
    ///
    /// # Errors
    ///
    /// [`Error::ShuttingDown`] after [`Sequencer::shut_down`].
    pub fn route(&self, publish: Publish, cx: &mut dyn Context) -> Result<Option<Publish>, Error> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        let owner = sequencer_of(&publish.topic, cx.loops());
        if owner == cx.this_loop() {
            Ok(Some(publish))
        } else {
            cx.post(owner, HubMessage::Broker(BrokerMessage::Forward(publish)));
            Ok(None)
        }
    }

    /// Numbers a publish of a topic this loop sequences, at `now_ms` (Unix
    /// milliseconds): refused if shutting down, a duplicate if the topic
    /// remembers its key, refused at the topic limit; else the event is
    /// numbered and encoded, and handed to `write` (a broker that stores
    /// its events stores it there). If `write` fails, the publish is
    /// refused with its error and nothing changed; else the topic takes
    /// the event (its id, its key) and the outcome carries what `write`
    /// returned.
    pub fn sequence<W>(
        &mut self,
        publish: &Publish,
        now_ms: u64,
        write: impl FnOnce(Numbered<'_>) -> Result<W, Error>,
    ) -> Sequenced<W> {
        if self.shutting_down {
            return Sequenced::Refused(Error::ShuttingDown);
        }
        let topic = self.topics.get(&publish.topic);
        if let Some(key) = &publish.key
            && let Some(id) = topic.and_then(|t| t.keys.get(key))
        {
            return Sequenced::Duplicate(id);
        }
        let created = topic.is_none();
        let id = match topic {
            Some(topic) if !topic.restored => EventId::new(topic.epoch, topic.seq.saturating_add(1)),
            // Strictly increasing, so that a topic forgotten and created
            // again within one millisecond still gets a new epoch.
            _ => EventId::new(now_ms.max(self.last_epoch.saturating_add(1)), 1),
        };
        let new_epoch = created || topic.is_some_and(|t| t.restored);
        if created {
            let max = self.config.max_topics;
            if self.topic_count.fetch_add(1, Ordering::Relaxed) >= max {
                self.topic_count.fetch_sub(1, Ordering::Relaxed);
                return Sequenced::Refused(Error::TopicLimit { max });
            }
        }
        let written = Event::of_payload(
            publish.topic.clone(),
            id,
            &publish.event_type,
            &publish.data,
            publish.key.as_deref(),
        )
        .and_then(|event| {
            let numbered = Numbered {
                event: &event,
                continues: new_epoch && !created,
            };
            write(numbered).map(|written| (event, written))
        });
        let (event, written) = match written {
            Ok(taken) => taken,
            Err(e) => {
                if created {
                    self.topic_count.fetch_sub(1, Ordering::Relaxed);
                }
                return Sequenced::Refused(e);
            }
        };
        if new_epoch {
            self.last_epoch = id.ms();
        }
        let (config, new_state) = (&self.config, self.new_state);
        let topic = self.topics.entry(publish.topic.clone()).or_insert_with(|| {
            Sequence::new(
                config,
                &publish.topic,
                id.ms(),
                0,
                new_state(config, &publish.topic),
            )
        });
        // A restored topic goes on in a new epoch: its keys and state stay.
        topic.epoch = id.ms();
        topic.seq = id.seq();
        topic.restored = false;
        topic.last_publish_ms = now_ms;
        topic.keys.push(id, event.cost(), publish.key.as_ref());
        Sequenced::Event(event, written)
    }

    /// Forgets the topics idle for [`Config::topic_ttl`] at `now_ms`, and
    /// returns them (the broker tells the loops: [`HubMessage::Forget`]).
    pub fn expire(&mut self, now_ms: u64) -> Vec<Arc<str>> {
        let config = &self.config;
        if config.topic_ttl.is_none() && config.namespaces.iter().all(|n| n.topic_ttl.is_none()) {
            return Vec::new();
        }
        let idle: Vec<Arc<str>> = self
            .topics
            .iter()
            .filter(|(topic, t)| config.is_expired(topic, t.last_publish_ms, now_ms))
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in &idle {
            self.topics.remove(topic);
            self.topic_count.fetch_sub(1, Ordering::Relaxed);
        }
        idle
    }

    /// From now on every publish is refused with [`Error::ShuttingDown`].
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, key: Option<&str>) -> Publish {
        let publish = Publish::new(topic, None, "x", &Config::default()).unwrap();
        match key {
            Some(key) => publish.with_key(key).unwrap(),
            None => publish,
        }
    }

    /// Sequences an event of `topic` at 1 000 ms: its id, and whether it
    /// continues a restored topic.
    fn number<T>(sequencer: &mut Sequencer<T>, topic: &str) -> (EventId, bool) {
        match sequencer.sequence(&publish(topic, None), 1_000, |numbered| Ok(numbered.continues)) {
            Sequenced::Event(event, continues) => (event.id(), continues),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let mut sequencer: Sequencer = Sequencer::new(Config {
            max_topics: 1,
            ..Config::default()
        });
        let refused = sequencer.sequence(&publish("a", Some("k")), 1_000, |_| {
            Err::<(), _>(Error::BrokerUnavailable)
        });
        assert!(matches!(refused, Sequenced::Refused(Error::BrokerUnavailable)));
        assert_eq!((sequencer.topic_count(), sequencer.topics().len()), (0, 0));
        // The topic's slot and the key are still free; the id is the first.
        let Sequenced::Event(event, ()) = sequencer.sequence(&publish("a", Some("k")), 1_000, |_| Ok(()))
        else {
            panic!()
        };
        assert_eq!(event.id(), EventId::new(1_000, 1));
        let refused = sequencer.sequence(&publish("a", None), 1_000, |_| {
            Err::<(), _>(Error::BrokerUnavailable)
        });
        assert!(matches!(refused, Sequenced::Refused(_)));
        assert_eq!(number(&mut sequencer, "a"), (EventId::new(1_000, 2), false));
        assert!(matches!(
            sequencer.sequence(&publish("b", None), 1_000, |_| Ok(())),
            Sequenced::Refused(Error::TopicLimit { max: 1 })
        ));
    }

    #[test]
    fn a_restored_topic_goes_on_in_a_new_epoch_with_its_keys() {
        let config = Config::default();
        let mut sequencer: Sequencer<u32> = Sequencer::with_state(config.clone(), |_, _| 7);
        let mut topic = Sequence::new(&config, "t", 5_000, 0, 1);
        let event = Event::keyed(Arc::from("a"), EventId::new(5_000, 3), "message", "x", Some("k")).unwrap();
        topic.advance(event.id(), 5_500);
        topic.remember(&event);
        sequencer.restore([(Arc::from("a"), topic)], 6_000);
        assert_eq!(sequencer.topic_count(), 1);
        assert!(matches!(
            sequencer.sequence(&publish("a", Some("k")), 1_000, |_| Ok(())),
            Sequenced::Duplicate(id) if id == EventId::new(5_000, 3)
        ));
        // After every epoch seen, though the clock is behind; it goes on.
        assert_eq!(number(&mut sequencer, "a"), (EventId::new(6_001, 1), true));
        assert_eq!(sequencer.get("a").map(|t| *t.state()), Some(1), "the state stays");
        // A new topic starts over, with a new state.
        assert_eq!(number(&mut sequencer, "b"), (EventId::new(6_002, 1), false));
        assert_eq!(sequencer.get("b").map(|t| *t.state()), Some(7));
        // Idle for the time to live (an hour by default): forgotten.
        let mut forgotten = sequencer.expire(1_000 + 3_600_000);
        forgotten.sort();
        assert_eq!(forgotten, [Arc::from("a"), Arc::from("b")]);
        assert_eq!(sequencer.topic_count(), 0);
        sequencer.shut_down();
        assert!(matches!(
            sequencer.sequence(&publish("a", None), 1_000, |_| Ok(())),
            Sequenced::Refused(Error::ShuttingDown)
        ));
    }
}
