//! The bus options of `tether serve` (`--redis`, `--nats`,
//! `--rabbitmq-url`): several
//! nodes share the hub's topics.

use tether_node::Bus;

use super::Args;

/// The Redis bridge's options (`--app demo` and `--app hub`).
#[cfg(feature = "redis")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Redis (several tether nodes share the topics)")]
pub(crate) struct RedisArgs {
    /// Share the hub's topics with other tether nodes through this Redis
    /// server (redis://HOST:PORT[/DB]) or Redis Cluster
    /// (redis+cluster://HOST:PORT[,HOST:PORT...]): each topic is a Redis
    /// stream, which numbers and orders its events for every node and
    /// keeps their backlog for Last-Event-ID replay. rediss:// and
    /// rediss+cluster:// connect over TLS, the server's certificate
    /// checked against the system's roots (or --redis-ca) and the URL's
    /// host. With Redis Sentinel,
    /// redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]: the
    /// sentinels, asked in order, name the master (its role checked),
    /// and every lost connection asks them again, which follows a
    /// failover; the URL's credentials are the master's, and
    /// rediss+sentinel:// speaks TLS to it. Without it, the hub runs in
    /// this process alone.
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
    /// With a redis+sentinel:// URL, the password the sentinels
    /// themselves ask for (requirepass in their configuration); better
    /// given as TETHER_REDIS_SENTINEL_PASSWORD or in the configuration
    /// file than on the command line, where other users see it.
    #[arg(long, value_name = "PASSWORD", requires = "redis")]
    pub(crate) redis_sentinel_password: Option<String>,
    /// With a redis+sentinel:// (rediss+sentinel://) URL, ask the
    /// sentinels over TLS, for sentinels that listen on a tls-port alone:
    /// their certificates are checked as the master's (the system's roots
    /// or --redis-ca, and each must name the sentinel's address as the URL
    /// gives it), and --redis-cert/--redis-key are shown to them. The
    /// URL's scheme says only how the master is spoken to.
    #[arg(long, requires = "redis")]
    pub(crate) redis_sentinel_tls: bool,
    /// With a rediss:// URL (or --redis-sentinel-tls), trust this CA (a
    /// PEM file of certificates) for the server's certificate instead of
    /// the system's roots.
    #[arg(long, value_name = "FILE", requires = "redis")]
    pub(crate) redis_ca: Option<std::path::PathBuf>,
    /// With a rediss:// URL (or --redis-sentinel-tls), show this
    /// certificate chain (PEM, this node's certificate first) to a
    /// server that asks for one (tls-auth-clients); needs --redis-key.
    #[arg(long, value_name = "FILE", requires_all = ["redis", "redis_key"])]
    pub(crate) redis_cert: Option<std::path::PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --redis-cert.
    #[arg(long, value_name = "FILE", requires_all = ["redis", "redis_cert"])]
    pub(crate) redis_key: Option<std::path::PathBuf>,
    /// Put before each topic's name to make its stream's key (topic news:
    /// tether:news); nodes that share topics use the same prefix.
    #[arg(long, value_name = "PREFIX", default_value = "tether:", requires = "redis")]
    pub(crate) redis_prefix: String,
    /// How long this node's presence entries (who is subscribed here) live
    /// in Redis unless renewed; they are renewed every third of it, so a
    /// node that dies has its members leave the other nodes' lists within
    /// about this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, requires = "redis",
          value_parser = super::values::seconds_between(0.1, 3600.0))]
    pub(crate) redis_presence_ttl: f64,
    /// On a Redis Cluster, the partitions the topics are grouped into
    /// (each partition's keys share a hash tag, and a node reads one
    /// announcement stream per partition, however many topics it
    /// follows); every node must give the same number. 0 keeps the layout
    /// of earlier versions (a slot per topic, tether:{news}, each followed
    /// stream polled): keep 0 for a cluster that holds streams written so.
    #[arg(long, value_name = "N", default_value_t = 16, requires = "redis",
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub(crate) redis_cluster_partitions: u16,
    /// Acknowledge a publish only once this many replicas of its Redis
    /// primary hold it (WAIT after each batch of writes); a batch they do
    /// not all take within --redis-wait-timeout is answered 503. 0 (the
    /// default) acknowledges once the primary has it: Redis replicates
    /// afterwards, so a primary that fails first loses acknowledged
    /// events. The replicas online are counted every second: /readyz
    /// answers 503 until Redis has had this many since the node started.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "redis",
          value_parser = clap::value_parser!(u8).range(0..=16))]
    pub(crate) redis_wait_replicas: u8,
    /// Seconds a batch of publishes waits for --redis-wait-replicas.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, requires = "redis",
          value_parser = super::values::seconds_between(0.001, 60.0))]
    pub(crate) redis_wait_timeout: f64,
}

