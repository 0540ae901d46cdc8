//! What the loops' brokers and the bridge's threads share: the settings,
//! the channels to the threads, and the counters behind the status and
//! the metrics (atomics, never locks).

use std::fmt::{self, Write as _};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::RedisError;
use tether_backoff::{Attempts, Backoff};
use tether_bus::{Bus, Counters, ReplicaCount, Replicas};
pub(crate) use tether_bus::{Control, Post, SharedLimits, add};
use tether_hub::{BrokerState, EventId, Publish, ReplyTo};

use crate::config::RedisConfig;
use crate::connection::{Client, Con};

/// To the writer thread.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// `XADD` it.
    Publish(Publish),
    /// Wake the reader (it has messages waiting).
    Wake,
    /// Stop (after waking the reader one last time).
    Stop,
}

/// To the reader thread.
#[derive(Debug)]
pub(crate) enum ReaderMsg {
    /// A loop's first subscriber of the topic arrived: send it `Ready`,
    /// then the topic's events.
    Follow { topic: Arc<str>, loop_index: usize },
    /// A loop's last subscriber of the topic left.
    Unfollow { topic: Arc<str>, loop_index: usize },
    /// The writer added a publish as `id` (or, `duplicate`, found its
    /// key remembered for the entry `id`): answer `reply` once the event
    /// has been delivered to that loop (if it follows the topic).
    Added {
        topic: Arc<str>,
        id: EventId,
        reply: ReplyTo,
        duplicate: bool,
    },
    /// Stop.
    Stop,
}

/// Counters and flags, written by the threads, read by anyone: those
/// every bus keeps, and Redis's own.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Those every bus keeps (reached through `Deref`).
    pub(crate) bus: Counters,
    base: Instant,
    pub(crate) writer_up: AtomicBool,
    pub(crate) reader_up: AtomicBool,
    pub(crate) presence_up: AtomicBool,
    pub(crate) presence_reconnects: AtomicU64,
    /// Milliseconds from `base` to the last error, plus one; 0: none yet.
    last_error: AtomicU64,
    /// What the last failed connection attempt or lost connection said,
    /// for `/readyz`. A lock, unlike the rest: written only when a
    /// connection fails, read only by a probe, never on a delivery's path.
    last_error_text: Mutex<Option<String>>,
    /// The last wake-up id used.
    pub(crate) wake_seq: AtomicU64,
    /// The replicas the writer last counted (with `wait_replicas`), or
    /// [`REPLICAS_NOT_COUNTED`], or [`REPLICAS_REFUSED`].
    pub(crate) replicas: AtomicU64,
    /// The writer has counted as many replicas as `wait_replicas` asks,
    /// at least once since the bridge was made.
    pub(crate) replicas_seen: AtomicBool,
}

/// [`Stats::replicas`]: not counted on the writer's connection yet.
pub(crate) const REPLICAS_NOT_COUNTED: u64 = u64::MAX;
/// [`Stats::replicas`]: Redis refused to say (an ACL).
pub(crate) const REPLICAS_REFUSED: u64 = u64::MAX - 1;

impl Deref for Stats {
    type Target = Counters;

