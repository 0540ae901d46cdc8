//! The bridge's settings, with their defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where Redis is, how the streams are named and bounded, and how the
/// bridge waits and retries. Every field has a default
/// ([`RedisConfig::new`]).
///
/// Its `Debug` output hides a password in the URL.
///
/// ```
/// use tether_redis::RedisConfig;
///
/// let mut config = RedisConfig::new("redis://127.0.0.1:6379/0");
/// config.prefix = "myapp:".into();
/// // Keep as many events in Redis as each topic's replay backlog.
/// let config = config.backlog(&tether_hub::Config::default());
/// assert_eq!(config.max_len, 1000);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (or
    /// `redis+unix:///PATH`), or for a Redis Cluster
    /// `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]`: any
    /// of its nodes (the others are found from them; the credentials
    /// hold for every node). `rediss://` and `rediss+cluster://` are the
    /// same over TLS: the server's certificate must name the URL's host
    /// (on a cluster, each node's address as the cluster gives it) and
    /// chain to the system's roots or to [`RedisConfig::tls_ca`].
    ///
    /// With Redis Sentinel,
    /// `redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]`:
    /// the sentinels (asked in this order, over plain TCP or with
    /// [`RedisConfig::sentinel_tls`] over TLS, with
    /// [`RedisConfig::sentinel_password`] if they want one) name the
    /// master, whose role is checked before it is used; the credentials
    /// and database are the master's. Every lost connection asks them
    /// again, which follows a failover. `rediss+sentinel://` speaks TLS
    /// to the master (its certificate must name the address the
    /// sentinels give).
    pub url: String,
    /// With a `rediss://` URL (or [`RedisConfig::sentinel_tls`]), the CA
    /// certificates (a PEM file) the server's certificate must chain to,
    /// instead of the system's roots (`None`). Read when the bridge is
    /// made.
    pub tls_ca: Option<PathBuf>,
    /// With a `rediss://` URL (or [`RedisConfig::sentinel_tls`]), the
    /// certificate chain (a PEM file, this node's certificate first)
    /// shown to a server that asks for one (`tls-auth-clients yes`);
    /// needs [`RedisConfig::tls_key`].
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of
    /// [`RedisConfig::tls_cert`].
    pub tls_key: Option<PathBuf>,
    /// With a `redis+sentinel://` URL, the password the sentinels
    /// themselves ask for (`requirepass` in their configuration; `None`:
    /// they ask none). The URL's credentials are the master's.
    pub sentinel_password: Option<String>,
    /// With a `redis+sentinel://` (`rediss+sentinel://`) URL, ask the
    /// sentinels over TLS (false: plain TCP), for sentinels that listen on
    /// a `tls-port` alone. The same files as the master's
    /// ([`RedisConfig::tls_ca`], [`RedisConfig::tls_cert`],
    /// [`RedisConfig::tls_key`]) are used, and each sentinel's certificate
    /// must name its address as the URL gives it. The URL's scheme says
    /// only how the master is spoken to: `redis+sentinel://` with this on
    /// is TLS to the sentinels and plain TCP to the master. Refused
    /// ([`crate::Error::Tls`]) with any other URL.
    pub sentinel_tls: bool,
    /// Put before each topic's name to make its stream's key (`tether:`:
    /// topic `news` is the stream `tether:news`; on a Redis Cluster a
    /// hash tag comes between them, see [`RedisConfig::cluster_partitions`],
    /// and the prefix may not hold `{` or `}`).
    pub prefix: String,
    /// Each stream is trimmed to about this many entries, never fewer
    /// (`XADD ... MAXLEN ~`); 1000, as the hub's backlog.
    pub max_len: usize,
    /// The announcement stream every node reads (on one Redis server
    /// `PREFIX!bus`, on a partitioned cluster one per partition,
    /// `PREFIX{TAG}!bus`; each published event with its topic and id) is
    /// trimmed to about this many entries (100 000). A node whose reader
    /// falls further behind than this (or loses its connection) catches
    /// up from each followed topic's stream, which costs a command per
    /// followed topic: keep it above the events published during the
    /// longest stall you expect. Unused on a cluster with a slot per topic.
    pub bus_max_len: usize,
    /// Events a node fetches as a topic's backlog when it starts to follow
    /// it (1000); keep it at the hub's `max_backlog_events`.
    pub history_events: usize,
    /// Bytes (both encodings of each event) a node fetches as a topic's
    /// backlog at most (1 MiB); keep it at the hub's `max_backlog_bytes`.
    pub history_bytes: usize,
    /// How long connecting may take (2 s).
    pub connect_timeout: Duration,
    /// How long Redis may take to answer a command (5 s); past it the
    /// connection is dropped and made again.
    pub command_timeout: Duration,
    /// How long one `XREAD` waits for new entries (2 s). The reader is
    /// woken sooner when it has something to do; this bounds how long a
    /// dead connection can go unnoticed while idle.
    pub block: Duration,
    /// On a Redis Cluster, how long the reader waits between two reads of
    /// the followed streams when nothing came (20 ms): a blocking `XREAD`
    /// cannot span streams of several slots, so the reader polls each
    /// partition's bus (or each followed stream, with a slot per topic)
    /// with a plain `XREAD` instead. The latency of an event from another
    /// node is at most about this.
    pub cluster_poll: Duration,
    /// On a Redis Cluster, the partitions the topics are grouped into (16;
    /// at most 1024). A topic's keys carry its partition's hash tag, so
    /// that a publish adds its event and announces it on the partition's
    /// bus in one script, and a node reads one bus per partition it
    /// follows a topic of, however many topics those are. The partitions'
    /// slots are spread evenly, so more partitions spread the work over
    /// more primaries (each partition is on one). **Every node must have
    /// the same number**: a node with another reads other buses.
    ///
    /// 0 is the layout of earlier versions: each topic's name is its own
    /// hash tag (`PREFIX{TOPIC}`), publishes are not announced and a node
    /// polls each stream it follows (its reads grow with the topics it
    /// follows). The two layouts name keys differently: a cluster that
    /// holds streams written with 0 keeps 0, or its backlogs are not
    /// read. Unused on one server.
    pub cluster_partitions: usize,
    /// The first delay before reconnecting (100 ms); it doubles at each
    /// failed attempt, with jitter.
    pub backoff_min: Duration,
    /// The longest delay between attempts (5 s).
    pub backoff_max: Duration,
    /// Publishes waiting for the writer at most (10 000); more are refused
    /// (503).
    pub max_queued_publishes: usize,
    /// How long a node's presence entries live in Redis unless scored
    /// again (15 s; at least 30 ms). A node scores its own every third of
    /// it, so a node that dies (`kill -9`, a lost network) has its members
    /// leave everywhere within about this long.
    pub presence_ttl: Duration,
    /// How often the other nodes' members of a watched topic are read (1
    /// s): a join or leave on another node is seen within about this long.
    pub presence_poll: Duration,
    /// Replicas that must hold a publish before it is acknowledged (0, the
    /// default: acknowledged once its primary has it). Redis replicates
    /// after it answers, so a primary that fails before its replica has
    /// an event loses it, though it was acknowledged; with 1, the writer
    /// asks each primary it wrote to (`WAIT`) after every batch, and a
    /// batch that not enough replicas took within [`RedisConfig::wait_timeout`]
    /// is answered 503 (it may be delivered still: the publisher does not
    /// know, as with any 503).
    pub wait_replicas: usize,
    /// How long a batch waits for [`RedisConfig::wait_replicas`] (1 s).
    pub wait_timeout: Duration,
}