/// The NATS bridge's options (`--app demo` and `--app hub`).
#[cfg(feature = "nats")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "NATS (several tether nodes share the topics)")]
pub(crate) struct NatsArgs {
    /// Share the hub's topics with other tether nodes through NATS
    /// JetStream (nats://HOST:PORT, or several nats://HOST:PORT separated
    /// by commas for a NATS cluster): each topic is a subject of one
    /// stream, which numbers and orders its events for every node and
    /// keeps their backlog for Last-Event-ID replay.
    #[arg(long, value_name = "URL")]
    #[cfg_attr(feature = "redis", arg(conflicts_with = "redis"))]
    pub(crate) nats: Option<String>,
    /// The subjects' prefix (topic news: PREFIX.topic.news) and the
    /// stream's name (its dots made _); nodes that share topics use the
    /// same one.
    #[arg(long, value_name = "PREFIX", default_value = "tether", requires = "nats")]
    pub(crate) nats_prefix: String,
    /// The stream's replicas when this node creates it (3 on a NATS
    /// cluster of three nodes or more, so that it survives one lost).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "nats",
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) nats_replicas: u8,
    /// How long this node's presence entries (who is subscribed here)
    /// live in NATS unless renewed; they are renewed every third of it,
    /// so a node that dies has its members leave the other nodes' lists
    /// within about this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, requires = "nats",
          value_parser = super::values::seconds_between(0.1, 3600.0))]
    pub(crate) nats_presence_ttl: f64,
}

/// The RabbitMQ bridge's options (`--app demo` and `--app hub`).
#[cfg(feature = "rabbitmq")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "RabbitMQ (several tether nodes share the topics)")]
pub(crate) struct RabbitArgs {
    /// Share the hub's topics with other tether nodes through RabbitMQ
    /// streams (amqp://USER:PASS@HOST:PORT/VHOST, the vhost URL-encoded:
    /// %2f for /; RabbitMQ 3.9 or later; a cluster's nodes as
    /// HOST:PORT,HOST:PORT,..., the next tried when one fails): each
    /// topic is a stream of its
    /// own, whose offsets number and order its events for every node and
    /// which keeps their backlog for Last-Event-ID replay. A publish is
    /// acknowledged once the broker confirmed it and this node read it
    /// back.
    #[arg(long, value_name = "URL")]
    #[cfg_attr(feature = "redis", arg(conflicts_with = "redis"))]
    #[cfg_attr(feature = "nats", arg(conflicts_with = "nats"))]
    pub(crate) rabbitmq_url: Option<String>,
    /// The streams' prefix (topic news: the stream PREFIX.topic.news);
    /// nodes that share topics use the same one.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "tether",
        requires = "rabbitmq_url"
    )]
    pub(crate) rabbitmq_prefix: String,
    /// The replicas of each stream this node creates
    /// (x-initial-cluster-size; 3 on a RabbitMQ cluster of three nodes or
    /// more): the broker confirms a publish once a majority hold it.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "rabbitmq_url",
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub(crate) rabbitmq_replicas: u8,
    /// The bytes each topic's stream keeps when this node creates it
    /// (x-max-length-bytes; retention drops whole segments of an eighth
    /// of it, the oldest first).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, requires = "rabbitmq_url",
          value_parser = super::values::whole::<u64>(64 * super::values::KIB, 1 << 50))]
    pub(crate) rabbitmq_stream_max_bytes: u64,
    /// How long this node's presence entries (who is subscribed here)
    /// count on the other nodes unless sent again; they are sent again
    /// every third of it, so a node that dies has its members leave the
    /// other nodes' lists within about this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, requires = "rabbitmq_url",
          value_parser = super::values::seconds_between(0.1, 3600.0))]
    pub(crate) rabbitmq_presence_ttl: f64,
}

