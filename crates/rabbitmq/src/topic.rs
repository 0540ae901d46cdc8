//! One topic's task: the topic's stream read by this node, for the loops
//! that follow it and the publishers of this node. It opens the stream
//! ([`crate::stream`]), reads its backlog up to the stream's end, hands
//! the loops `Ready`, then every event in the stream's order; it adds
//! this node's publishes and answers each once the broker confirmed it
//! and the task read it back (its id is its offset, which only the read
//! tells). After a lost connection it reads on from the last offset it
//! read; when the stream no longer holds it (retention truncated it
//! meanwhile, or the stream was made again) the topic resynchronises:
//! a new `Ready`, whose `dropped` id gives the subscribers their gap.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Consumer};
use tether_backoff::Attempts;
use tether_bus::answer_history;
use tether_hub::{DEFAULT_EVENT_TYPE, Error as HubError, Event, EventId, HubMessage, Publish, ReplyTo};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::bridge::{
    BINARY, Bridge, ENCODING_HEADER, EVENT_HEADER, KEY_HEADER, Link, MARKER_HEADER, TopicCmd, backoff,
    header_text, set_text,
};
use crate::replica::{Replica, to_event};
use crate::shared::add;
use crate::stream::{self, ACK_EVERY, From, within};

/// How long a task no loop follows lives on after its last publish or
/// history read (its stream stays open for the next ones).
const LINGER: Duration = Duration::from_secs(10);

/// The first part of every id: a stream's offsets start at 0 whatever
/// the node, and are the second part.
pub(crate) const EPOCH: u64 = 1;

/// A publish of this node, until it is answered.
struct Pending {
    reply: Option<ReplyTo>,
    confirmed: bool,
    /// Its id once read back, and whether it was a duplicate.
    read: Option<(EventId, bool)>,
    sent_at: Instant,
    /// The generation of the link it was sent on.
    generation: u64,
}

/// The open stream: its consumer and where the backlog ends.
struct Open {
    /// Closed when the task is done with it: a channel left open would
    /// hold its consumer's prefetched deliveries and count against the
    /// connection's channels.
    channel: Channel,
    consumer: Consumer,
    /// The offset of this node's marker: up to it, the backlog.
    end: u64,
    /// Reading from the offset last read (continuing), or afresh.
    resumed: bool,
    /// The offset the consumer was asked to start at.
    from: u64,
}

/// How many times a consumer whose first delivery came after the offset
/// asked for is opened again before that is taken for the stream's
/// start. A stream made moments ago was seen to start its readers late
/// (from offset 0 or `first`, its first chunks passed over) where
/// nothing was truncated; a truncated stream starts late every time.
const YOUNG_RETRIES: u32 = 3;

/// The task's state.
struct Task {
    bridge: Rc<Bridge>,
    topic: Arc<str>,
    stream: String,
    tx: mpsc::UnboundedSender<TopicCmd>,
    loops: Vec<usize>,
    /// The backlog the loops were handed, kept up to date.
    replica: Option<Replica>,
    /// A backlog being read, until the stream's end ([`Open::end`]).
    loading: Option<Replica>,
    /// The offset of the last message read, events or not.
    last: Option<u64>,
    /// Publishes waiting for the stream to be open.
    queued: VecDeque<(Publish, Instant)>,
    pending: HashMap<String, Pending>,
    history_waits: Vec<(tether_hub::HistoryQuery, ReplyTo, Instant)>,
    unacked: u64,
    first: bool,
    used_at: Instant,
}

