//! Publishes the application's backend decides (namespaces with
//! `publish=hook`): each is held here, its question out, until the
//! decision comes; a WebSocket's publishes are let go in the order they
//! were sent, whatever order their decisions come back in.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use tether_hub::{DEFAULT_EVENT_TYPE, Decision, Payload, Publish};
use tether_server::ConnId;

use super::publish::Pending;
use crate::backend::Question;

/// A publish and who waits for its outcome.
#[derive(Debug)]
pub(super) struct Gated {
    pub(super) publish: Publish,
    pub(super) pending: Pending,
    /// When it arrived: its time to its outcome counts the wait for the
    /// backend too.
    pub(super) arrived: Instant,
}

/// One publish held, and its decision once it came.
#[derive(Debug)]
struct Held {
    token: u64,
    gated: Gated,
    decision: Option<Decision>,
}

/// This loop's publishes waiting for the backend, by the question's token
/// and by publisher, in the order they were sent.
#[derive(Debug)]
pub(super) struct PublishGate<C = ConnId> {
    /// The publisher each question is about.
    asked: HashMap<u64, C>,
    /// Each publisher's publishes held, oldest first.
    held: HashMap<C, VecDeque<Held>>,
}

impl<C> Default for PublishGate<C> {
    fn default() -> PublishGate<C> {
        PublishGate {
            asked: HashMap::new(),
            held: HashMap::new(),
        }
    }
}

impl<C: Copy + Eq + std::hash::Hash> PublishGate<C> {
    /// Holds `gated`, from `conn`, until the answer to question `token`.
    pub(super) fn hold(&mut self, token: u64, conn: C, gated: Gated) {
        self.asked.insert(token, conn);
        self.held.entry(conn).or_default().push_back(Held {
            token,
            gated,
            decision: None,
        });
    }

    /// Whether question `token` is about a publish.
    pub(super) fn asked(&self, token: u64) -> bool {
        self.asked.contains_key(&token)
    }

    /// The decision about question `token` came: the publishes now let go
    /// (or refused), oldest first — none while an older one of the same
    /// publisher still waits.
    pub(super) fn decided(&mut self, token: u64, decision: Decision) -> Vec<(Gated, Decision)> {
        let Some(conn) = self.asked.remove(&token) else {
            return Vec::new();
        };
        let Some(queue) = self.held.get_mut(&conn) else {
            return Vec::new();
        };
        if let Some(held) = queue.iter_mut().find(|held| held.token == token) {
            held.decision = Some(decision);
        }
        let mut ready = Vec::new();
        while queue.front().is_some_and(|held| held.decision.is_some()) {
            if let Some(Held {
                gated,
                decision: Some(decision),
                ..
            }) = queue.pop_front()
            {
                ready.push((gated, decision));
            }
        }
        if queue.is_empty() {
            self.held.remove(&conn);
        }
        ready
    }

    /// Whether `conn` has a publish still waiting for its decision.
    pub(super) fn holds(&self, conn: C) -> bool {
        self.held.contains_key(&conn)
    }

    /// Forgets `conn`'s publishes (its client left, or its answer timed
    /// out).
    pub(super) fn forget(&mut self, conn: C) {
        if let Some(queue) = self.held.remove(&conn) {
            for held in queue {
                self.asked.remove(&held.token);
            }
        }
    }
}

/// The publish hook's question about `publish`, by `subject`.
pub(super) fn publish_question(subject: Option<String>, publish: &Publish) -> Question {
    Question::Publish {
        subject,
        topic: publish.topic.to_string(),
        data: publish.data.base64(),
        event: (publish.event_type != DEFAULT_EVENT_TYPE).then(|| publish.event_type.clone()),
        encoding: publish.data.is_binary().then_some("base64"),
    }
}

/// `publish` with the data the backend gave instead, checked as any
/// publish is (too large a rewrite is refused, never cut); a binary
/// publish's replacement is base64, and refused if it is not.
pub(super) fn rewritten(
    publish: Publish,
    data: String,
    config: &tether_hub::Config,
) -> Result<Publish, Refused> {
    let data = if publish.data.is_binary() {
        Payload::from_base64(&data).ok_or(Refused::Undecided)?
    } else {
        Payload::Text(data)
    };
    let again =
        Publish::new(&publish.topic, Some(&publish.event_type), data, config).map_err(Refused::Hub)?;
    match &publish.key {
        Some(key) => again.with_key(key).map_err(Refused::Hub),
        None => Ok(again),
    }
}

/// Why a held publish was not published.
pub(super) enum Refused {
    /// The hub refused it (a rewrite too large, the broker full).
    Hub(tether_hub::Error),
    /// The backend refused it: status and reason.
    Denied(u16, String),
    /// The backend did not decide.
    Undecided,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_hub::{Allowed, Config};

    fn gated(data: &str) -> Gated {
        Gated {
            publish: Publish::new("room.1", None, data, &Config::default()).unwrap(),
            pending: Pending::Internal,
            arrived: Instant::now(),
        }
    }

    fn data(ready: &[(Gated, Decision)]) -> Vec<&str> {
        ready
            .iter()
            .filter_map(|(g, _)| g.publish.data.as_text())
            .collect()
    }

    #[test]
    fn a_publishers_publishes_go_in_the_order_sent() {
        let (conn, other) = (1u32, 2u32);
        let mut gate = PublishGate::default();
        gate.hold(1, conn, gated("a"));
        gate.hold(2, conn, gated("b"));
        gate.hold(3, other, gated("x"));
        gate.hold(4, conn, gated("c"));
        let allow = || Decision::Allow(Allowed::new());
        // b's decision first: it waits for a's.
        assert!(gate.decided(2, allow()).is_empty());
        // Another publisher is not held up.
        assert_eq!(data(&gate.decided(3, allow())), ["x"]);
        assert_eq!(data(&gate.decided(1, allow())), ["a", "b"]);
        let refused = gate.decided(
            4,
            Decision::Deny {
                status: 403,
                reason: "no".into(),
            },
        );
        assert_eq!(data(&refused), ["c"]);
        assert!(gate.held.is_empty() && gate.asked.is_empty());
        // A decision that comes twice, or for nothing, does nothing.
        assert!(gate.decided(4, allow()).is_empty());
    }

    #[test]
    fn a_publisher_that_left_is_forgotten_with_its_questions() {
        let conn = 1u32;
        let mut gate = PublishGate::default();
        gate.hold(1, conn, gated("a"));
        gate.hold(2, conn, gated("b"));
        assert!(gate.asked(2));
        gate.forget(conn);
        assert!(!gate.asked(1) && !gate.asked(2));
        assert!(gate.decided(1, Decision::Allow(Allowed::new())).is_empty());
    }
}
