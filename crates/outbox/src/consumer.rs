//! The consumer: a thread of its own that holds a connection to the
//! database, becomes the table's one consumer (or stands by), and moves
//! the rows to its publisher in order, deleting each once published.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// How often a wait for a notification looks whether it is asked to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

use tether_backoff::Attempts;
use tether_ingest::{StopSignal, Worker};

use crate::config::OutboxConfig;
use crate::error::Error;
use crate::publisher::{OutboxEvent, Outcome, Publisher};
use crate::stats::{Counters, Health, HealthCell, Stats};
use crate::table::TableName;

/// A running consumer of one outbox table. Stopped ([`Consumer::stop`])
/// or dropped, it is asked to stop and waited for: after the batch it is
/// publishing, if any, or at the end of its current wait.
///
/// ```no_run
/// use tether_outbox::{Consumer, OutboxConfig, Outcome};
///
/// let config = OutboxConfig::new("postgres://tether@db.internal/shop?sslmode=require");
/// let consumer = Consumer::start(config, |event: &tether_outbox::OutboxEvent| {
///     println!("{} gets {}", event.topic, event.data);
///     Outcome::Published
/// })?;
/// // ...
/// consumer.stop();
/// # Ok::<(), tether_outbox::Error>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    watch: OutboxWatch,
    worker: Worker,
}

/// A view of a running [`Consumer`], for another thread: its counters and
/// its health. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboxWatch {
    shared: Arc<Shared>,
    table: TableName,
}

#[derive(Debug, Default)]
struct Shared {
    counters: Counters,
    health: HealthCell,
    stop: Arc<StopSignal>,
}

impl Consumer {
    /// Checks `config` and starts the consumer's thread, which connects
    /// (retrying with the configuration's backoff for as long as it runs)
    /// and hands the table's rows to `publisher`.
    ///
    /// # Errors
    ///
    /// The configuration does not hold ([`OutboxConfig::check`]), or the
    /// thread could not be started.
    pub fn start(config: OutboxConfig, publisher: impl Publisher) -> Result<Consumer, Error> {
        config.check()?;
        let watch = OutboxWatch {
            shared: Arc::default(),
            table: config.table.clone(),
        };
        let shared = watch.shared.clone();
        let stop = shared.stop.clone();
        let worker = Worker::spawn("tether-outbox", stop, move || run(&config, publisher, &shared))
            .map_err(|e| Error::Config(format!("the consumer's thread: {e}")))?;
        Ok(Consumer { watch, worker })
    }

    /// A view of the consumer for another thread.
    pub fn watch(&self) -> OutboxWatch {
        self.watch.clone()
    }

    /// Stops the consumer and waits for its thread: after the batch it is
    /// publishing, if any, or at the end of its current wait (at most
    /// the poll interval, or the connect timeout).
    pub fn stop(self) {
        self.worker.stop();
    }
}

impl OutboxWatch {
    /// The counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Where the consumer stands with its database.
    pub fn health(&self) -> Health {
        self.shared.health.get()
    }

    /// The table it consumes.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// Writes its counters in the Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        self.stats().write_metrics(self.table.as_str(), out);
    }
}

/// The statements, written once.
struct Statements {
    select: String,
    delete: String,
    fail: String,
    count: String,
}

/// The consumer's thread: sessions, each until its connection fails,
/// with a backoff between them, until asked to stop.
fn run(config: &OutboxConfig, mut publisher: impl Publisher, shared: &Shared) {
    let table = &config.table;
    let statements = Statements {
        select: table.select_pending(),
        delete: table.delete_done(),
        fail: table.mark_failed(),
        count: table.count_pending(),
    };
    let mut attempts = Attempts::new(config.backoff);
    let mut session = Session {
        config,
        statements: &statements,
        shared,
        publisher: &mut publisher,
        publishes: Attempts::new(config.backoff),
    };
    loop {
        let error = match session.run(&mut attempts) {
            Ok(()) => break,
            Err(e) => e,
        };
        shared.counters.active.store(0, Relaxed);
        Counters::add(&shared.counters.database_errors, 1);
        let delay = attempts.next_delay();
        log::warn!(
            "outbox {table}: {error}; trying again in {:.1} s",
            delay.as_secs_f64()
        );
        crate::stats::fail(&shared.health, error.to_string());
        if shared.stop.sleep(delay) {
            break;
        }
    }
    shared.counters.active.store(0, Relaxed);
    shared.health.set(Health::Stopped);
}

/// One connection's worth of work.
struct Session<'a, P> {
    config: &'a OutboxConfig,
    statements: &'a Statements,
    shared: &'a Shared,
    publisher: &'a mut P,
    /// Publishes the publisher could not take, in a row.
    publishes: Attempts,
}

