//! Measures the RabbitMQ bridge as a bus (`benches/bus/harness.rs`): two
//! nodes on a RabbitMQ server (`--url`; for a cluster, several URLs,
//! comma-separated, node 0 connecting to the first and node 1 to the
//! second, with `--replicas N` for the streams), each following
//! `--topics` topics (a stream each), node 0 publishing to `--hot` of
//! them. The servers' CPU is that of the processes `--server-pid` (the
//! Erlang VMs, `beam.smp`, comma-separated), summed.
//!
//! ```sh
//! cargo run --release -p tether-rabbitmq --example rabbitmq_bus_bench -- \
//!     --url amqp://guest:guest@127.0.0.1:5672/%2f --server-pid "$(pgrep beam.smp)" --topics 1000
//! ```

// A benchmark, not part of the library: it stops at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

#[path = "../../../benches/bus/harness.rs"]
mod harness;
#[path = "../../../benches/bus/servers.rs"]
mod servers;

use tether_rabbitmq::{RabbitBridge, RabbitBroker, RabbitConfig};

harness::impl_bridge!(RabbitBridge, RabbitBroker);

fn main() {
    let prefix = format!("bench{}", std::process::id());
    // The bridge speaks to one server: on a cluster, the nodes use different ones.
    let made = std::cell::Cell::new(0);
    servers::run(
        "rabbitmq",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        |urls, replicas| {
            let urls: Vec<&str> = urls.split(',').collect();
            let mut config = RabbitConfig::new(urls[made.get() % urls.len()]);
            made.set(made.get() + 1);
            config.prefix.clone_from(&prefix);
            config.max_queued_publishes = 100_000;
            config.replicas = replicas;
            RabbitBridge::new(config).unwrap()
        },
    );
}
