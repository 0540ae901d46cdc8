//! `GET /api/history`: a page of a topic's backlog.

use tether_hub::{Backlog, HistoryQuery, history_json};
use tether_server::Response;

/// The answer to a history query from the topic's backlog (`None`: the
/// topic has none), as [`history_json`] writes it.
pub(crate) fn history(query: &HistoryQuery, backlog: Option<&Backlog>) -> Response {
    history_response(history_json(query, backlog))
}

/// A history page's JSON as the answer.
pub(crate) fn history_response(json: String) -> Response {
    Response::json(200, json).header("Cache-Control", "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tether_hub::EventId;

    fn text(response: &Response) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn history_pages() {
        let mut backlog = Backlog::new(3, 1 << 20);
        for seq in 1..=5 {
            let event =
                tether_hub::Event::new("a".into(), EventId::new(1, seq), "message", &format!("e{seq}"));
            backlog.push(event.unwrap()).unwrap();
        }
        let read = |since: Option<EventId>, limit| {
            let q = HistoryQuery {
                topic: "a".into(),
                since,
                limit,
                reverse: false,
            };
            text(&history(&q, Some(&backlog)))
        };
        // 1-1 and 1-2 were dropped: from the start, the oldest held.
        let first = read(None, 2);
        assert_eq!(first["events"].as_array().unwrap().len(), 2);
        assert_eq!(
            (first["next"].as_str(), first["more"].as_bool()),
            (Some("1-4"), Some(true))
        );
        assert!(first["gap"].is_null());
        let last = read(Some(EventId::new(1, 4)), 2);
        assert_eq!(last["events"][0]["data"], "e5");
        assert_eq!(
            (last["next"].as_str(), last["more"].as_bool()),
            (Some("1-5"), Some(false))
        );
        let done = read(Some(EventId::new(1, 5)), 2);
        assert_eq!(
            (done["next"].as_str(), done["events"].as_array().map(Vec::len)),
            (Some("1-5"), Some(0))
        );
        // Older than the backlog: the gap, then what is held.
        let gap = read(Some(EventId::new(1, 1)), 10);
        assert_eq!(gap["events"].as_array().unwrap().len(), 3);
        assert!(gap["gap"].is_object(), "{gap}");
        // No backlog at all.
        let q = HistoryQuery {
            topic: "b".into(),
            since: None,
            limit: 5,
            reverse: false,
        };
        let none = text(&history(&q, None));
        assert_eq!(
            (none["next"].as_str(), none["more"].as_bool()),
            (Some("0-0"), Some(false))
        );
    }
}
