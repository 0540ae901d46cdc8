//! A topic's stream as a task reads it: declared (made with the
//! configured retention when missing), its end found with a marker, and
//! a consumer from an offset. AMQP 0-9-1 gives no stream's last offset
//! and no offset with a publish's confirmation, so the end is where this
//! node's marker (a message that is no event) is read back.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer};

use crate::bridge::{Bridge, Link, MARKER_HEADER, OFFSET_HEADER, header_number, set_text};
use crate::config::RabbitConfig;

/// Deliveries a consumer may have unacknowledged (the broker's credit:
/// a stream consumer needs `basic.qos`).
pub(crate) const PREFETCH: u16 = 512;
/// Deliveries acknowledged at once (`multiple`), well under [`PREFETCH`].
pub(crate) const ACK_EVERY: u64 = 64;

/// Where a consumer starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum From {
    /// This offset (the first held, if the stream starts later).
    Offset(u64),
    /// The stream's last chunk.
    Last,
}

/// The arguments of a stream the bridge makes.
fn stream_arguments(config: &RabbitConfig) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("stream".into()),
    );
    let bytes = |n: u64| AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX));
    args.insert(
        ShortString::from("x-max-length-bytes"),
        bytes(config.stream_max_bytes),
    );
    args.insert(
        ShortString::from("x-stream-max-segment-size-bytes"),
        bytes(config.segment_bytes),
    );
    if config.replicas > 1 {
        args.insert(
            ShortString::from("x-initial-cluster-size"),
            AMQPValue::LongInt(i32::try_from(config.replicas).unwrap_or(i32::MAX)),
        );
    }
    args
}

/// A channel of its own for a topic, with the stream declared: made
/// with the configured retention, or, when it exists with other
/// arguments (the broker refuses the declaration and closes the channel),
/// found as it is on a new channel.
pub(crate) async fn open_channel(bridge: &Bridge, link: &Link, stream: &str) -> Result<Channel, String> {
    let config = &bridge.shared.config;
    let timeout = config.request_timeout;
    let channel = within(timeout, link.connection.create_channel()).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let declared = within(
        timeout,
        channel.queue_declare(stream.into(), durable, stream_arguments(config)),
    )
    .await;
    let channel = match declared {
        Ok(_) => channel,
        Err(e) if e.contains("PRECONDITION") || e.contains("inequivalent") => {
            log::warn!("rabbitmq: the stream {stream} exists with other arguments: used as it is");
            let channel = within(timeout, link.connection.create_channel()).await?;
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            within(
                timeout,
                channel.queue_declare(stream.into(), passive, FieldTable::default()),
            )
            .await?;
            channel
        }
        Err(e) => return Err(e),
    };
    within(timeout, channel.basic_qos(PREFETCH, BasicQosOptions::default())).await?;
    Ok(channel)
}

/// A consumer of `stream` from `from`, acknowledged by hand.
pub(crate) async fn consume(
    channel: &Channel,
    stream: &str,
    tag: &str,
    from: From,
    timeout: Duration,
) -> Result<Consumer, String> {
    let mut args = FieldTable::default();
    let offset = match from {
        // Offset 0 asked as `first`: on a stream made moments ago, a
        // reader asked for offset 0 was seen to start at the last chunk
        // instead (its first chunks not yet found where the broker
        // looks an offset up), which read as a truncated stream.
        From::Offset(0) => AMQPValue::LongString("first".into()),
        From::Offset(n) => AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX)),
        From::Last => AMQPValue::LongString("last".into()),
    };
    args.insert(ShortString::from(OFFSET_HEADER), offset);
    within(
        timeout,
        channel.basic_consume(stream.into(), tag.into(), BasicConsumeOptions::default(), args),
    )
    .await
}

/// Writes a marker into `stream` and reads the stream's last chunk until
/// it comes back: its offset, the stream's end as this node writes now.
/// (Consumed from the last chunk, so a stream of any length costs one
/// chunk or so; the other nodes pass markers over.)
pub(crate) async fn find_end(
    bridge: &Bridge,
    link: &Link,
    channel: &Channel,
    stream: &str,
) -> Result<u64, String> {
    let timeout = bridge.shared.config.request_timeout;
    let marker = bridge.message_id();
    let tag = format!("{marker}.end");
    let mut consumer = consume(channel, stream, &tag, From::Last, timeout).await?;
    let mut headers = FieldTable::default();
    set_text(&mut headers, MARKER_HEADER, &bridge.node);
    let properties = BasicProperties::default()
        .with_message_id(marker.as_str().into())
        .with_headers(headers);
    let confirm = within(
        timeout,
        link.publisher.basic_publish(
            "".into(),
            stream.into(),
            BasicPublishOptions::default(),
            b"",
            properties,
        ),
    )
    .await?;
    let found = within(timeout, async {
        confirm.await.map_err(|e| e.to_string())?;
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery.map_err(|e| e.to_string())?;
            let _ = delivery
                .acker
                .ack(lapin::options::BasicAckOptions::default())
                .await;
            if delivery.properties.message_id().as_ref().map(|m| m.as_str()) == Some(marker.as_str()) {
                return offset_of(&delivery).ok_or_else(|| "a delivery without its offset".to_owned());
            }
        }
        Err("the stream's consumer was cancelled".to_owned())
    })
    .await;
    let _ = within(
        timeout,
        channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()),
    )
    .await;
    found
}

/// Closes a channel (and its consumers) in a task of its own, giving up
/// after `timeout` (a channel the broker closed already is gone anyway).
pub(crate) fn close(channel: Channel, timeout: Duration) {
    tokio::task::spawn_local(async move {
        let _ = tokio::time::timeout(timeout, channel.close(200, "done".into())).await;
    });
}

/// A delivery's stream offset.
pub(crate) fn offset_of(delivery: &Delivery) -> Option<u64> {
    header_number(delivery.properties.headers().as_ref(), OFFSET_HEADER)
}

/// Runs `task` for at most `timeout`, its error as text.
pub(crate) async fn within<T, E: std::fmt::Display>(
    timeout: Duration,
    task: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}
