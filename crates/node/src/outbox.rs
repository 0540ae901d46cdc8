//! The outbox consumer of a node: rows of an application's PostgreSQL
//! outbox table published into the hub as `POST /topics/NAME` would
//! publish them, from a thread of their own, with the consumer's counters
//! on `/metrics` and its health on `/readyz`.

use tether_apps::{HubPublisher, HubShared, PublishError, WhoPublishes};
use tether_hub::{Error as HubError, HubMessage, Publish};
use tether_outbox::{Consumer, Health, OutboxConfig, OutboxEvent, Outcome, Publisher};
use tether_server::Poster;

/// Starts the consumer `config` describes, publishing into the hub of
/// `shared` through `poster`, and has `/metrics` and `/readyz` report it.
pub(crate) fn start(
    config: OutboxConfig,
    shared: &HubShared,
    poster: Poster<HubMessage>,
) -> std::io::Result<Consumer> {
    let publisher = HubOutbox {
        publisher: shared.publisher(poster),
        shared: shared.clone(),
    };
    let mut config = config;
    // Larger data would be refused: not read at all.
    config.max_data_size = shared.settings().hub.max_event_size;
    let table = config.table.clone();
    let consumer = Consumer::start(config, publisher).map_err(std::io::Error::other)?;
    log::info!("outbox: publishing the rows of the table {table}");
    let watch = consumer.watch();
    shared.add_metrics(move |out| watch.write_metrics(out));
    let watch = consumer.watch();
    shared.add_readiness_check(move |report| report_health(&watch.health(), report));
    Ok(consumer)
}

/// `/readyz`'s `outbox` check. A database never reached since the node
/// started is this node's own condition (its configuration names a
/// database it cannot reach, or a table that is not there); one lost
/// later is every node's at once, as the bus going away is: reported,
/// counted when the probe asks for shared conditions, so that a database
/// outage does not take every node out of rotation (they still serve,
/// and the rows wait in the table).
fn report_health(health: &Health, report: &mut tether_server::Readiness) {
    let found = health.describe();
    match health {
        Health::Failing { reached: true, .. } => report.shared("outbox", false, &found),
        _ => report.check("outbox", health.ok(), &found),
    }
}

/// The hub, as the outbox consumer's publisher.
struct HubOutbox {
    publisher: HubPublisher,
    /// For the settings in force (namespaces).
    shared: HubShared,
}

impl Publisher for HubOutbox {
    /// Publishes as the application's backend does with the publish
    /// token: the namespace's rule is kept (a namespace that takes no
    /// publishes, a topic in no namespace where those are refused), the
    /// hub's limits checked, the row's publish key given; and waits for
    /// the hub's answer (a durable broker's: written).
    fn publish(&mut self, event: &OutboxEvent) -> Outcome {
        let settings = self.shared.current_settings();
        if settings.refuses_topic(&event.topic) {
            return Outcome::Refused("the topic is in no namespace, and those are refused".to_owned());
        }
        if settings
            .namespace_of(&event.topic)
            .is_some_and(|n| n.publish == Some(WhoPublishes::Nobody))
        {
            return Outcome::Refused("the topic's namespace takes no publishes".to_owned());
        }
        let publish = Publish::new(
            &event.topic,
            event.event_type.as_deref(),
            event.data.as_str(),
            &settings.hub,
        )
        .and_then(|publish| publish.with_key(&event.key));
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

/// Whether the hub's refusal is for good (the row is marked failed) or
/// for now (it is tried again).
fn outcome(error: HubError) -> Outcome {
    match error {
        HubError::TopicLimit { .. } | HubError::BrokerUnavailable | HubError::ShuttingDown => {
            Outcome::Unavailable(error.to_string())
        }
        _ => Outcome::Refused(error.to_string()),
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
