//! One followed topic's task: reads the topic's backlog from JetStream
//! (a consumer of its own, filtered on the topic's subject, deleted once
//! read), hands the loops that follow it `Ready`, then every event the
//! node's reader ([`crate::reader`]) hands it, and checks when the reader
//! was placed again that nothing was lost.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::{AckPolicy, Consumer, DeliverPolicy};
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use futures_util::{StreamExt, TryStreamExt};
use tether_backoff::Attempts;
use tether_bus::answer_history;
use tether_hub::{DEFAULT_EVENT_TYPE, Event, EventId, HistoryQuery, HubMessage, ReplyTo};
use tokio::sync::mpsc;

use crate::bridge::{BINARY, Bridge, ENCODING_HEADER, EVENT_HEADER, KEY_HEADER, TopicCmd, backoff};
use crate::shared::add;
use crate::subject::subject_of;

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
        // Load the backlog (after a backoff when an attempt failed). The
        // reader's messages of the topic wait in `cmds` meanwhile.
        let mut replica = loop {
            let Some(loaded) = when_up(&bridge, load(&bridge, &subject, &topic)).await else {
                return;
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
        if !bridge.is_current(&topic, serial) {
            // Unfollowed by every loop while loading: a newer task, if
            // any, answers the loops.
            return;
        }
        if !first {
            add(&bridge.shared.stats.resyncs, 1);
            log::warn!("nats: topic {topic} resynchronised: its subscribers resume from their last ids");
        }
        first = false;
        // The loops that followed before a resynchronisation start over;
        // the others get `Ready` when their `Follow` comes.
        for &to in &loops {
            bridge.post(to, replica.ready(&topic));
        }
        bridge.delivered(&topic, serial, replica.last_seq);
        // Then every command in its turn, until unfollowed or continuity
        // is lost. `checked`: the reader's place when continuity was last
        // checked (the messages it had handed over by then are covered).
        let mut checked = 0;
        while let Some(cmd) = cmds.recv().await {
            let check = match &cmd {
                TopicCmd::Message(message, true) => {
                    let seq = message.info().map_or(0, |info| info.stream_sequence);
                    let check = seq > checked && seq > replica.last_seq;
                    if check {
                        add(&bridge.shared.stats.own.behind_checks, 1);
                    }
                    check
                }
                TopicCmd::Check => true,
                _ => false,
            };
            if check {
                checked = bridge.position.get();
                loop {
                    let Some(continued) = when_up(&bridge, continuous(&bridge, &subject, &replica)).await
                    else {
                        return;
                    };
                    match continued {
                        Ok(true) => {
                            attempts.reset();
                            break;
                        }
                        Ok(false) => continue 'load,
                        Err(e) => {
                            add(&bridge.shared.stats.errors, 1);
                            log::warn!("nats: cannot check topic {topic}: {e}");
                            tokio::time::sleep(attempts.next_delay()).await;
                        }
                    }
                }
            }
            if !bridge.is_current(&topic, serial) {
                // Every loop unfollowed (before this command, or while it
                // was checked): a newer task, if any, answers them.
                return;
            }
            match cmd {
                TopicCmd::Message(message, _) => {
                    deliver(&bridge, &topic, serial, &mut replica, &loops, &message)
                }
                TopicCmd::Follow(to) => {
                    // A loop follows once between unfollows; a repeat
                    // means it wants the backlog again (it dropped the
                    // topic and made it anew), and the broker's contract
                    // owes every follow a `Ready`: without one, the
                    // loop's new subscribers would wait for ever.
                    if !loops.contains(&to) {
                        loops.push(to);
                    }
                    bridge.post(to, replica.ready(&topic));
                }
                TopicCmd::Unfollow(to) => loops.retain(|&l| l != to),
                TopicCmd::Check => {}
            }
        }
        return;
    }
}

/// A page of `GET /api/history`: the topic's backlog read as a follow
/// reads it ([`load`], a consumer of its own on the topic's subject, one
/// of the [`crate::bridge::LOADS_AT_ONCE`] permits held meanwhile), in a
/// task of its own, posted to the loop that asked; unavailable when the
/// bridge is not up or the read takes longer than the request timeout.
pub(crate) fn history(bridge: &Rc<Bridge>, query: HistoryQuery, reply: ReplyTo) {
    let bridge = bridge.clone();
    tokio::task::spawn_local(async move {
        let config = &bridge.shared.config;
        let subject = subject_of(&config.prefix, &query.topic);
        let read = async {
            let _permit = bridge.loading.acquire().await.map_err(|e| e.to_string())?;
            load(&bridge, &subject, &query.topic).await
        };
        let read = if *bridge.up.borrow() {
            match tokio::time::timeout(config.request_timeout, read).await {
                Ok(Ok(replica)) => Ok((replica.events.into(), replica.dropped)),
                Ok(Err(e)) => {
                    log::debug!("nats: history of {} not read: {e}", query.topic);
                    Err(())
                }
                Err(_) => Err(()),
            }
        } else {
            Err(())
        };
        let post = &bridge.post;
        answer_history(
            post,
            &query,
            reply,
            read,
            config.history_events,
            config.history_bytes,
        );
    });
}

