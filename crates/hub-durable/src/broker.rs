//! The durable broker: the in-process broker with each loop's events
//! written to a log of its own ([`tether_log`]) before they are delivered,
//! and recovered on start.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_hub::{
    Backlog, Broker, BrokerMessage, Config, Context, Error, Event, EventId, HubMessage, Numbered, Publish,
    Sequence, Sequenced, Sequencer, sequencer_of,
};
use tether_log::{Fsync, Log, Options as LogOptions};

use crate::record::{decode_event, encode_event};
use crate::sync::Syncer;

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

/// What the durable broker keeps of a topic beside its numbering
/// ([`Sequence::state`]): the backlog, to answer a loop that follows the
/// topic, and where its events are in the log.
struct Held {
    backlog: Backlog,
    /// The log index of each event the backlog holds, oldest first.
    indices: VecDeque<(EventId, u64)>,
    /// The id just before the backlog's first event, if any.
    dropped: Option<EventId>,
    /// The log index of the topic's last event.
    last_index: u64,
    /// Its events go to the log (`false`: a namespace kept in memory
    /// only, which needs no segment).
    durable: bool,
}

impl Held {
    fn new(config: &Config, topic: &str) -> Held {
        Held::after(config, topic, None)
    }

    /// Nothing held of `topic`, `dropped` the id before what comes next.
    fn after(config: &Config, topic: &str, dropped: Option<EventId>) -> Held {
        let (events, bytes) = config.backlog_bounds(topic);
        let mut backlog = Backlog::new(events, bytes);
        // An empty history with a known id before it cannot be out of order.
        let _ = backlog.reset(Vec::new(), dropped);
        Held {
            backlog,
            indices: VecDeque::new(),
            dropped,
            last_index: 0,
            durable: config.is_durable(topic),
        }
    }

    /// Takes an event into the backlog (already numbered in order, its
    /// key remembered by the topic's [`Sequence`]), with its log index if
    /// it was written to the log.
    fn push(&mut self, event: Arc<Event>, index: Option<u64>) {
        let id = event.id();
        if let Some(index) = index {
            self.last_index = index;
        }
        if self.backlog.push(event).is_err() {
            return;
        }
        if let Some(index) = index {
            self.indices.push_back((id, index));
        }
        let first = self.backlog.first_id();
        while let Some(&(oldest, _)) = self.indices.front() {
            if Some(oldest) == first {
                break;
            }
            self.indices.pop_front();
            self.dropped = Some(oldest);
        }
    }

    /// The oldest log index this topic still needs: its oldest held event,
    /// or its last one (so that its numbering survives a restart); `None`
    /// for a topic kept in memory only.
    fn first_needed(&self) -> Option<u64> {
        if !self.durable {
            return None;
        }
        Some(self.indices.front().map_or(self.last_index, |&(_, index)| index))
    }
}

/// A loop's log and what the broker knows of it.
struct Store {
    log: Log,
    syncer: Option<Syncer>,
    /// The newest publish time in each segment (by base index).
    segment_newest: VecDeque<(u64, u64)>,
    append_errors: u64,
}

impl Store {
    /// Encodes and writes a numbered event, published at `now`: its log
    /// index. On failure nothing was written.
    fn append(&mut self, numbered: Numbered<'_>, data: &str, now: u64) -> Result<u64, Error> {
        let mut payload = Vec::with_capacity(data.len().saturating_add(64));
        encode_event(&mut payload, numbered.event, data, now, numbered.continues);
        let index = match self.log.append(&payload, Instant::now()) {
            Ok(index) => index,
            Err(e) => {
                self.append_errors = self.append_errors.saturating_add(1);
                log::error!("durable log {}: {e}; publish refused", self.log.dir().display());
                return Err(Error::BrokerUnavailable);
            }
        };
        if let Some(syncer) = &mut self.syncer {
            syncer.appended(&self.log);
        }
        let base = self.log.active_base();
        match self.segment_newest.back_mut() {
            Some((last_base, ms)) if *last_base == base => *ms = (*ms).max(now),
            _ => self.segment_newest.push_back((base, now)),
        }
        Ok(index)
    }