/// The task: runs until no loop follows the topic and it was not used
/// for [`LINGER`].
pub(crate) async fn run(
    bridge: Rc<Bridge>,
    topic: Arc<str>,
    tx: mpsc::UnboundedSender<TopicCmd>,
    mut cmds: mpsc::UnboundedReceiver<TopicCmd>,
) {
    let stream = bridge.shared.config.stream_of(&topic);
    let mut task = Task {
        bridge,
        topic,
        stream,
        tx,
        loops: Vec::new(),
        replica: None,
        loading: None,
        last: None,
        queued: VecDeque::new(),
        pending: HashMap::new(),
        history_waits: Vec::new(),
        unacked: 0,
        first: true,
        used_at: Instant::now(),
    };
    let mut attempts = Attempts::new(backoff());
    // Consumers opened again because the first delivery came after the
    // offset asked for (see [`YOUNG_RETRIES`]).
    let mut late_starts = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut link_rx = task.bridge.link.subscribe();
    'open: loop {
        // Wait for a link, taking commands meanwhile.
        let link = loop {
            if let Some(link) = task.bridge.link() {
                break link;
            }
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => task.command(cmd, None).await,
                    None => return,
                },
                changed = link_rx.changed() => if changed.is_err() { return },
                _ = tick.tick() => {
                    task.expire();
                    if task.done(&cmds) {
                        return;
                    }
                }
            }
        };
        // Opened while the commands are taken and what waits too long is
        // refused: opening may take several request timeouts.
        let opening = open(
            task.bridge.clone(),
            link.clone(),
            task.stream.clone(),
            task.last.filter(|_| task.replica.is_some()),
        );
        tokio::pin!(opening);
        let opened = loop {
            tokio::select! {
                opened = &mut opening => break opened,
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => task.command(cmd, None).await,
                    None => return,
                },
                _ = tick.tick() => task.expire(),
            }
        };
        let mut open = match opened {
            Ok(open) => open,
            Err(e) => {
                // A stream just made may be unavailable on a replica for a
                // while (`StreamNotAvailable`), and one of a broker that
                // crashed "down or inaccessible": tried again after the
                // backoff, as any failure.
                add(&task.bridge.shared.stats.errors, 1);
                log::warn!("rabbitmq: cannot read topic {}: {e}", task.topic);
                let until = Instant::now() + attempts.next_delay();
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => break,
                        cmd = cmds.recv() => match cmd {
                            Some(cmd) => task.command(cmd, None).await,
                            None => return,
                        },
                        _ = tick.tick() => {
                            task.expire();
                            if task.done(&cmds) {
                                return;
                            }
                        }
                    }
                }
                continue 'open;
            }
        };
        attempts.reset();
        if task.last.is_some() && !open.resumed {
            log::warn!(
                "rabbitmq: the stream {} ends before the last offset read (made again): topic {} resynchronises",
                task.stream,
                task.topic
            );
        }
        if !open.resumed {
            task.start_backlog();
        }
        // The first delivery must be the offset asked for: continuing, the
        // last one read; afresh, the backlog's first.
        let mut checked = false;
        while let Some((publish, _)) = task.queued.pop_front() {
            task.send(publish, &link).await;
        }
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => task.command(cmd, Some(&link)).await,
                    None => {
                        stream::close(open.channel, task.bridge.shared.config.request_timeout);
                        return;
                    }
                },
                delivery = open.consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        let Some(offset) = stream::offset_of(&delivery) else {
                            continue;
                        };
                        if !checked {
                            checked = true;
                            if offset > open.from && late_starts < YOUNG_RETRIES {
                                // Perhaps a young stream's reader that
                                // started late: asked again, shortly.
                                late_starts += 1;
                                stream::close(open.channel, task.bridge.shared.config.request_timeout);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue 'open;
                            }
                            late_starts = 0;
                            if open.resumed && offset != open.from {
                                // The stream no longer holds the offset
                                // last read: retention truncated it while
                                // this node was away, and what followed it
                                // may be gone. The backlog is read again
                                // from what the stream holds, the id
                                // before it the gap's bound.
                                log::warn!(
                                    "rabbitmq: the stream of topic {} starts after the last offset read: resynchronised",
                                    task.topic
                                );
                                task.start_backlog();
                            } else if open.resumed {
                                // Read and delivered before: the place
                                // holds, and what follows is new.
                                continue;
                            }
                        }
                        task.read(&delivery, offset, open.end).await;
                    }
                    failed => {
                        if let Some(Err(e)) = failed {
                            log::warn!("rabbitmq: reading topic {}: {e}", task.topic);
                        }
                        add(&task.bridge.shared.stats.errors, 1);
                        stream::close(open.channel, task.bridge.shared.config.request_timeout);
                        if task.loading.take().is_some() {
                            // Half read: read afresh next time.
                            task.last = None;
                        }
                        // Wait for this link to go (or the backoff to
                        // pass: then the stream is opened again on it).
                        let generation = link.generation;
                        let _ = tokio::time::timeout(attempts.next_delay(), async {
                            while task.bridge.link().is_some_and(|l| l.generation == generation) {
                                if link_rx.changed().await.is_err() {
                                    return;
                                }
                            }
                        })
                        .await;
                        continue 'open;
                    }
                },
                _ = tick.tick() => {
                    task.expire();
                    if task.done(&cmds) {
                        stream::close(open.channel, task.bridge.shared.config.request_timeout);
                        return;
                    }
                }
            }
        }
    }
}

