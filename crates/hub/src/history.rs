//! A page of a topic's history (the server API's `GET /api/history`),
//! written once from a [`Backlog`]: on the loop that holds the backlog
//! (the in-process and durable brokers), or on a bus's thread, from the
//! backlog it read from the bus ([`Broker::history`](crate::Broker::history)).

use std::sync::Arc;

use crate::backlog::{Backlog, Replay};
use crate::event::Event;
use crate::id::EventId;
use crate::json::json_string;

/// The events a history page holds at most.
pub const MAX_HISTORY: usize = 1000;

/// What a history page asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The topic (valid).
    pub topic: Arc<str>,
    /// The id to read after (`None`: from the oldest event held).
    pub since: Option<EventId>,
    /// The most events (1 to [`MAX_HISTORY`]).
    pub limit: usize,
    /// Newest first: the events before `since` (without it, from the
    /// newest held), back to the oldest held.
    pub reverse: bool,
}

/// What the broker that holds a topic's backlog answers for a page
/// ([`ControlMessage::HistoryOf`](crate::ControlMessage::HistoryOf)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryAnswer {
    /// The page, as [`history_json`] writes it.
    Page(String),
    /// The broker holds no backlogs and reads none from elsewhere.
    NotHeld,
    /// The backlog is on a bus that cannot be read now (not connected,
    /// or it did not answer in time): try again later.
    Unavailable,
}

/// A page of the backlog (`None`: the topic has none), as JSON:
/// `{"topic":"T","events":[...],"next":"ID","more":BOOL,"gap":null|{...}}`.
/// `next` is the `since` of the next page; `more` says whether the
/// backlog holds events after it; `gap` is the signal a resume from
/// `since` would get (events after it were dropped from the backlog: the
/// events are then those held, from the oldest).
///
/// ```
/// use std::sync::Arc;
/// use tether_hub::{Backlog, Event, EventId, HistoryQuery, history_json};
///
/// let mut backlog = Backlog::new(10, 1 << 20);
/// for seq in 1..=3 {
///     backlog.push(Event::new(Arc::from("t"), EventId::new(1, seq), "message", "x")?)?;
/// }
/// let query = HistoryQuery { topic: Arc::from("t"), since: Some(EventId::new(1, 1)), limit: 1, reverse: false };
/// let page = history_json(&query, Some(&backlog));
/// assert!(page.contains(r#""id":"1-2""#) && page.ends_with(r#""next":"1-2","more":true,"gap":null}"#));
/// // Newest first, before 1-3.
/// let query = HistoryQuery { since: Some(EventId::new(1, 3)), limit: 5, reverse: true, ..query };
/// let page = history_json(&query, Some(&backlog));
/// assert!(page.contains(r#""id":"1-2""#) && page.ends_with(r#""next":"1-1","more":false,"gap":null}"#));
/// # Ok::<(), tether_hub::Error>(())
/// ```
///
/// With [`HistoryQuery::reverse`], the page is the events held before
/// `since` (without it, the newest), newest first; `next` is the oldest
/// of them (the `since` of the next, older page); `more` says whether
/// older events are held; `gap` is null (a reverse walk ends at the
/// oldest event held).
pub fn history_json(query: &HistoryQuery, backlog: Option<&Backlog>) -> String {
    if query.reverse {
        return reverse_json(query, backlog);
    }
    let since = query.since.unwrap_or(EventId::ZERO);
    let (gap, mut events) = match backlog.map(|b| b.replay_id(since)) {
        Some(Replay::Events(events)) => (None, Some(events)),
        Some(Replay::Gap(gap, events)) => (query.since.map(|_| gap), Some(events)),
        None => (None, None),
    };
    let mut body = String::from("{\"topic\":");
    body.push_str(&json_string(&query.topic));
    body.push_str(",\"events\":[");
    let mut next = gap.map_or(since, |gap| gap.resume);
    let mut count = 0;
    while count < query.limit
        && let Some(event) = events.as_mut().and_then(Iterator::next)
    {
        if count > 0 {
            body.push(',');
        }
        body.push_str(event.json());
        next = event.id();
        count += 1;
    }
    let more = events.is_some_and(|mut rest| rest.next().is_some());
    body.push_str(&format!("],\"next\":\"{next}\",\"more\":{more},\"gap\":"));
    match gap {
        Some(gap) => body.push_str(&gap.json(&query.topic, &since.to_string())),
        None => body.push_str("null"),
    }
    body.push('}');
    body
}