impl RedisConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            sentinel_password: None,
            sentinel_tls: false,
            prefix: "tether:".to_owned(),
            max_len: 1000,
            bus_max_len: 100_000,
            history_events: 1000,
            history_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            block: Duration::from_secs(2),
            cluster_poll: Duration::from_millis(20),
            cluster_partitions: 16,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_queued_publishes: 10_000,
            presence_ttl: Duration::from_secs(15),
            presence_poll: Duration::from_secs(1),
            wait_replicas: 0,
            wait_timeout: Duration::from_secs(1),
        }
    }

    /// Reads and checks the TLS files as [`crate::RedisBridge::new`]
    /// does, without connecting: each readable, parsed, the client key
    /// the certificate's, and none given for a URL without TLS.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Tls`], saying which file and what is wrong.
    ///
    /// ```
    /// let mut config = tether_redis::RedisConfig::new("redis://127.0.0.1:6379");
    /// config.tls_ca = Some("ca.pem".into());
    /// // A CA for a URL without TLS is a mistake, not something to ignore.
    /// assert!(config.check_tls().is_err());
    /// ```
    pub fn check_tls(&self) -> Result<(), crate::Error> {
        crate::tls::TlsFiles::load(self)
            .map(drop)
            .map_err(crate::Error::Tls)
    }

    /// The URL with its password, if any, replaced by `***`: what the
    /// logs show.
    ///
    /// ```
    /// let config = tether_redis::RedisConfig::new("redis://:hunter2@10.0.0.5:6379/1");
    /// assert_eq!(config.server(), "redis://:***@10.0.0.5:6379/1");
    /// ```
    pub fn server(&self) -> String {
        redact(&self.url)
    }

    /// Streams and fetched backlogs bounded as the hub's backlogs are
    /// (`max_len` and `history_events` from `max_backlog_events`,
    /// `history_bytes` from `max_backlog_bytes`), so that what Redis keeps
    /// is what a subscriber may replay. With namespaces of their own
    /// bounds ([`tether_hub::Config::namespaces`]), the largest bounds of
    /// all: each loop's replica of a topic then keeps the topic's own.
    pub fn backlog(mut self, hub: &tether_hub::Config) -> RedisConfig {
        let events = hub.namespaces.iter().map(|n| n.max_backlog_events);
        let bytes = hub.namespaces.iter().map(|n| n.max_backlog_bytes);
        let events = events.fold(hub.max_backlog_events, usize::max);
        self.max_len = events.max(1);
        self.history_events = events;
        self.history_bytes = bytes.fold(hub.max_backlog_bytes, usize::max);
        self
    }
}