    /// Deletes the segments no topic needs any more.
    /// (`needed`: the oldest index a topic needs, if there is a topic;
    /// `retention` in milliseconds.)
    fn remove_segments(&mut self, needed: Option<u64>, retention: Option<u64>, now_ms: u64) {
        let needed = needed.unwrap_or(self.log.next_index());
        let mut until = None;
        for segment in self.log.segments() {
            let newest = self
                .segment_newest
                .iter()
                .find(|(base, _)| *base == segment.base)
                .map_or(0, |&(_, ms)| ms);
            let expired = retention.is_some_and(|r| now_ms.saturating_sub(newest) >= r);
            if segment.end <= needed || expired {
                until = Some(segment.end);
            } else {
                break;
            }
        }
        let Some(until) = until else { return };
        match self.log.remove_before(until) {
            Ok(0) => {}
            Ok(_) => {
                let first = self.log.segments().next().map_or(0, |s| s.base);
                while self.segment_newest.front().is_some_and(|&(base, _)| base < first) {
                    self.segment_newest.pop_front();
                }
            }
            Err(e) => log::warn!("durable log {}: {e}", self.log.dir().display()),
        }
    }
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
/// within [`Config`]'s bounds, publish keys, and numbering. A restored
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

/// The file that says how many loops wrote the data directory.
const LAYOUT_FILE: &str = "loops";

/// The file locked while a process uses the directory.
const LOCK_FILE: &str = "lock";

impl DurableBroker {
    /// Opens (creating them if need be) the logs of `loops` loops in
    /// `durable.dir`, recovers them, and returns one broker per loop, in
    /// loop order. `now_ms` is the wall clock (Unix milliseconds), for
    /// [`Config::topic_ttl`] and [`DurableConfig::retention`].
    ///
    /// # Errors
    ///
    /// A message for the operator: the directory cannot be used, or was
    /// written by another number of loops.
    pub fn open_all(
        config: &Config,
        durable: &DurableConfig,
        loops: usize,
        now_ms: u64,
    ) -> Result<Vec<DurableBroker>, String> {
        let loops = loops.max(1);
        let dir = &durable.dir;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock = Arc::new(lock_dir(dir)?);
        check_layout(dir, loops)?;
        // One topic count for all the loops.
        let first = Sequencer::with_state(config.clone(), Held::new);
        let mut brokers = Vec::with_capacity(loops);
        for loop_index in 0..loops {
            let broker = DurableBroker::open(durable, loop_index, loops, now_ms, first.sibling(), &lock)?;
            brokers.push(broker);
        }
        Ok(brokers)
    }

