//! The Kafka consumer of a node: records of Kafka topics published into
//! the hub as `POST /topics/NAME` would publish them, from a thread of
//! their own, with the consumer's counters on `/metrics` and its health
//! on `/readyz`.

use tether_apps::HubShared;
use tether_hub::HubMessage;
use tether_kafka::{Consumer, Health, KafkaConfig};
use tether_server::Poster;

use crate::ingest::HubIngest;

/// Starts the consumer `config` describes, publishing into the hub of
/// `shared` through `poster`, and has `/metrics` and `/readyz` report it.
pub(crate) fn start(
    config: KafkaConfig,
    shared: &HubShared,
    poster: Poster<HubMessage>,
) -> std::io::Result<Consumer> {
    let what = format!("{} in the group {}", config.topics.join(", "), config.group);
    let consumer = Consumer::start(config, HubIngest::new(shared, poster)).map_err(std::io::Error::other)?;
    log::info!("kafka: publishing the records of {what}");
    let watch = consumer.watch();
    shared.add_metrics(move |out| watch.write_metrics(out));
    let watch = consumer.watch();
    shared.add_readiness_check(move |report| {
        let health = watch.health();
        let lost = matches!(health, Health::Failing { reached: true, .. });
        crate::ingest::report(report, "kafka", health.ok(), lost, &health.describe());
    });
    Ok(consumer)
}