/// Opens a topic's stream: a channel, its end found, a consumer from
/// `last` (the last offset read, checked on its first delivery) when the
/// stream still reaches it, else afresh from enough before the end to
/// fill the backlog. One of [`OPENS_AT_ONCE`](crate::bridge::OPENS_AT_ONCE)
/// permits held meanwhile.
async fn open(bridge: Rc<Bridge>, link: Link, stream: String, last: Option<u64>) -> Result<Open, String> {
    let _permit = bridge.opening.acquire().await.map_err(|e| e.to_string())?;
    let config = &bridge.shared.config;
    let channel = stream::open_channel(&bridge, &link, &stream).await?;
    let opened = async {
        let end = stream::find_end(&bridge, &link, &channel, &stream).await?;
        let resume = last.filter(|&last| last <= end);
        // Offsets count markers and the broker's own chunks too: twice the
        // backlog's events back, so that it is full in most cases.
        let span = u64::try_from(config.history_events.saturating_mul(2)).unwrap_or(u64::MAX);
        let from = resume.unwrap_or_else(|| end.saturating_sub(span));
        let tag = format!("{}.read", bridge.message_id());
        let consumer = stream::consume(
            &channel,
            &stream,
            &tag,
            From::Offset(from),
            config.request_timeout,
        )
        .await?;
        Ok::<_, String>((consumer, end, resume.is_some(), from))
    }
    .await;
    match opened {
        Ok((consumer, end, resumed, from)) => Ok(Open {
            channel,
            consumer,
            end,
            resumed,
            from,
        }),
        Err(e) => {
            stream::close(channel, config.request_timeout);
            Err(e)
        }
    }
}

impl Task {
    /// Reads the backlog afresh: handed to the loops once read.
    fn start_backlog(&mut self) {
        let config = &self.bridge.shared.config;
        self.last = None;
        self.loading = Some(Replica {
            events: VecDeque::new(),
            bytes: 0,
            dropped: None,
            keys: HashMap::new(),
            max_events: config.history_events,
            max_bytes: config.history_bytes,
        });
    }

    /// One delivery of the stream, in its order.
    async fn read(&mut self, delivery: &Delivery, offset: u64, end: u64) {
        self.unacked += 1;
        if self.unacked >= ACK_EVERY {
            self.unacked = 0;
            let multiple = BasicAckOptions { multiple: true };
            if let Err(e) = delivery.acker.ack(multiple).await {
                log::debug!("rabbitmq: an acknowledgement of topic {}: {e}", self.topic);
            }
        }
        let first_read = self.last.is_none();
        self.last = Some(offset);
        let headers = delivery.properties.headers().as_ref();
        if let Some(loading) = &mut self.loading
            && first_read
            && offset > 0
        {
            // What the stream held before the first offset read is not in
            // the backlog: a subscriber from before it has a gap.
            loading.dropped = Some(EventId::new(EPOCH, offset - 1));
        }
        if header_text(headers, MARKER_HEADER).is_none()
            && let Some(event) = to_event(&self.topic, offset, delivery)
        {
            self.event(event, delivery);
        }
        if self.loading.is_some() && offset >= end {
            self.loaded();
        }
    }

    /// An event read: into the backlog being read, or to the loops; a
    /// keyed event whose key the backlog holds is a duplicate, passed
    /// over by every node alike.
    fn event(&mut self, event: Arc<Event>, delivery: &Delivery) {
        let stats = &self.bridge.shared.stats;
        let loading = self.loading.is_some();
        let Some(replica) = self.loading.as_mut().or(self.replica.as_mut()) else {
            return;
        };
        let original = event.key().and_then(|key| replica.keys.get(key).copied());
        let outcome = match original {
            Some(id) => (id, true),
            None => {
                replica.push(event.clone());
                if !loading {
                    add(&stats.read, 1);
                    for &to in &self.loops {
                        self.bridge.post(to, HubMessage::Deliver(event.clone()));
                    }
                }
                (event.id(), false)
            }
        };
        let mine = delivery.properties.message_id().as_ref().map(|m| m.to_string());
        if let Some(id) = mine
            && let Some(pending) = self.pending.get_mut(&id)
        {
            pending.read = Some(outcome);
            if !loading {
                self.answer_if_done(&id);
            }
        }
    }

