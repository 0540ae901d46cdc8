//! The durable broker: the in-process broker with each loop's events
//! written to a log of its own ([`tether_log`]) before they are delivered,
//! and recovered on start.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tether_log::{Fsync, Log, Options as LogOptions};

use crate::{
    Backlog, Broker, BrokerMessage, Config, Context, Error, Event, EventId, HubMessage, Numbered, Publish,
    Sequence, Sequenced, Sequencer, is_valid_event_type, is_valid_publish_key, is_valid_topic, sequencer_of,
};

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
}

impl Held {
    fn new(config: &Config) -> Held {
        Held::after(config, None)
    }

    /// Nothing held, `dropped` the id before what comes next.
    fn after(config: &Config, dropped: Option<EventId>) -> Held {
        let mut backlog = Backlog::new(config.max_backlog_events, config.max_backlog_bytes);
        // An empty history with a known id before it cannot be out of order.
        let _ = backlog.reset(Vec::new(), dropped);
        Held {
            backlog,
            indices: VecDeque::new(),
            dropped,
            last_index: 0,
        }
    }

    /// Takes an event into the backlog (already numbered in order, its
    /// key remembered by the topic's [`Sequence`]).
    fn push(&mut self, event: Arc<Event>, index: u64) {
        let id = event.id();
        self.last_index = index;
        if self.backlog.push(event).is_err() {
            return;
        }
        self.indices.push_back((id, index));
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
    /// or its last one (so that its numbering survives a restart).
    fn first_needed(&self) -> u64 {
        self.indices.front().map_or(self.last_index, |&(_, index)| index)
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

/// Syncs a log's active file from a thread of its own, at most an
/// interval after the first unsynced append, so that the loop never waits
/// for the disk (with [`Fsync::Interval`]).
struct Syncer {
    state: Arc<(Mutex<SyncState>, Condvar)>,
    base: u64,
}

struct SyncState {
    file: Option<Arc<File>>,
    dirty: bool,
    stop: bool,
    errors: u64,
}

impl Syncer {
    fn start(log: &Log, interval: Duration) -> Result<Syncer, Error> {
        let file = log.try_clone_active().map_err(|_| Error::BrokerUnavailable)?;
        let state = Arc::new((
            Mutex::new(SyncState {
                file: Some(Arc::new(file)),
                dirty: false,
                stop: false,
                errors: 0,
            }),
            Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::Builder::new()
            .name("tether-log-sync".into())
            .spawn(move || sync_loop(&shared, interval))
            .map_err(|_| Error::BrokerUnavailable)?;
        Ok(Syncer {
            state,
            base: log.active_base(),
        })
    }

    /// An append was made to `log`.
    fn appended(&mut self, log: &Log) {
        let (lock, wake) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if log.active_base() != self.base {
            // Rolled: the log synced the segment it closed.
            self.base = log.active_base();
            state.file = log.try_clone_active().ok().map(Arc::new);
        }
        if !state.dirty {
            state.dirty = true;
            wake.notify_one();
        }
    }

    fn errors(&self) -> u64 {
        self.state.0.lock().map_or(0, |state| state.errors)
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.stop = true;
        wake.notify_one();
    }
}

fn sync_loop(state: &(Mutex<SyncState>, Condvar), interval: Duration) {
    let (lock, wake) = state;
    loop {
        {
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !guard.dirty && !guard.stop {
                guard = wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            if guard.stop {
                return;
            }
        }
        std::thread::sleep(interval);
        let file = {
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            guard.dirty = false;
            guard.file.clone()
        };
        if let Some(file) = file
            && file.sync_data().is_err()
        {
            let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            guard.errors = guard.errors.saturating_add(1);
        }
    }
}

/// The in-process broker made durable: as [`crate::LocalBroker`], one loop
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

/// The record's format version.
const RECORD_VERSION: u8 = 1;

/// A record's flag: the first event of a topic's new epoch that goes on
/// from the epoch before (a restart), rather than starting the topic over
/// (it was forgotten).
const CONTINUES: u8 = 1;

/// The hub's record: version, flags, topic, id, publish time, event
/// type, key, data (each name with a one-byte length, the data the rest).
fn encode_event(out: &mut Vec<u8>, event: &Event, data: &str, unix_ms: u64, continues: bool) {
    out.clear();
    out.push(RECORD_VERSION);
    out.push(if continues { CONTINUES } else { 0 });
    push_short(out, event.topic());
    out.extend_from_slice(&event.id().ms().to_le_bytes());
    out.extend_from_slice(&event.id().seq().to_le_bytes());
    out.extend_from_slice(&unix_ms.to_le_bytes());
    push_short(out, event.event_type());
    push_short(out, event.key().unwrap_or(""));
    out.extend_from_slice(data.as_bytes());
}

/// A name of at most 255 bytes (topics, event types and keys are all
/// shorter) with its length.
fn push_short(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let len = u8::try_from(bytes.len()).unwrap_or(u8::MAX);
    out.push(len);
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or_default());
}

/// A hub record read back.
struct Stored<'a> {
    continues: bool,
    topic: &'a str,
    id: EventId,
    unix_ms: u64,
    event_type: &'a str,
    key: Option<&'a str>,
    data: &'a str,
}

fn take_short<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let (&len, rest) = bytes.split_first()?;
    let (text, rest) = rest.split_at_checked(usize::from(len))?;
    *bytes = rest;
    std::str::from_utf8(text).ok()
}

fn take_u64(bytes: &mut &[u8]) -> Option<u64> {
    let (value, rest) = bytes.split_first_chunk::<8>()?;
    *bytes = rest;
    Some(u64::from_le_bytes(*value))
}

/// Reads a hub record, checking every name as a publish is checked.
fn decode_event(mut bytes: &[u8]) -> Option<Stored<'_>> {
    let (&version, rest) = bytes.split_first()?;
    if version != RECORD_VERSION {
        return None;
    }
    let (&flags, rest) = rest.split_first()?;
    bytes = rest;
    let topic = take_short(&mut bytes)?;
    let ms = take_u64(&mut bytes)?;
    let seq = take_u64(&mut bytes)?;
    let unix_ms = take_u64(&mut bytes)?;
    let event_type = take_short(&mut bytes)?;
    let key = take_short(&mut bytes)?;
    let data = std::str::from_utf8(bytes).ok()?;
    let key = (!key.is_empty()).then_some(key);
    if !is_valid_topic(topic)
        || !is_valid_event_type(event_type)
        || key.is_some_and(|key| !is_valid_publish_key(key))
        || seq == 0
    {
        return None;
    }
    Some(Stored {
        continues: flags & CONTINUES != 0,
        topic,
        id: EventId::new(ms, seq),
        unix_ms,
        event_type,
        key,
        data,
    })
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
        let ttl_ms = config.topic_ttl.map(duration_ms);
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
                    let held = Held::after(config, dropped);
                    let topic = Sequence::new(config, epoch, dropped.map_or(0, EventId::seq), held);
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
            topic.state_mut().push(event, record.index);
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
        if let Some(ttl) = ttl_ms {
            topics.retain(|_, topic| now_ms.saturating_sub(topic.last_publish_ms()) < ttl);
        }
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
        let sequenced = self.sequencer.sequence(&publish, now, |numbered| {
            store.append(numbered, &publish.data, now)
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
            .map(|(_, t)| t.state().first_needed())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hub, Subscribed, Transport};

    /// Loops whose posts are queued, with a wall clock the test sets.
    struct Loops {
        count: usize,
        this: usize,
        now_ms: u64,
        posted: Vec<(usize, HubMessage)>,
    }

    impl Context for Loops {
        fn loops(&self) -> usize {
            self.count
        }
        fn this_loop(&self) -> usize {
            self.this
        }
        fn post(&mut self, to: usize, message: HubMessage) {
            self.posted.push((to, message));
        }
        fn unix_ms(&self) -> u64 {
            self.now_ms
        }
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!("tether-hub-durable-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn durable(dir: &TempDir) -> DurableConfig {
        let mut config = DurableConfig::new(&dir.0);
        config.fsync = Fsync::Never;
        config
    }

    /// Publishes on loop 0 of one: the outcome.
    fn publish(
        broker: &mut DurableBroker,
        cx: &mut Loops,
        topic: &str,
        data: &str,
        key: Option<&str>,
    ) -> HubMessage {
        let config = Config::default();
        let mut publish = Publish::new(topic, None, data, &config)
            .unwrap()
            .reply_to(crate::ReplyTo {
                loop_index: 0,
                token: 7,
            });
        if let Some(key) = key {
            publish = publish.with_key(key).unwrap();
        }
        broker.publish(publish, cx).unwrap();
        cx.posted.pop().unwrap().1
    }

    /// One loop, at `now_ms`.
    fn one_loop(now_ms: u64) -> Loops {
        Loops {
            count: 1,
            this: 0,
            now_ms,
            posted: Vec::new(),
        }
    }

    /// Publishes `count` events to `topic`, each `data(n)`.
    fn publish_many(
        broker: &mut DurableBroker,
        cx: &mut Loops,
        topic: &str,
        count: u64,
        data: impl Fn(u64) -> String,
    ) {
        for n in 1..=count {
            published_id(publish(broker, cx, topic, &data(n), None));
        }
    }

    fn published_id(message: HubMessage) -> EventId {
        match message {
            HubMessage::Published { result: Ok(id), .. } => id,
            other => panic!("{other:?}"),
        }
    }

    /// What a loop's hub answers a subscriber resuming from `last_id`,
    /// after following the topic: the gap, if any, and the events' data.
    fn resume(broker: &mut DurableBroker, cx: &mut Loops, topic: &str, last_id: &str) -> (bool, Vec<String>) {
        let (gap, data) = resume_gap(broker, cx, topic, last_id);
        (gap.is_some(), data)
    }

    fn resume_gap(
        broker: &mut DurableBroker,
        cx: &mut Loops,
        topic: &str,
        last_id: &str,
    ) -> (Option<crate::Gap>, Vec<String>) {
        let mut hub: Hub<u32> = Hub::new(Config::default(), false);
        let topic: Arc<str> = Arc::from(topic);
        assert!(matches!(
            hub.subscribe(&topic, 1, Transport::EventStream, Some(last_id))
                .unwrap(),
            Subscribed::Held { follow: true }
        ));
        cx.posted.clear();
        broker.follow(&topic, cx);
        let Some((
            _,
            HubMessage::Ready {
                topic,
                history,
                dropped,
            },
        )) = cx.posted.pop()
        else {
            panic!()
        };
        let readied = hub.ready(&topic, history, dropped).unwrap();
        let resumed = readied.resumed.into_iter().next().unwrap();
        let data = resumed.events.iter().map(|e| e.json().to_owned()).collect();
        (resumed.gap, data)
    }

    fn open(dir: &TempDir, now_ms: u64) -> DurableBroker {
        DurableBroker::open_all(&Config::default(), &durable(dir), 1, now_ms)
            .unwrap()
            .pop()
            .unwrap()
    }

    #[test]
    fn a_restart_keeps_events_keys_and_growing_ids() {
        let dir = TempDir::new("restart");
        let mut cx = Loops {
            count: 1,
            this: 0,
            now_ms: 1_000,
            posted: Vec::new(),
        };
        let mut broker = open(&dir, 1_000);
        let first = published_id(publish(&mut broker, &mut cx, "news", "a", Some("k1")));
        let second = published_id(publish(&mut broker, &mut cx, "news", "b", None));
        assert_eq!((first, second), (EventId::new(1_000, 1), EventId::new(1_000, 2)));
        drop(broker);

        cx.now_ms = 2_000;
        let mut broker = open(&dir, 2_000);
        assert_eq!(broker.recovered().records, 2);
        let (gap, events) = resume(&mut broker, &mut cx, "news", "1000-1");
        assert!(!gap);
        assert_eq!(events.len(), 1);
        assert!(events[0].contains(r#""id":"1000-2""#), "{events:?}");
        // The key is remembered across the restart.
        assert!(matches!(
            publish(&mut broker, &mut cx, "news", "again", Some("k1")),
            HubMessage::Duplicate { id, .. } if id == first
        ));
        // A new epoch, after every old id; the history goes on.
        let third = published_id(publish(&mut broker, &mut cx, "news", "c", None));
        assert_eq!(third, EventId::new(2_000, 1));
        drop(broker);

        let mut broker = open(&dir, 3_000);
        let (gap, events) = resume(&mut broker, &mut cx, "news", "1000-1");
        assert!(!gap);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[1].contains(r#""id":"2000-1""#));
    }

    #[test]
    fn a_lost_segment_is_a_gap_not_a_wrong_replay() {
        let dir = TempDir::new("hole");
        let mut cx = Loops {
            count: 1,
            this: 0,
            now_ms: 5_000,
            posted: Vec::new(),
        };
        let mut config = durable(&dir);
        // A segment for each event or two.
        config.segment_bytes = 120;
        let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 5_000)
            .unwrap()
            .pop()
            .unwrap();
        for n in 0..6 {
            published_id(publish(&mut broker, &mut cx, "news", &format!("event {n}"), None));
        }
        let segments: Vec<_> = broker.store.log.segments().collect();
        assert!(segments.len() >= 3, "{segments:?}");
        drop(broker);
        // The second segment goes missing.
        let name = format!("{:020}.log", segments[1].base);
        std::fs::remove_file(dir.0.join("loop-0").join(name)).unwrap();

        let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 6_000)
            .unwrap()
            .pop()
            .unwrap();
        let (gap, events) = resume(&mut broker, &mut cx, "news", "5000-1");
        assert!(gap, "events were lost after 5000-1: {events:?}");
        // After the hole, the events that are left are known again.
        let last = segments[1].end; // the first index after the hole
        let (gap, _) = resume(&mut broker, &mut cx, "news", &format!("5000-{last}"));
        assert!(!gap);
    }

    /// The issue's reproduction: a byte flipped in the middle of the only
    /// segment costs the one event it hit; a client resuming from the
    /// first id gets the gap signal naming it, then every other event in
    /// order; one resuming from the lost id (it had it) misses nothing.
    #[test]
    fn a_damaged_record_costs_itself_and_a_replay_across_it_is_a_gap() {
        let dir = TempDir::new("flip");
        let mut cx = one_loop(7_000);
        let mut broker = open(&dir, 7_000);
        let body = "x".repeat(1024);
        publish_many(&mut broker, &mut cx, "news", 300, |n| format!("{n} {body}"));
        drop(broker);
        let segment = dir.0.join("loop-0").join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&segment).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&segment, &bytes).unwrap();

        let mut broker = open(&dir, 8_000);
        let recovered = broker.recovered().clone();
        assert_eq!(
            (recovered.records, recovered.lost_records, recovered.holes),
            (299, 1, 1)
        );
        assert_eq!(recovered.quarantined, 0);
        // The event the flip hit: the one a replay from the start lacks.
        let (_, events) = resume_gap(&mut broker, &mut cx, "news", "0-0");
        assert_eq!(events.len(), 299);
        let lost = (1..=300u64)
            .find(|n| !events.iter().any(|e| e.contains(&format!("\"id\":\"7000-{n}\""))))
            .unwrap();
        assert!(lost > 1 && lost < 300, "the flip is in the middle: {lost}");
        let (gap, events) = resume_gap(&mut broker, &mut cx, "news", "7000-1");
        let gap = gap.expect("the replay crosses the lost event");
        let lost_id = EventId::new(7_000, lost);
        assert_eq!(gap.lost, Some((lost_id, lost_id)));
        assert_eq!(
            (gap.first, gap.resume),
            (Some(EventId::new(7_000, 2)), EventId::new(7_000, 1))
        );
        let expected: Vec<u64> = (2..=300).filter(|&n| n != lost).collect();
        let got: Vec<u64> = events
            .iter()
            .map(|e| {
                let at = e.find("\"id\":\"7000-").unwrap() + 11;
                e[at..].split('"').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(got, expected);
        // From the lost id itself, or after it: nothing missed.
        let (gap, events) = resume_gap(&mut broker, &mut cx, "news", &format!("7000-{lost}"));
        assert!(gap.is_none());
        assert_eq!(events.len(), 300 - usize::try_from(lost).unwrap());
        let (gap, _) = resume_gap(&mut broker, &mut cx, "news", "7000-300");
        assert!(gap.is_none());
        // The damaged bytes are kept beside the segment.
        assert!(
            dir.0
                .join("loop-0")
                .join(format!("{:020}.log.damaged", 0))
                .exists()
        );
        let mut metrics = String::new();
        broker.write_metrics(&mut metrics);
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tether_log_lost_records") && l.ends_with(" 1")),
            "{metrics}"
        );
    }

    /// A topic's last event lost with a damaged record: no later event of
    /// it shows a hole, yet a client resuming from the event before it
    /// (or from the lost one) must be told that it may have missed
    /// something; a topic whose events come after the damage is not.
    #[test]
    fn a_topic_whose_last_event_was_lost_answers_a_resume_with_a_gap() {
        let dir = TempDir::new("tail");
        let mut cx = one_loop(7_000);
        let mut broker = open(&dir, 7_000);
        let body = "y".repeat(512);
        publish_many(&mut broker, &mut cx, "a", 10, |n| format!("a{n:02} {body}"));
        publish_many(&mut broker, &mut cx, "b", 10, |n| format!("b{n:02} {body}"));
        drop(broker);
        let segment = dir.0.join("loop-0").join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&segment).unwrap();
        let at = bytes.windows(4).position(|w| w == b"a10 ").unwrap();
        bytes[at + 100] ^= 0x01;
        std::fs::write(&segment, &bytes).unwrap();

        let mut broker = open(&dir, 8_000);
        let recovered = broker.recovered().clone();
        assert_eq!((recovered.lost_records, recovered.tails_maybe_lost), (1, 1));
        // From a's last event left: a gap. (An id past the last, such as
        // the lost 7000-10, is held by the hub for an event on its way, and
        // then answered with a gap; after the next event, at once, below.)
        let (gap, events) = resume_gap(&mut broker, &mut cx, "a", "7000-9");
        assert!(gap.is_some(), "{events:?}");
        assert!(events.is_empty(), "{events:?}");
        // From before it: a gap too, then what is left.
        let (gap, events) = resume_gap(&mut broker, &mut cx, "a", "7000-7");
        assert!(gap.is_some());
        assert_eq!(events.len(), 2);
        // b's events (of the next epoch, as a new topic's are) all came
        // after the damage: nothing missed.
        let (gap, events) = resume_gap(&mut broker, &mut cx, "b", "7001-1");
        assert!(gap.is_none(), "{gap:?} {events:?}");
        assert_eq!(events.len(), 9);
        // a goes on in a new epoch: a resume from there is exact.
        cx.now_ms = 9_000;
        let next = published_id(publish(&mut broker, &mut cx, "a", "after", None));
        for from in ["7000-9", "7000-10"] {
            let (gap, events) = resume_gap(&mut broker, &mut cx, "a", from);
            assert!(gap.is_some(), "from {from}");
            assert_eq!(events.len(), 1, "from {from}");
        }
        let (gap, events) = resume_gap(&mut broker, &mut cx, "a", &next.to_string());
        assert!(gap.is_none());
        assert!(events.is_empty());
    }

    #[test]
    fn topics_past_their_ttl_and_events_past_retention_are_not_recovered() {
        let dir = TempDir::new("ttl");
        let mut cx = Loops {
            count: 1,
            this: 0,
            now_ms: 10_000,
            posted: Vec::new(),
        };
        let mut config = durable(&dir);
        config.retention = Some(Duration::from_secs(60));
        let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 10_000)
            .unwrap()
            .pop()
            .unwrap();
        publish(&mut broker, &mut cx, "news", "old", None);
        cx.now_ms = 50_000;
        publish(&mut broker, &mut cx, "news", "new", None);
        drop(broker);

        // 80 s later: the first event is past the 60 s retention.
        let mut broker = DurableBroker::open_all(&Config::default(), &config, 1, 80_000)
            .unwrap()
            .pop()
            .unwrap();
        let (gap, events) = resume(&mut broker, &mut cx, "news", "10000-1");
        assert!(!gap);
        assert_eq!(events.len(), 1);
        let (gap, _) = resume(&mut broker, &mut cx, "news", "0-0");
        assert!(gap, "the first event is gone");
        drop(broker);

        // Past the topic's time to live (an hour): forgotten.
        let broker = DurableBroker::open_all(&Config::default(), &config, 1, 50_000 + 3_600_000)
            .unwrap()
            .pop()
            .unwrap();
        assert!(broker.backlog("news").is_none());
    }

    #[test]
    fn another_number_of_loops_is_refused() {
        let dir = TempDir::new("loops");
        let config = durable(&dir);
        drop(DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap());
        let error = DurableBroker::open_all(&Config::default(), &config, 3, 0).unwrap_err();
        assert!(error.contains("--threads 2"), "{error}");
    }

    #[test]
    fn a_directory_in_use_is_refused_until_its_brokers_are_gone() {
        let dir = TempDir::new("lock");
        let config = durable(&dir);
        let first = DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap();
        let error = DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap_err();
        assert!(error.contains("in use by another process"), "{error}");
        // One loop's broker still holds the lock.
        let mut first = first;
        first.pop();
        assert!(DurableBroker::open_all(&Config::default(), &config, 2, 0).is_err());
        drop(first);
        DurableBroker::open_all(&Config::default(), &config, 2, 0).unwrap();
    }

    #[test]
    fn records_round_trip_and_foreign_payloads_are_refused() {
        let event = Event::keyed(Arc::from("t"), EventId::new(3, 4), "tick", "dätä", Some("k")).unwrap();
        let mut out = Vec::new();
        encode_event(&mut out, &event, "dätä", 99, true);
        let stored = decode_event(&out).unwrap();
        assert_eq!(
            (
                stored.continues,
                stored.topic,
                stored.id,
                stored.unix_ms,
                stored.event_type,
                stored.key,
                stored.data
            ),
            (true, "t", EventId::new(3, 4), 99, "tick", Some("k"), "dätä")
        );
        for cut in 0..out.len() - "dätä".len() {
            assert!(decode_event(&out[..cut]).is_none(), "cut at {cut}");
        }
        let mut bad = out.clone();
        bad[0] = 2;
        assert!(decode_event(&bad).is_none(), "another version");
        let mut bad = out.clone();
        bad[3] = b' ';
        assert!(decode_event(&bad).is_none(), "a topic that is not a name");
    }
}
