//! The writer thread: adds publishes to their topics' streams (on one
//! server through a script that announces each on the bus too; a keyed
//! publish through one that checks its key as well), in batches, and
//! wakes the reader.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redis::RedisError;
use tether_hub::{Error as HubError, HubMessage, Publish};

use crate::connection::{self, Con};
use crate::shared::{
    Link, Post, REPLICAS_NOT_COUNTED, REPLICAS_REFUSED, ReaderMsg, RedisBus, WriterMsg, add,
};
use crate::{commands, publish};

/// Publishes sent to Redis in one round trip at most.
const MAX_BATCH: usize = 256;

/// An idle connection is checked this often (`PING`), so that a lost
/// Redis shows in the state and the logs without waiting for a publish.
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// With `wait_replicas`, the replicas are counted this often (and at each
/// connection), busy or idle: readiness follows them within about this.
const REPLICA_COUNT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Writer {
    shared: Arc<RedisBus>,
    post: Post,
    rx: Receiver<WriterMsg>,
    con: Option<Con>,
    link: Link,
    /// The scripts Redis holds on this connection.
    loaded: publish::Loaded,
    /// When the replicas are next counted (with `wait_replicas`).
    next_count: Instant,
    /// The count the log last spoke of, so that it speaks of changes.
    logged_count: Option<u64>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<RedisBus>, post: Post, rx: Receiver<WriterMsg>) -> Writer {
        Writer {
            link: Link::new("writer", shared.clone()),
            shared,
            post,
            rx,
            con: None,
            loaded: publish::Loaded::default(),
            next_count: Instant::now(),
            logged_count: None,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            if self.con.is_none() {
                if self.link.wait().is_zero() {
                    self.con = self.link.connect(self.shared.config.command_timeout);
                    self.load_scripts();
                    self.count_replicas();
                }
                if self.con.is_none() {
                    // Down: refuse what comes meanwhile, at once.
                    match self.rx.recv_timeout(self.link.wait()) {
                        Ok(WriterMsg::Publish(publish)) => self.refuse(publish),
                        // The reader's XREAD times out by itself.
                        Ok(WriterMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                        Ok(WriterMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return self.stop(),
                    }
                    continue;
                }
            }
            let first = match self.rx.recv_timeout(PING_INTERVAL) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    if self.shared.stats.stopped() {
                        return self.stop();
                    }
                    if self.counting() {
                        // Counting the replicas checks the connection too.
                        self.count_replicas();
                        continue;
                    }
                    let sent = Instant::now();
                    let ping =
                        connection::connected(&mut self.con).and_then(|con| con.query(&redis::cmd("PING")));
                    match ping {
                        Ok(_) => self.shared.stats.round_trip.observe(sent.elapsed()),
                        Err(e) => self.lost(&e),
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut publishes = Vec::new();
            let (mut wake, mut stop) = (false, false);
            let mut message = Some(first);
            while let Some(m) = message.take() {
                match m {
                    WriterMsg::Publish(publish) => publishes.push(publish),
                    WriterMsg::Wake => wake = true,
                    WriterMsg::Stop => stop = true,
                }
                if publishes.len() < MAX_BATCH {
                    message = self.rx.try_recv().ok();
                }
            }
            if !publishes.is_empty() {
                wake |= self.add(publishes);
            }
            if stop {
                return self.stop();
            }
            if wake {
                self.wake();
            }
            if self.counting() && Instant::now() >= self.next_count {
                self.count_replicas();
            }
        }
    }

    /// Whether the replicas are counted: only when publishes wait for
    /// them.
    fn counting(&self) -> bool {
        self.shared.config.wait_replicas > 0
    }

    /// Counts the replicas Redis has online (with `wait_replicas`), for
    /// readiness, and logs what changed: at start, a node that requires
    /// replicas its Redis does not have says so (it also answers
    /// `/readyz` 503 until they are online: refusing to start would only
    /// restart it in a loop while a replica is on its way).
    fn count_replicas(&mut self) {
        if !self.counting() {
            return;
        }
        self.next_count = Instant::now() + REPLICA_COUNT_INTERVAL;
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let required = self.shared.config.wait_replicas;
        let counted = match con.replicas() {
            Ok(online) => u64::try_from(online).unwrap_or(u64::MAX - 2),
            Err(e) if commands::is_server_error(&e) => {
                if self.logged_count != Some(REPLICAS_REFUSED) {
                    log::warn!(
                        "redis: INFO replication refused ({e}): the replicas cannot be counted; \
                         each publish still waits for {required}"
                    );
                }
                REPLICAS_REFUSED
            }
            Err(e) => {
                self.lost(&e);
                return;
            }
        };
        let stats = &self.shared.stats;
        let enough =
            |n: u64| n != REPLICAS_REFUSED && usize::try_from(n).is_ok_and(|online| online >= required);
        if enough(counted) {
            stats.replicas_seen.store(true, Ordering::Relaxed);
        }
        stats.replicas.store(counted, Ordering::Relaxed);
        if self.logged_count == Some(counted) || counted == REPLICAS_REFUSED {
            self.logged_count = Some(counted);
            return;
        }
        if enough(counted) && !self.logged_count.is_some_and(enough) {
            log::info!("redis: {counted} replicas online, {required} required (--redis-wait-replicas)");
        } else if !enough(counted) && !stats.replicas_seen.load(Ordering::Relaxed) {
            log::warn!(
                "redis: {counted} replicas online, {required} required (--redis-wait-replicas): \
                 publishes are refused (503), and /readyz answers 503 until they are"
            );
        } else if !enough(counted) {
            log::warn!(
                "redis: {counted} replicas online, {required} required (--redis-wait-replicas): \
                 publishes are refused (503) until they are back"
            );
        }
        self.logged_count = Some(counted);
    }

    /// `XADD`s a batch in one round trip (in order; a publish by script,
    /// which may find its key remembered and add nothing; on a cluster, one
    /// round trip to each primary, all or nothing: see
    /// [`Con::send_all`]); tells the reader each event's id (it answers
    /// the publishers once it has delivered the events). True if the
    /// reader has something new to do.
    fn add(&mut self, publishes: Vec<Publish>) -> bool {
        let Some(con) = self.con.as_mut() else {
            publishes.into_iter().for_each(|p| self.refuse(p));
            return false;
        };
        let cmds: Vec<_> = publishes
            .iter()
            .map(|publish| {
                let config = &self.shared.config;
                publish::publish(
                    &self.shared.keys,
                    config.max_len,
                    config.bus_max_len,
                    &self.loaded,
                    publish,
                )
            })
            .collect();
        let sent = Instant::now();
        let (replies, failure) = if self.shared.keys.cluster {
            // The cluster pipeline fails as a whole at an error reply or a
            // lost node; what Redis refuses inside a publish's script (a
            // key that is not a stream) comes as a value, that publish's
            // alone. A publish of a batch that failed may have been added:
            // every one is refused (503), as when a connection is lost
            // mid-batch on one server.
            match con.send_all(&cmds) {
                Ok(replies) => (replies.into_iter().map(Ok).collect(), None),
                Err(e) => (Vec::new(), Some(e)),
            }
        } else {
            con.pipeline(&cmds)
        };
        if failure.is_none() {
            self.shared.stats.round_trip.observe(sent.elapsed());
        }
        let mut added = Vec::new();
        let mut publishes = publishes.into_iter();
        // A refusal that is the server's state (`READONLY`), not the
        // publish's: the connection counts as lost once the replies are
        // read.
        let mut unavailable = None;
        // Replies first: `zip` takes no publish past the last reply.
        for (reply, publish) in replies.into_iter().zip(publishes.by_ref()) {
            let outcome = reply.and_then(|reply| publish::parse_published(&reply));
            match outcome {
                Ok((id, duplicate)) => added.push((publish, id, duplicate)),
                Err(e)
                    if matches!(e.kind(), redis::ErrorKind::Server(_)) && !commands::is_server_error(&e) =>
                {
                    self.refuse(publish);
                    unavailable.get_or_insert(e);
                }
                Err(e) => {
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
                        // Redis's script cache was flushed: send the text
                        // from now on (loaded again at the next connection).
                        self.loaded = publish::Loaded::default();
                    }
                    log::warn!(
                        "redis: publish to {} refused: {e}",
                        self.shared.keys.stream(&publish.topic)
                    );
                    self.refuse(publish);
                }
            }
        }
        let failure = failure.or(unavailable);
        let failed = failure.is_some();
        if let Some(e) = failure {
            // The rest may or may not have been added (the one under way
            // when the connection failed); answering 503 lets their
            // publishers decide whether to publish again.
            self.lost(&e);
            publishes.for_each(|p| self.refuse(p));
        }
        // Added but not known to be replicated as asked: 503 (they may
        // still be delivered, as any publish answered 503 may).
        let replicated = !added.is_empty() && self.replicated(&added, failed);
        let mut told_reader = false;
        for (publish, id, duplicate) in added {
            if !replicated {
                self.refuse(publish);
                continue;
            }
            let counter = if duplicate {
                &self.shared.stats.duplicates
            } else {
                &self.shared.stats.added
            };
            add(counter, 1);
            if let Some(reply) = publish.reply {
                let _ = self.shared.reader_tx.send(ReaderMsg::Added {
                    topic: publish.topic,
                    id,
                    reply,
                    duplicate,
                });
                told_reader = true;
            }
        }
        told_reader
    }

    /// Whether the replicas [`crate::RedisConfig::wait_replicas`] asks
    /// for hold what `added` wrote (`WAIT` on each primary written to),
    /// always when it asks for none; never when the connection failed
    /// (`lost`) before it could ask. A failed `WAIT` counts the connection
    /// as lost.
    fn replicated(&mut self, added: &[(Publish, tether_hub::EventId, bool)], lost: bool) -> bool {
        let config = &self.shared.config;
        if config.wait_replicas == 0 {
            return true;
        }
        if lost {
            return false;
        }
        let mut slots: Vec<u16> = added
            .iter()
            .map(|(publish, _, _)| self.shared.keys.stream_slot(&publish.topic))
            .collect();
        slots.sort_unstable();
        slots.dedup();
        let (replicas, timeout) = (config.wait_replicas, config.wait_timeout);
        let Some(con) = self.con.as_mut() else {
            return false;
        };
        match con.wait(replicas, timeout, &slots) {
            Ok(held) if held >= replicas => true,
            Ok(held) => {
                log::warn!(
                    "redis: {} publishes held by {held} replicas of {replicas} after {timeout:?}: refused (503)",
                    added.len()
                );
                false
            }
            Err(e) => {
                self.lost(&e);
                false
            }
        }
    }

    /// Wakes the reader out of its `XREAD`: an entry in its wake stream.
    /// Whatever was sent to the reader before this is there when it wakes.
    fn wake(&mut self) {
        if self.shared.keys.cluster {
            // The reader waits on its channel, not in Redis.
            return;
        }
        let Some(con) = self.con.as_mut() else { return };
        let seq = self.shared.stats.wake_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let key = &self.shared.wake_key;
        let (replies, failure) = con.pipeline(&[commands::wake(key, seq), commands::wake_expiry(key)]);
        // Redis refused it (out of memory, say): the reader wakes by
        // itself within `block`.
        for e in replies.into_iter().filter_map(Result::err) {
            log::debug!("redis: wake-up refused: {e}");
        }
        if let Some(e) = failure {
            self.lost(&e);
        }
    }

    /// Just connected: has Redis load the scripts (on a cluster, every
    /// primary: the `redis` crate sends `SCRIPT LOAD` to each), so that
    /// publishes send their digests. A script Redis refuses to load (an
    /// ACL, say) goes as text.
    fn load_scripts(&mut self) {
        self.loaded = publish::Loaded::default();
        let Some(con) = self.con.as_mut() else {
            return;
        };
        let (replies, failure) = con.pipeline(&publish::load());
        let mut digests = replies
            .into_iter()
            .map(|reply| reply.ok().as_ref().and_then(publish::parse_loaded));
        self.loaded = publish::Loaded {
            announced: digests.next().flatten(),
            keyed: digests.next().flatten(),
        };
        if let Some(e) = failure {
            self.lost(&e);
        }
    }

    fn refuse(&self, publish: Publish) {
        add(&self.shared.stats.refused, 1);
        if let Some(reply) = publish.reply {
            (self.post)(
                reply.loop_index,
                HubMessage::Published {
                    token: reply.token,
                    result: Err(HubError::BrokerUnavailable),
                },
            );
        }
    }

    fn lost(&mut self, e: &RedisError) {
        self.con = None;
        self.shared
            .stats
            .replicas
            .store(REPLICAS_NOT_COUNTED, Ordering::Relaxed);
        self.link.lost(e, "publishes are refused (503) until it is back");
    }

    /// Shutting down: refuse what is still queued, wake the reader so
    /// that it sees the stop at once.
    fn stop(mut self) {
        while let Ok(message) = self.rx.try_recv() {
            if let WriterMsg::Publish(publish) = message {
                self.refuse(publish);
            }
        }
        self.wake();
        self.shared.stats.writer_up.store(false, Ordering::Relaxed);
    }
}