/// The bus `--nats`, `--redis` or `--rabbitmq-url` asks for, if any
/// (they conflict: one at most).
pub(crate) fn bus(args: &Args) -> Option<Bus> {
    let _ = args;
    #[cfg(feature = "rabbitmq")]
    if let Some(url) = &args.rabbitmq.rabbitmq_url {
        let mut config = tether_rabbitmq::RabbitConfig::new(url.as_str());
        config.prefix.clone_from(&args.rabbitmq.rabbitmq_prefix);
        config.replicas = usize::from(args.rabbitmq.rabbitmq_replicas);
        config.stream_max_bytes = args.rabbitmq.rabbitmq_stream_max_bytes;
        config.segment_bytes = (config.stream_max_bytes / 8).max(1);
        config.presence_ttl = std::time::Duration::from_secs_f64(args.rabbitmq.rabbitmq_presence_ttl);
        return Some(Bus::RabbitMq(config));
    }
    #[cfg(feature = "nats")]
    if let Some(url) = &args.nats.nats {
        let mut config = tether_nats::NatsConfig::new(url.as_str());
        config.prefix.clone_from(&args.nats.nats_prefix);
        config.replicas = usize::from(args.nats.nats_replicas);
        config.presence_ttl = std::time::Duration::from_secs_f64(args.nats.nats_presence_ttl);
        return Some(Bus::Nats(config));
    }
    #[cfg(feature = "redis")]
    if let Some(url) = &args.redis.redis {
        let mut config = tether_redis::RedisConfig::new(url.as_str());
        config.prefix.clone_from(&args.redis.redis_prefix);
        config.tls_ca.clone_from(&args.redis.redis_ca);
        config.tls_cert.clone_from(&args.redis.redis_cert);
        config.tls_key.clone_from(&args.redis.redis_key);
        config
            .sentinel_password
            .clone_from(&args.redis.redis_sentinel_password);
        config.sentinel_tls = args.redis.redis_sentinel_tls;
        config.presence_ttl = std::time::Duration::from_secs_f64(args.redis.redis_presence_ttl);
        config.cluster_partitions = usize::from(args.redis.redis_cluster_partitions);
        config.wait_replicas = usize::from(args.redis.redis_wait_replicas);
        config.wait_timeout = std::time::Duration::from_secs_f64(args.redis.redis_wait_timeout);
        return Some(Bus::Redis(config));
    }
    None
}

/// What a start would check of the bus's settings before it connects:
/// the Redis URL (a Sentinel URL's parts, a sentinel password and TLS to
/// the sentinels only with one) and its files (`--redis-ca`, `--redis-cert`, `--redis-key`: each
/// read and parsed, the key the certificate's, none without a rediss://
/// URL).
pub(crate) fn check_files(args: &Args) -> Result<(), String> {
    #[cfg(feature = "redis")]
    if let Some(Bus::Redis(config)) = bus(args) {
        config.check_tls().map_err(|e| e.to_string())?;
        // Made, not started: nothing connects.
        tether_redis::RedisBridge::new(config).map_err(|e| e.to_string())?;
    }
    let _ = args;
    Ok(())
}

/// Warns about the bus options, which the echo has no use for.
pub(crate) fn warn_unused(args: &Args) {
    let _ = args;
    #[cfg(feature = "redis")]
    if args.redis.redis.is_some() {
        log::warn!("--redis has no effect with --app echo");
    }
    #[cfg(feature = "nats")]
    if args.nats.nats.is_some() {
        log::warn!("--nats has no effect with --app echo");
    }
    #[cfg(feature = "rabbitmq")]
    if args.rabbitmq.rabbitmq_url.is_some() {
        log::warn!("--rabbitmq-url has no effect with --app echo");
    }
}
