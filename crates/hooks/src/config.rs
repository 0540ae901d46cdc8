//! What the hooks are configured with, and the errors a configuration can
//! have.

use std::time::Duration;

use crate::endpoint::Endpoint;
pub use crate::error::ConfigError;
use crate::protocol::HookKind;

/// The default time a hook's answer may take, from the ask: 2 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default number of worker threads (each with its keep-alive
/// connections): 16.
pub const DEFAULT_WORKERS: usize = 16;
/// The default bound of the shared queue, across all loops: 4096 asks.
pub const DEFAULT_QUEUE_BOUND: usize = 4096;
/// The default largest answer body: 64 KiB.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// One hook: where it is asked and how long an answer may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTarget {
    /// The URL.
    pub endpoint: Endpoint,
    /// From the ask to the answer, queueing included.
    pub timeout: Duration,
}

/// The configuration of [`Hooks`](crate::pool::Hooks): which hooks are asked
/// where, the pool and the queue.
///
/// ```
/// use std::time::Duration;
/// use tether_hooks::{Config, HookKind};
///
/// let config = Config::new()
///     .hook(HookKind::Connect, "http://10.0.0.5:8080/tether/connect", Duration::from_millis(500))?
///     .hook(HookKind::Publish, "http://10.0.0.5:8080/tether/publish", Duration::from_secs(1))?
///     .workers(8);
/// assert!(config.target(HookKind::Connect).is_some());
/// assert!(config.target(HookKind::Refresh).is_none());
/// # Ok::<(), tether_hooks::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    targets: [Option<HookTarget>; HookKind::ALL.len()],
    workers: usize,
    queue_bound: usize,
    max_body: usize,
    thread_name: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            targets: Default::default(),
            workers: DEFAULT_WORKERS,
            queue_bound: DEFAULT_QUEUE_BOUND,
            max_body: DEFAULT_MAX_BODY,
            thread_name: "tether-hook".to_string(),
        }
    }
}

impl Config {
    /// No hooks, the default pool, queue and body limit.
    pub fn new() -> Config {
        Config::default()
    }

    /// Asks the `kind` hook at `url` (see [`Endpoint::parse`]), with
    /// `timeout` for each answer (more than zero, at most an hour).
    pub fn hook(mut self, kind: HookKind, url: &str, timeout: Duration) -> Result<Config, ConfigError> {
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(ConfigError::BadTimeout { kind, timeout });
        }
        let endpoint = Endpoint::parse(url)?;
        if let Some(slot) = self.targets.get_mut(kind.index()) {
            *slot = Some(HookTarget { endpoint, timeout });
        }
        Ok(self)
    }

    /// The number of worker threads, each holding a keep-alive connection
    /// per backend it talks to: at most this many asks are in flight.
    pub fn workers(mut self, workers: usize) -> Config {
        self.workers = workers;
        self
    }

    /// How many asks may wait in the shared queue, across all loops.
    pub fn queue_bound(mut self, bound: usize) -> Config {
        self.queue_bound = bound;
        self
    }

    /// The largest answer body; a larger one is [`Malformed`](crate::answer::Unavailable::Malformed).
    pub fn max_body(mut self, bytes: usize) -> Config {
        self.max_body = bytes;
        self
    }

    /// The worker threads' names: `NAME-0`, `NAME-1`, ... (`tether-hook`
    /// unless set; Linux shows the first 15 bytes).
    pub fn thread_name(mut self, name: &str) -> Config {
        self.thread_name = name.to_string();
        self
    }

    /// The worker threads' name prefix.
    pub fn thread_prefix(&self) -> &str {
        &self.thread_name
    }

    /// The `kind` hook's target, if it is configured.
    pub fn target(&self, kind: HookKind) -> Option<&HookTarget> {
        self.targets.get(kind.index()).and_then(Option::as_ref)
    }

    /// The number of worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// The shared queue's bound.
    pub fn queue_limit(&self) -> usize {
        self.queue_bound
    }

    /// The largest answer body.
    pub fn body_limit(&self) -> usize {
        self.max_body
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.workers == 0 || self.workers > 1024 {
            return Err(ConfigError::BadSize("workers must be 1 to 1024"));
        }
        if self.queue_bound == 0 {
            return Err(ConfigError::BadSize("the queue bound must be at least 1"));
        }
        if self.max_body == 0 {
            return Err(ConfigError::BadSize("the body limit must be at least 1 byte"));
        }
        Ok(())
    }
}
