//! The settings every [`RuntimeBridge`](super::RuntimeBridge) has,
//! whatever its bus, and their checks; the reconnection backoff they
//! share.

use std::time::Duration;

use tether_backoff::Backoff;

/// The settings every such bridge has, borrowed from its own
/// ([`Backend::settings`](super::Backend::settings)).
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The names' prefix on the bus (checked by [`is_valid_prefix`]).
    pub prefix: &'a str,
    /// Publishes waiting for the bridge's thread at most; more are
    /// refused (`503`). At least 1.
    pub max_queued_publishes: usize,
    /// How long this node's presence entries count on the other nodes
    /// unless sent again. At least 100 ms.
    pub presence_ttl: Duration,
    /// How long a request to the bus may take before it counts as
    /// failed. More than zero.
    pub request_timeout: Duration,
}

impl Settings<'_> {
    /// Why one of them is out of range, if one is.
    ///
    /// # Errors
    ///
    /// The first out of range, in the order of the fields.
    pub fn check(&self) -> Result<(), &'static str> {
        if !is_valid_prefix(self.prefix) {
            return Err("the prefix must be tokens of letters, digits, _ and - joined by dots");
        }
        if self.max_queued_publishes == 0 {
            return Err("max_queued_publishes must be at least 1");
        }
        if self.presence_ttl < Duration::from_millis(100) {
            return Err("presence_ttl must be at least 100 ms");
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be more than zero");
        }
        Ok(())
    }
}

/// Whether `prefix` is one to 64 bytes of tokens of `[A-Za-z0-9_-]`
/// joined by single dots: a name on any of the buses (a NATS subject's
/// tokens, an AMQP short string with a topic after it).
pub fn is_valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 64
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// The backlog bounds a bridge hands its loops, `(events, bytes)`: the
/// hub's settings', or the largest of its namespaces' if larger, so that
/// what the bus keeps is what a subscriber may replay.
pub fn backlog_bounds(hub: &tether_hub::Config) -> (usize, usize) {
    let events = hub.namespaces.iter().map(|n| n.max_backlog_events);
    let bytes = hub.namespaces.iter().map(|n| n.max_backlog_bytes);
    (
        events.fold(hub.max_backlog_events, usize::max),
        bytes.fold(hub.max_backlog_bytes, usize::max),
    )
}

/// The reconnection backoff: 100 ms doubling to 5 s, each delay drawn
/// from its upper half (as the Redis bridge's by default).
pub fn reconnect_backoff() -> Backoff {
    Backoff::new()
        .initial(Duration::from_millis(100))
        .max(Duration::from_secs(5))
        .jitter(0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(prefix: &str) -> Settings<'_> {
        Settings {
            prefix,
            max_queued_publishes: 1,
            presence_ttl: Duration::from_millis(100),
            request_timeout: Duration::from_millis(1),
        }
    }

    #[test]
    fn prefixes() {
        assert!(is_valid_prefix("tether"));
        assert!(is_valid_prefix("app-1.tether_x"));
        assert!(is_valid_prefix(&"x".repeat(64)));
        for bad in ["", "a..b", ".a", "a.", "a*", "a>", "a b", "a~b", &"x".repeat(65)] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_first_setting_out_of_range_is_named() {
        assert_eq!(settings("tether").check(), Ok(()));
        assert!(settings("a*").check().unwrap_err().starts_with("the prefix"));
        let mut s = settings("a*");
        s.max_queued_publishes = 0;
        assert!(s.check().unwrap_err().starts_with("the prefix"), "in order");
        s.prefix = "a";
        assert_eq!(s.check(), Err("max_queued_publishes must be at least 1"));
        s.max_queued_publishes = 1;
        s.presence_ttl = Duration::from_millis(99);
        assert_eq!(s.check(), Err("presence_ttl must be at least 100 ms"));
        s.presence_ttl = Duration::from_secs(1);
        s.request_timeout = Duration::ZERO;
        assert_eq!(s.check(), Err("request_timeout must be more than zero"));
    }

    #[test]
    fn backlog_bounds_follow_the_hub_and_its_namespaces() {
        let mut hub = tether_hub::Config::default();
        hub.max_backlog_events = 10;
        hub.max_backlog_bytes = 500;
        assert_eq!(backlog_bounds(&hub), (10, 500));
    }

    #[test]
    fn the_backoff_starts_at_100_ms_and_stops_at_5_s() {
        let backoff = reconnect_backoff();
        assert_eq!(backoff.delay(0), Duration::from_millis(100));
        assert_eq!(backoff.delay(30), Duration::from_secs(5));
    }
}
