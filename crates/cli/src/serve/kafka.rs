//! The Kafka options of `tether serve` (`--kafka-brokers`): the records
//! of Kafka topics published into the hub.

use std::time::Duration;

use tether_node::KafkaConfig;
use tether_node::{KafkaSasl as Sasl, KafkaSaslMechanism as Mechanism};

/// The Kafka options (`--app demo` and `--app hub`).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Kafka (records of Kafka topics published into the hub)")]
pub(crate) struct KafkaArgs {
    /// Consume Kafka topics from these bootstrap brokers (HOST:PORT,
    /// comma-separated), each record published as POST /topics/TOPIC
    /// would, its offset committed for the group once the hub has it.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub(crate) kafka_brokers: Vec<String>,
    /// The Kafka topics to consume (comma-separated): the partitions of
    /// each that the group assigns this node.
    #[arg(long, value_name = "TOPIC,...", value_delimiter = ',')]
    pub(crate) kafka_topics: Vec<String>,
    /// The consumer group: the nodes in one group share the topics'
    /// partitions out (each record published by one of them), and its
    /// committed offsets say where to resume (a group new to a partition
    /// starts at its earliest record).
    #[arg(long, value_name = "GROUP", default_value = "tether")]
    pub(crate) kafka_group: String,
    /// The tether topic of the records of a Kafka topic that have no
    /// tether-topic header (repeatable); without one, a record goes to
    /// its Kafka topic's name.
    #[arg(long, value_name = "KAFKA=TETHER")]
    pub(crate) kafka_topic: Vec<String>,
    /// The least seconds between two offset commits (0: after each
    /// fetch's records are published). Records published and not yet
    /// committed are published again after a crash, under the same keys,
    /// and the hub makes no second event of them.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0,
          value_parser = super::values::seconds_between(0.0, 3600.0))]
    pub(crate) kafka_commit_interval: f64,
    /// The longest a fetch waits at a broker for new records, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.5,
          value_parser = super::values::seconds_between(0.01, 60.0))]
    pub(crate) kafka_fetch_wait: f64,
    /// How long, in seconds, a broker may take to answer a request (a
    /// fetch: this beyond --kafka-fetch-wait). A broker silent for longer
    /// (a partition, a host gone without a reset) is an error: counted,
    /// the node not ready, the connections made again.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0,
          value_parser = super::values::seconds_between(0.1, 3600.0))]
    pub(crate) kafka_request_timeout: f64,
    /// How long, in seconds, the group's coordinator waits without a
    /// heartbeat from this node before it gives the node's partitions to
    /// the others (the broker bounds it: Kafka to 6..300 by default).
    #[arg(long, value_name = "SECONDS", default_value_t = 45.0,
          value_parser = super::values::seconds_between(0.1, 3600.0))]
    pub(crate) kafka_session_timeout: f64,
    /// How often, in seconds, the node tells the group's coordinator it
    /// is alive and learns of a rebalance; under a third of the session
    /// timeout.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0,
          value_parser = super::values::seconds_between(0.01, 3600.0))]
    pub(crate) kafka_heartbeat_interval: f64,
    /// How long, in seconds, a rebalance waits for every node of the
    /// group to join again (a node retrying a publish the hub cannot take
    /// joins after it).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0,
          value_parser = super::values::seconds_between(0.1, 3600.0))]
    pub(crate) kafka_rebalance_timeout: f64,
    /// Reach every broker over TLS, its certificate checked against the
    /// system's roots (and --kafka-ca-file's) and the host it is reached
    /// at.
    #[arg(long)]
    pub(crate) kafka_tls: bool,
    /// With --kafka-tls, trust this CA too (a PEM file of certificates)
    /// for the brokers' certificates.
    #[arg(long, value_name = "FILE")]
    pub(crate) kafka_ca_file: Option<std::path::PathBuf>,
    /// Authenticate to the brokers with SASL: PLAIN (over --kafka-tls in
    /// earnest), SCRAM-SHA-256 or SCRAM-SHA-512; needs
    /// --kafka-sasl-username and a password.
    #[arg(long, value_name = "MECHANISM")]
    pub(crate) kafka_sasl_mechanism: Option<String>,
    /// The SASL user name.
    #[arg(long, value_name = "USER", requires = "kafka_sasl_mechanism")]
    pub(crate) kafka_sasl_username: Option<String>,
    /// A file whose first line is the SASL password.
    #[arg(
        long,
        value_name = "FILE",
        requires = "kafka_sasl_mechanism",
        conflicts_with = "kafka_sasl_password"
    )]
    pub(crate) kafka_sasl_password_file: Option<std::path::PathBuf>,
    /// The SASL password: better given as TETHER_KAFKA_SASL_PASSWORD, in
    /// the configuration file or with --kafka-sasl-password-file than on
    /// the command line, where other users see it.
    #[arg(long, value_name = "PASSWORD", requires = "kafka_sasl_mechanism")]
    pub(crate) kafka_sasl_password: Option<String>,
}

