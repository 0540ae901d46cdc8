//! The bridge's settings.

use std::time::Duration;

/// How the bridge reaches RabbitMQ and lays out the topics in streams.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RabbitConfig {
    /// The server: `amqp://USER:PASS@HOST:PORT/VHOST` (the vhost
    /// URL-encoded, `%2f` for `/`), or the nodes of a cluster as
    /// addresses separated by commas, `amqp://USER:PASS@H1:P1,H2:P2/VHOST`
    /// (one user and vhost for all): the bridge connects to one, and to
    /// the next when it cannot or loses it. The password is never logged.
    pub url: String,
    /// The streams' prefix, one or more tokens of ASCII letters, digits,
    /// `_` and `-` joined by `.` (default `tether`): topic `news` is the
    /// stream `tether.topic.news`, the nodes' control exchange
    /// `tether.control` and the revocations' stream `tether.revoked`.
    /// Nodes that share topics use the same prefix.
    pub prefix: String,
    /// How many of a topic's events a node hands its loops when it starts
    /// to follow the topic.
    pub history_events: usize,
    /// At most this many bytes of event data in that backlog.
    pub history_bytes: usize,
    /// A topic's stream keeps about this many bytes (`x-max-length-bytes`,
    /// when the bridge creates it): retention drops whole segments, the
    /// oldest first, so it keeps between this less a segment and this.
    pub stream_max_bytes: u64,
    /// The size of a stream's segment files
    /// (`x-stream-max-segment-size-bytes`), the unit retention drops.
    pub segment_bytes: u64,
    /// The replicas of each stream the bridge creates
    /// (`x-initial-cluster-size`): 1, or up to the cluster's nodes. The
    /// broker confirms a publish once a majority of them hold it.
    pub replicas: usize,
    /// Publishes waiting for the bridge's thread at most; more are
    /// refused (`503`).
    pub max_queued_publishes: usize,
    /// How long this node's presence entries (who is subscribed here)
    /// count on the other nodes unless sent again; they are sent again
    /// every third of it.
    pub presence_ttl: Duration,
    /// How long a request to RabbitMQ (a publish's confirmation and
    /// read-back, a stream's declaration, a backlog) may take before it
    /// counts as failed.
    pub request_timeout: Duration,
}

impl RabbitConfig {
    /// The defaults, for this server.
    ///
    /// ```
    /// let config = tether_rabbitmq::RabbitConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f");
    /// assert_eq!(config.prefix, "tether");
    /// assert_eq!(config.stream_of("news"), "tether.topic.news");
    /// assert_eq!(config.server(), "amqp://guest:***@127.0.0.1:5672/%2f");
    /// ```
    pub fn new(url: impl Into<String>) -> RabbitConfig {
        RabbitConfig {
            url: url.into(),
            prefix: "tether".to_owned(),
            history_events: 1000,
            history_bytes: 1 << 20,
            stream_max_bytes: 64 << 20,
            segment_bytes: 8 << 20,
            replicas: 1,
            max_queued_publishes: 10_000,
            presence_ttl: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings with the backlog bounds of the hub's settings
    /// (the largest of its namespaces' too).
    pub fn backlog(mut self, hub: &tether_hub::Config) -> RabbitConfig {
        (self.history_events, self.history_bytes) = tether_bus::runtime::backlog_bounds(hub);
        self
    }

    /// The stream of a topic.
    pub fn stream_of(&self, topic: &str) -> String {
        format!("{}.topic.{topic}", self.prefix)
    }

    /// The fanout exchange of what nodes tell each other besides events.
    pub fn control_exchange(&self) -> String {
        format!("{}.control", self.prefix)
    }

    /// The stream of revocations.
    pub fn revoked_stream(&self) -> String {
        format!("{}.revoked", self.prefix)
    }

    /// The URL with its password hidden, for the logs.
    pub fn server(&self) -> String {
        hide_password(&self.url)
    }

    /// One URL per address of [`RabbitConfig::url`], in its order (one
    /// for a single server).
    ///
    /// ```
    /// let config = tether_rabbitmq::RabbitConfig::new("amqp://u:p@a:5672,b:5673/%2f");
    /// assert_eq!(config.urls(), ["amqp://u:p@a:5672/%2f", "amqp://u:p@b:5673/%2f"]);
    /// ```
    pub fn urls(&self) -> Vec<String> {
        let url = self.url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return vec![url.to_owned()];
        };
        let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
        let path = path.map(|p| format!("/{p}")).unwrap_or_default();
        hosts
            .split(',')
            .map(|host| format!("{scheme}://{userinfo}{host}{path}"))
            .collect()
    }
}

/// `url` with its password hidden, for the logs.
pub(crate) fn hide_password(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let shown = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("{scheme}://{shown}{path}")
}

#[cfg(test)]
mod tests {
    use tether_bus::runtime::is_valid_prefix;

    use super::*;

    #[test]
    fn passwords_are_hidden() {
        let config = RabbitConfig::new("amqp://u:s@cr:et@h:5672/%2f");
        assert_eq!(config.server(), "amqp://u:***@h:5672/%2f");
        assert_eq!(RabbitConfig::new("amqp://h").server(), "amqp://h");
        assert_eq!(RabbitConfig::new("amqp://u@h/v").server(), "amqp://u@h/v");
        assert_eq!(
            RabbitConfig::new("amqp://u:s@a:1,b:2/%2f").server(),
            "amqp://u:***@a:1,b:2/%2f"
        );
    }

    #[test]
    fn a_cluster_is_one_url_per_address() {
        assert_eq!(RabbitConfig::new("amqp://h").urls(), ["amqp://h"]);
        assert_eq!(
            RabbitConfig::new("amqp://a,b:5673,[::1]:5674").urls(),
            ["amqp://a", "amqp://b:5673", "amqp://[::1]:5674"]
        );
        assert_eq!(
            RabbitConfig::new(" amqp://u:p@w@a:1,b:2/v ").urls(),
            ["amqp://u:p@w@a:1/v", "amqp://u:p@w@b:2/v"]
        );
    }

    #[test]
    fn prefixes_and_names() {
        assert!(is_valid_prefix("tether"));
        assert!(is_valid_prefix("app-1.tether_x"));
        for bad in ["", "a..b", ".a", "a.", "a*", "a b", &"x".repeat(65)] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
        }
        let longest = format!(
            "{}.topic.{}",
            "x".repeat(64),
            "t".repeat(tether_hub::MAX_TOPIC_LEN)
        );
        assert!(longest.len() <= 255, "an AMQP short string");
        let config = RabbitConfig::new("amqp://h");
        assert_eq!(config.control_exchange(), "tether.control");
        assert_eq!(config.revoked_stream(), "tether.revoked");
    }

    #[test]
    fn backlog_bounds_follow_the_hub() {
        let mut hub = tether_hub::Config::default();
        hub.max_backlog_events = 10;
        hub.max_backlog_bytes = 500;
        let config = RabbitConfig::new("amqp://h").backlog(&hub);
        assert_eq!((config.history_events, config.history_bytes), (10, 500));
    }
}
