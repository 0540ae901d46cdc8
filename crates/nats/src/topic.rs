//! One followed topic's task: reads the topic's backlog and then its new
//! events from JetStream through an ordered consumer filtered on the
//! topic's subject, hands the loops that follow it `Ready` and then every
//! event, and checks after each reconnection that nothing was lost.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures_util::StreamExt;
use tether_backoff::Attempts;
use tether_hub::{DEFAULT_EVENT_TYPE, Event, EventId, HubMessage};
use tokio::sync::mpsc;

use crate::bridge::{Bridge, EVENT_HEADER, KEY_HEADER, TopicCmd, backoff};
use crate::shared::add;
use crate::subject::subject_of;

/// How long one pull of a topic's consumer lasts at most (see [`open`]).
const PULL_EXPIRES: std::time::Duration = std::time::Duration::from_secs(5);

/// What a node holds of a topic: the backlog it hands a loop that starts
/// to follow, and where it stands in the stream.
struct Replica {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
    /// The id of the event just before `events`, if there was one.
    dropped: Option<EventId>,
    /// The stream sequence of the last event read.
    last_seq: u64,
    /// The stream's epoch when it was read.
    epoch: u64,
    max_events: usize,
    max_bytes: usize,
}

impl Replica {
    fn push(&mut self, event: Arc<Event>) {
        self.bytes += event.cost();
        self.events.push_back(event);
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.cost();
            self.dropped = Some(old.id());
        }
    }

    fn ready(&self, topic: &Arc<str>) -> HubMessage {
        HubMessage::Ready {
            topic: topic.clone(),
            history: self.events.iter().cloned().collect(),
            dropped: self.dropped,
        }
    }
}

/// Why reading stopped.
enum Stop {
    /// The topic is no longer followed.
    Unfollowed,
    /// The consumer failed: check continuity, then read on.
    Recover,
}

/// The task: runs until no loop follows the topic.
pub(crate) async fn follow(
    bridge: Rc<Bridge>,
    topic: Arc<str>,
    serial: u64,
    mut cmds: mpsc::UnboundedReceiver<TopicCmd>,
) {
    let subject = subject_of(&bridge.shared.config.prefix, &topic);
    let mut loops: Vec<usize> = Vec::new();
    let mut attempts = Attempts::new(backoff());
    let mut first = true;
    'load: loop {
        // Load the backlog (after a backoff when an attempt failed).
        let (mut replica, mut messages) = loop {
            let mut up = bridge.up.subscribe();
            if up.wait_for(|up| *up).await.is_err() {
                return;
            }
            let loaded = match bridge.loading.acquire().await {
                Ok(_permit) => load(&bridge, &subject, &topic).await,
                Err(_) => return,
            };
            match loaded {
                Ok(loaded) => break loaded,
                Err(e) => {
                    add(&bridge.shared.stats.errors, 1);
                    log::warn!("nats: cannot read topic {topic}: {e}");
                    tokio::time::sleep(attempts.next_delay()).await;
                }
            }
        };
        attempts.reset();
        // The loops that follow now (commands sent before this point).
        if !apply(&mut cmds, &mut loops, None) {
            return;
        }
        if !first {
            add(&bridge.shared.stats.resyncs, 1);
            log::warn!("nats: topic {topic} resynchronised: its subscribers resume from their last ids");
        }
        first = false;
        for &to in &loops {
            bridge.post(to, replica.ready(&topic));
        }
        bridge.delivered(&topic, serial, replica.last_seq);
        // Read on, until unfollowed or continuity is in doubt.
        loop {
            let stop = tokio::select! {
                biased;
                cmd = cmds.recv() => match cmd {
                    None => Stop::Unfollowed,
                    Some(TopicCmd::Check) => Stop::Recover,
                    Some(cmd) => {
                        apply_one(cmd, &mut loops, Some((&bridge, &replica, &topic)));
                        continue;
                    }
                },
                message = messages.next() => match message {
                    Some(Ok(message)) => {
                        deliver(&bridge, &topic, serial, &mut replica, &loops, &message);
                        continue;
                    }
                    Some(Err(e)) => {
                        log::warn!("nats: reading topic {topic}: {e}");
                        add(&bridge.shared.stats.errors, 1);
                        Stop::Recover
                    }
                    None => Stop::Recover,
                },
            };
            if let Stop::Unfollowed = stop {
                return;
            }
            // Check that the last event read is still in the stream (so
            // nothing after it was trimmed) and read on after it.
            loop {
                let mut up = bridge.up.subscribe();
                if up.wait_for(|up| *up).await.is_err() {
                    return;
                }
                let resumed = match bridge.loading.acquire().await {
                    Ok(_permit) => resume(&bridge, &subject, &replica).await,
                    Err(_) => return,
                };
                match resumed {
                    Ok(Some(resumed)) => {
                        messages = resumed;
                        attempts.reset();
                        break;
                    }
                    Ok(None) => continue 'load,
                    Err(e) => {
                        add(&bridge.shared.stats.errors, 1);
                        log::warn!("nats: cannot read topic {topic} on: {e}");
                        tokio::time::sleep(attempts.next_delay()).await;
                    }
                }
            }
        }
    }
}

/// Applies the commands waiting; false when the topic is no longer
/// followed. With `replica`, a loop that starts to follow gets `Ready`.
fn apply(
    cmds: &mut mpsc::UnboundedReceiver<TopicCmd>,
    loops: &mut Vec<usize>,
    replica: Option<(&Bridge, &Replica, &Arc<str>)>,
) -> bool {
    loop {
        match cmds.try_recv() {
            Ok(cmd) => apply_one(cmd, loops, replica),
            Err(mpsc::error::TryRecvError::Empty) => return true,
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
        }
    }
}

