//! The in-process broker.

use crate::broker::{Broker, BrokerMessage, Context, HubMessage, Publish};
use crate::config::Config;
use crate::error::Error;
use crate::sequencer::{Sequenced, Sequencer};

/// The in-process broker: one loop sequences each topic (chosen by
/// [`crate::sequencer_of`]); publishes made elsewhere are posted to it; it numbers
/// the event, encodes it once and posts the same `Arc<Event>` to every
/// loop, itself included. Every delivery of a topic comes from that one
/// loop, so every loop sees the topic's events in the same order. Its
/// numbering is a [`crate::Sequencer`], with nothing kept beside it.
///
/// Ids are `(epoch, n)`: the epoch is the topic's creation time in Unix
/// milliseconds (made strictly increasing on each loop), `n` counts from 1.
/// Topics idle for [`Config::topic_ttl`] are forgotten
/// ([`HubMessage::Forget`]); [`Config::max_topics`] is shared by all the
/// loops' brokers made with [`LocalBroker::sibling`].
///
/// Publish keys ([`Publish::with_key`]) are checked by the sequencer, in
/// the step that numbers the event, so two loops that publish with the
/// same key at once still make one event. The sequencer remembers a key
/// exactly while its event is in the topic's backlog: it follows the
/// backlog's bounds ([`Config::max_backlog_events`] events,
/// [`Config::max_backlog_bytes`] bytes) event by event, as every loop's
/// [`crate::Backlog`] does. An event larger than the byte bound is never
/// held, so its key is not remembered either; a topic forgotten for being
/// idle forgets its keys. Memory: at most `max_backlog_events` keys per
/// topic (each at most 128 bytes), nothing for topics without keys.
///
/// ```
/// use tether_hub::{Broker, Config, Context, HubMessage, LocalBroker, Publish};
///
/// /// One loop, whose posts are kept.
/// struct OneLoop(Vec<HubMessage>);
/// impl Context for OneLoop {
///     fn loops(&self) -> usize { 1 }
///     fn this_loop(&self) -> usize { 0 }
///     fn post(&mut self, _to: usize, message: HubMessage) { self.0.push(message) }
///     fn unix_ms(&self) -> u64 { 1_718_000_000_000 }
/// }
///
/// let config = Config::default();
/// let mut broker = LocalBroker::new(config.clone());
/// let mut cx = OneLoop(Vec::new());
/// broker.publish(Publish::new("news", None, "hi", &config)?, &mut cx)?;
/// let [HubMessage::Deliver(event)] = &cx.0[..] else { panic!() };
/// assert_eq!(event.id().to_string(), "1718000000000-1");
/// # Ok::<(), tether_hub::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalBroker {
    sequencer: Sequencer,
}

impl LocalBroker {
    /// A broker for one loop, with its own topic count.
    pub fn new(config: Config) -> LocalBroker {
        LocalBroker {
            sequencer: Sequencer::new(config),
        }
    }

    /// A broker for another loop of the same server: same limits, and the
    /// topic limit counted over both.
    pub fn sibling(&self) -> LocalBroker {
        LocalBroker {
            sequencer: self.sequencer.sibling(),
        }
    }

    /// Topics with events, over all siblings.
    pub fn topic_count(&self) -> usize {
        self.sequencer.topic_count()
    }

    fn sequence(&mut self, publish: Publish, cx: &mut dyn Context) {
        let sequenced = self.sequencer.sequence(&publish, cx.unix_ms(), |_| Ok(()));
        if let Sequenced::Event(event, ()) = &sequenced {
            for to in 0..cx.loops() {
                cx.post(to, HubMessage::Deliver(event.clone()));
            }
        }
        sequenced.answer(publish.reply, cx);
    }
}

impl Broker for LocalBroker {
    fn publish(&mut self, publish: Publish, cx: &mut dyn Context) -> Result<(), Error> {
        if let Some(publish) = self.sequencer.route(publish, cx)? {
            self.sequence(publish, cx);
        }
        Ok(())
    }

    fn receive(&mut self, message: BrokerMessage, cx: &mut dyn Context) {
        // Only publishes are forwarded: every loop follows every topic.
        if let BrokerMessage::Forward(publish) = message {
            self.sequence(publish, cx);
        }
    }

    fn tick(&mut self, cx: &mut dyn Context) {
        for topic in self.sequencer.expire(cx.unix_ms()) {
            for to in 0..cx.loops() {
                cx.post(to, HubMessage::Forget(topic.clone()));
            }
        }
    }

    fn shutdown(&mut self, _cx: &mut dyn Context) {
        self.sequencer.shut_down();
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}