    fn open(
        durable: &DurableConfig,
        loop_index: usize,
        loops: usize,
        now_ms: u64,
        mut sequencer: Sequencer<Held>,
        lock: &Arc<File>,
    ) -> Result<DurableBroker, String> {
        let config = sequencer.config().clone();
        let config = &config;
        let dir = durable.dir.join(format!("loop-{loop_index}"));
        let max_record = u32::try_from(config.max_event_size.saturating_add(1024))
            .unwrap_or(u32::MAX)
            .max(16 << 20);
        let options = LogOptions::default()
            .with_fsync(durable.fsync)
            .with_segment_bytes(durable.segment_bytes)
            .with_max_record_bytes(max_record);
        let retention_ms = durable.retention.map(duration_ms);
        let mut topics: HashMap<Arc<str>, Sequence<Held>> = HashMap::new();
        let mut recovered = Recovered::default();
        let mut last_epoch = 0u64;
        // The newest publish time up to each index, where it grew.
        let mut newest: Vec<(u64, u64)> = Vec::new();
        // Where the log's indices jump: records were lost there, of topics
        // not known.
        let mut previous_index: Option<u64> = None;
        let mut last_hole: Option<u64> = None;
        let (log, recovery) = Log::open_with(&dir, options, |record| {
            if let Some(previous) = previous_index
                && record.index > previous.saturating_add(1)
            {
                last_hole = Some(previous.saturating_add(1));
            }
            previous_index = Some(record.index);
            let Some(stored) = decode_event(record.payload) else {
                recovered.skipped = recovered.skipped.saturating_add(1);
                return;
            };
            if newest.last().is_none_or(|&(_, ms)| stored.unix_ms > ms) {
                newest.push((record.index, stored.unix_ms));
            }
            if sequencer_of(stored.topic, loops) != loop_index {
                recovered.skipped = recovered.skipped.saturating_add(1);
                return;
            }
            let (epoch, seq) = (stored.id.ms(), stored.id.seq());
            last_epoch = last_epoch.max(epoch);
            let mut lost_before = None;
            let topic = match topics.get_mut(stored.topic) {
                Some(topic) if epoch < topic.epoch() || (epoch == topic.epoch() && seq <= topic.seq()) => {
                    recovered.skipped = recovered.skipped.saturating_add(1);
                    return;
                }
                Some(topic) if epoch == topic.epoch() && Some(seq) == topic.seq().checked_add(1) => topic,
                // The same topic after a restart: its history goes on.
                Some(topic) if stored.continues && seq == 1 => topic,
                Some(topic) if epoch == topic.epoch() || seq > 1 => {
                    // A hole in its ids: the events between were lost
                    // with damaged records. The history around it is kept,
                    // and a replay across it says what is missing. (After
                    // a new epoch whose first event was lost, whether the
                    // topic went on or started over is not known: kept as
                    // going on, so that the loss is told either way.)
                    let first = if epoch == topic.epoch() {
                        EventId::new(epoch, topic.seq().saturating_add(1))
                    } else {
                        EventId::new(epoch, 1)
                    };
                    lost_before = Some((first, EventId::new(epoch, seq.saturating_sub(1))));
                    recovered.holes = recovered.holes.saturating_add(1);
                    topic
                }
                _ => {
                    // A new topic, a new epoch of it, or a hole in its ids:
                    // what came before is not held, and known to be missed.
                    let dropped = seq
                        .checked_sub(1)
                        .filter(|&s| s > 0)
                        .map(|s| EventId::new(epoch, s));
                    let name: Arc<str> = Arc::from(stored.topic);
                    let held = Held::after(config, &name, dropped);
                    let topic = Sequence::new(config, &name, epoch, dropped.map_or(0, EventId::seq), held);
                    topics.insert(name.clone(), topic);
                    let Some(topic) = topics.get_mut(&name) else {
                        return;
                    };
                    topic
                }
            };
            // Its epoch (a restart, a hole), its counter, its last publish.
            topic.advance(stored.id, stored.unix_ms);
            topic.state_mut().last_index = record.index;
            let expired = retention_ms.is_some_and(|r| now_ms.saturating_sub(stored.unix_ms) >= r);
            if expired {
                // Known, but no longer kept.
                let held = topic.state_mut();
                held.indices.clear();
                held.dropped = Some(stored.id);
                let _ = held.backlog.reset(Vec::new(), Some(stored.id));
                topic.forget_keys();
                return;
            }
            let Ok(mut event) = Event::keyed(
                Arc::from(stored.topic),
                stored.id,
                stored.event_type,
                stored.data,
                stored.key,
            ) else {
                recovered.skipped = recovered.skipped.saturating_add(1);
                return;
            };
            if let (Some((first, last)), Some(new)) = (lost_before, Arc::get_mut(&mut event)) {
                new.set_lost_before(first, last);
            }
            topic.remember(&event);
            topic.state_mut().push(event, Some(record.index));
        })
        .map_err(|e| format!("{}: {e}", dir.display()))?;
        // A topic whose last event came before records that were lost may
        // have lost its last events: no later event of it shows a hole, so
        // its last event says so, and a client resuming from it (or a later
        // id of its epoch) gets the gap signal, never "nothing missed".
        if let Some(hole) = last_hole {
            for topic in topics.values_mut() {
                let held = topic.state_mut();
                if held.last_index < hole && held.backlog.mark_lost_after() {
                    recovered.tails_maybe_lost = recovered.tails_maybe_lost.saturating_add(1);
                }
            }
        }
        recovered.records = recovery.records;
        recovered.torn_tails = recovery.torn_tails;
        recovered.quarantined = recovery.quarantined.len();
        recovered.lost_records = recovery.lost_records();
        recovered.damaged_bytes = recovery.damaged_bytes();
        for damaged in &recovery.damaged {
            log::warn!(
                "durable log: segment {} is damaged: {} records lost{} in {} stretches of {} bytes, skipped (copied to {}); the records around them are kept",
                damaged.base,
                damaged.lost_records,
                damaged
                    .first_lost
                    .map(|first| format!(" from index {first}"))
                    .unwrap_or_default(),
                damaged.stretches,
                damaged.bytes,
                damaged.kept.display()
            );
        }
        for quarantined in &recovery.quarantined {
            log::warn!(
                "durable log: segment {} set aside as {} ({:?}; {} good records kept)",
                quarantined.base,
                quarantined.path.display(),
                quarantined.damage,
                quarantined.kept_records
            );
        }
        if recovery.torn_tails > 0 {
            log::warn!(
                "durable log {}: a torn tail of {} bytes was cut off",
                dir.display(),
                recovery.truncated_bytes
            );
        }
        // Topics idle past their time to live are forgotten, as they
        // would have been had the server run on.
        topics.retain(|name, topic| !config.is_expired(name, topic.last_publish_ms(), now_ms));
        recovered.topics = topics.len();
        // Each topic's next event starts a new epoch.
        sequencer.restore(topics, last_epoch);
        let segment_newest = log
            .segments()
            .map(|segment| {
                let last = segment.end.saturating_sub(1);
                let ms = newest
                    .iter()
                    .take_while(|&&(index, _)| index <= last)
                    .last()
                    .map_or(0, |&(_, ms)| ms);
                (segment.base, ms)
            })
            .collect();
        let syncer = match durable.fsync {
            Fsync::Interval(interval) => Some(
                Syncer::start(&log, interval).map_err(|_| format!("{}: no thread to sync", dir.display()))?,
            ),
            Fsync::Always | Fsync::Never => None,
        };
        if recovered.records > 0 || !recovery.is_clean() {
            log::info!(
                "durable log {}: {} records, {} topics recovered ({} skipped)",
                dir.display(),
                recovered.records,
                recovered.topics,
                recovered.skipped
            );
        }
        Ok(DurableBroker {
            durable: durable.clone(),
            loop_index,
            loops,
            sequencer,
            store: Store {
                log,
                syncer,
                segment_newest,
                append_errors: 0,
            },
            followers: HashMap::new(),
            recovered,
            _lock: Arc::clone(lock),
        })
    }

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
                store.append(numbered, &publish.data, now).map(Some)
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

/// Refuses a data directory written by another number of loops, and
/// records the number in a new one.
/// Takes the data directory's lock (`DIR/lock`, an advisory lock the
/// kernel drops with the process, so a crash leaves nothing to clean up):
/// two processes appending to one directory would interleave their
/// records and each recover the other's as its own.
fn lock_dir(dir: &Path) -> Result<File, String> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{} is in use by another process (each data directory belongs to one server; give this one \
             its own --data-dir)",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
    }
}

fn check_layout(dir: &Path, loops: usize) -> Result<(), String> {
    let path = dir.join(LAYOUT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if n == loops => Ok(()),
            Ok(n) => Err(format!(
                "{} was written by {n} event loop(s): start with --threads {n} (topics are sequenced by \
                 loop, and each loop keeps its own log)",
                dir.display()
            )),
            Err(_) => Err(format!("{}: not a number of loops", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_logs = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .flatten()
                .any(|entry| entry.file_name().to_str().is_some_and(|n| n.starts_with("loop-")));
            if has_logs {
                return Err(format!("{}: loop logs without {LAYOUT_FILE}", dir.display()));
            }
            std::fs::write(&path, format!("{loops}\n")).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
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
