//! The durable broker: the in-process broker with each loop's events
//! written to a log of its own ([`tether_log`]) before they are delivered,
//! and recovered on start.
//!
//! This file holds the broker and its work as a [`Broker`]; opening the
//! data directory and recovering the logs is in `open.rs`, what each
//! loop's broker keeps of its topics and its log in `store.rs`.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tether_hub::{
    Backlog, Broker, BrokerMessage, Context, Error, HubMessage, Publish, Sequence, Sequenced, Sequencer,
    sequencer_of,
};
use tether_log::Fsync;

use crate::sync::Syncer;

mod open;
mod store;

use self::store::{Held, Store};

/// How a [`DurableBroker`] keeps its events.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DurableConfig {
    /// The data directory: one log per loop in `DIR/loop-N/`.
    pub dir: PathBuf,
    /// When appends reach stable storage.
    pub fsync: Fsync,
    /// Events older than this are not kept on disk (segments whose newest
    /// event is older are deleted) nor recovered; `None`: only the backlog
    /// bounds decide.
    pub retention: Option<Duration>,
    /// Segment size (64 MiB).
    pub segment_bytes: u64,
}

impl DurableConfig {
    /// Logs in `dir`, synced at most 10 ms after an append, no retention
    /// time.
    pub fn new(dir: impl Into<PathBuf>) -> DurableConfig {
        DurableConfig {
            dir: dir.into(),
            fsync: Fsync::Interval(Duration::from_millis(10)),
            retention: None,
            segment_bytes: 64 << 20,
        }
    }
}

/// What recovery found in one loop's log, for the logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// Records read back.
    pub records: u64,
    /// Topics rebuilt.
    pub topics: usize,
    /// Torn tails cut off.
    pub torn_tails: u64,
    /// Segments quarantined (renamed `.corrupt`).
    pub quarantined: usize,
    /// Records lost to damaged stretches (their segments keep serving the
    /// good records around them).
    pub lost_records: u64,
    /// Bytes of those stretches.
    pub damaged_bytes: u64,
    /// Events recovered with a hole in their topic's ids just before them
    /// (a client resuming from before the hole gets the gap signal).
    pub holes: u64,
    /// Topics whose last recovered event came before records that were
    /// lost, so that their own last events may have been among them (a
    /// client resuming from there gets the gap signal).
    pub tails_maybe_lost: u64,
    /// Records whose payload was not a hub event, or out of order: skipped.
    pub skipped: u64,
}

/// The in-process broker made durable: as [`tether_hub::LocalBroker`], one loop
/// sequences each topic ([`sequencer_of`]), but that loop first appends
/// the event to its own log (`DIR/loop-N/`, a [`tether_log::Log`]) and
/// only then delivers it and acknowledges the publish: its numbering is
/// the in-process broker's [`Sequencer`], with the append as the write in
/// the step that numbers the event (a failed append changes nothing). With
/// [`Fsync::Always`] the append is synced before that; with
/// [`Fsync::Interval`] a thread of the broker's syncs the log at most the
/// interval after an append; with [`Fsync::Never`] the kernel writes back
/// when it will. Every event is written to the file before it is
/// acknowledged, so a killed process loses nothing that was acknowledged;
/// a power loss may lose what was not yet synced.
///
/// On start ([`DurableBroker::open_all`]) each loop's log is recovered
/// (see [`tether_log::Log::open_with`]) and its topics rebuilt: backlogs
/// within [`Config`](tether_hub::Config)'s bounds, publish keys, and numbering. A restored
/// topic's next event starts a new epoch, so ids keep growing and an id
/// from before the restart still resolves (or, if its event was lost,
/// gets a gap signal, never another event's place). A hole in a topic's
/// ids (a segment lost) is a known gap: resuming from before it gets the
/// gap signal.
///
/// Loops follow topics on demand (not [`Broker::complete`]): a loop's
/// first subscriber of a topic gets [`HubMessage::Ready`] with the
/// sequencer's backlog, then every later event. Segments are deleted
/// once every topic's backlog has moved past them (and, with
/// [`DurableConfig::retention`], once their newest event is older).
///
/// The data directory is written by one number of loops: starting with
/// another is refused rather than mixing up which loop sequences a topic.
pub struct DurableBroker {
    durable: DurableConfig,
    loop_index: usize,
    loops: usize,
    /// The topics this loop sequences, with their backlogs.
    sequencer: Sequencer<Held>,
    store: Store,
    /// Loops following each topic of this sequencer.
    followers: HashMap<Arc<str>, Vec<usize>>,
    recovered: Recovered,
    /// The data directory's lock, shared by the loops' brokers: held
    /// while any of them lives.
    _lock: Arc<File>,
}

