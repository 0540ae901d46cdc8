//! Answering follows: the loops owed a `Ready` get the topic's backlog
//! from its stream, up to the last event delivered.

use std::sync::Arc;

use redis::RedisError;
use tether_hub::{EventId, HubMessage};

use super::Reader;
use crate::commands;
use crate::connection;
use crate::history::{Bounds, fetch_backlog};

impl Reader {
    /// Sends `Ready` to the loops owed one: the topic's backlog, from
    /// Redis, up to the last event delivered (so that the events read next
    /// follow it without a hole).
    pub(super) fn serve_follows(&mut self) -> Result<(), RedisError> {
        let owed = std::mem::take(&mut self.owed);
        for (done, topic) in owed.iter().enumerate() {
            if let Err(e) = self.serve_follow(topic) {
                // Served once connected again: this topic and the rest.
                self.owed.extend(owed.into_iter().skip(done));
                return Err(e);
            }
        }
        Ok(())
    }

    /// [`Reader::serve_follows`] for one topic (nothing if no loop waits).
    fn serve_follow(&mut self, topic: &Arc<str>) -> Result<(), RedisError> {
        if let Some(bus) = self.topics.get(topic).map(|f| f.bus)
            && self.buses.get(bus).is_some_and(|b| !b.placed)
        {
            // Before the backlog: what is published after it is announced
            // after this place.
            self.place(bus)?;
        }
        {
            let con = connection::connected(&mut self.con)?;
            let config = &self.shared.config;
            let Some(followed) = self.topics.get_mut(topic).filter(|f| !f.waiting.is_empty()) else {
                return Ok(());
            };
            let (history, dropped) = if followed.broken || (followed.known && followed.last == EventId::ZERO)
            {
                (Vec::new(), None)
            } else {
                let end = followed.known.then_some(followed.last);
                let bounds = Bounds {
                    max_events: config.history_events,
                    max_bytes: config.history_bytes,
                    end,
                    after: None,
                };
                match fetch_backlog(con, topic, &followed.key, &bounds) {
                    Ok(backlog) => backlog,
                    Err(e) if commands::is_server_error(&e) => {
                        log::warn!(
                            "redis: topic {topic} is not read: its key {} is not a stream ({e})",
                            followed.key
                        );
                        followed.broken = true;
                        (Vec::new(), None)
                    }
                    Err(e) => return Err(e),
                }
            };
            if !followed.known {
                followed.last = history
                    .last()
                    .map(|e| e.id())
                    .or(dropped)
                    .unwrap_or(EventId::ZERO);
                followed.known = true;
            }
            let waiting = std::mem::take(&mut followed.waiting);
            for &loop_index in &waiting {
                (self.post)(
                    loop_index,
                    HubMessage::Ready {
                        topic: topic.clone(),
                        history: history.clone(),
                        dropped,
                    },
                );
            }
            followed.loops.extend(waiting);
        }
        self.flush_outcomes(topic);
        Ok(())
    }
}
