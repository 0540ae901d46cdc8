//! Continuity across reconnections and missed announcements: where
//! reading resumes, each followed topic caught up from its stream, and a
//! topic whose events may be gone resynchronised (its loops get a new
//! `Ready`).

use std::sync::Arc;

use redis::RedisError;
use tether_hub::EventId;

use super::{READ_COUNT, Reader};
use crate::commands;
use crate::connection;
use crate::shared::add;

/// Followed topics caught up in one round trip (a pipeline of `XRANGE`s).
const CATCH_UP_BATCH: usize = 256;

impl Reader {
    /// Where publishes are announced, after a (re)connection or missed
    /// announcements: takes each bus's end as the place to read from (on a
    /// cluster, of the partitions a followed topic is in), then reads each
    /// followed topic's stream from its last delivered event (events
    /// announced before that place come from there, those after it from
    /// the bus; one delivered by both is passed over the second time). A
    /// topic whose last delivered event left its stream lost continuity:
    /// it is resynchronised.
    pub(super) fn resume(&mut self) -> Result<(), RedisError> {
        for b in 0..self.buses.len() {
            if self
                .buses
                .get(b)
                .is_some_and(|bus| bus.followed > 0 || !self.shared.keys.cluster)
            {
                self.place(b)?;
            } else if let Some(bus) = self.buses.get_mut(b) {
                bus.placed = false;
            }
        }
        let mut behind: Vec<Arc<str>> = self
            .topics
            .iter()
            .filter(|(_, f)| f.known && !f.broken)
            .map(|(topic, _)| topic.clone())
            .collect();
        while !behind.is_empty() {
            let batch: Vec<Arc<str>> = behind.drain(..behind.len().min(CATCH_UP_BATCH)).collect();
            behind.extend(self.catch_up(&batch)?);
        }
        Ok(())
    }

    /// One round trip of [`Reader::resume`]: the entries of each topic's
    /// stream from its last delivered event on; the topics with more to
    /// read.
    fn catch_up(&mut self, topics: &[Arc<str>]) -> Result<Vec<Arc<str>>, RedisError> {
        let cmds: Vec<redis::Cmd> = topics
            .iter()
            .filter_map(|topic| self.topics.get(topic))
            .map(|f| commands::xrange_from(&f.key, f.last, READ_COUNT + 1))
            .collect();
        let (replies, failure) = connection::connected(&mut self.con)?.pipeline(&cmds);
        if let Some(e) = failure {
            return Err(e);
        }
        let mut more = Vec::new();
        let mut lost = Vec::new();
        for (topic, reply) in topics.iter().zip(replies) {
            let Some(followed) = self.topics.get_mut(topic) else {
                continue;
            };
            let entries = match reply {
                Ok(reply) => commands::parse_entries(&reply)?,
                Err(e) if commands::is_server_error(&e) => {
                    log::warn!(
                        "redis: topic {topic} is no longer read: its key {} is not a stream ({e})",
                        followed.key
                    );
                    followed.broken = true;
                    lost.push(topic.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let full = entries.len() > READ_COUNT;
            let new = if followed.last == EventId::ZERO {
                &entries[..]
            } else if entries.first().is_some_and(|e| e.id == followed.last) {
                entries.get(1..).unwrap_or_default()
            } else {
                lost.push(topic.clone());
                continue;
            };
            self.deliver(topic, new);
            self.flush_outcomes(topic);
            if full {
                more.push(topic.clone());
            }
        }
        for topic in lost {
            self.resync(&topic);
        }
        Ok(more)
    }

    /// Just (re)connected: if Redis restarted, or a topic's last delivered
    /// event is no longer in its stream, events may be gone: such topics
    /// get a new `Ready` (their subscribers resume from their last ids).
    /// Otherwise reading goes on from the last delivered id (where
    /// publishes are announced, see [`Reader::resume`]).
    pub(super) fn check_continuity(&mut self) -> Result<(), RedisError> {
        let con = connection::connected(&mut self.con)?;
        // A cluster's nodes restart and fail over one by one: each
        // topic's check below is what tells. So does a Sentinel failover:
        // the promoted replica has another run id, and the streams it had
        // by replication (a topic whose last delivered event it lacks is
        // resynchronised by that check).
        let restarted = if self.shared.keys.cluster || self.shared.client.sentinel().is_some() {
            false
        } else {
            let info = con.query(redis::cmd("INFO").arg("server"))?;
            let run_id = commands::parse_run_id(&info);
            let restarted = self.run_id.is_some() && run_id != self.run_id;
            if restarted {
                log::warn!("redis: the Redis server restarted: every followed topic is resynchronised");
            }
            self.run_id = run_id;
            restarted
        };
        if self.shared.keys.announces() {
            if restarted {
                let known: Vec<Arc<str>> = self
                    .topics
                    .iter()
                    .filter(|(_, f)| f.known && !f.broken)
                    .map(|(topic, _)| topic.clone())
                    .collect();
                for topic in known {
                    self.resync(&topic);
                }
            }
            return self.resume();
        }
        let mut lost = Vec::new();
        for (topic, followed) in &mut self.topics {
            if !followed.known || followed.broken {
                continue;
            }
            let intact = !restarted
                && (followed.last == EventId::ZERO
                    || match con.query(&commands::xrange_one(&followed.key, followed.last)) {
                        Ok(reply) => !commands::parse_entries(&reply)?.is_empty(),
                        Err(e) if commands::is_server_error(&e) => {
                            log::warn!(
                                "redis: topic {topic} is no longer read: its key {} is not a stream ({e})",
                                followed.key
                            );
                            followed.broken = true;
                            false
                        }
                        Err(e) => return Err(e),
                    });
            if !intact {
                lost.push(topic.clone());
            }
        }
        for topic in lost {
            self.resync(&topic);
        }
        Ok(())
    }

    /// Continuity of `topic` is lost: its loops get a new `Ready` (the hub
    /// then ends their subscriptions, so that clients resume); pending
    /// answers go now, as the subscribers start over anyway.
    fn resync(&mut self, topic: &Arc<str>) {
        let Some(followed) = self.topics.get_mut(topic) else {
            return;
        };
        log::warn!(
            "redis: continuity of topic {topic} lost (its events since {} may be gone): its subscribers resume",
            followed.last
        );
        add(&self.shared.stats.resyncs, 1);
        followed.known = false;
        followed.last = EventId::ZERO;
        let loops = std::mem::take(&mut followed.loops);
        if followed.waiting.is_empty() {
            self.owed.push(topic.clone());
        }
        followed.waiting.extend(loops);
        let outcomes = std::mem::take(&mut followed.outcomes);
        for outcome in outcomes {
            self.answer(outcome);
        }
    }
}
