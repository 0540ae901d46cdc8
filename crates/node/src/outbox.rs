//! The outbox consumer of a node: rows of an application's PostgreSQL
//! outbox table published into the hub as `POST /topics/NAME` would
//! publish them, from a thread of their own, with the consumer's counters
//! on `/metrics` and its health on `/readyz`.

use tether_apps::HubShared;
use tether_hub::HubMessage;
use tether_ingest::Publisher as _;
use tether_outbox::{Consumer, Health, OutboxConfig, OutboxEvent, Outcome, Publisher};
use tether_server::Poster;

use crate::ingest::HubIngest;

/// Starts the consumer `config` describes, publishing into the hub of
/// `shared` through `poster`, and has `/metrics` and `/readyz` report it.
pub(crate) fn start(
    config: OutboxConfig,
    shared: &HubShared,
    poster: Poster<HubMessage>,
) -> std::io::Result<Consumer> {
    let publisher = HubOutbox(HubIngest::new(shared, poster));
    let mut config = config;
    // Larger data would be refused: not read at all.
    config.max_data_size = shared.settings().hub.max_event_size;
    let table = config.table.clone();
    let consumer = Consumer::start(config, publisher).map_err(std::io::Error::other)?;
    log::info!("outbox: publishing the rows of the table {table}");
    let watch = consumer.watch();
    shared.add_metrics(move |out| watch.write_metrics(out));
    let watch = consumer.watch();
    shared.add_readiness_check(move |report| {
        let health = watch.health();
        let lost = matches!(health, Health::Failing { reached: true, .. });
        crate::ingest::report(report, "outbox", health.ok(), lost, &health.describe());
    });
    Ok(consumer)
}

/// The hub, as the outbox consumer's publisher: each row as the event
/// every source hands over.
struct HubOutbox(HubIngest);

impl Publisher for HubOutbox {
    fn publish(&mut self, event: &OutboxEvent) -> Outcome {
        self.0.publish(&event.event())
    }
}
