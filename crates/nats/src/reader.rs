//! The node's one reader of live events: an ordered consumer over every
//! topic's subject (`PREFIX.topic.*`), read in the stream's order from
//! the place the node stands ([`Bridge::position`]), each message handed
//! to its followed topic's task ([`crate::topic`]) and the others passed
//! over. The node's cost per event is one subject looked up, whatever
//! the number of topics it follows; a topic's own reads (its backlog, the
//! checks of continuity) happen only when it is followed and after a
//! reconnection.
//!
//! A reader that falls behind by more than the stream keeps per subject
//! may find a topic's oldest unread messages trimmed: each message says
//! how many follow it (`pending`), and the first one the reader gets
//! after such a hole comes with at least the per-subject limit less two,
//! so its topic checks continuity before delivering it (one check covers
//! every message the reader had handed over when the check began).
//!
//! Why nothing is lost between a topic's backlog and the reader: the
//! place is fixed (at start, or when the stream was made again: the
//! stream's last sequence) before the bridge is up, and a topic reads its
//! backlog only once up, up to its subject's last sequence at that time.
//! Every later message of the subject is after the place, so the reader
//! hands it over; the topic's task passes over what its backlog held.

use std::rc::Rc;
use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use futures_util::StreamExt;
use tether_backoff::Attempts;

use crate::bridge::{Bridge, TopicCmd, backoff};
use crate::shared::add;
use crate::subject::{all_topics, topic_of};

/// How long one pull of the reader's consumer lasts at most: a consumer
/// lost with its server (on a cluster, while this node's connection to
/// another server stays up) is noticed after two missed heartbeats (half
/// of this each) and made again, within seconds rather than the client's
/// default of 30 s. The price: one pull request every 5 s when idle.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// The task: runs as long as the bridge.
pub(crate) async fn run(bridge: Rc<Bridge>) {
    let mut attempts = Attempts::new(backoff());
    let mut placed = bridge.placed.subscribe();
    loop {
        // Up, and placed in this stream.
        let mut up = bridge.up.subscribe();
        if up.wait_for(|up| *up).await.is_err() {
            return;
        }
        placed.mark_unchanged();
        let from = bridge.position.get().saturating_add(1);
        let mut messages = match open(&bridge, from).await {
            Ok(messages) => messages,
            Err(e) => {
                add(&bridge.shared.stats.errors, 1);
                log::warn!("nats: cannot read the topics' events: {e}");
                tokio::time::sleep(attempts.next_delay()).await;
                continue;
            }
        };
        attempts.reset();
        loop {
            tokio::select! {
                biased;
                changed = placed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Placed again (after a lost connection, or the
                    // stream was made again): read from the place.
                    break;
                }
                message = messages.next() => match message {
                    Some(Ok(message)) => hand_over(&bridge, message),
                    failed => {
                        if let Some(Err(e)) = failed {
                            log::warn!("nats: reading the topics' events: {e}");
                        }
                        add(&bridge.shared.stats.errors, 1);
                        // Read on from the last message handed over; the
                        // followed topics check that nothing of theirs was
                        // trimmed meanwhile.
                        bridge.check_topics();
                        break;
                    }
                },
            }
        }
    }
}

/// Hands a message to its topic's task, if the node follows the topic.
fn hand_over(bridge: &Bridge, message: async_nats::jetstream::Message) {
    let Ok(info) = message.info() else {
        return;
    };
    let seq = info.stream_sequence;
    if seq <= bridge.position.get() {
        // Read again after the consumer was made again.
        return;
    }
    bridge.position.set(seq);
    // Behind: when this message was sent, at least as many messages
    // followed it as the stream keeps per subject, less two. A message
    // the stream trimmed before the reader got to it had at least that
    // many of its subject after it, all unread (the stream trims a
    // subject's oldest as it stores a new one, and a message sent between
    // the two sees one fewer: measured), so the first of them the reader
    // gets is sent with this flag, and its topic checks before delivering.
    let behind = info.pending.saturating_add(2) >= bridge.per_subject.get();
    let Some(topic) = topic_of(&bridge.shared.config.prefix, message.subject.as_str()) else {
        return;
    };
    if let Some(entry) = bridge.topics.borrow().get(topic.as_ref()) {
        let _ = entry.tx.send(TopicCmd::Message(Box::new(message), behind));
    }
}

/// The ordered consumer over every topic's subject, from `from` (in
/// memory on the server, ephemeral; the client makes it again from where
/// it stood if it stalls).
async fn open(bridge: &Bridge, from: u64) -> Result<Ordered, String> {
    let config = OrderedConfig {
        filter_subject: all_topics(&bridge.shared.config.prefix),
        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
        max_expires: PULL_EXPIRES,
        ..Default::default()
    };
    let timeout = bridge.shared.config.request_timeout;
    let stream = bridge.stream().ok_or("no stream yet")?;
    let consumer = tokio::time::timeout(timeout, stream.create_consumer(config))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(timeout, consumer.messages())
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())
}