/// [`history_json`] newest first.
fn reverse_json(query: &HistoryQuery, backlog: Option<&Backlog>) -> String {
    let mut older = (backlog.into_iter())
        .flat_map(Backlog::iter)
        .rev()
        .skip_while(|event| query.since.is_some_and(|before| event.id() >= before));
    let mut body = String::from("{\"topic\":");
    body.push_str(&json_string(&query.topic));
    body.push_str(",\"events\":[");
    let mut next = query.since.unwrap_or(EventId::ZERO);
    for (count, event) in older.by_ref().take(query.limit).enumerate() {
        if count > 0 {
            body.push(',');
        }
        body.push_str(event.json());
        next = event.id();
    }
    let more = older.next().is_some();
    body.push_str(&format!("],\"next\":\"{next}\",\"more\":{more},\"gap\":null}}"));
    body
}

/// [`history_json`] of a backlog a bus read (`history` oldest first, ids
/// increasing; `dropped` the id just before it, if there was one), held
/// as a loop would hold it (at most `max_events` events and `max_bytes`).
/// A topic with no events and none dropped has no backlog, as on one
/// node.
pub fn history_json_of(
    query: &HistoryQuery,
    history: Vec<Arc<Event>>,
    dropped: Option<EventId>,
    max_events: usize,
    max_bytes: usize,
) -> String {
    if history.is_empty() && dropped.is_none() {
        return history_json(query, None);
    }
    let mut backlog = Backlog::new(max_events, max_bytes);
    // Ids out of order from the bus leave it empty: nothing held is
    // trusted, as a loop handed the same `Ready` would hold nothing.
    let _ = backlog.reset(history, dropped);
    history_json(query, Some(&backlog))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog_of(topic: &str, ids: impl IntoIterator<Item = u64>) -> Vec<Arc<Event>> {
        ids.into_iter()
            .map(|seq| {
                Event::new(
                    Arc::from(topic),
                    EventId::new(1, seq),
                    "message",
                    &format!("e{seq}"),
                )
                .unwrap()
            })
            .collect()
    }

    fn query(since: Option<EventId>, limit: usize) -> HistoryQuery {
        HistoryQuery {
            topic: Arc::from("a"),
            since,
            limit,
            reverse: false,
        }
    }

    #[test]
    fn a_backlog_read_elsewhere_pages_as_one_held_here() {
        let mut held = Backlog::new(3, 1 << 20);
        for event in backlog_of("a", 1..=5) {
            held.push(event).unwrap();
        }
        // The newest three, and the id before them.
        let read = || backlog_of("a", 3..=5);
        for since in [
            None,
            Some(EventId::new(1, 1)),
            Some(EventId::new(1, 2)),
            Some(EventId::new(1, 4)),
        ] {
            for limit in [1, 2, 10] {
                let q = query(since, limit);
                assert_eq!(
                    history_json_of(&q, read(), Some(EventId::new(1, 2)), 3, 1 << 20),
                    history_json(&q, Some(&held)),
                    "{since:?} {limit}"
                );
            }
        }
        // Nothing at all: no backlog, as for a topic never published to.
        let q = query(Some(EventId::new(1, 9)), 5);
        assert_eq!(
            history_json_of(&q, Vec::new(), None, 3, 1 << 20),
            history_json(&q, None)
        );
        // Newest first, page by page, the same from a backlog read
        // elsewhere.
        for since in [
            None,
            Some(EventId::new(1, 5)),
            Some(EventId::new(1, 4)),
            Some(EventId::new(1, 9)),
        ] {
            let q = HistoryQuery {
                reverse: true,
                ..query(since, 2)
            };
            assert_eq!(
                history_json_of(&q, read(), Some(EventId::new(1, 2)), 3, 1 << 20),
                history_json(&q, Some(&held)),
            );
        }
        let q = HistoryQuery {
            reverse: true,
            ..query(None, 2)
        };
        let newest = history_json(&q, Some(&held));
        assert!(
            newest.contains(r#""data":"e5"},{"topic":"a","id":"1-4""#)
                && newest.ends_with(r#""next":"1-4","more":true,"gap":null}"#),
            "{newest}"
        );
        let q = HistoryQuery {
            since: Some(EventId::new(1, 4)),
            ..q
        };
        let oldest = history_json(&q, Some(&held));
        assert!(
            oldest.contains(r#""events":[{"topic":"a","id":"1-3""#)
                && oldest.ends_with(r#""next":"1-3","more":false,"gap":null}"#),
            "{oldest}"
        );
        let q = HistoryQuery {
            since: Some(EventId::new(1, 3)),
            ..q
        };
        let past = history_json(&q, Some(&held));
        assert!(
            past.ends_with(r#""events":[],"next":"1-3","more":false,"gap":null}"#),
            "{past}"
        );
        // Out of order: nothing held.
        let mut wrong = read();
        wrong.reverse();
        let page = history_json_of(&query(None, 5), wrong, None, 3, 1 << 20);
        assert!(page.contains(r#""events":[]"#), "{page}");
    }
}
