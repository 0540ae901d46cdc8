//! The consumer's configuration.

use std::path::PathBuf;
use std::time::Duration;

use tether_backoff::Backoff;

use crate::error::Error;

/// The longest group id taken.
const MAX_GROUP: usize = 249;

/// The longest Kafka topic name taken: its records' publish keys,
/// `kafka:TOPIC:PARTITION:OFFSET` (a partition of up to 10 digits, an
/// offset of up to 19), must fit the hub's 128 bytes. Kafka's own limit
/// is 249.
pub const MAX_TOPIC_LEN: usize = 128 - "kafka:::".len() - 10 - 19;

/// What a [`Consumer`](crate::Consumer) reads and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// The bootstrap brokers, `HOST:PORT`.
    pub brokers: Vec<String>,
    /// The Kafka topics to consume: the partitions of each that the
    /// group assigns this consumer.
    pub topics: Vec<String>,
    /// The consumer group whose committed offsets say where to resume.
    pub group: String,
    /// Kafka topic → tether topic, for records with no `tether-topic`
    /// header (a topic not named here publishes to its own name).
    pub mapping: Vec<(String, String)>,
    /// The longest a fetch waits at the broker for new records.
    pub fetch_wait: Duration,
    /// The most bytes a fetch asks for, per partition.
    pub fetch_max_bytes: i32,
    /// The least time between two offset commits (0: after each fetch's
    /// records are published). Records published and not yet committed
    /// are published again after a crash, under the same keys.
    pub commit_interval: Duration,
    /// How long a request to a broker may take before it counts as
    /// failed.
    pub request_timeout: Duration,
    /// How long the group's coordinator waits without a heartbeat before
    /// it gives this consumer's partitions to the others (Kafka's
    /// `session.timeout.ms`; the broker bounds it, by default to 6 to
    /// 300 s).
    pub session_timeout: Duration,
    /// How often the consumer tells the coordinator it is alive, and
    /// learns of a rebalance (Kafka's `heartbeat.interval.ms`): under a
    /// third of the session timeout.
    pub heartbeat_interval: Duration,
    /// How long, in a rebalance, the coordinator waits for every member
    /// to join again (Kafka's `max.poll.interval.ms`): a member
    /// publishing a record the hub cannot take yet rejoins only after it.
    pub rebalance_timeout: Duration,
    /// Whether the brokers are reached over TLS (every broker: the
    /// bootstrap ones, those the cluster's metadata names, the group's
    /// coordinator). The brokers' certificates are checked against the
    /// system's roots and [`KafkaConfig::ca_file`]'s, and must name the
    /// host they are reached at.
    pub tls: bool,
    /// A PEM file of the certificates that the brokers' are checked
    /// against, besides the system's roots (with TLS only).
    pub ca_file: Option<PathBuf>,
    /// SASL credentials for every broker, if they ask for them.
    pub sasl: Option<crate::Sasl>,
    /// The waits between attempts after a Kafka error, and between
    /// publishes the hub could not take.
    pub backoff: Backoff,
}

impl KafkaConfig {
    /// The `topics` of the cluster at `brokers`, in the group `tether`,
    /// each published to its own name; fetches wait up to half a second
    /// for up to 1 MiB, offsets committed after each fetch's records.
    pub fn new(brokers: Vec<String>, topics: Vec<String>) -> KafkaConfig {
        KafkaConfig {
            brokers,
            topics,
            group: "tether".to_owned(),
            mapping: Vec::new(),
            fetch_wait: Duration::from_millis(500),
            fetch_max_bytes: 1 << 20,
            commit_interval: Duration::ZERO,
            request_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            rebalance_timeout: Duration::from_secs(60),
            tls: false,
            ca_file: None,
            sasl: None,
            backoff: Backoff::new(),
        }
    }

