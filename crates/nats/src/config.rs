//! The bridge's settings.

use std::time::Duration;

/// How the bridge reaches NATS and lays out the topics in JetStream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The server(s): `nats://HOST:PORT`, several separated by commas
    /// (the nodes of a NATS cluster; the client moves to another when one
    /// is lost). Credentials in the URL (`nats://USER:PASS@HOST:PORT`)
    /// are passed on and never logged.
    pub url: String,
    /// The subjects' prefix, one or more tokens of ASCII letters, digits,
    /// `_` and `-` joined by `.` (default `tether`): topic `news` is the
    /// subject `tether.topic.news`. The JetStream stream is named after
    /// it (`.` made `_`). Nodes that share topics use the same prefix.
    pub prefix: String,
    /// How many of a topic's events a node hands its loops when it starts
    /// to follow the topic; the stream keeps one more per subject
    /// (`max_msgs_per_subject`), so that the id before the backlog is
    /// always known exactly.
    pub history_events: usize,
    /// At most this many bytes of event data in that backlog.
    pub history_bytes: usize,
    /// The stream's replicas when the bridge creates it (1, or 3 on a
    /// NATS cluster of three or more nodes).
    pub replicas: usize,
    /// How long JetStream remembers a publish key (`Nats-Msg-Id`), when
    /// the bridge creates the stream: JetStream's window is a time, not
    /// the backlog (see the crate's documentation).
    pub duplicate_window: Duration,
    /// Publishes waiting for the bridge's thread at most; more are
    /// refused (`503`).
    pub max_queued_publishes: usize,
    /// How long this node's presence entries (who is subscribed here)
    /// live in the presence bucket unless written again; they are written
    /// again every third of it, so a node that dies has its members leave
    /// the other nodes' lists within about this long.
    pub presence_ttl: Duration,
    /// How long a request to NATS (a publish's acknowledgement, a stream
    /// lookup) may take before it counts as failed.
    pub request_timeout: Duration,
}

impl NatsConfig {
    /// The defaults, for this server.
    ///
    /// ```
    /// let config = tether_nats::NatsConfig::new("nats://127.0.0.1:4222");
    /// assert_eq!(config.prefix, "tether");
    /// assert_eq!(config.stream_name(), "tether");
    /// ```
    pub fn new(url: impl Into<String>) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            prefix: "tether".to_owned(),
            history_events: 1000,
            history_bytes: 1 << 20,
            replicas: 1,
            duplicate_window: Duration::from_secs(600),
            max_queued_publishes: 10_000,
            presence_ttl: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// The same settings with the backlog bounds of the hub's settings
    /// (the largest of its namespaces' too), so that what JetStream keeps
    /// is what a subscriber may replay.
    pub fn backlog(mut self, hub: &tether_hub::Config) -> NatsConfig {
        (self.history_events, self.history_bytes) = tether_bus::runtime::backlog_bounds(hub);
        self
    }

    /// The JetStream stream's name: the prefix with `.` made `_`.
    pub fn stream_name(&self) -> String {
        self.prefix.replace('.', "_")
    }

    /// The server list with any password hidden, for the logs.
    pub fn server(&self) -> String {
        self.url.split(',').map(redact).collect::<Vec<_>>().join(",")
    }
}

/// `nats://user:pass@host` as `nats://user:***@host`; a token alone
/// (`nats://token@host`) as `nats://***@host`.
fn redact(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    if scheme.is_empty() {
        format!("{shown}@{host}")
    } else {
        format!("{scheme}://{shown}@{host}")
    }
}

#[cfg(test)]
mod tests {
    use tether_bus::runtime::is_valid_prefix;

    use super::*;

    #[test]
    fn passwords_are_hidden() {
        let mut config = NatsConfig::new("nats://u:secret@a:1, nats://tok@b:2,nats://c:3");
        assert_eq!(config.server(), "nats://u:***@a:1,nats://***@b:2,nats://c:3");
        config.url = "u:p@h:4222".into();
        assert_eq!(config.server(), "u:***@h:4222");
    }

    #[test]
    fn prefixes() {
        assert!(is_valid_prefix("tether"));
        assert!(is_valid_prefix("app-1.tether_x"));
        for bad in ["", "a..b", ".a", "a.", "a*", "a>", "a b", "a~b"] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
        }
        let mut config = NatsConfig::new("nats://h");
        config.prefix = "app.tether".into();
        assert_eq!(config.stream_name(), "app_tether");
    }

    #[test]
    fn backlog_bounds_follow_the_hub() {
        let mut hub = tether_hub::Config::default();
        hub.max_backlog_events = 10;
        hub.max_backlog_bytes = 500;
        let config = NatsConfig::new("nats://h").backlog(&hub);
        assert_eq!((config.history_events, config.history_bytes), (10, 500));
    }
}