impl fmt::Debug for DurableBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableBroker")
            .field("loop", &self.loop_index)
            .field("topics", &self.sequencer.topics().len())
            .field("log", &self.store.log.dir())
            .finish_non_exhaustive()
    }
}

impl DurableBroker {
    /// What recovery found in this loop's log.
    pub fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// The backlog this loop sequences for `topic`, if it has the topic.
    pub fn backlog(&self, topic: &str) -> Option<&Backlog> {
        self.sequencer.get(topic).map(|t| &t.state().backlog)
    }

    fn sequence(&mut self, publish: Publish, cx: &mut dyn Context) {
        let now = cx.unix_ms();
        let store = &mut self.store;
        let durable = self.sequencer.config().is_durable(&publish.topic);
        let sequenced = self.sequencer.sequence(&publish, now, |numbered| {
            if durable {
                store.append(numbered, now).map(Some)
            } else {
                Ok(None)
            }
        });
        if let Sequenced::Event(event, index) = &sequenced {
            if let Some(topic) = self.sequencer.get_mut(&publish.topic) {
                topic.state_mut().push(event.clone(), *index);
            }
            for &to in self.followers.get(&publish.topic).into_iter().flatten() {
                cx.post(to, HubMessage::Deliver(event.clone()));
            }
        }
        sequenced.answer(publish.reply, cx);
    }

    fn follow_here(&mut self, topic: Arc<str>, loop_index: usize, cx: &mut dyn Context) {
        let followers = self.followers.entry(topic.clone()).or_default();
        if !followers.contains(&loop_index) {
            followers.push(loop_index);
        }
        let (history, dropped) = match self.sequencer.get(&topic).map(Sequence::state) {
            Some(t) => (t.backlog.iter().cloned().collect(), t.dropped),
            None => (Vec::new(), None),
        };
        cx.post(
            loop_index,
            HubMessage::Ready {
                topic,
                history,
                dropped,
            },
        );
    }

    fn unfollow_here(&mut self, topic: &Arc<str>, loop_index: usize) {
        if let Some(followers) = self.followers.get_mut(topic) {
            followers.retain(|&l| l != loop_index);
            if followers.is_empty() {
                self.followers.remove(topic);
            }
        }
    }

