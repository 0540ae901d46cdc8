//! Records written to a test's broker as an application would, with
//! rskafka's producer: topics created, records produced with headers.

#![allow(dead_code)] // each test file uses a part

use std::collections::BTreeMap;

use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

/// A record to produce: its value and its headers.
pub(crate) type Produced<'a> = (&'a [u8], &'a [(&'a str, &'a str)]);

/// A producer on a runtime of its own (the tests are blocking).
pub(crate) struct Producer {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Producer {
    pub(crate) fn connect(addr: &str) -> Producer {
        Producer::connect_with(addr, None)
    }

    /// A producer reaching the brokers with `tls` (if given).
    pub(crate) fn connect_with(addr: &str, tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> Producer {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut builder = ClientBuilder::new(vec![addr.to_owned()]);
        if let Some(tls) = tls {
            builder = builder.tls_config(tls);
        }
        let client = runtime.block_on(builder.build()).unwrap();
        Producer { runtime, client }
    }

    /// Creates `topic` with `partitions` partitions, one replica.
    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) {
        let controller = self.client.controller_client().unwrap();
        self.runtime
            .block_on(controller.create_topic(topic, partitions, 1, 5_000))
            .unwrap();
    }

    /// Produces records (value, headers) to one partition, in order:
    /// their offsets.
    pub(crate) fn produce(&self, topic: &str, partition: i32, records: &[Produced<'_>]) -> Vec<i64> {
        let records = records
            .iter()
            .map(|(value, headers)| Record {
                key: None,
                value: Some(value.to_vec()),
                headers: headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                    .collect::<BTreeMap<_, _>>(),
                timestamp: Utc.timestamp_millis_opt(now_millis()).unwrap(),
            })
            .collect();
        self.runtime.block_on(async {
            let client = self
                .client
                .partition_client(topic.to_owned(), partition, UnknownTopicHandling::Retry)
                .await
                .unwrap();
            client.produce(records, Compression::NoCompression).await.unwrap()
        })
    }

    /// Produces plain text values to one partition.
    pub(crate) fn produce_text(&self, topic: &str, partition: i32, values: &[&str]) -> Vec<i64> {
        let records: Vec<Produced<'_>> = values.iter().map(|v| (v.as_bytes(), &[][..])).collect();
        self.produce(topic, partition, &records)
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}
