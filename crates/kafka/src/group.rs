//! The connection to the consumer group's coordinator, and the group's
//! committed offsets through it: `FindCoordinator` (v1), `OffsetFetch`
//! (v1) and `OffsetCommit` (v2, with the member's generation and id).
//! Plain, non-flexible versions every broker since Kafka 0.11 answers,
//! Kafka 4 included. The membership's requests are in `membership.rs`.

use std::collections::HashMap;
use std::time::Duration;

use crate::answers;
use crate::error::Error;
use crate::transport::{self, Connector, Stream};
use crate::wire::Request;

const FIND_COORDINATOR: i16 = 10;
const OFFSET_FETCH: i16 = 9;
const OFFSET_COMMIT: i16 = 8;
pub(crate) const CLIENT_ID: &str = "tether-kafka";

/// A partition of a topic.
pub(crate) type Partition = (String, i32);

/// A connection to a group's coordinator.
pub(crate) struct Coordinator {
    stream: Box<dyn Stream>,
    group: String,
    correlation: i32,
    timeout: Duration,
}

impl Coordinator {
    /// Asks the brokers, in turn, which is the coordinator of `group`, and
    /// connects to it.
    pub(crate) async fn find(
        connector: &Connector,
        brokers: &[String],
        group: &str,
        timeout: Duration,
    ) -> Result<Coordinator, Error> {
        let mut last = Error::Config("no broker".to_owned());
        for broker in brokers {
            match Coordinator::find_through(connector, broker, group, timeout).await {
                Ok(coordinator) => return Ok(coordinator),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn find_through(
        connector: &Connector,
        broker: &str,
        group: &str,
        timeout: Duration,
    ) -> Result<Coordinator, Error> {
        let mut through = Coordinator::connect(connector, broker, group, timeout).await?;
        let mut request = Request::new(FIND_COORDINATOR, 1, through.next_correlation(), CLIENT_ID);
        request.string(group);
        request.i8(0); // the key is a group
        let body = through.call(request).await?;
        let (host, port) = answers::coordinator(&body)?;
        // The broker asked may be the coordinator: its connection serves.
        Coordinator::connect(connector, &format!("{host}:{port}"), group, timeout).await
    }

    async fn connect(
        connector: &Connector,
        addr: &str,
        group: &str,
        timeout: Duration,
    ) -> Result<Coordinator, Error> {
        let (stream, correlation) = connector.connect(addr, timeout).await?;
        Ok(Coordinator {
            stream,
            group: group.to_owned(),
            correlation,
            timeout,
        })
    }

    /// The group's id.
    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    pub(crate) fn next_correlation(&mut self) -> i32 {
        self.correlation = self.correlation.wrapping_add(1);
        self.correlation
    }

    /// Sends `request` and reads its answer's body (after the correlation
    /// id, checked).
    pub(crate) async fn call(&mut self, request: Request) -> Result<Vec<u8>, Error> {
        self.call_within(request, Duration::ZERO).await
    }

    /// [`Coordinator::call`], for a request the broker may hold longer
    /// than the request timeout (a `JoinGroup` waits for the rebalance):
    /// up to `extra` more.
    pub(crate) async fn call_within(&mut self, request: Request, extra: Duration) -> Result<Vec<u8>, Error> {
        let timeout = self.timeout.saturating_add(extra);
        transport::call(&mut self.stream, request, self.correlation, timeout).await
    }

    /// The group's committed offsets of `partitions` (the next offset to
    /// read); a partition with none is left out.
    pub(crate) async fn committed(
        &mut self,
        partitions: &[Partition],
    ) -> Result<HashMap<Partition, i64>, Error> {
        let by_topic = by_topic(partitions.iter().map(|(t, p)| (t.as_str(), *p, ())));
        let mut request = Request::new(OFFSET_FETCH, 1, self.next_correlation(), CLIENT_ID);
        request.string(&self.group);
        request.len(by_topic.len());
        for (topic, partitions) in &by_topic {
            request.string(topic);
            request.len(partitions.len());
            for (partition, ()) in partitions {
                request.i32(*partition);
            }
        }
        let body = self.call(request).await?;
        answers::committed(&body)
    }

    /// Commits `offsets` (each the next offset to read) for the group, as
    /// the member `member` of the generation `generation`.
    pub(crate) async fn commit(
        &mut self,
        offsets: &[(Partition, i64)],
        generation: i32,
        member: &str,
    ) -> Result<(), Error> {
        let by_topic = by_topic(offsets.iter().map(|((t, p), o)| (t.as_str(), *p, *o)));
        let mut request = Request::new(OFFSET_COMMIT, 2, self.next_correlation(), CLIENT_ID);
        request.string(&self.group);
        request.i32(generation);
        request.string(member);
        request.i64(-1); // the broker's retention
        request.len(by_topic.len());
        for (topic, partitions) in &by_topic {
            request.string(topic);
            request.len(partitions.len());
            for (partition, offset) in partitions {
                request.i32(*partition);
                request.i64(*offset);
                request.string("");
            }
        }
        let body = self.call(request).await?;
        answers::commit(&body)
    }
}

/// Items grouped by topic, in the order first seen.
fn by_topic<'a, T>(items: impl Iterator<Item = (&'a str, i32, T)>) -> Vec<(&'a str, Vec<(i32, T)>)> {
    let mut out: Vec<(&str, Vec<(i32, T)>)> = Vec::new();
    for (topic, partition, value) in items {
        match out.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, partitions)) => partitions.push((partition, value)),
            None => out.push((topic, vec![(partition, value)])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use tether_ingest::{Event, Outcome};
    use tether_testkit::kafka::Kafka;

    use super::*;
    use crate::{Consumer, KafkaConfig};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Offsets committed here are read back, and a consumer whose group's
    /// offset is past the partition's end starts again at its earliest
    /// record, as a new group would.
    #[test]
    fn committed_offsets_are_read_back_and_one_out_of_range_resumes_at_the_earliest() {
        let Some(kafka) = Kafka::start() else { return };
        let topic = kafka.unique("range");
        let group = kafka.unique("group");
        let runtime = runtime();
        runtime.block_on(async {
            let client = rskafka::client::ClientBuilder::new(vec![kafka.addr().to_owned()])
                .build()
                .await
                .unwrap();
            let controller = client.controller_client().unwrap();
            controller.create_topic(&topic, 1, 1, 5_000).await.unwrap();
            let partition = client
                .partition_client(
                    topic.clone(),
                    0,
                    rskafka::client::partition::UnknownTopicHandling::Retry,
                )
                .await
                .unwrap();
            let record = rskafka::record::Record {
                key: None,
                value: Some(b"first".to_vec()),
                headers: std::collections::BTreeMap::new(),
                timestamp: rskafka::chrono::DateTime::UNIX_EPOCH,
            };
            partition
                .produce(
                    vec![record],
                    rskafka::client::partition::Compression::NoCompression,
                )
                .await
                .unwrap();
            let timeout = Duration::from_secs(10);
            let mut coordinator =
                Coordinator::find(&Connector::default(), &[kafka.addr().to_owned()], &group, timeout)
                    .await
                    .unwrap();
            let at = (topic.clone(), 0);
            assert!(
                coordinator
                    .committed(std::slice::from_ref(&at))
                    .await
                    .unwrap()
                    .is_empty()
            );
            coordinator.commit(&[(at.clone(), 1000)], -1, "").await.unwrap();
            let committed = coordinator.committed(std::slice::from_ref(&at)).await.unwrap();
            assert_eq!(committed.get(&at), Some(&1000));
        });
        let mut config = KafkaConfig::new(vec![kafka.addr().to_owned()], vec![topic.clone()]);
        config.group = group;
        // Short, so that the join is quick (tansu holds a first join for
        // half the session timeout).
        config.session_timeout = Duration::from_secs(2);
        config.heartbeat_interval = Duration::from_millis(200);
        let (tx, rx) = mpsc::channel();
        let consumer = Consumer::start(config, move |event: &Event<'_>| {
            let _ = tx.send((event.data.to_owned(), event.key.to_owned()));
            Outcome::Published
        })
        .unwrap();
        let (data, key) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!((data.as_str(), key), ("first", format!("kafka:{topic}:0:0")));
        consumer.stop();
    }
}
