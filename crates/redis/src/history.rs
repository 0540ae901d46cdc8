//! A topic's backlog read from its stream: what a following loop gets
//! (`HubMessage::Ready`, from the reader) and what a page of
//! `GET /api/history` is cut from (from the presence thread, which takes
//! the bus's `Control` messages), read the same way.

use std::sync::Arc;

use redis::RedisError;
use tether_hub::{Event, EventId, HistoryQuery};

use crate::commands;
use crate::connection::Con;

/// Entries one `XREVRANGE` fetches at most while building a backlog.
const PAGE: usize = 256;

/// Which part of a stream [`fetch_backlog`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The most events, as a loop's backlog holds.
    pub(crate) max_events: usize,
    /// The most bytes (both encodings), as a loop's backlog holds.
    pub(crate) max_bytes: usize,
    /// The newest entry to read (`None`: the stream's end).
    pub(crate) end: Option<EventId>,
    /// Stop at the first entry at or before this id once it is known to
    /// lie inside the backlog (a history page after it needs nothing
    /// older); `None`: read the whole backlog.
    pub(crate) after: Option<EventId>,
}

/// A topic's backlog from its stream, oldest first: the newest entries up
/// to `end` (the stream's end if `None`), at most `max_events` of them and
/// `max_bytes` (both encodings), and the id of the entry just before them
/// if there was one (still held; or, when entries were trimmed from the
/// stream's start, the id just before the first held). With `after`, the
/// entries after it only, the one that stopped the read standing for
/// those before: what follows `after` is then answered as the whole
/// backlog would answer it (see `Backlog::replay_id`: an id held, or one
/// inside what is held, has the same events after it and the same gap).
pub(crate) fn fetch_backlog(
    con: &mut Con,
    topic: &Arc<str>,
    key: &str,
    bounds: &Bounds,
) -> Result<(Vec<Arc<Event>>, Option<EventId>), RedisError> {
    let Bounds {
        max_events,
        max_bytes,
        mut end,
        after,
    } = *bounds;
    let mut newest_first: Vec<Arc<Event>> = Vec::new();
    let mut bytes = 0;
    let mut dropped = None;
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
            // `after` itself, or an entry before it while one after it
            // is held (so `after` is not ahead of the topic, which the
            // whole backlog answers differently: a gap, then all of it).
            let past = |after: EventId| newest_first.first().is_some_and(|newest| newest.id() > after);
            if after.is_some_and(|after| entry.id == after || (entry.id < after && past(after))) {
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

/// What a page of `GET /api/history` is cut from: the topic's backlog as
/// a loop that follows it now would get it, read only back to the page's
/// `since` (for a page after it). A key that is not a stream is a topic without events (the
/// reader passes it over too).
pub(crate) fn read_history(
    con: &mut Con,
    key: &str,
    query: &HistoryQuery,
    max_events: usize,
    max_bytes: usize,
) -> Result<(Vec<Arc<Event>>, Option<EventId>), RedisError> {
    let bounds = Bounds {
        max_events,
        max_bytes,
        end: None,
        // A reverse page is the events before `since`: the whole backlog.
        after: (query.since)
            .filter(|&since| since != EventId::ZERO)
            .filter(|_| !query.reverse),
    };
    match fetch_backlog(con, &query.topic, key, &bounds) {
        Err(e) if commands::is_server_error(&e) => {
            log::warn!(
                "redis: no history of topic {}: its key {key} is not a stream ({e})",
                query.topic
            );
            Ok((Vec::new(), None))
        }
        read => read,
    }
}
