//! The writer thread: `XADD`s publishes to their topics' streams (a
//! keyed publish through a script that checks its key), in batches, and
//! wakes the reader.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use redis::{Connection, RedisError, Value};
use tether_hub::{Error as HubError, HubMessage, Publish};

use crate::commands;
use crate::shared::{Link, Post, ReaderMsg, Shared, WriterMsg, add};

/// Publishes sent to Redis in one round trip at most.
const MAX_BATCH: usize = 256;

/// An idle connection is checked this often (`PING`), so that a lost
/// Redis shows in the state and the logs without waiting for a publish.
const PING_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Writer {
    shared: Arc<Shared>,
    post: Post,
    rx: Receiver<WriterMsg>,
    con: Option<Connection>,
    link: Link,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, post: Post, rx: Receiver<WriterMsg>) -> Writer {
        Writer {
            link: Link::new("writer", shared.clone()),
            shared,
            post,
            rx,
            con: None,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            if self.con.is_none() {
                if self.link.wait().is_zero() {
                    self.con = self.link.connect(self.shared.config.command_timeout);
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
                    let ping = commands::connected(&mut self.con)
                        .and_then(|con| redis::cmd("PING").query::<Value>(con));
                    if let Err(e) = ping {
                        self.lost(&e);
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
        }
    }

    /// `XADD`s a batch in one round trip (in order; a keyed publish by
    /// `EVAL`, which may find its key remembered and add nothing); tells
    /// the reader each event's id (it answers the publishers once it has
    /// delivered the events). True if the reader has something new to do.
    fn add(&mut self, publishes: Vec<Publish>) -> bool {
        let Some(con) = self.con.as_mut() else {
            publishes.into_iter().for_each(|p| self.refuse(p));
            return false;
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let prefix = &self.shared.config.prefix;
        for publish in &publishes {
            pipe.add_command(commands::publish(prefix, self.shared.config.max_len, publish));
        }
        let replies = match pipe.query::<Vec<Value>>(con) {
            Ok(replies) if replies.len() == publishes.len() => replies,
            Ok(_) => {
                // Cannot happen with a sane server; the connection is
                // out of step, so make it again.
                let e = RedisError::from((redis::ErrorKind::Parse, "pipeline reply of the wrong length"));
                self.lost(&e);
                publishes.into_iter().for_each(|p| self.refuse(p));
                return false;
            }
            Err(e) => {
                // Some of these may have been added; answering 503 lets
                // the publisher decide whether to publish again.
                self.lost(&e);
                publishes.into_iter().for_each(|p| self.refuse(p));
                return false;
            }
        };
        let mut told_reader = false;
        for (publish, reply) in publishes.into_iter().zip(replies) {
            match commands::parse_published(&reply) {
                Some((id, duplicate)) => {
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
                None => {
                    log::warn!(
                        "redis: publish to {}{} refused: {reply:?}",
                        self.shared.config.prefix,
                        publish.topic
                    );
                    self.refuse(publish);
                }
            }
        }
        told_reader
    }

    /// Wakes the reader out of its `XREAD`: an entry in its wake stream.
    /// Whatever was sent to the reader before this is there when it wakes.
    fn wake(&mut self) {
        let Some(con) = self.con.as_mut() else { return };
        let seq = self.shared.stats.wake_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let key = &self.shared.wake_key;
        let mut pipe = redis::pipe();
        pipe.add_command(commands::wake(key, seq))
            .add_command(commands::wake_expiry(key));
        match pipe.query::<Value>(con) {
            Ok(_) => {}
            // Redis refused it (out of memory, say): the reader wakes by
            // itself within `block`.
            Err(e) if commands::is_server_error(&e) => log::debug!("redis: wake-up refused: {e}"),
            Err(e) => self.lost(&e),
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
