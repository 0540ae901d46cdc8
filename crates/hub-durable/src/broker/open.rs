//! Opening the data directory: locked for this process, its layout
//! checked against the number of loops, and each loop's log recovered
//! into its topics (backlogs, publish keys, numbering).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use tether_hub::{Config, EventId, Sequence, Sequencer, sequencer_of};
use tether_log::{Fsync, Log, Options as LogOptions};

use super::store::{Held, Store};
use super::{DurableBroker, DurableConfig, Recovered, duration_ms};
use crate::record::decode_event;
use crate::sync::Syncer;

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
            let Some(mut event) = stored.event() else {
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
}

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

/// Refuses a data directory written by another number of loops, and
/// records the number in a new one.
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
