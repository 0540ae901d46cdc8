//! Limits and timers, with the defaults from tether's design.

use std::time::Duration;

/// Limits and keepalive settings for a [`Connection`](crate::connection::Connection).
///
/// Every limit has a default and can be changed; exceeding one fails the
/// connection with close code 1009 and an [`Error::Limit`](crate::error::Error::Limit) that names
/// the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest payload one frame may announce (default 16 MiB).
    pub max_frame_size: u64,
    /// The largest message, after reassembly and after any extension has
    /// decoded it (default 64 MiB).
    pub max_message_size: usize,
    /// The most frames one message may arrive in (default 100 000). Many
    /// tiny fragments cost far more to process than their bytes suggest.
    pub max_fragments: u32,
    /// Send a ping when nothing has arrived for this long (default 30 s;
    /// `None` sends none).
    pub ping_interval: Option<Duration>,
    /// Give up on a peer from which nothing has arrived for this long,
    /// pings unanswered included (default 60 s; `None` waits forever).
    pub idle_timeout: Option<Duration>,
    /// How long to wait for the peer's close frame after sending ours
    /// (default 5 s).
    pub close_timeout: Duration,
}

impl Config {
    /// The defaults: 16 MiB frames, 64 MiB messages, 100 000 fragments,
    /// a ping after 30 s of silence, given up after 60 s, 5 s to answer a
    /// close.
    pub const DEFAULT: Config = Config {
        max_frame_size: 16 << 20,
        max_message_size: 64 << 20,
        max_fragments: 100_000,
        ping_interval: Some(Duration::from_secs(30)),
        idle_timeout: Some(Duration::from_secs(60)),
        close_timeout: Duration::from_secs(5),
    };

    /// Sets the frame size limit.
    pub const fn max_frame_size(mut self, bytes: u64) -> Config {
        self.max_frame_size = bytes;
        self
    }

    /// Sets the message size limit.
    pub const fn max_message_size(mut self, bytes: usize) -> Config {
        self.max_message_size = bytes;
        self
    }

    /// Sets the fragment count limit.
    pub const fn max_fragments(mut self, count: u32) -> Config {
        self.max_fragments = count;
        self
    }

    /// Sets (or, with `None`, turns off) the keepalive ping.
    pub const fn ping_interval(mut self, interval: Option<Duration>) -> Config {
        self.ping_interval = interval;
        self
    }

    /// Sets (or, with `None`, turns off) the idle timeout.
    pub const fn idle_timeout(mut self, timeout: Option<Duration>) -> Config {
        self.idle_timeout = timeout;
        self
    }

    /// Sets how long to wait for the peer's close frame.
    pub const fn close_timeout(mut self, timeout: Duration) -> Config {
        self.close_timeout = timeout;
        self
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::DEFAULT
    }
}

/// A source of masking keys for the client role.
///
/// RFC 6455 section 5.3 wants keys an intermediary cannot predict, so they
/// should come from a strong random source; the caller supplies it, which
/// keeps this crate free of any RNG dependency.
pub type MaskSource = Box<dyn FnMut() -> [u8; 4] + Send>;

/// Which end of the connection this is.
pub enum Role {
    /// Receives masked frames, sends unmasked ones, closes TCP first.
    Server,
    /// Receives unmasked frames, masks every frame it sends with keys from
    /// the given source.
    Client(MaskSource),
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Server => "Server",
            Role::Client(_) => "Client",
        })
    }
}