    fn forward(&self, to: usize, message: BrokerMessage, cx: &mut dyn Context) {
        cx.post(to, HubMessage::Broker(message));
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Broker for DurableBroker {
    fn backlog(&self, topic: &str) -> Option<&Backlog> {
        DurableBroker::backlog(self, topic)
    }

    fn holds_backlogs(&self) -> bool {
        true
    }

    fn backlogs(&self) -> Box<dyn Iterator<Item = (&Arc<str>, &Backlog)> + '_> {
        Box::new(
            self.sequencer
                .topics()
                .map(|(name, topic)| (name, &topic.state().backlog)),
        )
    }

    fn publish(&mut self, publish: Publish, cx: &mut dyn Context) -> Result<(), Error> {
        if let Some(publish) = self.sequencer.route(publish, cx)? {
            self.sequence(publish, cx);
        }
        Ok(())
    }

    fn receive(&mut self, message: BrokerMessage, cx: &mut dyn Context) {
        match message {
            BrokerMessage::Forward(publish) => self.sequence(publish, cx),
            BrokerMessage::Follow { topic, loop_index } => self.follow_here(topic, loop_index, cx),
            BrokerMessage::Unfollow { topic, loop_index } => self.unfollow_here(&topic, loop_index),
            // A kind of message this broker never sends itself.
            _ => {}
        }
    }

    fn tick(&mut self, cx: &mut dyn Context) {
        let now = cx.unix_ms();
        for topic in self.sequencer.expire(now) {
            for &to in self.followers.get(&topic).into_iter().flatten() {
                cx.post(to, HubMessage::Forget(topic.clone()));
            }
        }
        let needed = self
            .sequencer
            .topics()
            .filter_map(|(_, t)| t.state().first_needed())
            .min();
        let retention = self.durable.retention.map(duration_ms);
        self.store.remove_segments(needed, retention, now);
    }

    fn shutdown(&mut self, _cx: &mut dyn Context) {
        self.sequencer.shut_down();
        if let Err(e) = self.store.log.sync() {
            log::error!("durable log {}: {e}", self.store.log.dir().display());
        }
    }

    fn complete(&self) -> bool {
        false
    }

    fn follow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        let owner = sequencer_of(topic, self.loops);
        let message = BrokerMessage::Follow {
            topic: topic.clone(),
            loop_index: self.loop_index,
        };
        if owner == self.loop_index {
            self.follow_here(topic.clone(), self.loop_index, cx);
        } else {
            self.forward(owner, message, cx);
        }
    }

    fn unfollow(&mut self, topic: &Arc<str>, cx: &mut dyn Context) {
        let owner = sequencer_of(topic, self.loops);
        if owner == self.loop_index {
            self.unfollow_here(topic, self.loop_index);
        } else {
            let message = BrokerMessage::Unfollow {
                topic: topic.clone(),
                loop_index: self.loop_index,
            };
            self.forward(owner, message, cx);
        }
    }

    fn kind(&self) -> &'static str {
        "durable"
    }

    fn write_metrics(&self, out: &mut String) {
        let l = self.loop_index;
        let sync_errors = self.store.syncer.as_ref().map_or(0, Syncer::errors);
        let lines = [
            (
                "tether_log_bytes",
                "gauge",
                "Bytes of this loop's durable log.",
                self.store.log.bytes(),
            ),
            (
                "tether_log_segments",
                "gauge",
                "Segments of this loop's durable log.",
                u64::try_from(self.store.log.segments().len()).unwrap_or(u64::MAX),
            ),
            (
                "tether_log_recovered_records",
                "gauge",
                "Records read back when the log was opened.",
                self.recovered.records,
            ),
            (
                "tether_log_torn_tails",
                "gauge",
                "Torn tails cut off when the log was opened.",
                self.recovered.torn_tails,
            ),
            (
                "tether_log_quarantined_segments",
                "gauge",
                "Segments set aside as damaged when the log was opened.",
                u64::try_from(self.recovered.quarantined).unwrap_or(u64::MAX),
            ),
            (
                "tether_log_lost_records",
                "gauge",
                "Records lost to damage found when the log was opened (the good records around it were kept).",
                self.recovered.lost_records,
            ),
            (
                "tether_log_tails_maybe_lost",
                "gauge",
                "Topics whose last events may have been among the records lost (a resume from their last id gets the gap signal).",
                self.recovered.tails_maybe_lost,
            ),
            (
                "tether_log_damaged_bytes",
                "gauge",
                "Damaged bytes skipped when the log was opened (copied beside their segment, as NNN.log.damaged).",
                self.recovered.damaged_bytes,
            ),
            (
                "tether_log_append_errors_total",
                "counter",
                "Appends that failed (their publishes were refused).",
                self.store.append_errors,
            ),
            (
                "tether_log_sync_errors_total",
                "counter",
                "Background syncs that failed.",
                sync_errors,
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{loop=\"{l}\"}} {value}"
            );
        }
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        let _ = self.store.log.sync();
    }
}
