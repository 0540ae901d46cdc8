//! The configuration connections share: limits and timers made ready
//! once, and the epoch their timers count from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;

/// A [`Config`] made ready once for many connections: each connection
/// made from it with [`Connection::with_shared`] holds a pointer to it
/// rather than its own copy of the limits (a server with thousands of
/// idle connections keeps them all small this way). Cloning it is cheap.
///
/// [`Connection::with_shared`]: crate::connection::Connection::with_shared
///
/// ```
/// use std::time::Instant;
/// use tether_ws::{Config, Connection, Role, SharedConfig};
///
/// let now = Instant::now();
/// let shared = SharedConfig::new(Config::default().max_fragments(10), now);
/// let a = Connection::with_shared(Role::Server, &shared, now);
/// let b = Connection::with_shared(Role::Server, &shared, now);
/// assert_eq!(a.config(), b.config());
/// assert_eq!(a.config().max_fragments, 10);
/// ```
#[derive(Debug, Clone)]
pub struct SharedConfig(pub(super) Arc<Shared>);

#[derive(Debug)]
pub(super) struct Shared {
    limits: Limits,
    pub(super) max_frame_size: u64,
    /// What connection timers count from. Any instant works, before or
    /// after it: the count is signed.
    epoch: Instant,
}

impl SharedConfig {
    /// `config`, ready to be shared. `epoch` is any instant near the
    /// times the connections will see (the time now, say): their timers
    /// are kept as nanoseconds from it, up to 292 years either way.
    pub fn new(config: Config, epoch: Instant) -> SharedConfig {
        SharedConfig(Arc::new(Shared {
            limits: Limits::new(&config),
            max_frame_size: config.max_frame_size,
            epoch,
        }))
    }

    /// The limits and timers (timers to the millisecond).
    pub fn config(&self) -> Config {
        let limits = &self.0.limits;
        Config::DEFAULT
            .max_frame_size(self.0.max_frame_size)
            .max_message_size(limits.max_message_size)
            .max_fragments(limits.max_fragments)
            .ping_interval(limits.ping_interval())
            .idle_timeout(limits.idle_timeout())
            .close_timeout(limits.close_timeout())
    }

    pub(super) fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// `at` as signed nanoseconds from the epoch (saturating beyond 292
    /// years).
    pub(super) fn offset(&self, at: Instant) -> i64 {
        let epoch = self.0.epoch;
        match at.checked_duration_since(epoch) {
            Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            None => i64::try_from(epoch.duration_since(at).as_nanos()).map_or(i64::MIN, |before| -before),
        }
    }

    /// The instant `offset` names (see [`SharedConfig::offset`]).
    pub(super) fn instant(&self, offset: i64) -> Instant {
        let epoch = self.0.epoch;
        let span = Duration::from_nanos(offset.unsigned_abs());
        if offset >= 0 {
            epoch.checked_add(span)
        } else {
            epoch.checked_sub(span)
        }
        .unwrap_or(epoch)
    }
}

/// [`Config`] as connections share it: milliseconds in 32 bits (up to 49
/// days), 0 for "none", and the frame limit beside it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_message_size: usize,
    pub(super) max_fragments: u32,
    pub(super) ping_ms: u32,
    pub(super) idle_ms: u32,
    close_ms: u32,
}

impl Limits {
    fn new(config: &Config) -> Limits {
        let ms =
            |d: Option<Duration>| d.map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1));
        Limits {
            max_message_size: config.max_message_size,
            max_fragments: config.max_fragments,
            ping_ms: ms(config.ping_interval),
            idle_ms: ms(config.idle_timeout),
            close_ms: ms(Some(config.close_timeout)),
        }
    }

    fn ping_interval(&self) -> Option<Duration> {
        (self.ping_ms > 0).then(|| Duration::from_millis(self.ping_ms.into()))
    }

    fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_ms > 0).then(|| Duration::from_millis(self.idle_ms.into()))
    }

    pub(super) fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.close_ms.into())
    }
}
