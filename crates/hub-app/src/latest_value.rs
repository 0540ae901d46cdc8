//! Latest-value topics with no event yet, and the backend's latest hook:
//! when a subscriber arrives from nowhere at a topic of a `latest=on`
//! namespace and this loop knows the topic has had no event, the backend
//! is asked for the topic's current value. An answer with a value is
//! published to the topic as the backend's own publish would be (an id,
//! the bus, the durable log), so the subscriber, and every one after it
//! on any node, gets it as the topic's latest event, and a client that
//! resumes from its id resumes exactly.
//!
//! One question per topic is out at a time on a node, whichever loops
//! its subscribers are on (a loop whose replica of the topic has not yet
//! had the published value may ask again; its answer is then dropped,
//! as below). An answer that comes after an event did is dropped (that
//! event is newer than what the backend saw), as is one that comes when
//! nobody on the loop waits for the topic any more. An answer with no
//! value, a refusal, or no answer leaves the subscribers waiting for the
//! first event, as without the hook: nothing is refused for it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_hub::{Decision, HubMessage, Publish};
use tether_server::Ctx;

use crate::HubApp;
use crate::backend::{Hook, Question};
use crate::loop_parts::LoopParts;
use crate::metrics::Outcome;
use crate::publishing::Pending;

/// The loop's questions to the latest hook, and the topics it will ask
/// about once their history is here.
#[derive(Debug, Default)]
pub(crate) struct LatestValues {
    /// Topics held for their history when a subscriber wanted their
    /// latest event: looked at again once it has come.
    unready: HashSet<Arc<str>>,
    /// The questions out, by token: the topic, and when it was asked.
    out: HashMap<u64, (Arc<str>, Instant)>,
}

impl LatestValues {
    /// Whether question `token` is one of these.
    pub(crate) fn asked(&self, token: u64) -> bool {
        self.out.contains_key(&token)
    }
}

/// Takes `topic` into the node's questions out: false if it is there.
fn take(asked: &Mutex<HashSet<Arc<str>>>, topic: &Arc<str>) -> bool {
    asked
        .lock()
        .is_ok_and(|mut asked| asked.insert(Arc::clone(topic)))
}

/// Lets `topic` go from the node's questions out.
fn release(asked: &Mutex<HashSet<Arc<str>>>, topic: &str) {
    if let Ok(mut asked) = asked.lock() {
        asked.remove(topic);
    }
}

impl HubApp {
    /// Asks the backend for the current value of each topic a subscriber
    /// wanted the latest event of in this callback (and of those whose
    /// history has come since), where the topic has had no event and no
    /// question about it is out. Called at the end of every callback
    /// that subscribes, and on the tick.
    pub(crate) fn ask_for_values(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        let mut topics = self.delivery.take_wanted_values();
        if topics.is_empty() && self.values.unready.is_empty() {
            return;
        }
        if self.shared.settings.backend_for(Hook::Latest).is_none() {
            self.values.unready.clear();
            return;
        }
        topics.extend(self.values.unready.drain());
        for topic in topics {
            let hub = self.delivery.hub();
            match hub.backlog(&topic) {
                // Nobody on this loop follows it any more.
                None => continue,
                Some(_) if !hub.is_ready(&topic) => {
                    self.values.unready.insert(topic);
                    continue;
                }
                Some(backlog) if backlog.last_id().is_some() => continue,
                Some(_) => {}
            }
            if !take(&self.shared.values_asked, &topic) {
                continue;
            }
            let question = Question::Latest {
                topic: topic.to_string(),
            };
            match self.hooks.ask(ctx, &parts!(self), question) {
                Ok(token) => {
                    self.values.out.insert(token, (topic, ctx.now()));
                }
                Err(_busy) => {
                    release(&self.shared.values_asked, &topic);
                    log::debug!("hub: the backend was not asked for {topic}'s value (busy)");
                }
            }
        }
    }

    /// The backend's answer to the latest question `token`: its value
    /// published to the topic when the topic still has no event and
    /// somebody on this loop waits for it.
    pub(crate) fn value_decided(&mut self, ctx: &mut Ctx<'_, HubMessage>, token: u64, decision: Decision) {
        let Some((topic, _)) = self.values.out.remove(&token) else {
            return;
        };
        release(&self.shared.values_asked, &topic);
        self.stats.decided(Hook::Latest, Outcome::of(&decision));
        let Decision::Allow(allowed) = decision else {
            return;
        };
        let Some(data) = allowed.data else {
            return;
        };
        let waited = (self.delivery.hub().backlog(&topic)).is_some_and(|backlog| backlog.last_id().is_none());
        if !waited {
            return;
        }
        let config = &self.shared.settings.hub;
        match Publish::new(&topic, allowed.event.as_deref(), data, config) {
            Ok(publish) => {
                let submitted = (self.publishing).submit(ctx, &mut parts!(self), publish, Pending::Internal);
                if let Err(e) = submitted {
                    log::warn!("hub: the backend's value of {topic} was not published: {e}");
                }
            }
            Err(e) => log::warn!("hub: the backend's value of {topic} cannot be published: {e}"),
        }
    }

    /// The tick: a question the backend has not answered a second after
    /// its timeout (an embedder's backend that lost it) is forgotten, so
    /// that the topic's next subscriber asks again.
    pub(crate) fn forget_late_values(&mut self, now: Instant) {
        let wait = (self.shared.settings.backend_for(Hook::Latest))
            .map_or(Duration::ZERO, |backend| backend.timeout())
            .saturating_add(Duration::from_secs(1));
        let (stats, asked) = (&self.stats, &self.shared.values_asked);
        (self.values.out).retain(|_, (topic, asked_at)| {
            let waiting = now.saturating_duration_since(*asked_at) <= wait;
            if !waiting {
                release(asked, topic);
                stats.decided(Hook::Latest, Outcome::Unavailable);
            }
            waiting
        });
    }
}