fn apply_one(cmd: TopicCmd, loops: &mut Vec<usize>, replica: Option<(&Bridge, &Replica, &Arc<str>)>) {
    match cmd {
        TopicCmd::Follow(to) if !loops.contains(&to) => {
            loops.push(to);
            if let Some((bridge, replica, topic)) = replica {
                bridge.post(to, replica.ready(topic));
            }
        }
        TopicCmd::Unfollow(to) => loops.retain(|&l| l != to),
        TopicCmd::Follow(_) | TopicCmd::Check => {}
    }
}

/// Hands a new event to the loops.
fn deliver(
    bridge: &Bridge,
    topic: &Arc<str>,
    serial: u64,
    replica: &mut Replica,
    loops: &[usize],
    message: &async_nats::jetstream::Message,
) {
    let Ok(info) = message.info() else {
        return;
    };
    let seq = info.stream_sequence;
    if seq <= replica.last_seq {
        // Read again after the consumer was made again: already delivered.
        return;
    }
    replica.last_seq = seq;
    if let Some(event) = to_event(topic, replica.epoch, seq, message) {
        replica.push(event.clone());
        add(&bridge.shared.stats.read, 1);
        for &to in loops {
            bridge.post(to, HubMessage::Deliver(event.clone()));
        }
    }
    bridge.delivered(topic, serial, seq);
}

/// The hub's event of a stream message; `None` (logged) when it is not one
/// tether wrote.
fn to_event(topic: &Arc<str>, epoch: u64, seq: u64, message: &async_nats::Message) -> Option<Arc<Event>> {
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    let event_type = header(EVENT_HEADER).unwrap_or_else(|| DEFAULT_EVENT_TYPE.to_owned());
    let key = header(KEY_HEADER);
    let event = std::str::from_utf8(&message.payload)
        .map_err(|_| tether_hub::Error::InvalidEventType)
        .and_then(|data| {
            Event::keyed(
                topic.clone(),
                EventId::new(epoch, seq),
                &event_type,
                data,
                key.as_deref(),
            )
        });
    match event {
        Ok(event) => Some(event),
        Err(e) => {
            log::warn!("nats: message {seq} of topic {topic} is not an event ({e}): skipped");
            None
        }
    }
}

/// Reads the topic's backlog (every message its subject holds, the
/// stream keeping one more than the backlog) and opens the consumer that
/// reads on after it.
async fn load(bridge: &Bridge, subject: &str, topic: &Arc<str>) -> Result<(Replica, Ordered), String> {
    let config = &bridge.shared.config;
    let timeout = config.request_timeout;
    let stream = bridge.stream().ok_or("no stream yet")?;
    let epoch = bridge.epoch.get();
    let mut replica = Replica {
        events: VecDeque::new(),
        bytes: 0,
        dropped: None,
        last_seq: 0,
        epoch,
        max_events: config.history_events,
        max_bytes: config.history_bytes,
    };
    // The consumer first, then the last sequence: every message up to it
    // comes through the consumer.
    let mut messages = open(bridge, subject, DeliverPolicy::All).await?;
    let last = match tokio::time::timeout(timeout, stream.get_last_raw_message_by_subject(subject)).await {
        Err(_) => return Err("timed out".to_owned()),
        Ok(Ok(message)) => message.sequence,
        Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
        Ok(Err(e)) => return Err(e.to_string()),
    };
    while replica.last_seq < last {
        let message = match tokio::time::timeout(timeout, messages.next()).await {
            Err(_) => return Err("timed out reading the backlog".to_owned()),
            Ok(None) => return Err("the consumer ended".to_owned()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(message))) => message,
        };
        let seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
        if seq <= replica.last_seq {
            continue;
        }
        replica.last_seq = seq;
        if let Some(event) = to_event(topic, epoch, seq, &message) {
            replica.push(event);
        }
    }
    Ok((replica, messages))
}

/// After a reconnection or a failed consumer: the consumer that reads on
/// after the last event read, if nothing was lost since (the stream is
/// the same one, and still holds that event: the stream trims a subject's
/// oldest message first, so none after it is gone); `None` if the topic
/// must resynchronise.
async fn resume(bridge: &Bridge, subject: &str, replica: &Replica) -> Result<Option<Ordered>, String> {
    if bridge.epoch.get() != replica.epoch {
        return Ok(None);
    }
    let stream = bridge.stream().ok_or("no stream yet")?;
    if replica.last_seq > 0 {
        let timeout = bridge.shared.config.request_timeout;
        match tokio::time::timeout(timeout, stream.get_raw_message(replica.last_seq)).await {
            Err(_) => return Err("timed out".to_owned()),
            Ok(Ok(message)) if message.subject.as_str() == subject => {}
            Ok(Ok(_)) => return Ok(None),
            Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
    let start = DeliverPolicy::ByStartSequence {
        start_sequence: replica.last_seq + 1,
    };
    open(bridge, subject, start).await.map(Some)
}

/// An ordered consumer of the subject (ephemeral, in memory on the
/// server; the client makes it again from where it stood if it stalls).
async fn open(bridge: &Bridge, subject: &str, deliver_policy: DeliverPolicy) -> Result<Ordered, String> {
    let config = OrderedConfig {
        filter_subject: subject.to_owned(),
        deliver_policy,
        // Each pull lasts at most this long, with heartbeats every half
        // of it: a consumer lost with its server (on a cluster, while
        // this node's connection to another server stays up) is noticed
        // after two missed heartbeats and made again, within seconds
        // rather than the client's default of 30 s.
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