    /// The backlog is read: the loops get it.
    fn loaded(&mut self) {
        let Some(replica) = self.loading.take() else {
            return;
        };
        if !self.first {
            add(&self.bridge.shared.stats.resyncs, 1);
            log::warn!(
                "rabbitmq: topic {} resynchronised: its subscribers resume from their last ids",
                self.topic
            );
        }
        self.first = false;
        for &to in &self.loops {
            self.bridge.post(to, replica.ready(&self.topic));
        }
        self.replica = Some(replica);
        let ids: Vec<String> = self.pending.keys().cloned().collect();
        for id in ids {
            self.answer_if_done(&id);
        }
        for (query, reply, _) in std::mem::take(&mut self.history_waits) {
            self.answer_history(&query, reply);
        }
    }

    fn ready(&self) -> Option<&Replica> {
        self.replica.as_ref().filter(|_| self.loading.is_none())
    }

    async fn command(&mut self, cmd: TopicCmd, link: Option<&Link>) {
        match cmd {
            TopicCmd::Follow(to) => {
                // A repeated follow wants the backlog again: every follow
                // is owed a `Ready`.
                if !self.loops.contains(&to) {
                    self.loops.push(to);
                }
                if let Some(replica) = self.ready() {
                    self.bridge.post(to, replica.ready(&self.topic));
                }
            }
            TopicCmd::Unfollow(to) => {
                self.loops.retain(|&l| l != to);
                self.used_at = Instant::now();
            }
            TopicCmd::Publish(publish) => {
                self.used_at = Instant::now();
                match link {
                    Some(link) => self.send(publish, link).await,
                    None => self.queued.push_back((publish, Instant::now())),
                }
            }
            TopicCmd::History(query, reply) => {
                self.used_at = Instant::now();
                if self.ready().is_some() {
                    self.answer_history(&query, reply);
                } else {
                    self.history_waits.push((query, reply, Instant::now()));
                }
            }
            TopicCmd::Confirmed(id, result) => match result {
                Ok(()) => {
                    if let Some(pending) = self.pending.get_mut(&id) {
                        pending.confirmed = true;
                        if self.loading.is_none() {
                            self.answer_if_done(&id);
                        }
                    }
                }
                Err(e) => {
                    log::warn!("rabbitmq: a publish to {} failed: {e}", self.topic);
                    add(&self.bridge.shared.stats.errors, 1);
                    self.refuse(&id);
                }
            },
        }
    }