    fn deref(&self) -> &Counters {
        &self.bus
    }
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            bus: Counters::default(),
            base: Instant::now(),
            writer_up: AtomicBool::new(false),
            reader_up: AtomicBool::new(false),
            presence_up: AtomicBool::new(false),
            presence_reconnects: AtomicU64::new(0),
            last_error: AtomicU64::new(0),
            last_error_text: Mutex::new(None),
            wake_seq: AtomicU64::new(0),
            replicas: AtomicU64::new(REPLICAS_NOT_COUNTED),
            replicas_seen: AtomicBool::new(false),
        }
    }

    /// The replicas `required` of the bus against those the writer last
    /// counted.
    pub(crate) fn replicas(&self, required: usize) -> Replicas {
        let online = if self.writer_up.load(Ordering::Relaxed) {
            match self.replicas.load(Ordering::Relaxed) {
                REPLICAS_NOT_COUNTED => ReplicaCount::NotCounted,
                REPLICAS_REFUSED => ReplicaCount::Refused,
                n => ReplicaCount::Online(usize::try_from(n).unwrap_or(usize::MAX)),
            }
        } else {
            ReplicaCount::Away
        };
        Replicas {
            required,
            online,
            seen: self.replicas_seen.load(Ordering::Relaxed),
        }
    }

    /// Counts an error, `what` saying which connection and why.
    pub(crate) fn error(&self, what: String) {
        add(&self.errors, 1);
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_error.store(ms + 1, Ordering::Relaxed);
        if let Ok(mut text) = self.last_error_text.lock() {
            *text = Some(what);
        }
    }

    /// What the last error said, if there was one.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error_text.lock().ok().and_then(|text| text.clone())
    }

    /// Both connections the hub needs are up (the presence one is not
    /// among them).
    pub(crate) fn connected(&self) -> bool {
        self.writer_up.load(Ordering::Relaxed) && self.reader_up.load(Ordering::Relaxed)
    }

    pub(crate) fn state(&self) -> BrokerState {
        self.bus.state(self.connected())
    }

    pub(crate) fn status(&self) -> Status {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last_error = load(&self.last_error);
        Status {
            state: self.state(),
            writer_connected: self.writer_up.load(Ordering::Relaxed),
            reader_connected: self.reader_up.load(Ordering::Relaxed),
            presence_connected: self.presence_up.load(Ordering::Relaxed),
            reconnects: load(&self.reconnects),
            presence_reconnects: load(&self.presence_reconnects),
            errors: load(&self.errors),
            last_error_age: (last_error > 0).then(|| {
                self.base
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last_error - 1))
            }),
            resyncs: load(&self.resyncs),
            added: load(&self.added),
            duplicates: load(&self.duplicates),
            refused: load(&self.refused),
            read: load(&self.read),
            followed_topics: load(&self.followed),
            replicas: match load(&self.replicas) {
                REPLICAS_NOT_COUNTED | REPLICAS_REFUSED => None,
                n => Some(n),
            },
        }
    }
}

/// The bridge at one moment: its connections and counters. `/metrics`
/// shows the same (see [`crate::RedisBroker`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Status {
    /// [`BrokerState::Up`] when both connections are, `Connecting` while
    /// either (re)connects, `Down` once shut down.
    pub state: BrokerState,
    /// The writer's connection (publishes) is up.
    pub writer_connected: bool,
    /// The reader's connection (deliveries) is up.
    pub reader_connected: bool,
    /// The presence thread's connection (members) is up.
    pub presence_connected: bool,
    /// The writer's and reader's connections made again after being
    /// lost.
    pub reconnects: u64,
    /// The presence connection made again after being lost (it only
    /// notices a loss when it has something to do).
    pub presence_reconnects: u64,
    /// Failed connection attempts and lost connections.
    pub errors: u64,
    /// Time since the last of those, if any.
    pub last_error_age: Option<Duration>,
    /// Topics resynchronised because continuity was lost (each makes its
    /// subscribers resume).
    pub resyncs: u64,
    /// Events this node added to Redis.
    pub added: u64,
    /// Keyed publishes of this node whose key Redis remembered (nothing
    /// added: answered as duplicates).
    pub duplicates: u64,
    /// Publishes refused (Redis unreachable, it refused the `XADD`, or
    /// fewer replicas than [`crate::RedisConfig::wait_replicas`] took it).
    pub refused: u64,
    /// Events read from Redis and delivered to this node's loops.
    pub read: u64,
    /// Topics this node reads (followed by at least one loop).
    pub followed_topics: u64,
    /// The replicas online, as the writer last counted them (`INFO
    /// replication`; on a cluster, the fewest of any primary's): only
    /// with [`crate::RedisConfig::wait_replicas`], once counted.
    pub replicas: Option<u64>,
}

