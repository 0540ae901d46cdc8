//! Reading what is published: the announcements of the bus (on one
//! server, or of each partition of a cluster that a followed topic is
//! in), or each followed stream with a slot per topic, and the events
//! they name delivered to the loops that follow their topics, in stream
//! order; a hole in the announcements' numbers sends the reader to catch
//! up from the streams.

use std::sync::Arc;

use redis::RedisError;
use tether_hub::EventId;

use super::{READ_COUNT, Reader};
use crate::bus;
use crate::commands;
use crate::connection;

/// Announcements one `XREAD` takes from the bus at most.
const BUS_READ_COUNT: usize = 1024;

impl Reader {
    /// Reads what was published and posts what comes; whether anything
    /// may have come (false: nothing did, and nothing waited for it).
    ///
    /// On one server: one `XREAD BLOCK` of the bus (every topic's
    /// announcements, in order) and the wake stream, whatever the number
    /// of topics followed; an announcement of a topic this node does not
    /// follow is passed over. A hole in the announcements' numbers (the
    /// bus was trimmed past this reader, or its counter reset) makes the
    /// reader catch up from each followed topic's stream. On a cluster,
    /// where one command may only touch keys of one slot and blocking
    /// would hold that node's connection, plain `XREAD`s: of each
    /// partition's bus that a followed topic is in (at most the number of
    /// partitions, whatever the topics followed), or with a slot per
    /// topic, of each followed stream.
    pub(super) fn read(&mut self) -> Result<bool, RedisError> {
        if !self.shared.keys.cluster {
            return self.read_bus();
        }
        if self.buses.is_empty() {
            return self.read_cluster();
        }
        self.read_partitions()
    }

    /// [`Reader::read`] on one server.
    fn read_bus(&mut self) -> Result<bool, RedisError> {
        let Some(bus) = self.buses.first() else {
            return Ok(false);
        };
        let streams = [
            (bus.key.as_str(), bus.last),
            (self.shared.wake_key.as_str(), self.wake_last),
        ];
        let block_ms = u64::try_from(self.shared.config.block.as_millis()).unwrap_or(u64::MAX);
        let xread = commands::xread(&streams, BUS_READ_COUNT, Some(block_ms.max(1)));
        let reply = connection::connected(&mut self.con)?.query(&xread)?;
        let mut announcements = Vec::new();
        for (key, entries) in commands::xread_streams(&reply)? {
            if key == self.shared.wake_key.as_bytes() {
                if let Some(last) = commands::parse_entries(entries)?.last() {
                    self.wake_last = last.id;
                }
            } else if key == bus.key.as_bytes() {
                announcements = bus::parse(entries)?;
            }
        }
        self.take(0, announcements)?;
        Ok(true)
    }

    /// [`Reader::read`] on a partitioned cluster.
    fn read_partitions(&mut self) -> Result<bool, RedisError> {
        let reading: Vec<usize> = (0..self.buses.len())
            .filter(|&b| {
                self.buses
                    .get(b)
                    .is_some_and(|bus| bus.placed && bus.followed > 0)
            })
            .collect();
        if reading.is_empty() {
            // Idle: a check that the cluster is still there.
            connection::connected(&mut self.con)?.query(&redis::cmd("PING"))?;
            return Ok(false);
        }
        let cmds: Vec<redis::Cmd> = reading
            .iter()
            .filter_map(|&b| self.buses.get(b))
            .map(|bus| commands::xread(&[(bus.key.as_str(), bus.last)], BUS_READ_COUNT, None))
            .collect();
        let replies = connection::connected(&mut self.con)?.send_all(&cmds)?;
        let mut read = false;
        for (b, reply) in reading.into_iter().zip(replies) {
            let Some(bus) = self.buses.get(b) else { continue };
            let mut announcements = Vec::new();
            for (key, entries) in commands::xread_streams(&reply)? {
                if key == bus.key.as_bytes() {
                    announcements = bus::parse(entries)?;
                }
            }
            read |= !announcements.is_empty();
            if !self.take(b, announcements)? {
                // Caught up from the streams: every place was taken again,
                // and the replies after this one are stale.
                break;
            }
        }
        Ok(read)
    }

    /// Delivers the events of `announcements`, read from bus `b`, of the
    /// topics this node follows; false if a hole in their numbers made
    /// the reader catch up from the streams instead (see
    /// [`Reader::resume`]).
    fn take(&mut self, b: usize, announcements: Vec<bus::Announcement>) -> Result<bool, RedisError> {
        let mut touched: Vec<Arc<str>> = Vec::new();
        let mut continued = true;
        for announcement in announcements {
            let Some(bus) = self.buses.get_mut(b) else { break };
            if let Some(seq) = announcement.seq {
                if bus.seq.is_some_and(|last| last.checked_add(1) != Some(seq)) {
                    log::warn!(
                        "redis: announcements missed on {} (number {seq} after {:?}): every followed topic catches up from its stream",
                        bus.key,
                        bus.seq
                    );
                    self.resume()?;
                    continued = false;
                    break;
                }
                bus.seq = Some(seq);
            }
            bus.last = announcement.bus_id;
            let (Some(name), Some(entry)) = (announcement.topic, announcement.entry) else {
                continue;
            };
            let Some((topic, followed)) = self.topics.get_key_value(name.as_str()) else {
                continue;
            };
            if !followed.known || followed.broken {
                continue;
            }
            let topic = topic.clone();
            self.deliver(&topic, std::slice::from_ref(&entry));
            if !touched.contains(&topic) {
                touched.push(topic);
            }
        }
        for topic in touched {
            self.flush_outcomes(&topic);
        }
        Ok(continued)
    }

    fn read_cluster(&mut self) -> Result<bool, RedisError> {
        let streams: Vec<(Arc<str>, String, EventId)> = self
            .readable()
            .map(|(topic, f)| (topic.clone(), f.key.clone(), f.last))
            .collect();
        let con = connection::connected(&mut self.con)?;
        if streams.is_empty() {
            // Idle: a check that the cluster is still there.
            con.query(&redis::cmd("PING"))?;
            return Ok(false);
        }
        let mut replies = Vec::with_capacity(streams.len());
        for (topic, key, last) in streams {
            let reply = con.query(&commands::xread(&[(&key, last)], READ_COUNT, None))?;
            replies.push((topic, key, reply));
        }
        let mut read = false;
        for (topic, key, reply) in replies {
            for (stream, entries) in commands::parse_xread(&reply)? {
                if stream == key.as_bytes() && !entries.is_empty() {
                    read = true;
                    self.deliver(&topic, &entries);
                }
            }
            self.flush_outcomes(&topic);
        }
        Ok(read)
    }
}