    /// Sends a publish to the stream; its confirmation is awaited on a
    /// task of its own, so that publishes are pipelined (sent in order).
    async fn send(&mut self, publish: Publish, link: &Link) {
        let id = self.bridge.message_id();
        let mut headers = FieldTable::default();
        if publish.event_type != DEFAULT_EVENT_TYPE {
            set_text(&mut headers, EVENT_HEADER, &publish.event_type);
        }
        if let Some(key) = &publish.key {
            set_text(&mut headers, KEY_HEADER, key);
        }
        if publish.data.is_binary() {
            set_text(&mut headers, ENCODING_HEADER, BINARY);
        }
        let properties = BasicProperties::default()
            .with_message_id(id.as_str().into())
            .with_headers(headers);
        self.pending.insert(
            id.clone(),
            Pending {
                reply: publish.reply,
                confirmed: false,
                read: None,
                sent_at: Instant::now(),
                generation: link.generation,
            },
        );
        self.bridge.in_flight.set(self.bridge.in_flight.get() + 1);
        // Mandatory: a stream deleted meanwhile returns it, not drops it.
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let sent = link.publisher.basic_publish(
            "".into(),
            self.stream.as_str().into(),
            options,
            publish.data.as_bytes(),
            properties,
        );
        let timeout = self.bridge.shared.config.request_timeout;
        let confirm = match within(timeout, sent).await {
            Ok(confirm) => confirm,
            Err(e) => {
                let _ = self.tx.send(TopicCmd::Confirmed(id, Err(e)));
                return;
            }
        };
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            let result = match within(timeout, confirm).await {
                Ok(confirmation) if confirmation.is_ack() => match confirmation.take_message() {
                    None => Ok(()),
                    Some(_) => Err("returned: the stream is gone".to_owned()),
                },
                Ok(_) => Err("refused by the broker".to_owned()),
                Err(e) => Err(e),
            };
            let _ = tx.send(TopicCmd::Confirmed(id, result));
        });
    }

    fn answer_if_done(&mut self, id: &str) {
        let Some(pending) = self.pending.get(id) else {
            return;
        };
        let (true, Some((event_id, duplicate))) = (pending.confirmed, pending.read) else {
            return;
        };
        let reply = pending.reply;
        self.pending.remove(id);
        self.bridge
            .in_flight
            .set(self.bridge.in_flight.get().saturating_sub(1));
        let stats = &self.bridge.shared.stats;
        add(
            if duplicate {
                &stats.duplicates
            } else {
                &stats.added
            },
            1,
        );
        let Some(reply) = reply else {
            return;
        };
        let message = if duplicate {
            HubMessage::Duplicate {
                token: reply.token,
                id: event_id,
            }
        } else {
            HubMessage::Published {
                token: reply.token,
                result: Ok(event_id),
            }
        };
        self.bridge.post(reply.loop_index, message);
    }

    fn refuse(&mut self, id: &str) {
        let Some(pending) = self.pending.remove(id) else {
            return;
        };
        self.bridge
            .in_flight
            .set(self.bridge.in_flight.get().saturating_sub(1));
        add(&self.bridge.shared.stats.refused, 1);
        if let Some(reply) = pending.reply {
            self.bridge.post(
                reply.loop_index,
                HubMessage::Published {
                    token: reply.token,
                    result: Err(HubError::BrokerUnavailable),
                },
            );
        }
    }

    fn answer_history(&self, query: &tether_hub::HistoryQuery, reply: ReplyTo) {
        let config = &self.bridge.shared.config;
        let read = self
            .ready()
            .map(|replica| (replica.events.iter().cloned().collect(), replica.dropped))
            .ok_or(());
        answer_history(
            &self.bridge.post,
            query,
            reply,
            read,
            config.history_events,
            config.history_bytes,
        );
    }

    /// Refuses what waited longer than the request timeout.
    fn expire(&mut self) {
        let timeout = self.bridge.shared.config.request_timeout;
        let now = Instant::now();
        let late: Vec<(String, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent_at) > timeout)
            .map(|(id, p)| (id.clone(), p.generation))
            .collect();
        for (id, generation) in late {
            self.refuse(&id);
            self.bridge.stall(generation);
        }
        while let Some((publish, at)) = self.queued.front() {
            if now.duration_since(*at) <= timeout {
                break;
            }
            add(&self.bridge.shared.stats.refused, 1);
            if let Some(reply) = publish.reply {
                self.bridge.post(
                    reply.loop_index,
                    HubMessage::Published {
                        token: reply.token,
                        result: Err(HubError::BrokerUnavailable),
                    },
                );
            }
            self.queued.pop_front();
        }
        let (late, waits): (Vec<_>, Vec<_>) = std::mem::take(&mut self.history_waits)
            .into_iter()
            .partition(|(_, _, at)| now.duration_since(*at) > timeout);
        self.history_waits = waits;
        for (query, reply, _) in late {
            answer_history(&self.bridge.post, &query, reply, Err(()), 0, 0);
        }
    }

    /// Whether the task may end (no loop follows, nothing waits, unused
    /// for [`LINGER`]); if so its entry is removed, in the same turn as
    /// the check (one thread: nothing is routed to it in between).
    fn done(&self, cmds: &mpsc::UnboundedReceiver<TopicCmd>) -> bool {
        let idle = self.loops.is_empty()
            && self.pending.is_empty()
            && self.queued.is_empty()
            && self.history_waits.is_empty()
            && cmds.is_empty()
            && self.used_at.elapsed() >= LINGER;
        if idle {
            self.bridge.topics.borrow_mut().remove(&self.topic);
            self.bridge
                .shared
                .stats
                .followed
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        idle
    }
}
