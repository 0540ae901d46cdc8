//! Publishes the application's backend decides (namespaces with
//! `publish=hook`): each is held here, its question out, until the
//! decision comes; a WebSocket's publishes are let go in the order they
//! were sent, whatever order their decisions come back in.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tether_hub::{DEFAULT_EVENT_TYPE, Decision, HubMessage, Publish, Transport};
use tether_server::{ConnId, Ctx, Reply, Response};

use super::HubApp;
use super::backend::{Hook, Question};
use super::broker_view::LoopContext;
use super::decide::{refused, unavailable};
use super::metrics::{Outcome, add};
use super::publish::{NotPublished, Pending};
use super::replies::error_response;

/// A publish and who waits for its outcome.
#[derive(Debug)]
pub(super) struct Gated {
    pub(super) publish: Publish,
    pub(super) pending: Pending,
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

/// The question about `publish`, by `subject`.
fn question(subject: Option<String>, publish: &Publish) -> Question {
    Question::Publish {
        subject,
        topic: publish.topic.to_string(),
        data: publish.data.clone(),
        event: (publish.event_type != DEFAULT_EVENT_TYPE).then(|| publish.event_type.clone()),
    }
}

/// `publish` with the data the backend gave instead, checked as any
/// publish is (too large a rewrite is refused, never cut).
fn rewritten(
    publish: Publish,
    data: String,
    config: &tether_hub::Config,
) -> Result<Publish, tether_hub::Error> {
    let again = Publish::new(&publish.topic, Some(&publish.event_type), data, config)?;
    match &publish.key {
        Some(key) => again.with_key(key),
        None => Ok(again),
    }
}

impl HubApp {
    /// An HTTP publish to a `publish=hook` topic: held (its answer later)
    /// while the backend decides.
    pub(super) fn ask_publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        subject: Option<String>,
        publish: Publish,
        pending: Pending,
    ) -> Reply {
        if self.hold_publish(ctx, conn, subject, publish, pending).is_err() {
            return Reply::Now(unavailable());
        }
        let settings = &self.shared.settings;
        let wait = settings.backend.as_ref().map_or(Duration::ZERO, |b| b.timeout());
        Reply::Later(wait + Duration::from_secs(1) + settings.publish_timeout)
    }

    /// A publish to a `publish=hook` topic by `conn`: held, behind the
    /// publisher's earlier ones, while the backend decides. `Err`: it
    /// could not be asked (its key, for the error message).
    pub(super) fn hold_publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        subject: Option<String>,
        publish: Publish,
        pending: Pending,
    ) -> Result<(), Option<String>> {
        let Ok(token) = self.put_question(ctx, question(subject, &publish)) else {
            self.stats.decided(Hook::Publish, Outcome::Unavailable);
            return Err(publish.key.as_deref().map(str::to_owned));
        };
        self.publish_gate.hold(token, conn, Gated { publish, pending });
        Ok(())
    }

    /// The backend's decision about the publish question `token`: the
    /// publishes it lets go, in their publisher's order, published (as
    /// rewritten) or refused.
    pub(super) fn publish_decided(&mut self, ctx: &mut Ctx<'_, HubMessage>, token: u64, decision: Decision) {
        for (gated, decision) in self.publish_gate.decided(token, decision) {
            let outcome = match &decision {
                Decision::Allow(_) => Outcome::Allowed,
                Decision::Deny { .. } => Outcome::Denied,
                _ => Outcome::Unavailable,
            };
            self.stats.decided(Hook::Publish, outcome);
            let Gated { publish, pending } = gated;
            let key = publish.key.as_deref().map(str::to_owned);
            let (pending, refusal) = match decision {
                Decision::Allow(allowed) => {
                    let publish = match allowed.data {
                        Some(data) => rewritten(publish, data, &self.shared.settings.hub),
                        None => Ok(publish),
                    };
                    match publish {
                        Ok(publish) => {
                            let publisher = pending.to_tell_of_refusal();
                            match self.publishes.submit(
                                &mut LoopContext { ctx },
                                &mut *self.broker,
                                &self.stats,
                                publish,
                                pending,
                            ) {
                                Ok(()) => continue,
                                Err(e) => (publisher, Refused::Hub(e)),
                            }
                        }
                        Err(e) => {
                            add(&self.stats.publish_refused, 1);
                            (pending, Refused::Hub(e))
                        }
                    }
                }
                Decision::Deny { status, reason } => (pending, Refused::Denied(status, reason)),
                decision => {
                    log::debug!("hub: the backend did not decide a publish: {decision:?}");
                    (pending, Refused::Undecided)
                }
            };
            self.refuse_held_publish(ctx, pending, refusal, key);
        }
    }

    /// Tells the publisher of a held publish that it was not published.
    fn refuse_held_publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        pending: Pending,
        refusal: Refused,
        key: Option<String>,
    ) {
        match pending {
            Pending::Http(conn) => {
                let response: Response = match refusal {
                    Refused::Hub(e) => error_response(&e),
                    Refused::Denied(status, reason) => refused(status, &reason),
                    Refused::Undecided => unavailable(),
                };
                self.cors.respond(ctx, conn, response);
            }
            Pending::WebSocket { conn, len, .. } => {
                let Some(subscriber) = self.subscribers.get_mut(conn) else {
                    return;
                };
                subscriber.settle_in_flight(len);
                let raw = subscriber.transport == Transport::RawWebSocket;
                let refused = match refusal {
                    Refused::Hub(e) => NotPublished::Hub(e, key),
                    Refused::Denied(_, reason) => NotPublished::Denied(
                        if reason.is_empty() {
                            "refused".to_owned()
                        } else {
                            reason
                        },
                        key,
                    ),
                    Refused::Undecided => NotPublished::Undecided(key),
                };
                self.refuse_ws_publish(ctx, conn, refused, raw);
            }
            Pending::Internal | Pending::Api { .. } | Pending::External(_) => {}
        }
    }
}

/// Why a held publish was not published.
enum Refused {
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
        }
    }

    fn data(ready: &[(Gated, Decision)]) -> Vec<&str> {
        ready.iter().map(|(g, _)| g.publish.data.as_str()).collect()
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