/// The schemes of a Redis Cluster's URL (plain, over TLS), and those of
/// its nodes' URLs.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// The nodes of a `redis+cluster://` (`rediss+cluster://`) URL, each as a
/// `redis://` (`rediss://`) URL with the URL's credentials; `Ok(None)` for
/// another scheme. The reason when it is malformed never holds the URL
/// (which may hold a password).
pub(crate) fn cluster_nodes(url: &str) -> Result<Option<Vec<String>>, String> {
    let Some((rest, node_scheme)) = CLUSTER_SCHEMES
        .iter()
        .find_map(|(scheme, node)| Some((url.strip_prefix(scheme)?, *node)))
    else {
        return Ok(None);
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if !matches!(path, "" | "/" | "/0") {
        return Err("a Redis Cluster has only database 0".to_owned());
    }
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (
            authority.get(..=at).unwrap_or_default(),
            authority.get(at + 1..).unwrap_or_default(),
        ),
        None => ("", authority),
    };
    let mut nodes = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() || host.contains(['@', '/', '?', '#']) {
            return Err("expected redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]".to_owned());
        }
        nodes.push(format!("{node_scheme}{userinfo}{host}/"));
    }
    Ok(Some(nodes))
}

/// The URL with its password, if any, replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "***"),
            )
            .field("sentinel_tls", &self.sentinel_tls)
            .field("prefix", &self.prefix)
            .field("max_len", &self.max_len)
            .field("history_events", &self.history_events)
            .field("history_bytes", &self.history_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("block", &self.block)
            .field("cluster_poll", &self.cluster_poll)
            .field("cluster_partitions", &self.cluster_partitions)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("max_queued_publishes", &self.max_queued_publishes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact("redis://:hunter2@h:1/2"), "redis://:***@h:1/2");
        assert_eq!(redact("redis://me:hunter2@h"), "redis://me:***@h");
        assert_eq!(
            redact("redis+unix:///run/redis.sock"),
            "redis+unix:///run/redis.sock"
        );
        let debug = format!("{:?}", RedisConfig::new("redis://u:hunter2@h:1"));
        assert!(!debug.contains("hunter2"), "{debug}");
        let mut sentinel = RedisConfig::new("redis+sentinel://:hunter2@a:1,b:2/mymaster");
        sentinel.sentinel_password = Some("swordfish".into());
        assert_eq!(sentinel.server(), "redis+sentinel://:***@a:1,b:2/mymaster");
        let debug = format!("{sentinel:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("swordfish"),
            "{debug}"
        );
    }

    #[test]
    fn cluster_urls() {
        assert_eq!(cluster_nodes("redis://h:1/"), Ok(None));
        assert_eq!(
            cluster_nodes("redis+cluster://10.0.0.1:7000,10.0.0.2:7001"),
            Ok(Some(vec![
                "redis://10.0.0.1:7000/".to_owned(),
                "redis://10.0.0.2:7001/".to_owned()
            ]))
        );
        assert_eq!(
            cluster_nodes("redis+cluster://me:pw@a:1,b:2/"),
            Ok(Some(vec![
                "redis://me:pw@a:1/".to_owned(),
                "redis://me:pw@b:2/".to_owned()
            ]))
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://me:pw@a:1,b:2/"),
            Ok(Some(vec![
                "rediss://me:pw@a:1/".to_owned(),
                "rediss://me:pw@b:2/".to_owned()
            ]))
        );
        assert_eq!(
            cluster_nodes("redis+cluster://a:1/0"),
            Ok(Some(vec!["redis://a:1/".to_owned()]))
        );
        for bad in [
            "redis+cluster://",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://a:1/2",
            "redis+cluster://:pw@",
            "redis+cluster://a:1?x=y",
        ] {
            let why = cluster_nodes(bad).unwrap_err();
            assert!(!why.contains("pw"), "{why}");
        }
        assert_eq!(
            redact("redis+cluster://:hunter2@a:1,b:2"),
            "redis+cluster://:***@a:1,b:2"
        );
    }

    #[test]
    fn backlog_bounds_follow_the_hub() {
        let mut hub = tether_hub::Config::default();
        hub.max_backlog_events = 10;
        hub.max_backlog_bytes = 500;
        let config = RedisConfig::new("redis://h").backlog(&hub);
        assert_eq!(
            (config.max_len, config.history_events, config.history_bytes),
            (10, 10, 500)
        );
        hub.max_backlog_events = 0;
        assert_eq!(
            RedisConfig::new("redis://h").backlog(&hub).max_len,
            1,
            "never MAXLEN 0"
        );
        let mut chat = tether_hub::TopicLimits::new("chat.*", &hub);
        chat.max_backlog_events = 50;
        chat.max_backlog_bytes = 200;
        hub.namespaces.push(chat);
        let config = RedisConfig::new("redis://h").backlog(&hub);
        assert_eq!(
            (config.max_len, config.history_events, config.history_bytes),
            (50, 50, 500),
            "the largest bounds of all"
        );
    }
}