impl KafkaArgs {
    /// Whether any Kafka option asks for a consumer.
    pub(crate) fn given(&self) -> bool {
        !self.kafka_brokers.is_empty() || !self.kafka_topics.is_empty()
    }

    /// The consumer the options ask for, if any.
    pub(crate) fn kafka(&self) -> Result<Option<KafkaConfig>, String> {
        if !self.given() {
            return Ok(None);
        }
        if self.kafka_brokers.is_empty() {
            return Err("--kafka-topics needs --kafka-brokers".to_owned());
        }
        let mut config = KafkaConfig::new(self.kafka_brokers.clone(), self.kafka_topics.clone());
        config.group.clone_from(&self.kafka_group);
        config.mapping = self
            .kafka_topic
            .iter()
            .map(|m| KafkaConfig::parse_mapping(m).map_err(|e| format!("--kafka-topic: {e}")))
            .collect::<Result<_, _>>()?;
        config.commit_interval = Duration::from_secs_f64(self.kafka_commit_interval);
        config.fetch_wait = Duration::from_secs_f64(self.kafka_fetch_wait);
        config.request_timeout = Duration::from_secs_f64(self.kafka_request_timeout);
        config.session_timeout = Duration::from_secs_f64(self.kafka_session_timeout);
        config.heartbeat_interval = Duration::from_secs_f64(self.kafka_heartbeat_interval);
        config.rebalance_timeout = Duration::from_secs_f64(self.kafka_rebalance_timeout);
        config.tls = self.kafka_tls;
        config.ca_file.clone_from(&self.kafka_ca_file);
        config.sasl = self.sasl()?;
        config.check().map_err(|e| e.to_string())?;
        Ok(Some(config))
    }

    /// The SASL credentials asked for; the password file read (what it
    /// holds never said).
    fn sasl(&self) -> Result<Option<Sasl>, String> {
        let Some(mechanism) = &self.kafka_sasl_mechanism else {
            return Ok(None);
        };
        let mechanism = Mechanism::parse(mechanism).map_err(|e| format!("--kafka-sasl-mechanism: {e}"))?;
        let username = self
            .kafka_sasl_username
            .clone()
            .ok_or("--kafka-sasl-mechanism needs --kafka-sasl-username")?;
        let password = match (&self.kafka_sasl_password_file, &self.kafka_sasl_password) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--kafka-sasl-password-file {}: {e}", path.display()))?;
                text.lines().next().unwrap_or_default().to_owned()
            }
            (None, Some(password)) => password.clone(),
            (None, None) => {
                return Err(
                    "--kafka-sasl-mechanism needs a password: --kafka-sasl-password-file, \
                     or TETHER_KAFKA_SASL_PASSWORD"
                        .to_owned(),
                );
            }
        };
        Ok(Some(Sasl::new(mechanism, username, password)))
    }
}
