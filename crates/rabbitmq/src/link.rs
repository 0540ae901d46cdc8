//! The connection to RabbitMQ, made again with backoff when lost, and
//! what the nodes tell each other besides events: user actions, presence
//! and connection counts as messages of a fanout exchange
//! (`PREFIX.control`, each node's own exclusive queue bound to it; at
//! most once, like core NATS: a node away misses them, and presence and
//! counts are sent again periodically), revocations as messages of a
//! stream (`PREFIX.revoked`, read from its first offset by every node).

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tether_backoff::Attempts;
use tether_bus::action::{self, ActionFields, Field};
use tether_bus::wire;
use tether_hub::{ControlMessage, HubMessage, UserAction};
use tokio::time::Instant;

use crate::bridge::{Bridge, Link, backoff, header_number, header_text, set_number, set_text};
use crate::config;
use crate::shared::add;
use crate::stream::{self, From, within};

/// The header naming a control message's kind.
const KIND: &str = "tether-kind";
/// The header naming the node that sent it.
const NODE: &str = "tether-node";
/// The header naming a presence message's topic.
const TOPIC: &str = "tether-topic";
/// The header of how long a presence message counts, in milliseconds.
const TTL: &str = "tether-ttl-ms";
/// A user action's fields are headers with this prefix.
const ACTION_PREFIX: &str = "tether-action-";
/// The longest body of a control message read.
const MAX_BODY: usize = wire::MAX_COUNTS_LEN;

/// Connects, and on every connection opens the link and the control
/// consumers; runs as long as the bridge.
pub(crate) async fn run(bridge: Rc<Bridge>) {
    let config = bridge.shared.config.clone();
    let stats = &bridge.shared.stats;
    let mut attempts = Attempts::new(backoff());
    let mut generation = 0;
    // A cluster's addresses, tried in turn: the next after a failure or
    // a lost connection (its node most likely gone), a pause after a
    // whole round failed.
    let urls = config.urls();
    // Never empty (a URL without a comma is one address).
    let round = urls.len().max(1);
    let mut next = 0;
    loop {
        let Some(url) = urls.get(next % round) else {
            return;
        };
        next += 1;
        let server = config::hide_password(url);
        let connected = async {
            let connection = within(
                config.request_timeout,
                Connection::connect(url, ConnectionProperties::default()),
            )
            .await?;
            let publisher = within(config.request_timeout, connection.create_channel()).await?;
            within(
                config.request_timeout,
                publisher.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
            Ok::<_, String>((Rc::new(connection), publisher))
        }
        .await;
        let (connection, publisher) = match connected {
            Ok(pair) => pair,
            Err(e) => {
                add(&stats.errors, 1);
                *bridge.shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                log::warn!("rabbitmq: cannot connect to {server}: {e}");
                if next % round == 0 {
                    tokio::time::sleep(attempts.next_delay()).await;
                }
                continue;
            }
        };
        generation += 1;
        let link = Link {
            generation,
            connection,
            publisher,
        };
        let mut control = match control_consumer(&bridge, &link).await {
            Ok(control) => control,
            Err(e) => {
                add(&stats.errors, 1);
                log::warn!("rabbitmq: cannot open the control exchange: {e}");
                let _ = link.connection.close(200, "retry".into()).await;
                tokio::time::sleep(attempts.next_delay()).await;
                continue;
            }
        };
        attempts.reset();
        if generation > 1 {
            add(&stats.reconnects, 1);
        }
        log::info!("rabbitmq: connected to {server}");
        bridge.link.send_replace(Some(link.clone()));
        stats.up.store(true, Ordering::Release);
        bridge.send_all_presence();
        // Apart: a stream may be unavailable for a while after the broker
        // restarted, and the topics need not wait for this one.
        let revocations = tokio::task::spawn_local(read_revocations(bridge.clone(), link.clone()));
        let mut check = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                message = control.next() => match message {
                    Some(Ok(delivery)) => heard(&bridge, &delivery),
                    _ => break,
                },
                _ = check.tick() => {
                    if !link.connection.status().connected() {
                        break;
                    }
                }
                () = bridge.stalled.notified() => {
                    if bridge.stalled_on.get() == link.generation {
                        log::warn!(
                            "rabbitmq: a publish on {server} was not confirmed and read back within {} s: \
                             connecting again",
                            config.request_timeout.as_secs_f64()
                        );
                        break;
                    }
                }
            }
        }
        revocations.abort();
        stats.up.store(false, Ordering::Release);
        bridge.link.send_replace(None);
        if bridge.shared.stats.stopped() {
            return;
        }
        add(&stats.errors, 1);
        log::warn!("rabbitmq: connection to {server} lost");
        let _ = tokio::time::timeout(config.request_timeout, link.connection.close(200, "lost".into())).await;
    }
}

