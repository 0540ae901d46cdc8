//! The bridge's thread: a tokio current-thread runtime with the AMQP
//! client, taking publishes and messages from the loops and routing
//! each to its topic's task ([`crate::topic`]), the connection's task
//! ([`crate::link`]) beside them, and the periodic presence and limits.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tether_bus::unix_ms;
use tether_hub::{Error as HubError, HubMessage, Publish};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::RabbitBus;
use crate::bridge::{Bridge, OPENS_AT_ONCE, TopicCmd, TopicEntry};
use crate::limits::{LIMITS_PERIOD, Limits};
use crate::presence::Presence;
use crate::shared::{Control, Post, add};
use crate::{link, topic};

/// A random name for this node.
fn random_node() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(unix_ms());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

impl Bridge {
    /// The command to `topic`'s task, started if it has none.
    fn to_topic(self: &Rc<Self>, topic: &Arc<str>, cmd: TopicCmd) {
        let mut topics = self.topics.borrow_mut();
        let entry = topics.entry(topic.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            add(&self.shared.stats.followed, 1);
            tokio::task::spawn_local(topic::run(self.clone(), topic.clone(), tx.clone(), rx));
            TopicEntry { tx }
        });
        let _ = entry.tx.send(cmd);
    }

    fn refuse(&self, publish: &Publish, error: HubError) {
        add(&self.shared.stats.refused, 1);
        if let Some(reply) = publish.reply {
            self.post(
                reply.loop_index,
                HubMessage::Published {
                    token: reply.token,
                    result: Err(error),
                },
            );
        }
    }
}

/// The thread's work, on its runtime, until [`Control::Stop`].
pub(crate) async fn main(
    shared: Arc<RabbitBus>,
    post: Post,
    mut publishes: mpsc::Receiver<Publish>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let config = shared.config.clone();
    let bridge = Rc::new(Bridge {
        shared,
        post,
        link: watch::channel(None).0,
        topics: RefCell::new(HashMap::new()),
        node: random_node(),
        sent: Cell::new(0),
        in_flight: Cell::new(0),
        presence: RefCell::new(Presence::default()),
        limits: RefCell::new(Limits::default()),
        opening: Semaphore::new(OPENS_AT_ONCE),
        stalled: tokio::sync::Notify::new(),
        stalled_on: Cell::new(0),
    });
    let link_task = tokio::task::spawn_local(link::run(bridge.clone()));
    let mut presence_tick = tokio::time::interval(Duration::from_secs(1));
    presence_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refresh_every = config.presence_ttl / 3;
    let mut refresh_at = Instant::now() + refresh_every;
    let mut limits_tick = tokio::time::interval(LIMITS_PERIOD);
    limits_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            message = control.recv() => match message {
                None | Some(Control::Stop) => break,
                Some(Control::Follow { topic, loop_index, follow }) => {
                    let cmd = if follow { TopicCmd::Follow(loop_index) } else { TopicCmd::Unfollow(loop_index) };
                    if follow || bridge.topics.borrow().contains_key(&topic) {
                        bridge.to_topic(&topic, cmd);
                    }
                }
                Some(Control::Member { topic, member, present }) => {
                    bridge.presence.borrow_mut().member(&topic, member, present);
                    bridge.send_presence(&topic);
                }
                Some(Control::Watch { topic, loop_index, watch }) => {
                    let mut presence = bridge.presence.borrow_mut();
                    if watch {
                        presence.watched.insert(topic, loop_index);
                    } else {
                        presence.watched.remove(&topic);
                    }
                }
                Some(Control::UserAction(action)) => bridge.send_action(&action),
                Some(Control::Limits(hub)) => bridge.limits.borrow_mut().share(hub),
                Some(Control::Revoke(entries)) => bridge.send_revocations(entries),
                Some(Control::History { query, reply }) => {
                    let topic = query.topic.clone();
                    bridge.to_topic(&topic, TopicCmd::History(query, reply));
                }
            },
            Some(publish) = publishes.recv() => {
                if bridge.link().is_some() {
                    let topic = publish.topic.clone();
                    bridge.to_topic(&topic, TopicCmd::Publish(publish));
                } else {
                    bridge.refuse(&publish, HubError::BrokerUnavailable);
                }
            }
            _ = presence_tick.tick() => {
                let now = Instant::now();
                for (to, message) in bridge.presence.borrow_mut().remote(now) {
                    bridge.post(to, message);
                }
                if now >= refresh_at {
                    refresh_at = now + refresh_every;
                    bridge.send_all_presence();
                }
            }
            _ = limits_tick.tick() => {
                bridge.send_counts(false);
                bridge.limits.borrow_mut().tell_hub(Instant::now(), unix_ms() / 1000);
            }
        }
    }
    // This node's members and counts leave the others' views at once.
    let topics: Vec<_> = bridge.presence.borrow().mine.keys().cloned().collect();
    bridge.presence.borrow_mut().mine.clear();
    for topic in topics {
        bridge.send_presence(&topic);
    }
    bridge.send_counts(true);
    publishes.close();
    while let Ok(publish) = publishes.try_recv() {
        bridge.refuse(&publish, HubError::ShuttingDown);
    }
    // Publishes sent get their answers (or time out); the control
    // messages above are sent meanwhile.
    let deadline = Instant::now() + config.request_timeout;
    tokio::time::sleep(Duration::from_millis(50)).await;
    while bridge.in_flight.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bridge
        .shared
        .stats
        .up
        .store(false, std::sync::atomic::Ordering::Release);
    if let Some(link) = bridge.link.send_replace(None) {
        let _ = tokio::time::timeout(
            config.request_timeout,
            link.connection.close(200, "shutdown".into()),
        )
        .await;
    }
    link_task.abort();
}