    /// Parses a mapping `KAFKA=TETHER`.
    ///
    /// ```
    /// assert_eq!(
    ///     tether_kafka::KafkaConfig::parse_mapping("orders=shop.orders").unwrap(),
    ///     ("orders".to_owned(), "shop.orders".to_owned())
    /// );
    /// assert!(tether_kafka::KafkaConfig::parse_mapping("orders").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// No `=`, or an empty side.
    pub fn parse_mapping(text: &str) -> Result<(String, String), Error> {
        match text.split_once('=') {
            Some((kafka, tether)) if !kafka.is_empty() && !tether.is_empty() => {
                Ok((kafka.to_owned(), tether.to_owned()))
            }
            _ => Err(Error::Config(format!("{text:?} is not KAFKA_TOPIC=TETHER_TOPIC"))),
        }
    }

    /// Checks what can be checked without connecting.
    ///
    /// # Errors
    ///
    /// No broker or no topic, an empty or over-long name (a topic over
    /// [`MAX_TOPIC_LEN`]), a mapping of a topic not consumed, a fetch size
    /// under 1 KiB, a heartbeat interval not under the session timeout, a
    /// CA file without TLS or that holds no certificate.
    pub fn check(&self) -> Result<(), Error> {
        if self.brokers.is_empty() {
            return Err(Error::Config("no broker".to_owned()));
        }
        if let Some(broker) = self.brokers.iter().find(|b| !b.contains(':')) {
            return Err(Error::Config(format!("broker {broker:?} is not HOST:PORT")));
        }
        if self.topics.is_empty() {
            return Err(Error::Config("no topic to consume".to_owned()));
        }
        if let Some(topic) = self
            .topics
            .iter()
            .find(|t| t.is_empty() || t.len() > MAX_TOPIC_LEN)
        {
            return Err(Error::Config(format!(
                "{topic:?}: a Kafka topic consumed is 1 to {MAX_TOPIC_LEN} bytes (its records' publish keys must fit 128)"
            )));
        }
        if self.group.is_empty() || self.group.len() > MAX_GROUP {
            return Err(Error::Config(format!("the group is 1 to {MAX_GROUP} bytes")));
        }
        if let Some((kafka, _)) = self.mapping.iter().find(|(k, _)| !self.topics.contains(k)) {
            return Err(Error::Config(format!(
                "the mapping names {kafka}, which is not consumed"
            )));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return Err(Error::Config(
                "the heartbeat interval is above zero and under the session timeout".to_owned(),
            ));
        }
        if self.session_timeout.as_millis() > i32::MAX as u128
            || self.rebalance_timeout.as_millis() > i32::MAX as u128
            || self.rebalance_timeout.is_zero()
        {
            return Err(Error::Config(
                "the session and rebalance timeouts are above zero and under 24 days".to_owned(),
            ));
        }
        if self.ca_file.is_some() && !self.tls {
            return Err(Error::Config(
                "a CA file is for TLS, which is not asked for".to_owned(),
            ));
        }
        if self.tls {
            crate::transport::client_config(self.ca_file.as_deref())?;
        }
        if let Some(sasl) = &self.sasl
            && (sasl.username.is_empty() || sasl.password.is_empty())
        {
            return Err(Error::Config("SASL needs a user name and a password".to_owned()));
        }
        if self.fetch_max_bytes < 1024 {
            return Err(Error::Config("a fetch asks for at least 1 KiB".to_owned()));
        }
        Ok(())
    }

    /// The tether topic of a record of `kafka_topic` without a
    /// `tether-topic` header.
    pub(crate) fn tether_topic<'a>(&'a self, kafka_topic: &'a str) -> &'a str {
        self.mapping
            .iter()
            .find(|(kafka, _)| kafka == kafka_topic)
            .map_or(kafka_topic, |(_, tether)| tether.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_topic_keys_fit_the_hub() {
        let topic = "t".repeat(MAX_TOPIC_LEN);
        let key = format!("kafka:{topic}:{}:{}", i32::MAX, i64::MAX);
        assert_eq!(key.len(), 128);
        let config = KafkaConfig::new(vec!["k:9092".into()], vec![topic.clone()]);
        assert!(config.check().is_ok());
        let config = KafkaConfig::new(vec!["k:9092".into()], vec![format!("{topic}t")]);
        assert!(config.check().unwrap_err().to_string().contains("publish keys"));
    }
}
