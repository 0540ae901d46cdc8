//! The bridge's thread: a tokio current-thread runtime with the NATS
//! client, taking publishes and follows from the loops, sending publishes
//! to JetStream and answering them, and running one task per followed
//! topic ([`crate::topic`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use async_nats::{ConnectOptions, Event as NatsEvent, ServerAddr};
use bytes::Bytes;
use futures_util::StreamExt;
use tether_backoff::Attempts;
use tether_hub::{
    ControlMessage, DEFAULT_EVENT_TYPE, Error as HubError, EventId, HubMessage, Payload, Publish, ReplyTo,
};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::NatsBus;
use crate::bridge::{
    BINARY, Bridge, ENCODING_HEADER, EVENT_HEADER, KEY_HEADER, LOADS_AT_ONCE, MAX_CONSUMERS, TopicCmd,
    TopicEntry, backoff,
};
use crate::control;
use crate::limits::{LIMITS_PERIOD, Limits};
use crate::presence::{Presence, random_node};
use crate::reader;
use crate::shared::{Control, Post, add};
use crate::subject::{all_topics, message_id, subject_of};
use crate::topic;

/// A stream made elsewhere that allows fewer consumers than this is
/// worth a warning: a few dozen nodes following new topics at once reach
/// it (each has its reader and up to [`LOADS_AT_ONCE`] backlogs in flight).
const FEW_CONSUMERS: i32 = 1000;

/// The servers of a `nats://` URL list.
pub(crate) fn servers(url: &str) -> Result<Vec<ServerAddr>, String> {
    let servers: Vec<ServerAddr> = url
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<ServerAddr>()
                .map_err(|_| "not a nats:// URL".to_owned())
        })
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err("no server".to_owned());
    }
    Ok(servers)
}

