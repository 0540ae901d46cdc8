//! The hub as the publisher of the node's sources of events from outside
//! it (an outbox table, Kafka topics): each event published as the
//! application's backend publishes with the publish token, and the
//! sources' health on `/readyz`.

use tether_apps::{HubPublisher, HubShared, PublishError, WhoPublishes};
use tether_hub::{Error as HubError, HubMessage, Publish};
use tether_ingest::{Event, Outcome, Publisher};
use tether_server::Poster;

/// The hub, as a source's publisher.
pub(crate) struct HubIngest {
    publisher: HubPublisher,
    /// For the settings in force (namespaces).
    shared: HubShared,
}

impl HubIngest {
    pub(crate) fn new(shared: &HubShared, poster: Poster<HubMessage>) -> HubIngest {
        HubIngest {
            publisher: shared.publisher(poster),
            shared: shared.clone(),
        }
    }
}

impl Publisher for HubIngest {
    /// Publishes as the application's backend does with the publish
    /// token: the namespace's rule is kept (a namespace that takes no
    /// publishes, a topic in no namespace where those are refused), the
    /// hub's limits checked, the event's publish key given; and waits for
    /// the hub's answer (a durable broker's: written).
    fn publish(&mut self, event: &Event<'_>) -> Outcome {
        let settings = self.shared.current_settings();
        if settings.refuses_topic(event.topic) {
            return Outcome::Refused("the topic is in no namespace, and those are refused".to_owned());
        }
        if settings
            .namespace_of(event.topic)
            .is_some_and(|n| n.publish == Some(WhoPublishes::Nobody))
        {
            return Outcome::Refused("the topic's namespace takes no publishes".to_owned());
        }
        let publish = Publish::new(event.topic, event.event_type, event.data, &settings.hub)
            .and_then(|publish| publish.with_key(event.key));
        let publish = match publish {
            Ok(publish) => publish,
            Err(e) => return outcome(e),
        };
        match self.publisher.submit(publish).wait() {
            Ok(_) => Outcome::Published,
            Err(PublishError::Refused(e)) => outcome(e),
            Err(e) => Outcome::Unavailable(e.to_string()),
        }
    }
}

/// Whether the hub's refusal is for good (the event is given up, and
/// counted) or for now (it is tried again).
fn outcome(error: HubError) -> Outcome {
    match error {
        HubError::TopicLimit { .. } | HubError::BrokerUnavailable | HubError::ShuttingDown => {
            Outcome::Unavailable(error.to_string())
        }
        _ => Outcome::Refused(error.to_string()),
    }
}

/// A source's `/readyz` check, named `name`. A source never reached since
/// the node started is this node's own condition (its configuration
/// names something it cannot reach); one lost later is every node's at
/// once, as the bus going away is: reported, counted when the probe asks
/// for shared conditions, so that an outage of the source does not take
/// every node out of rotation (they still serve, and the events wait at
/// the source).
pub(crate) fn report(
    report: &mut tether_server::Readiness,
    name: &str,
    ok: bool,
    lost_after_reached: bool,
    found: &str,
) {
    if lost_after_reached {
        report.shared(name, false, found);
    } else {
        report.check(name, ok, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_for_now_and_for_good() {
        assert!(matches!(outcome(HubError::ShuttingDown), Outcome::Unavailable(_)));
        assert!(matches!(
            outcome(HubError::BrokerUnavailable),
            Outcome::Unavailable(_)
        ));
        assert!(matches!(
            outcome(HubError::TopicLimit { max: 1 }),
            Outcome::Unavailable(_)
        ));
        assert!(matches!(outcome(HubError::InvalidTopic), Outcome::Refused(_)));
        assert!(matches!(
            outcome(HubError::InvalidPublishKey),
            Outcome::Refused(_)
        ));
        assert!(matches!(
            outcome(HubError::EventTooLarge { size: 2, max: 1 }),
            Outcome::Refused(_)
        ));
    }
}