/// Runs `task` once the bridge is up, holding one of the permits of
/// [`crate::bridge::LOADS_AT_ONCE`]; `None` once the bridge is gone.
async fn when_up<F: Future>(bridge: &Bridge, task: F) -> Option<F::Output> {
    bridge.up.subscribe().wait_for(|up| *up).await.ok()?;
    let _permit = bridge.loading.acquire().await.ok()?;
    Some(task.await)
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
    let id = EventId::new(epoch, seq);
    let event = if header(ENCODING_HEADER).as_deref() == Some(BINARY) {
        Event::binary(topic.clone(), id, &event_type, &message.payload, key.as_deref())
    } else {
        std::str::from_utf8(&message.payload)
            .map_err(|_| tether_hub::Error::InvalidEventType)
            .and_then(|data| Event::keyed(topic.clone(), id, &event_type, data, key.as_deref()))
    };
    match event {
        Ok(event) => Some(event),
        Err(e) => {
            log::warn!("nats: message {seq} of topic {topic} is not an event ({e}): skipped");
            None
        }
    }
}

/// Messages asked for at once while reading a backlog.
const BACKLOG_BATCH: usize = 500;

/// Reads the topic's backlog: every message its subject holds (the stream
/// keeping one more than the backlog) up to the subject's last sequence
/// now, through a consumer of its own, deleted once read. Later messages
/// come from the node's reader.
async fn load(bridge: &Bridge, subject: &str, topic: &Arc<str>) -> Result<Replica, String> {
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
    let last = match tokio::time::timeout(timeout, stream.get_last_raw_message_by_subject(subject)).await {
        Err(_) => return Err("timed out".to_owned()),
        Ok(Ok(message)) => message.sequence,
        Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(replica),
        Ok(Err(e)) => return Err(e.to_string()),
    };
    let wanted = pull::Config {
        filter_subject: subject.to_owned(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::None,
        // Deleted once read; should that fail, the server drops it soon.
        inactive_threshold: Duration::from_secs(10),
        memory_storage: true,
        ..Default::default()
    };
    let consumer = tokio::time::timeout(timeout, stream.create_consumer(wanted))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let read = read_backlog(bridge, &consumer, topic, last, &mut replica).await;
    let name = consumer.cached_info().name.clone();
    tokio::task::spawn_local(async move {
        let _ = tokio::time::timeout(timeout, stream.delete_consumer(&name)).await;
    });
    read.map(|()| replica)
}

/// Reads the backlog's messages up to `last` into `replica`.
async fn read_backlog(
    bridge: &Bridge,
    consumer: &Consumer<pull::Config>,
    topic: &Arc<str>,
    last: u64,
    replica: &mut Replica,
) -> Result<(), String> {
    let timeout = bridge.shared.config.request_timeout;
    while replica.last_seq < last {
        let mut batch =
            tokio::time::timeout(timeout, consumer.fetch().max_messages(BACKLOG_BATCH).messages())
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        let mut got = false;
        loop {
            let message = match tokio::time::timeout(timeout, batch.next()).await {
                Err(_) => return Err("timed out reading the backlog".to_owned()),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(message))) => message,
            };
            got = true;
            let seq = message.info().map_err(|e| e.to_string())?.stream_sequence;
            if seq > last {
                // The last message was deleted since: the reader hands
                // this one over.
                replica.last_seq = last;
                return Ok(());
            }
            if seq <= replica.last_seq {
                continue;
            }
            replica.last_seq = seq;
            if let Some(event) = to_event(topic, replica.epoch, seq, &message) {
                replica.push(event);
            }
        }
        if !got {
            return Err("the backlog ended before its last message".to_owned());
        }
    }
    Ok(())
}

/// After the reader was placed again or its consumer failed: whether
/// nothing of the topic was trimmed before the reader got to it. The
/// stream is the same one and still holds the last message the topic
/// read (the stream trims a subject's oldest message first, so none after
/// it is gone); or, when the subject held nothing when it was read, it
/// holds fewer messages now than the stream keeps per subject (so it
/// never trimmed one). `false`: the topic must resynchronise.
async fn continuous(bridge: &Bridge, subject: &str, replica: &Replica) -> Result<bool, String> {
    if bridge.epoch.get() != replica.epoch {
        return Ok(false);
    }
    let stream = bridge.stream().ok_or("no stream yet")?;
    let timeout = bridge.shared.config.request_timeout;
    if replica.last_seq > 0 {
        return match tokio::time::timeout(timeout, stream.get_raw_message(replica.last_seq)).await {
            Err(_) => Err("timed out".to_owned()),
            Ok(Ok(message)) => Ok(message.subject.as_str() == subject),
            Ok(Err(e)) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
            Ok(Err(e)) => Err(e.to_string()),
        };
    }
    let per_subject = stream.cached_info().config.max_messages_per_subject;
    if per_subject <= 0 {
        // No limit per subject: nothing is trimmed.
        return Ok(true);
    }
    let held = tokio::time::timeout(timeout, held_by(&stream, subject))
        .await
        .map_err(|_| "timed out".to_owned())??;
    Ok(held < u64::try_from(per_subject).unwrap_or(u64::MAX))
}

/// How many messages the stream holds of the subject.
async fn held_by(stream: &Stream, subject: &str) -> Result<u64, String> {
    let mut subjects = stream
        .info_with_subjects(subject)
        .await
        .map_err(|e| e.to_string())?;
    let mut held = 0;
    while let Some((name, count)) = subjects.try_next().await.map_err(|e| e.to_string())? {
        if name == subject {
            held = count;
        }
    }
    Ok(u64::try_from(held).unwrap_or(u64::MAX))
}