impl<P: Publisher> Session<'_, P> {
    /// Connects, listens, and consumes (or stands by) until asked to stop
    /// (`Ok`) or the database fails.
    fn run(&mut self, attempts: &mut Attempts) -> Result<(), Error> {
        let table = &self.config.table;
        let mut client = self.config.connect()?;
        let found: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&table.as_str()])?
            .get(0);
        if found.is_none() {
            return Err(Error::NoTable(table.to_string()));
        }
        client.batch_execute(&format!("LISTEN \"{}\"", table.channel()))?;
        attempts.reset();
        let lock_key = table.lock_key();
        let mut active = false;
        self.shared.health.set(Health::Standby);
        log::info!("outbox {table}: connected");
        loop {
            if self.shared.stop.stopping() {
                return Ok(());
            }
            // The lock is the session's: held until this connection ends,
            // whichever way, so another node takes over from a dead one.
            if !active {
                active = client
                    .query_one(
                        "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                        &[&lock_key],
                    )?
                    .get(0);
                if active {
                    log::info!("outbox {table}: this node publishes the table");
                    self.shared.counters.active.store(1, Relaxed);
                    self.shared.health.set(Health::Active);
                }
            }
            if active {
                self.drain(&mut client)?;
            }
            let pending: i64 = client.query_one(&self.statements.count, &[])?.get(0);
            self.shared
                .counters
                .pending
                .store(u64::try_from(pending).unwrap_or(0), Relaxed);
            self.wait(&mut client)?;
        }
    }

    /// Hands `rows` to the publisher in order: the acknowledged ones'
    /// ids into `done`, the refused ones marked failed (counted in
    /// `failed`); stops at the first one the publisher cannot take now,
    /// with its reason, as the rows after it may be of its topic.
    fn publish_rows(
        &mut self,
        tx: &mut postgres::Transaction<'_>,
        rows: &[postgres::Row],
        done: &mut Vec<i64>,
        failed: &mut u64,
    ) -> Result<Option<String>, Error> {
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let key: Option<String> = row.try_get(4)?;
            // No data and a size: over the limit, left unread.
            let data: Option<String> = row.try_get(3)?;
            let size: Option<i64> = row.try_get(5)?;
            let too_large = size.filter(|_| data.is_none());
            let event = OutboxEvent {
                id,
                topic: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                event_type: row.try_get(2)?,
                data: data.unwrap_or_default(),
                key: key.unwrap_or_else(|| self.config.table.default_key(id)),
            };
            let outcome = match too_large {
                Some(size) => {
                    let max = self.config.max_data_size;
                    Outcome::Refused(format!("its data of {size} bytes is over the limit of {max}"))
                }
                None => self.publisher.publish(&event),
            };
            match outcome {
                Outcome::Published => done.push(id),
                Outcome::Refused(reason) => {
                    log::warn!(
                        "outbox {}: row {id} (topic {:?}) refused, marked failed: {reason}",
                        self.config.table,
                        event.topic
                    );
                    tx.execute(&self.statements.fail, &[&id, &reason])?;
                    *failed += 1;
                }
                Outcome::Unavailable(reason) => return Ok(Some(reason)),
            }
        }
        Ok(None)
    }

    /// Waits for the table's trigger to notify (any notifications already
    /// received count), or the poll interval to pass, or a request to
    /// stop: in slices, as the blocking client's wait cannot be
    /// interrupted.
    fn wait(&self, client: &mut postgres::Client) -> Result<(), Error> {
        use postgres::fallible_iterator::FallibleIterator;
        let deadline = Instant::now() + self.config.poll_interval;
        let mut notifications = client.notifications();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.shared.stop.stopping() {
                return Ok(());
            }
            if notifications.timeout_iter(left.min(STOP_CHECK)).next()?.is_some() {
                // Those that came with it: one wake is enough for all.
                let mut received = notifications.iter();
                while received.next()?.is_some() {}
                return Ok(());
            }
        }
    }

    /// Publishes the pending rows, a batch per transaction, until fewer
    /// than a batch were found (or asked to stop).
    fn drain(&mut self, client: &mut postgres::Client) -> Result<(), Error> {
        let batch = i64::try_from(self.config.batch).unwrap_or(i64::MAX);
        let max_data = i32::try_from(self.config.max_data_size).unwrap_or(i32::MAX);
        loop {
            if self.shared.stop.stopping() {
                return Ok(());
            }
            let mut tx = client.transaction()?;
            let rows = tx.query(&self.statements.select, &[&batch, &max_data])?;
            let mut done: Vec<i64> = Vec::with_capacity(rows.len());
            let mut failed = 0;
            let published = self.publish_rows(&mut tx, &rows, &mut done, &mut failed);
            // A transaction that fails after publishes leaves their rows
            // pending: published again, under the same keys, by whoever
            // holds the table next.
            let finished = published.and_then(|unavailable| {
                if !done.is_empty() {
                    tx.execute(&self.statements.delete, &[&done])?;
                }
                tx.commit()?;
                Ok(unavailable)
            });
            let unavailable = match finished {
                Ok(unavailable) => unavailable,
                Err(e) => {
                    Counters::add(&self.shared.counters.retries, done.len() as u64);
                    return Err(e);
                }
            };
            Counters::add(&self.shared.counters.published, done.len() as u64);
            Counters::add(&self.shared.counters.failed, failed);
            if let Some(reason) = unavailable {
                Counters::add(&self.shared.counters.retries, 1);
                let delay = self.publishes.next_delay();
                log::warn!(
                    "outbox {}: the hub cannot take publishes ({reason}); again in {:.1} s",
                    self.config.table,
                    delay.as_secs_f64()
                );
                if self.shared.stop.sleep(delay) {
                    return Ok(());
                }
                continue;
            }
            self.publishes.reset();
            if rows.len() < self.config.batch {
                return Ok(());
            }
        }
    }
}
