//! Answering follows: the loops owed a `Ready` get the topic's backlog
//! from its stream, up to the last event delivered.

use std::sync::Arc;

use redis::RedisError;
use tether_hub::{Event, EventId, HubMessage};

use super::Reader;
use crate::commands;
use crate::connection::{self, Con};

/// Entries one `XREVRANGE` fetches at most while building a backlog.
const PAGE: usize = 256;

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
                match fetch_history(
                    con,
                    topic,
                    &followed.key,
                    end,
                    config.history_events,
                    config.history_bytes,
                ) {
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

/// A topic's backlog from its stream, oldest first: the newest entries up
/// to `end` (the stream's end if `None`), at most `max_events` of them and
/// `max_bytes` (both encodings), and the id of the entry just before them
/// if there was one (still held; or, when entries were trimmed from the
/// stream's start, the id just before the first held).
fn fetch_history(
    con: &mut Con,
    topic: &Arc<str>,
    key: &str,
    end: Option<EventId>,
    max_events: usize,
    max_bytes: usize,
) -> Result<(Vec<Arc<Event>>, Option<EventId>), RedisError> {
    let mut newest_first: Vec<Arc<Event>> = Vec::new();
    let mut bytes = 0;
    let mut dropped = None;
    let mut end = end;
    'pages: loop {
        let want = (max_events + 1 - newest_first.len()).min(PAGE);
        let page = commands::parse_entries(&con.query(&commands::xrevrange(key, end, want))?)?;
        let got = page.len();
        let page_oldest = page.last().map(|entry| entry.id);
        for entry in page {
            let Some(event) = entry.to_event(topic) else {
                continue;
            };
            if newest_first.len() >= max_events || bytes + event.cost() > max_bytes {
                dropped = Some(entry.id);
                break 'pages;
            }
            bytes += event.cost();
            newest_first.push(event);
        }
        match page_oldest.and_then(commands::prev_id) {
            Some(before) if got == want => end = Some(before),
            _ => break,
        }
    }
    if dropped.is_none() {
        // The history goes back to the stream's first entry (up to `end`):
        // were entries before it trimmed? Then the id just before it
        // stands for them (a client that comes back with one of them, or
        // with 0-0, gets a gap signal).
        dropped = match con.query(&commands::xinfo_stream(key)) {
            Ok(info) => match commands::parse_stream_info(&info) {
                Some(info) if info.lost_entries() => match newest_first.last() {
                    Some(oldest) => commands::prev_id(oldest.id()),
                    None => end.or(info.last_generated),
                },
                _ => None,
            },
            // No such key: a topic nobody published to yet.
            Err(e) if commands::is_server_error(&e) => None,
            Err(e) => return Err(e),
        };
    }
    newest_first.reverse();
    Ok((newest_first, dropped))
}