/// Reads the revocations' stream from its first offset, again after a
/// failure (with backoff), as long as the link.
async fn read_revocations(bridge: Rc<Bridge>, link: Link) {
    let mut attempts = Attempts::new(backoff());
    // What was read on this link: a consumer made again reads on after it.
    let mut next = 0;
    loop {
        match revocations_consumer(&bridge, &link, next).await {
            Ok(mut consumer) => {
                attempts.reset();
                while let Some(Ok(delivery)) = consumer.next().await {
                    let _ = delivery
                        .acker
                        .ack(lapin::options::BasicAckOptions::default())
                        .await;
                    if let Some(offset) = stream::offset_of(&delivery) {
                        next = offset + 1;
                    }
                    bridge
                        .limits
                        .borrow_mut()
                        .heard_revocation(&delivery.data, tether_bus::unix_ms() / 1000);
                }
            }
            Err(e) => {
                add(&bridge.shared.stats.errors, 1);
                log::warn!("rabbitmq: cannot read the revocations: {e}");
            }
        }
        tokio::time::sleep(attempts.next_delay()).await;
    }
}

/// The revocations' consumer, from `from`.
async fn revocations_consumer(bridge: &Bridge, link: &Link, from: u64) -> Result<lapin::Consumer, String> {
    let config = &bridge.shared.config;
    let revoked_stream = config.revoked_stream();
    let channel = stream::open_channel(bridge, link, &revoked_stream).await?;
    let tag = format!("{}.revoked", bridge.message_id());
    stream::consume(
        &channel,
        &revoked_stream,
        &tag,
        From::Offset(from),
        config.request_timeout,
    )
    .await
}

/// The control exchange's consumer, on this node's exclusive queue.
async fn control_consumer(bridge: &Bridge, link: &Link) -> Result<lapin::Consumer, String> {
    let config = &bridge.shared.config;
    let timeout = config.request_timeout;
    let channel = within(timeout, link.connection.create_channel()).await?;
    let exchange = config.control_exchange();
    within(
        timeout,
        channel.exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await?;
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = within(
        timeout,
        channel.queue_declare("".into(), exclusive, FieldTable::default()),
    )
    .await?;
    within(
        timeout,
        channel.queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    within(
        timeout,
        channel.basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default()),
    )
    .await
}

/// A control message from a node (this node's own passed over).
fn heard(bridge: &Bridge, delivery: &Delivery) {
    let headers = delivery.properties.headers().as_ref();
    let (Some(kind), Some(node)) = (header_text(headers, KIND), header_text(headers, NODE)) else {
        return;
    };
    if node == bridge.node || delivery.data.len() > MAX_BODY {
        return;
    }
    match kind {
        "action" => match action::action_of(&Fields(headers)) {
            Some(action) => bridge.post(0, HubMessage::Control(ControlMessage::Relay(action))),
            None => log::debug!("rabbitmq: an action of node {node} refused"),
        },
        "presence" => {
            let topic = header_text(headers, TOPIC).filter(|t| tether_hub::is_valid_topic(t));
            let ttl = header_number(headers, TTL).map(|ms| Duration::from_millis(ms.min(3_600_000)));
            if let (Some(topic), Some(ttl)) = (topic, ttl) {
                let until = Instant::now() + ttl;
                bridge
                    .presence
                    .borrow_mut()
                    .heard(topic.into(), node, until, &delivery.data);
            }
        }
        "counts" => bridge
            .limits
            .borrow_mut()
            .heard_counts(node, &delivery.data, Instant::now()),
        _ => log::debug!("rabbitmq: a control message of kind {kind}"),
    }
}

/// A control message's headers, read as an action's fields.
struct Fields<'a>(Option<&'a FieldTable>);