impl Status {
    /// The status in the Prometheus text format, for `/metrics`.
    pub(crate) fn write_metrics(&self, out: &mut String) {
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let flag = |b: bool| u8::from(b).to_string();
        metric(
            "tether_redis_connected",
            "gauge",
            "Whether each connection to Redis is up (1) or reconnecting (0).",
            &[
                ("{connection=\"writer\"}", flag(self.writer_connected)),
                ("{connection=\"reader\"}", flag(self.reader_connected)),
                ("{connection=\"presence\"}", flag(self.presence_connected)),
            ],
        );
        metric(
            "tether_redis_reconnects_total",
            "counter",
            "The writer's and reader's connections to Redis made again after being lost.",
            &[("", self.reconnects.to_string())],
        );
        metric(
            "tether_redis_presence_reconnects_total",
            "counter",
            "The presence connection to Redis made again after being lost.",
            &[("", self.presence_reconnects.to_string())],
        );
        metric(
            "tether_redis_errors_total",
            "counter",
            "Failed connection attempts and lost connections to Redis.",
            &[("", self.errors.to_string())],
        );
        if let Some(age) = self.last_error_age {
            metric(
                "tether_redis_last_error_age_seconds",
                "gauge",
                "Seconds since the last Redis error (absent before the first).",
                &[("", format!("{:.3}", age.as_secs_f64()))],
            );
        }
        metric(
            "tether_redis_resyncs_total",
            "counter",
            "Topics resynchronised after continuity with Redis was lost (their subscribers resume).",
            &[("", self.resyncs.to_string())],
        );
        metric(
            "tether_redis_events_added_total",
            "counter",
            "Events this node added to Redis streams.",
            &[("", self.added.to_string())],
        );
        metric(
            "tether_redis_duplicates_total",
            "counter",
            "Keyed publishes of this node whose publish key Redis remembered (nothing added).",
            &[("", self.duplicates.to_string())],
        );
        metric(
            "tether_redis_publishes_refused_total",
            "counter",
            "Publishes refused because Redis was unreachable or refused them, or too few replicas took them.",
            &[("", self.refused.to_string())],
        );
        metric(
            "tether_redis_events_read_total",
            "counter",
            "Events read from Redis streams and delivered to this node's loops.",
            &[("", self.read.to_string())],
        );
        if let Some(replicas) = self.replicas {
            metric(
                "tether_redis_replicas",
                "gauge",
                "Replicas online of the Redis primary (the fewest of any primary of a cluster), as last counted; only with --redis-wait-replicas.",
                &[("", replicas.to_string())],
            );
        }
        metric(
            "tether_redis_followed_topics",
            "gauge",
            "Topics this node reads from Redis.",
            &[("", self.followed_topics.to_string())],
        );
    }
}

/// What the loops' brokers and the bridge's threads share (settings,
/// connections, channels, counters): the bus behind every
/// [`crate::RedisBroker`] (made by [`crate::RedisBridge`]).
pub struct RedisBus {
    pub(crate) config: RedisConfig,
    pub(crate) keys: crate::commands::Keys,
    pub(crate) client: Client,
    /// Where Redis is, for the logs (no password).
    pub(crate) server: String,
    pub(crate) wake_key: String,
    /// This node's name in the presence sets (and its wake key's).
    pub(crate) node_id: u64,
    pub(crate) writer_tx: SyncSender<WriterMsg>,
    pub(crate) reader_tx: Sender<ReaderMsg>,
    pub(crate) presence_tx: Sender<Control>,
    pub(crate) stats: Stats,
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Bus for RedisBus {
    const KIND: &'static str = "redis";
    type Status = Status;

    fn counters(&self) -> &Counters {
        &self.stats.bus
    }

    fn connected(&self) -> bool {
        self.stats.connected()
    }

    /// Publishes need the writer only: the reader answers them once back.
    fn publishing(&self) -> bool {
        self.stats.writer_up.load(Ordering::Relaxed)
    }

    fn try_publish(&self, publish: Publish) -> bool {
        self.writer_tx.try_send(WriterMsg::Publish(publish)).is_ok()
    }

    /// Follows and unfollows to the reader (woken), the rest to the
    /// presence thread.
    fn control(&self, message: Control) {
        match message {
            Control::Follow {
                topic,
                loop_index,
                follow,
            } => {
                let _ = self.reader_tx.send(if follow {
                    ReaderMsg::Follow { topic, loop_index }
                } else {
                    ReaderMsg::Unfollow { topic, loop_index }
                });
                self.wake_reader();
            }
            message => {
                let _ = self.presence_tx.send(message);
            }
        }
    }

    fn status(&self) -> Status {
        self.stats.status()
    }

    fn last_error(&self) -> Option<String> {
        self.stats.last_error()
    }

    /// With Sentinel: the master's name, and where it was last found.
    fn detail(&self) -> Option<String> {
        self.client.sentinel().map(crate::sentinel::Sentinel::describe)
    }

    fn write_metrics(&self, out: &mut String) {
        self.stats.status().write_metrics(out);
    }
}

impl RedisBus {
    /// Where Redis is, for the logs: the URL without its password, and
    /// with Sentinel the master last found.
    pub(crate) fn server_now(&self) -> String {
        match self.client.sentinel() {
            Some(sentinel) => format!("{} ({})", self.server, sentinel.describe()),
            None => self.server.clone(),
        }
    }

