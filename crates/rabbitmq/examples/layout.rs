//! The measurements behind the crate's layout (a stream per topic),
//! against a RabbitMQ you start: a publish's confirmation, its read-back
//! through a stream consumer, the declaration of new streams, and how
//! offsets number messages. Run by hand; the figures of a run are kept
//! in `benches/results/rabbitmq-layout-*.md`. The broker's memory per
//! stream is its resident size (`ps -o rss`) before and after, read
//! beside it.
//!
//! ```text
//! cargo run --release -p tether-rabbitmq --example layout -- amqp://guest:guest@127.0.0.1:5672/%2f 1000
//! ```

// A measurement script: a failure ends it, with the reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

fn stream_args(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("stream".into()),
    );
    for (name, value) in extra {
        args.insert(ShortString::from(*name), value.clone());
    }
    args
}

async fn declare(channel: &Channel, name: &str, args: FieldTable) {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel.queue_declare(name.into(), durable, args).await.unwrap();
}

async fn consumer(channel: &Channel, stream: &str, from: AMQPValue) -> lapin::Consumer {
    channel.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-stream-offset"), from);
    channel
        .basic_consume(stream.into(), "".into(), Default::default(), args)
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("the broker's amqp:// URL");
    let streams: usize = args
        .next()
        .map_or(1000, |n| n.parse().expect("a number of streams"));
    let run = std::process::id();
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let publisher = connection.create_channel().await.unwrap();
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publish = |stream: String, body: Vec<u8>| {
        let publisher = publisher.clone();
        async move {
            publisher
                .basic_publish(
                    "".into(),
                    stream.as_str().into(),
                    Default::default(),
                    &body,
                    BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };

    // Latency: a publish and its confirmation; the same and its read-back.
    let stream = format!("layout-{run}-latency");
    declare(&publisher, &stream, stream_args(&[])).await;
    let reader = connection.create_channel().await.unwrap();
    let mut deliveries = consumer(&reader, &stream, AMQPValue::LongString("next".into())).await;
    let (mut confirmed, mut read_back) = (Vec::new(), Vec::new());
    for n in 0..200u32 {
        let body = format!("m{n}").into_bytes();
        let start = Instant::now();
        publish(stream.clone(), body.clone()).await;
        confirmed.push(start.elapsed());
        loop {
            let delivery = deliveries.next().await.unwrap().unwrap();
            delivery.ack(BasicAckOptions::default()).await.unwrap();
            if delivery.data == body {
                break;
            }
        }
        read_back.push(start.elapsed());
    }
    confirmed.sort();
    read_back.sort();
    println!(
        "publish and confirmation: p50 {:?}, p99 {:?}",
        percentile(&confirmed, 50),
        percentile(&confirmed, 99)
    );
    println!(
        "publish, confirmation and read-back: p50 {:?}, p99 {:?}",
        percentile(&read_back, 50),
        percentile(&read_back, 99)
    );

    // Offsets, in a stream of small segments that retention truncates.
    let stream = format!("layout-{run}-offsets");
    let small = [
        ("x-max-length-bytes", AMQPValue::LongLongInt(2000)),
        ("x-stream-max-segment-size-bytes", AMQPValue::LongInt(500)),
    ];
    declare(&publisher, &stream, stream_args(&small)).await;
    for n in 0..50 {
        publish(stream.clone(), format!("m{n:03}-{}", "x".repeat(50)).into_bytes()).await;
    }
    let reader = connection.create_channel().await.unwrap();
    let mut deliveries = consumer(&reader, &stream, AMQPValue::LongLongInt(0)).await;
    let mut offsets = Vec::new();
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_secs(1), deliveries.next()).await {
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        let offset = delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-stream-offset").cloned());
        offsets.push((String::from_utf8_lossy(&delivery.data[..4]).into_owned(), offset));
    }
    println!("50 messages, read from offset 0 after retention: {offsets:?}");

    // New streams declared.
    let start = Instant::now();
    for n in 0..streams {
        declare(&publisher, &format!("layout-{run}-many-{n}"), stream_args(&[])).await;
    }
    println!("{streams} streams declared in {:?}", start.elapsed());
}