impl ActionFields for Fields<'_> {
    fn text(&self, name: &str) -> Option<&str> {
        header_text(self.0, &format!("{ACTION_PREFIX}{name}"))
    }

    fn number(&self, name: &str) -> Option<u64> {
        header_number(self.0, &format!("{ACTION_PREFIX}{name}"))
    }
}

impl Bridge {
    /// Sends a control message to every node (not waiting for it).
    fn broadcast(&self, mut headers: FieldTable, body: &[u8]) {
        let Some(link) = self.link() else {
            return;
        };
        set_text(&mut headers, NODE, &self.node);
        let exchange = self.shared.config.control_exchange();
        let properties = BasicProperties::default().with_headers(headers);
        let body = body.to_vec();
        tokio::task::spawn_local(async move {
            let sent = link.publisher.basic_publish(
                exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            );
            if let Err(e) = sent.await {
                log::debug!("rabbitmq: a control message not sent: {e}");
            }
        });
    }

    /// Sends a user action taken on this node to the others.
    pub(crate) fn send_action(&self, user_action: &UserAction) {
        let Some(fields) = action::fields(user_action) else {
            return;
        };
        let mut headers = FieldTable::default();
        set_text(&mut headers, KIND, "action");
        for (name, value) in fields {
            let name = format!("{ACTION_PREFIX}{name}");
            match value {
                Field::Text(text) => set_text(&mut headers, &name, text),
                Field::Number(n) => set_number(&mut headers, &name, n),
            }
        }
        self.broadcast(headers, b"");
    }

    /// Sends this node's members of `topic` (none: it has none).
    pub(crate) fn send_presence(&self, topic: &str) {
        let body = self.presence.borrow_mut().encode_mine(topic);
        let mut headers = FieldTable::default();
        set_text(&mut headers, KIND, "presence");
        set_text(&mut headers, TOPIC, topic);
        let ttl = u64::try_from(self.shared.config.presence_ttl.as_millis()).unwrap_or(u64::MAX);
        set_number(&mut headers, TTL, ttl);
        self.broadcast(headers, &body);
    }

    /// Sends this node's members of every topic it has some of.
    pub(crate) fn send_all_presence(&self) {
        let topics: Vec<_> = self.presence.borrow().mine.keys().cloned().collect();
        for topic in topics {
            self.send_presence(&topic);
        }
    }

    /// Sends this node's counts (`clear`: none, as it shuts down).
    pub(crate) fn send_counts(&self, clear: bool) {
        let here = match (&self.limits.borrow().hub, clear) {
            (Some(hub), false) => hub.0.connections_here(),
            (Some(_), true) => Vec::new(),
            (None, _) => return,
        };
        let (body, left_out) = wire::encode_counts(&here);
        if left_out > 0 {
            log::warn!("rabbitmq: {left_out} subjects left out of this node's counts");
        }
        let mut headers = FieldTable::default();
        set_text(&mut headers, KIND, "counts");
        self.broadcast(headers, &body);
    }

    /// Adds revocations to the revocations' stream.
    pub(crate) fn send_revocations(&self, entries: Vec<(String, u64)>) {
        let Some(link) = self.link() else {
            log::warn!("rabbitmq: revocations not shared while RabbitMQ is away");
            return;
        };
        let stream = self.shared.config.revoked_stream();
        tokio::task::spawn_local(async move {
            for (entry, until) in entries {
                let Ok(body) = wire::encode_revocation(&entry, until) else {
                    continue;
                };
                let sent = link.publisher.basic_publish(
                    "".into(),
                    ShortString::from(stream.as_str()),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                );
                if let Err(e) = sent.await {
                    log::warn!("rabbitmq: a revocation not shared: {e}");
                }
            }
        });
    }
}