    /// Asks the writer to wake the reader; a full queue will wake it
    /// anyway once drained. On a cluster the reader never waits in Redis,
    /// but on its channel, which wakes it.
    pub(crate) fn wake_reader(&self) {
        if !self.keys.cluster {
            let _ = self.writer_tx.try_send(WriterMsg::Wake);
        }
    }
}

/// One of the two connections, with its reconnection schedule and what
/// the logs and metrics say about it.
pub(crate) struct Link {
    name: &'static str,
    shared: Arc<RedisBus>,
    backoff: Attempts,
    next_attempt: Instant,
    /// When it was lost (`None` while up, or before the first connection).
    lost_at: Option<Instant>,
    /// When it was last made.
    up_since: Option<Instant>,
    connected_once: bool,
    failures: u32,
}

/// How long a connection must have lasted for the reconnection schedule
/// to start over when it is lost.
const STABLE: Duration = Duration::from_secs(1);

/// The reconnection schedule: `min` (at least 1 ms), doubling up to `max`
/// (at least `min`), each delay drawn at random from its upper half (so
/// that nodes that lost Redis together do not all come back at the same
/// instant).
fn reconnect_schedule(min: Duration, max: Duration) -> Attempts {
    let min = min.max(Duration::from_millis(1));
    Attempts::new(
        Backoff::new()
            .initial(min)
            .max(max.max(min))
            .factor(2.0)
            .jitter(0.5),
    )
}

impl Link {
    pub(crate) fn new(name: &'static str, shared: Arc<RedisBus>) -> Link {
        let backoff = reconnect_schedule(shared.config.backoff_min, shared.config.backoff_max);
        Link {
            name,
            shared,
            backoff,
            next_attempt: Instant::now(),
            lost_at: None,
            up_since: None,
            connected_once: false,
            failures: 0,
        }
    }

    fn flag(&self) -> &AtomicBool {
        match self.name {
            "writer" => &self.shared.stats.writer_up,
            "presence" => &self.shared.stats.presence_up,
            _ => &self.shared.stats.reader_up,
        }
    }

    /// How long until the next attempt is due (zero: now).
    pub(crate) fn wait(&self) -> Duration {
        self.next_attempt.saturating_duration_since(Instant::now())
    }

    /// One attempt to connect, with the timeouts set (`read_timeout`: how
    /// long a reply may take).
    pub(crate) fn connect(&mut self, read_timeout: Duration) -> Option<Con> {
        let config = &self.shared.config;
        let prepare = |con: redis::Connection| self.prepare(con, read_timeout);
        let result = match &self.shared.client {
            Client::Single(client) => client
                .get_connection_with_timeout(config.connect_timeout)
                .and_then(prepare),
            // The master the sentinels name now: a lost connection asks
            // them again, which follows a failover.
            Client::Sentinel(sentinel) => sentinel.connect(config.connect_timeout).and_then(prepare),
            Client::Cluster(client) => client.get_connection().and_then(|con| {
                con.set_read_timeout(Some(read_timeout))?;
                con.set_write_timeout(Some(config.command_timeout))?;
                Ok(Con::Cluster(Box::new(con)))
            }),
        };
        match result {
            Ok(con) => {
                self.connected();
                Some(con)
            }
            Err(e) => {
                self.failed(&e);
                None
            }
        }
    }

