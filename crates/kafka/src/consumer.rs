//! The consumer: a thread of its own, with a tokio runtime of its own,
//! that joins the group, reads the group's committed offsets of the
//! partitions assigned to it, fetches each from there, hands each record to its publisher in the partition's order,
//! and commits the offsets once the publishes they cover are
//! acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use tether_backoff::Attempts;
use tether_ingest::{Outcome, Publisher, StopSignal, Worker};

use crate::config::KafkaConfig;
use crate::error::Error;
use crate::group::{Coordinator, Partition};
use crate::membership::{Member, Terms};
use crate::record::event_of;
use crate::stats::{Counters, Health, HealthCell, Stats};
use crate::transport::Connector;

/// The largest message the client takes from a broker: a fetch's answer
/// is bounded by `fetch_max_bytes` per partition, and one record batch
/// may pass it.
const MAX_MESSAGE: usize = 64 << 20;

/// A running consumer of Kafka topics. Stopped ([`Consumer::stop`]) or
/// dropped, it is asked to stop and waited for: after the record it is
/// publishing, its offsets committed.
///
/// ```no_run
/// use tether_ingest::{Event, Outcome};
/// use tether_kafka::{Consumer, KafkaConfig};
///
/// let config = KafkaConfig::new(vec!["127.0.0.1:9092".into()], vec!["orders".into()]);
/// let consumer = Consumer::start(config, |event: &Event<'_>| {
///     println!("{} gets {} (key {})", event.topic, event.data, event.key);
///     Outcome::Published
/// })?;
/// println!("{:?}", consumer.watch().health());
/// consumer.stop();
/// # Ok::<(), tether_kafka::Error>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    watch: KafkaWatch,
    worker: Worker,
}

/// A view of a running [`Consumer`], for another thread: its counters and
/// its health. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KafkaWatch {
    shared: Arc<Shared>,
    group: String,
}

#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    health: HealthCell,
    stop: Arc<StopSignal>,
}

impl Consumer {
    /// Checks `config` and starts the consumer's thread, which connects
    /// (and connects again after any failure, after a backoff) and
    /// consumes until stopped.
    ///
    /// # Errors
    ///
    /// The configuration's ([`KafkaConfig::check`]), or a thread that
    /// cannot start.
    pub fn start(config: KafkaConfig, publisher: impl Publisher) -> Result<Consumer, Error> {
        config.check()?;
        let shared = Arc::new(Shared::default());
        let watch = KafkaWatch {
            shared: shared.clone(),
            group: config.group.clone(),
        };
        let stop = shared.stop.clone();
        let worker = Worker::spawn("tether-kafka", stop, move || run(&config, publisher, &shared))
            .map_err(Error::Thread)?;
        Ok(Consumer { watch, worker })
    }

    /// Its counters and health, for another thread.
    pub fn watch(&self) -> KafkaWatch {
        self.watch.clone()
    }

    /// Stops it and waits for its thread.
    pub fn stop(self) {
        self.worker.stop();
    }
}

impl KafkaWatch {
    /// Its counters now.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Where it stands with its brokers.
    pub fn health(&self) -> Health {
        self.shared.health.get()
    }

    /// Its counters in the Prometheus text format (`tether_kafka_*`,
    /// labelled with the group).
    pub fn write_metrics(&self, out: &mut String) {
        self.stats().write_metrics(&self.group, out);
    }
}

/// The thread: sessions, one after another, until stopped.
fn run(config: &KafkaConfig, mut publisher: impl Publisher, shared: &Shared) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            crate::stats::fail(&shared.health, format!("no runtime: {e}"));
            return;
        }
    };
    let mut attempts = Attempts::new(config.backoff);
    let mut member = Member::default();
    let connector = match Connector::of(config) {
        Ok(connector) => connector,
        Err(e) => {
            crate::stats::fail(&shared.health, e.to_string());
            return;
        }
    };
    while !shared.stop.stopping() {
        let mut session = Session {
            config,
            connector: &connector,
            member: &mut member,
            publisher: &mut publisher,
            shared,
            attempts: &mut attempts,
        };
        match runtime.block_on(session.run()) {
            Ok(()) => break,
            Err(e) => {
                Counters::add(&shared.counters.kafka_errors, 1);
                log::warn!("kafka: {e}");
                crate::stats::fail(&shared.health, e.to_string());
                let delay = attempts.next_delay();
                if shared.stop.sleep(delay) {
                    break;
                }
            }
        }
    }
    shared.health.set(Health::Stopped);
}