impl Bridge {
    /// Answers a publish from its acknowledgement, after its event
    /// reached the publisher's loop if that loop follows the topic.
    fn answer(
        &self,
        topic: &Arc<str>,
        reply: Option<ReplyTo>,
        result: Result<jetstream::publish::PublishAck, String>,
    ) {
        let stats = &self.shared.stats;
        let (seq, result) = match result {
            Ok(ack) => {
                let id = EventId::new(self.epoch.get(), ack.sequence);
                add(
                    if ack.duplicate {
                        &stats.duplicates
                    } else {
                        &stats.added
                    },
                    1,
                );
                (ack.sequence, Ok((id, ack.duplicate)))
            }
            Err(e) => {
                log::warn!("nats: a publish to {topic} failed: {e}");
                add(&stats.refused, 1);
                add(&stats.errors, 1);
                (0, Err(HubError::BrokerUnavailable))
            }
        };
        let Some(reply) = reply else {
            return;
        };
        let message = match result {
            Ok((id, true)) => HubMessage::Duplicate {
                token: reply.token,
                id,
            },
            Ok((id, false)) => HubMessage::Published {
                token: reply.token,
                result: Ok(id),
            },
            Err(e) => HubMessage::Published {
                token: reply.token,
                result: Err(e),
            },
        };
        if let Some(entry) = self.topics.borrow_mut().get_mut(topic)
            && entry.loops.contains(&reply.loop_index)
            && entry.delivered < seq
        {
            entry.waiting.push((seq, reply.loop_index, message));
            return;
        }
        self.post(reply.loop_index, message);
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

    /// Sends a publish to JetStream; its acknowledgement is awaited on a
    /// task of its own, so that publishes are pipelined (sent in order).
    async fn publish(self: &Rc<Self>, publish: Publish) {
        if !*self.up.borrow() {
            self.refuse(&publish, HubError::BrokerUnavailable);
            return;
        }
        let subject = subject_of(&self.shared.config.prefix, &publish.topic);
        let mut message = PublishMessage::build();
        if publish.event_type != DEFAULT_EVENT_TYPE {
            message = message.header(EVENT_HEADER, publish.event_type.as_str());
        }
        if publish.data.is_binary() {
            message = message.header(ENCODING_HEADER, BINARY);
        }
        if let Some(key) = &publish.key {
            message = message
                .header(KEY_HEADER, &**key)
                .message_id(message_id(&publish.topic, key));
        }
        let Publish {
            topic, data, reply, ..
        } = publish;
        let data = match data {
            Payload::Text(text) => Bytes::from(text),
            Payload::Binary(bytes) => Bytes::from(bytes),
        };
        let message = message.payload(data);
        let sent_at = Instant::now();
        let sent: Result<PublishAckFuture, _> = self.js.send_publish(subject, message).await;
        match sent {
            Ok(ack) => {
                self.in_flight.set(self.in_flight.get() + 1);
                let bridge = self.clone();
                tokio::task::spawn_local(async move {
                    let result = ack.await.map_err(|e| e.to_string());
                    if result.is_ok() {
                        bridge.shared.stats.round_trip.observe(sent_at.elapsed());
                    }
                    bridge.in_flight.set(bridge.in_flight.get().saturating_sub(1));
                    bridge.answer(&topic, reply, result);
                });
            }
            Err(e) => {
                log::warn!("nats: cannot publish to {topic}: {e}");
                add(&self.shared.stats.errors, 1);
                add(&self.shared.stats.refused, 1);
                if let Some(reply) = reply {
                    self.post(
                        reply.loop_index,
                        HubMessage::Published {
                            token: reply.token,
                            result: Err(HubError::BrokerUnavailable),
                        },
                    );
                }
            }
        }
    }

    fn follow(self: &Rc<Self>, topic: Arc<str>, loop_index: usize, serials: &mut u64) {
        let mut topics = self.topics.borrow_mut();
        if let Some(entry) = topics.get_mut(&topic) {
            if !entry.loops.contains(&loop_index) {
                entry.loops.push(loop_index);
            }
            let _ = entry.tx.send(TopicCmd::Follow(loop_index));
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(TopicCmd::Follow(loop_index));
        *serials += 1;
        let serial = *serials;
        topics.insert(
            topic.clone(),
            TopicEntry {
                serial,
                loops: vec![loop_index],
                delivered: 0,
                waiting: Vec::new(),
                tx,
            },
        );
        add(&self.shared.stats.followed, 1);
        tokio::task::spawn_local(topic::follow(self.clone(), topic, serial, rx));
    }

    fn unfollow(&self, topic: &Arc<str>, loop_index: usize) {
        let mut topics = self.topics.borrow_mut();
        let Some(entry) = topics.get_mut(topic) else {
            return;
        };
        entry.loops.retain(|&l| l != loop_index);
        let _ = entry.tx.send(TopicCmd::Unfollow(loop_index));
        if !entry.loops.is_empty() {
            return;
        }
        let waiting = topics
            .remove(topic)
            .map(|entry| entry.waiting)
            .unwrap_or_default();
        drop(topics);
        self.shared.stats.followed.fetch_sub(1, Ordering::Relaxed);
        for (_, to, message) in waiting {
            self.post(to, message);
        }
    }

    /// Finds the stream, or makes it: subjects `PREFIX.topic.*`, one more
    /// message per subject than the backlog, file storage.
    async fn ensure_stream(&self) -> Result<(), String> {
        let config = &self.shared.config;
        let per_subject = config.history_events.saturating_add(1);
        let wanted = stream::Config {
            name: config.stream_name(),
            subjects: vec![all_topics(&config.prefix)],
            max_messages_per_subject: i64::try_from(per_subject).unwrap_or(i64::MAX),
            num_replicas: config.replicas.max(1),
            duplicate_window: config.duplicate_window,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            allow_direct: true,
            max_consumers: MAX_CONSUMERS,
            ..Default::default()
        };
        let request = self.js.get_or_create_stream(wanted);
        let stream = tokio::time::timeout(config.request_timeout, request)
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let info = stream.cached_info();
        if info.config.max_messages_per_subject != i64::try_from(per_subject).unwrap_or(i64::MAX) {
            log::warn!(
                "nats: the stream {} keeps {} messages per subject, not {per_subject}: \
                 the backlog's first id may be unknown (a gap signal where none is due)",
                info.config.name,
                info.config.max_messages_per_subject
            );
        }
        if (0..FEW_CONSUMERS).contains(&info.config.max_consumers) {
            log::warn!(
                "nats: the stream {} allows {} consumers, and each node makes one, and one for \
                 each topic whose backlog it reads (up to 32 at once): past that, nodes wait \
                 (raise it with `nats stream edit {} --max-consumers`)",
                info.config.name,
                info.config.max_consumers,
                info.config.name
            );
        }
        self.per_subject.set(
            u64::try_from(info.config.max_messages_per_subject)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(u64::MAX),
        );
        let created = info.created.unix_timestamp_nanos() / 1_000_000;
        let epoch = u64::try_from(created).unwrap_or(0).max(1);
        if self.epoch.get() != epoch {
            if self.epoch.get() != 0 {
                log::warn!(
                    "nats: the stream {} was made again: every topic resynchronises",
                    info.config.name
                );
            }
            // The reader starts after what the stream holds now: a topic
            // followed from now on reads what it holds up to then as its
            // backlog.
            self.position.set(info.state.last_sequence);
            self.placed.send_modify(|placed| *placed += 1);
        }
        self.epoch.set(epoch);
        *self.stream.borrow_mut() = Some(stream);
        Ok(())
    }
}

/// The thread's work, on its runtime, until [`Control::Stop`].
pub(crate) async fn main(
    shared: Arc<NatsBus>,
    post: Post,
    mut publishes: mpsc::Receiver<Publish>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let config = shared.config.clone();
    let Ok(servers) = servers(&config.url) else {
        log::error!("nats: {}: not a nats:// URL", config.server());
        return;
    };
    let (events_tx, mut events) = mpsc::unbounded_channel::<NatsEvent>();
    let delays = backoff();
    let options = ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| {
            delays.jittered_delay(u32::try_from(attempts).unwrap_or(u32::MAX))
        })
        .connection_timeout(config.request_timeout)
        .request_timeout(Some(config.request_timeout))
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let _ = events_tx.send(event);
            }
        });
    let client = match options.connect(servers).await {
        Ok(client) => client,
        Err(e) => {
            log::error!("nats: {}: {e}", config.server());
            return;
        }
    };
    // The other nodes' user actions (the client subscribes again after a
    // reconnection).
    let control_subject = control::subject(&config.prefix);
    let mut actions = match client.subscribe(control_subject.clone()).await {
        Ok(subscriber) => Some(subscriber),
        Err(e) => {
            log::warn!("nats: the other nodes' user actions will not reach this node: {e}");
            None
        }
    };
    let (up, _) = watch::channel(false);
    let bridge = Rc::new(Bridge {
        js: jetstream::new(client.clone()),
        shared,
        post,
        stream: RefCell::new(None),
        epoch: Cell::new(0),
        up,
        topics: RefCell::new(HashMap::new()),
        in_flight: Cell::new(0),
        presence: RefCell::new(Presence::default()),
        limits: RefCell::new(Limits::default()),
        node: random_node(),
        loading: Semaphore::new(LOADS_AT_ONCE),
        position: Cell::new(0),
        per_subject: Cell::new(u64::MAX),
        placed: watch::channel(0).0,
    });
    tokio::task::spawn_local(reader::run(bridge.clone()));
    let stats = &bridge.shared.stats;
    let mut serials = 0;
    // Whether the stream must be looked up (at start, and after each
    // reconnection), and when to try.
    let mut need_stream = true;
    let mut attempts = Attempts::new(backoff());
    let mut retry_at = tokio::time::Instant::now();
    let mut was_connected = false;
    // Whether the connection is away: lost, and its `Connected` not read
    // here yet. The stream is not looked up meanwhile. A lookup tried
    // then (one that failed as NATS went away is tried again) waits on the
    // client, and this loop with it, and succeeds once the client is
    // back, before this loop has read that `Connected`: the bridge was up
    // with the reconnection not yet counted. Before the first connection
    // the lookups go on: their failures are what says that NATS cannot be
    // reached.
    let mut away = false;
    // Whether the connection was lost since the stream was last found.
    let mut lost = false;
    // Other nodes' members posted every second; this node's written
    // again every third of their time to live.
    let mut presence_tick = tokio::time::interval(Duration::from_secs(1));
    presence_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refresh_every = config.presence_ttl / 3;
    let mut refresh_at = tokio::time::Instant::now() + refresh_every;
    let mut limits_tick = tokio::time::interval(LIMITS_PERIOD);
    limits_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            message = control.recv() => match message {
                None | Some(Control::Stop) => break,
                Some(Control::Follow { topic, loop_index, follow: true }) => bridge.follow(topic, loop_index, &mut serials),
                Some(Control::Follow { topic, loop_index, follow: false }) => bridge.unfollow(&topic, loop_index),
                Some(Control::Member { topic, member, present }) => bridge.member(topic, member, present),
                Some(Control::Watch { topic, loop_index, watch }) => bridge.watch_presence(topic, loop_index, watch),
                Some(Control::UserAction(action)) => {
                    if let Some(message) = control::encode(&bridge.node, &action)
                        && let Err(e) = client.publish(control_subject.clone(), Bytes::from(message)).await
                    {
                        add(&stats.errors, 1);
                        log::warn!("nats: a user action stays on this node: {e}");
                    }
                }
                Some(Control::Limits(hub)) => bridge.share_limits(hub),
                Some(Control::Revoke(entries)) => bridge.revoke(entries),
                Some(Control::History { query, reply }) => topic::history(&bridge, query, reply),
            },
            Some(message) = next_action(&mut actions) => {
                match control::decode(&message.payload) {
                    Some((node, _)) if node == bridge.node => {}
                    Some((_, action)) => bridge.post(0, HubMessage::Control(ControlMessage::Relay(action))),
                    None => log::debug!("nats: a control message that is not an action"),
                }
            },
            Some(event) = events.recv() => match event {
                NatsEvent::Connected => {
                    if was_connected {
                        add(&stats.reconnects, 1);
                        need_stream = true;
                    }
                    // Not on the first connection, which the first
                    // lookups waited on: read after one of them found the
                    // stream, it would only look it up again (a lookup
                    // that held this loop for its timeouts when NATS went
                    // away meanwhile); read before, or while they fail,
                    // the lookup is still due, and now.
                    was_connected = true;
                    away = false;
                    log::info!("nats: connected to {}", config.server());
                    retry_at = tokio::time::Instant::now();
                }
                NatsEvent::Disconnected => {
                    away = true;
                    lost = true;
                    log::warn!("nats: connection to {} lost", config.server());
                    add(&stats.errors, 1);
                    set_up(&bridge, false);
                }
                other => log::debug!("nats: {other}"),
            },
            _ = tokio::time::sleep_until(retry_at), if need_stream && !away => {
                let ready = match bridge.ensure_stream().await {
                    Ok(()) => bridge.ensure_presence().await,
                    Err(e) => Err(e),
                };
                match ready {
                    Ok(()) => {
                        need_stream = false;
                        attempts.reset();
                        // After a lost connection the reader makes its
                        // consumer again from where it stood (at once, not
                        // after missed heartbeats), and every followed topic
                        // checks that nothing was lost meanwhile.
                        if std::mem::take(&mut lost) {
                            bridge.placed.send_modify(|placed| *placed += 1);
                        }
                        set_up(&bridge, true);
                        bridge.refresh_presence();
                        bridge.check_topics();
                        bridge.ensure_limits().await;
                    }
                    Err(e) => {
                        add(&stats.errors, 1);
                        log::warn!("nats: the stream {}: {e}", config.stream_name());
                        retry_at = tokio::time::Instant::now() + attempts.next_delay();
                    }
                }
            }
            Some(publish) = publishes.recv() => bridge.publish(publish).await,
            _ = presence_tick.tick() => {
                bridge.post_presence();
                if tokio::time::Instant::now() >= refresh_at {
                    refresh_at = tokio::time::Instant::now() + refresh_every;
                    if *bridge.up.borrow() {
                        bridge.refresh_presence();
                    }
                }
            }
            _ = limits_tick.tick() => bridge.tick_limits().await,
        }
    }
    bridge.clear_presence().await;
    bridge.clear_counts().await;
    set_up(&bridge, false);
    // Publishes still queued are refused; those sent get their answers
    // (or time out).
    publishes.close();
    while let Ok(publish) = publishes.try_recv() {
        bridge.refuse(&publish, HubError::ShuttingDown);
    }
    let deadline = tokio::time::Instant::now() + config.request_timeout;
    while bridge.in_flight.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next message of the control subscription, if there is one.
async fn next_action(actions: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match actions {
        Some(subscriber) => subscriber.next().await,
        None => std::future::pending().await,
    }
}

fn set_up(bridge: &Bridge, up: bool) {
    bridge.shared.stats.up.store(up, Ordering::Release);
    bridge.up.send_replace(up);
}