    /// A connection to one server made ready: its timeouts set, and
    /// named, so that `CLIENT LIST` shows what it is (an ACL that forbids
    /// it is no reason to fail).
    fn prepare(&self, mut con: redis::Connection, read_timeout: Duration) -> Result<Con, RedisError> {
        con.set_read_timeout(Some(read_timeout))?;
        con.set_write_timeout(Some(self.shared.config.command_timeout))?;
        let name = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("tether-redis-{}", self.name))
            .query::<redis::Value>(&mut con);
        match name {
            Err(e) if !crate::commands::is_server_error(&e) => Err(e),
            _ => Ok(Con::Single(con)),
        }
    }

    fn connected(&mut self) {
        let server = &self.shared.server_now();
        match self.lost_at.take() {
            Some(lost) => {
                let counter = match self.name {
                    "presence" => &self.shared.stats.presence_reconnects,
                    _ => &self.shared.stats.reconnects,
                };
                add(counter, 1);
                log::info!(
                    "redis: {} reconnected to {server} after {:.1} s ({} failed attempts)",
                    self.name,
                    lost.elapsed().as_secs_f64(),
                    self.failures
                );
            }
            None if self.connected_once => {}
            None => log::info!("redis: {} connected to {server}", self.name),
        }
        self.connected_once = true;
        self.failures = 0;
        // The backoff starts over once a connection has lasted (see
        // `lost`): a cluster whose slot has no primary yet lets the
        // bridge connect, then fails its first command.
        self.up_since = Some(Instant::now());
        self.flag().store(true, Ordering::Relaxed);
    }

    fn failed(&mut self, e: &RedisError) {
        // What a refused handshake means is worth saying at a connection
        // attempt only: a connection lost later was not refused.
        // The sentinels' error says already what each step met.
        let e = match self.shared.client.sentinel() {
            Some(_) => e.to_string(),
            None => crate::tls::explain(e, crate::tls::is_tls(&self.shared.config.url)),
        };
        self.shared.stats.error(format!(
            "{} cannot connect to {}: {e}",
            self.name, self.shared.server
        ));
        self.failures += 1;
        let delay = self.backoff.next_delay();
        self.next_attempt = Instant::now() + delay;
        let server = &self.shared.server;
        if self.failures == 1 && self.lost_at.is_none() {
            log::warn!(
                "redis: {} cannot connect to {server} ({e}); retrying in {} ms",
                self.name,
                delay.as_millis()
            );
        } else {
            log::debug!(
                "redis: {} still cannot connect to {server} ({e}); attempt {}, next in {} ms",
                self.name,
                self.failures,
                delay.as_millis()
            );
        }
    }

    /// The connection failed: reconnect after a backoff.
    pub(crate) fn lost(&mut self, e: &RedisError, consequence: &str) {
        self.flag().store(false, Ordering::Relaxed);
        self.shared.stats.error(format!(
            "{} lost its connection to {}: {e}",
            self.name,
            self.shared.server_now()
        ));
        self.lost_at = Some(Instant::now());
        if self.up_since.take().is_some_and(|up| up.elapsed() >= STABLE) {
            self.backoff.reset();
        }
        let delay = self.backoff.next_delay();
        self.next_attempt = Instant::now() + delay;
        log::warn!(
            "redis: {} lost its connection to {} ({e}); {consequence}; reconnecting in {} ms",
            self.name,
            self.shared.server_now(),
            delay.as_millis()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_schedule_keeps_min_and_max_sensible() {
        let ms = Duration::from_millis;
        // A zero minimum is 1 ms; a maximum under the minimum is the minimum.
        let mut attempts = reconnect_schedule(Duration::ZERO, Duration::ZERO);
        assert!(attempts.next_delay() <= ms(1));
        let mut attempts = reconnect_schedule(ms(600), ms(100));
        for _ in 0..4 {
            let delay = attempts.next_delay();
            assert!(delay >= ms(300) && delay <= ms(600), "{delay:?}");
        }
    }
}