/// One partition being consumed.
struct Reading {
    client: PartitionClient,
    at: Partition,
    /// The next offset to read.
    next: i64,
    /// The offset last committed.
    committed: Option<i64>,
}

/// How a generation ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Stopped,
    Rebalance,
}

/// One connection's worth of consuming: connect, join the group, read
/// the offsets of the partitions assigned, consume until stopped, a
/// rebalance (then join again) or an error.
struct Session<'a, P> {
    config: &'a KafkaConfig,
    connector: &'a Connector,
    member: &'a mut Member,
    publisher: &'a mut P,
    shared: &'a Shared,
    attempts: &'a mut Attempts,
}

impl<P: Publisher> Session<'_, P> {
    async fn run(&mut self) -> Result<(), Error> {
        let config = self.config;
        let backoff = rskafka::BackoffConfig {
            deadline: Some(config.request_timeout),
            ..rskafka::BackoffConfig::default()
        };
        let mut builder = ClientBuilder::new(config.brokers.clone())
            .client_id("tether-kafka")
            .max_message_size(MAX_MESSAGE)
            .backoff_config(backoff);
        if let Some(tls) = &self.connector.tls {
            builder = builder.tls_config(tls.clone());
        }
        if let Some(sasl) = &self.connector.sasl {
            builder = builder.sasl_config(sasl.for_client());
        }
        let client = tokio::time::timeout(config.request_timeout, builder.build())
            .await
            .map_err(|_| Error::Protocol("the brokers did not answer in time".to_owned()))??;
        let topics = within(config.request_timeout, "Metadata", client.list_topics()).await?;
        if let Some(absent) = config
            .topics
            .iter()
            .find(|name| !topics.iter().any(|t| &t.name == *name))
        {
            return Err(Error::UnknownTopic(absent.clone()));
        }
        let mut coordinator = Coordinator::find(
            self.connector,
            &config.brokers,
            &config.group,
            config.request_timeout,
        )
        .await?;
        let terms = Terms {
            topics: &config.topics,
            session_timeout: config.session_timeout,
            rebalance_timeout: config.rebalance_timeout,
        };
        loop {
            // A join waits out the group's rebalance (up to its timeout, a
            // minute by default): a stop does not.
            let (member, stop) = (&mut self.member, &self.shared.stop);
            let assigned = tokio::select! {
                assigned = member.join(&mut coordinator, &client, &terms) => assigned?,
                () = stopped(stop) => return Ok(()),
            };
            let mut readings = self.partitions(&client, assigned).await?;
            self.resume(&mut coordinator, &mut readings).await?;
            let counters = &self.shared.counters;
            counters
                .partitions
                .store(readings.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.shared.health.set(Health::Consuming);
            log::info!(
                "kafka: consuming {} partitions of {} in the group {} (generation {})",
                readings.len(),
                config.topics.join(", "),
                config.group,
                self.member.generation().unwrap_or(-1),
            );
            self.attempts.reset();
            if self.generation(&mut coordinator, &mut readings).await? == End::Stopped {
                if let Err(e) = self.member.leave(&mut coordinator).await {
                    log::warn!("kafka: leaving the group {}: {e}", config.group);
                }
                return Ok(());
            }
        }
    }

    /// Consumes the partitions of one generation until stopped (their
    /// offsets committed) or a rebalance (those acknowledged committed if
    /// the coordinator still takes them).
    async fn generation(
        &mut self,
        coordinator: &mut Coordinator,
        readings: &mut [Reading],
    ) -> Result<End, Error> {
        let config = self.config;
        let mut last_commit = Instant::now();
        let mut last_beat = Instant::now();
        loop {
            let stopping = if readings.is_empty() {
                // More members than partitions: this one waits for a
                // rebalance, heartbeating.
                self.shared
                    .stop
                    .sleep(config.fetch_wait.min(config.heartbeat_interval))
            } else {
                self.consume(readings).await?
            };
            if stopping || last_commit.elapsed() >= config.commit_interval {
                match self.commit(coordinator, readings).await {
                    Ok(()) => last_commit = Instant::now(),
                    Err(e) if e.rebalancing() => return Ok(self.rebalanced(&e, stopping)),
                    Err(e) => return Err(e),
                }
            }
            if stopping {
                return Ok(End::Stopped);
            }
            if last_beat.elapsed() >= config.heartbeat_interval {
                match self.member.heartbeat(coordinator).await {
                    Ok(()) => last_beat = Instant::now(),
                    Err(e) if e.rebalancing() => {
                        if let Err(e) = self.commit(coordinator, readings).await {
                            log::warn!(
                                "kafka: the acknowledged offsets were not committed before the rebalance \
                                 (their records come again, under the same keys): {e}"
                            );
                        }
                        return Ok(self.rebalanced(&e, false));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn rebalanced(&self, why: &Error, stopping: bool) -> End {
        Counters::add(&self.shared.counters.rebalances, 1);
        log::info!("kafka: the group {} rebalances: {why}", self.config.group);
        if stopping { End::Stopped } else { End::Rebalance }
    }

    /// Where each partition resumes: the group's committed offset, or
    /// its earliest record.
    async fn resume(&mut self, coordinator: &mut Coordinator, readings: &mut [Reading]) -> Result<(), Error> {
        let config = self.config;
        if readings.is_empty() {
            return Ok(());
        }
        let at: Vec<Partition> = readings.iter().map(|r| r.at.clone()).collect();
        let committed = coordinator.committed(&at).await?;
        for reading in readings {
            reading.committed = committed.get(&reading.at).copied();
            let earliest = offset_of(&reading.client, OffsetAt::Earliest, config).await?;
            reading.next = match reading.committed {
                // A group new to the partition starts at its beginning.
                None => earliest,
                Some(offset) => {
                    let latest = offset_of(&reading.client, OffsetAt::Latest, config).await?;
                    if (earliest..=latest).contains(&offset) {
                        offset
                    } else {
                        // Gone (the topic's retention deleted the records,
                        // or the topic was made again): from the earliest
                        // record kept, as a new group would.
                        log::warn!(
                            "kafka: the committed offset {offset} of {}/{} is not in {earliest}..={latest}: resuming at {earliest}",
                            reading.at.0,
                            reading.at.1
                        );
                        earliest
                    }
                }
            };
        }
        Ok(())
    }

    /// A client for each partition assigned.
    async fn partitions(&self, client: &Client, assigned: Vec<Partition>) -> Result<Vec<Reading>, Error> {
        let mut readings = Vec::with_capacity(assigned.len());
        for (topic, partition) in assigned {
            let client = within(
                self.config.request_timeout,
                "Metadata",
                client.partition_client(topic.clone(), partition, UnknownTopicHandling::Error),
            )
            .await?;
            readings.push(Reading {
                client,
                at: (topic, partition),
                next: 0,
                committed: None,
            });
        }
        Ok(readings)
    }

    /// Fetches every partition at once, then publishes what came, one
    /// partition after another, each in its order; whether it was asked
    /// to stop.
    async fn consume(&mut self, readings: &mut [Reading]) -> Result<bool, Error> {
        let config = self.config;
        let wait = i32::try_from(config.fetch_wait.as_millis()).unwrap_or(i32::MAX);
        // A fetch waits at the broker up to fetch_wait, then has the
        // request timeout for its answer.
        let limit = config.fetch_wait.saturating_add(config.request_timeout);
        let fetches = readings.iter().map(|r| {
            within(
                limit,
                "Fetch",
                r.client.fetch_records(r.next, 1..config.fetch_max_bytes, wait),
            )
        });
        let fetched = futures_util::future::join_all(fetches).await;
        let mut lag = 0u64;
        for (reading, fetched) in readings.iter_mut().zip(fetched) {
            let (records, high_watermark) = match fetched {
                Ok(fetched) => fetched,
                Err(Error::Kafka(e)) if out_of_range(&e) => {
                    // The group's offset is gone (the topic's retention
                    // deleted the records, or it was made again): from
                    // the earliest record kept, as a new group would.
                    let earliest = offset_of(&reading.client, OffsetAt::Earliest, config).await?;
                    log::warn!(
                        "kafka: offset {} of {}/{} is out of range: resuming at {earliest}",
                        reading.next,
                        reading.at.0,
                        reading.at.1
                    );
                    Counters::add(&self.shared.counters.kafka_errors, 1);
                    reading.next = earliest;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let counters = &self.shared.counters;
            Counters::add(&counters.consumed, records.len() as u64);
            for record in records {
                let offset = record.offset;
                if offset < reading.next {
                    continue;
                }
                match event_of(config, &reading.at.0, reading.at.1, record) {
                    Ok(event) => {
                        if !self.publish(&event.event()) {
                            return Ok(true);
                        }
                    }
                    Err(why) => {
                        Counters::add(&counters.failed, 1);
                        log::warn!(
                            "kafka: the record at offset {offset} of {}/{} is skipped: {why}",
                            reading.at.0,
                            reading.at.1
                        );
                    }
                }
                reading.next = offset.saturating_add(1);
            }
            lag = lag.saturating_add(u64::try_from(high_watermark.saturating_sub(reading.next)).unwrap_or(0));
        }
        self.shared
            .counters
            .lag
            .store(lag, std::sync::atomic::Ordering::Relaxed);
        Ok(self.shared.stop.stopping())
    }

    /// Publishes `event`, again after a backoff while the publisher
    /// cannot take it; whether to go on (false: asked to stop first).
    fn publish(&mut self, event: &tether_ingest::Event<'_>) -> bool {
        let counters = &self.shared.counters;
        let mut attempts = Attempts::new(self.config.backoff);
        loop {
            match self.publisher.publish(event) {
                Outcome::Published => {
                    Counters::add(&counters.published, 1);
                    return true;
                }
                Outcome::Refused(why) => {
                    Counters::add(&counters.failed, 1);
                    log::warn!("kafka: the record {} is skipped: {why}", event.key);
                    return true;
                }
                Outcome::Unavailable(why) => {
                    Counters::add(&counters.retries, 1);
                    log::warn!("kafka: the record {} is not published now: {why}", event.key);
                    if self.shared.stop.sleep(attempts.next_delay()) {
                        return false;
                    }
                }
            }
        }
    }

    /// Commits the partitions read past their committed offsets.
    async fn commit(&mut self, coordinator: &mut Coordinator, readings: &mut [Reading]) -> Result<(), Error> {
        let offsets: Vec<(Partition, i64)> = readings
            .iter()
            .filter(|r| r.committed != Some(r.next))
            .map(|r| (r.at.clone(), r.next))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        let (generation, member) = self.member.commit_as();
        coordinator.commit(&offsets, generation, member).await?;
        Counters::add(&self.shared.counters.commits, 1);
        let committed: HashMap<&Partition, i64> = offsets.iter().map(|(p, o)| (p, *o)).collect();
        for reading in readings {
            if let Some(&offset) = committed.get(&reading.at) {
                reading.committed = Some(offset);
            }
        }
        Ok(())
    }
}

/// Whether a fetch failed because its offset is not in the partition.
fn out_of_range(error: &rskafka::client::error::Error) -> bool {
    use rskafka::client::error::{Error as ClientError, ProtocolError};
    matches!(
        error,
        ClientError::ServerError {
            protocol_error: ProtocolError::OffsetOutOfRange,
            ..
        }
    )
}

/// Done once `stop` is raised (looked at every tenth of a second).
async fn stopped(stop: &StopSignal) {
    while !stop.stopping() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `request` to a broker, given `limit` for its answer. rskafka retries a
/// failed request within its backoff's deadline, but waits for the answer
/// on an open connection without end: a broker that stops answering (a
/// partition, a host gone without a reset) would hold the consumer with
/// its health still "consuming", no error counted.
async fn within<T, E: Into<Error>>(
    limit: Duration,
    request: &'static str,
    answer: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, answer).await {
        Ok(answered) => answered.map_err(Into::into),
        Err(_) => Err(Error::Timeout {
            request,
            after: limit,
        }),
    }
}

/// A partition's earliest or latest offset, within the request timeout.
async fn offset_of(client: &PartitionClient, at: OffsetAt, config: &KafkaConfig) -> Result<i64, Error> {
    within(config.request_timeout, "ListOffsets", client.get_offset(at)).await
}
