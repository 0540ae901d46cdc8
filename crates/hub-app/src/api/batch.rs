//! Requests whose items wait for the sequencer, and their answers.

use std::collections::HashMap;
use std::hash::Hash;

use tether_hub::{Error as HubError, EventId};
use tether_server::{ConnId, Response};

use super::ApiError;

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Published with this id (or, `true`, its key was remembered:
    /// nothing published, the first event's id).
    Published(EventId, bool),
    Refused(ApiError),
}

impl Outcome {
    pub(crate) fn of(result: Result<(EventId, bool), HubError>) -> Outcome {
        match result {
            Ok((id, duplicate)) => Outcome::Published(id, duplicate),
            Err(e) => Outcome::Refused(ApiError::of_hub(&e)),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Outcome::Published(id, false) => out.push_str(&format!("{{\"id\":\"{id}\"}}")),
            Outcome::Published(id, true) => {
                out.push_str(&format!("{{\"id\":\"{id}\",\"duplicate\":true}}"));
            }
            Outcome::Refused(e) => out.push_str(&e.json()),
        }
    }
}

/// `{"results":[...]}`, one per item in order; an item still waiting is
/// answered as timed out.
pub(crate) fn results_json(results: &[Option<Outcome>]) -> String {
    let timeout = Outcome::Refused(ApiError::new(504, "timeout", "the broker did not answer in time"));
    let mut out = String::from("{\"results\":[");
    for (i, outcome) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        outcome.as_ref().unwrap_or(&timeout).write(&mut out);
    }
    out.push_str("]}");
    out
}

/// A request whose items wait for the sequencer.
#[derive(Debug)]
struct Batch {
    results: Vec<Option<Outcome>>,
    waiting: usize,
}

/// This loop's API requests waiting for their items' outcomes, by
/// connection (one request at a time each).
#[derive(Debug)]
pub(crate) struct Batches<C = ConnId> {
    waiting: HashMap<C, Batch>,
}

impl<C> Default for Batches<C> {
    fn default() -> Self {
        Batches {
            waiting: HashMap::new(),
        }
    }
}

impl<C: Copy + Eq + Hash> Batches<C> {
    /// A request of `len` items, all waiting until settled.
    pub(crate) fn start(&mut self, conn: C, len: usize) {
        self.waiting.insert(
            conn,
            Batch {
                results: vec![None; len],
                waiting: len,
            },
        );
    }

    /// Item `index` of `conn`'s request has this outcome: the answer, when
    /// it was the last one waited for.
    pub(crate) fn settle(&mut self, conn: C, index: usize, outcome: Outcome) -> Option<Response> {
        let batch = self.waiting.get_mut(&conn)?;
        let slot = batch.results.get_mut(index)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(outcome);
        batch.waiting = batch.waiting.saturating_sub(1);
        if batch.waiting > 0 {
            return None;
        }
        let batch = self.waiting.remove(&conn)?;
        Some(Response::json(200, results_json(&batch.results)))
    }

    /// `conn`'s request timed out: what is known, the rest timed out.
    pub(crate) fn time_out(&mut self, conn: C) -> Option<Response> {
        let batch = self.waiting.remove(&conn)?;
        Some(Response::json(200, results_json(&batch.results)))
    }

    /// `conn` went away.
    pub(crate) fn forget(&mut self, conn: C) {
        self.waiting.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::as_json;

    #[test]
    fn answers() {
        let e = ApiError::of_hub(&HubError::InvalidTopic);
        assert_eq!((e.status, e.code), (400, "invalid_topic"));
        let results = [
            Some(Outcome::Published(EventId::new(5, 2), false)),
            Some(Outcome::Published(EventId::new(5, 1), true)),
            Some(Outcome::Refused(ApiError::new(403, "forbidden", "no \"a\""))),
            None,
        ];
        assert_eq!(
            results_json(&results),
            concat!(
                r#"{"results":[{"id":"5-2"},{"id":"5-1","duplicate":true},"#,
                r#"{"error":{"code":"forbidden","message":"no \"a\""}},"#,
                r#"{"error":{"code":"timeout","message":"the broker did not answer in time"}}]}"#
            )
        );
        let refused = as_json(Response::text(401, "invalid token\n").header("WWW-Authenticate", "Bearer"));
        assert_eq!(refused.status, 401);
        assert_eq!(refused.headers.len(), 1);
        assert_eq!(
            refused.body,
            br#"{"error":{"code":"unauthorized","message":"invalid token"}}"#
        );
    }

    #[test]
    fn batches_answer_when_the_last_item_settles() {
        let mut batches = Batches::<u32>::default();
        let conn = 1;
        let refused = Outcome::Refused(ApiError::of_hub(&HubError::InvalidTopic));
        batches.start(conn, 1);
        assert!(batches.settle(conn, 0, refused.clone()).is_some());
        batches.start(conn, 3);
        assert!(batches.settle(conn, 1, refused).is_none());
        let id = EventId::new(1, 0);
        assert!(batches.settle(conn, 2, Outcome::Published(id, false)).is_none());
        // Settled twice, or out of range: ignored.
        assert!(batches.settle(conn, 2, Outcome::Published(id, false)).is_none());
        assert!(batches.settle(conn, 9, Outcome::Published(id, false)).is_none());
        let answer = batches.settle(conn, 0, Outcome::Published(id, false)).unwrap();
        assert_eq!(answer.status, 200);
        assert!(batches.settle(conn, 0, Outcome::Published(id, false)).is_none());
        batches.start(conn, 2);
        assert!(batches.settle(conn, 1, Outcome::Published(id, false)).is_none());
        let partial = batches.time_out(conn).unwrap();
        assert!(String::from_utf8(partial.body).unwrap().contains("timeout"));
        assert!(batches.time_out(conn).is_none());
    }
}
