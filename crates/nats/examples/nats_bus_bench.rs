//! Measures the NATS bridge as a bus (`benches/bus/harness.rs`): two
//! nodes on a `nats-server` with JetStream (`--url`; several URLs,
//! comma-separated, for a cluster, with `--replicas N` for the stream),
//! each following `--topics` topics, node 0 publishing to `--hot` of them.
//! The servers' CPU is that of the processes `--server-pid` (the
//! `nats-server`s, comma-separated), summed.
//!
//! ```sh
//! cargo run --release -p tether-nats --example nats_bus_bench -- \
//!     --url nats://127.0.0.1:4222 --server-pid "$(pgrep nats-server)" --topics 10000
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

use tether_nats::{NatsBridge, NatsBroker, NatsConfig};

harness::impl_bridge!(NatsBridge, NatsBroker);

fn main() {
    let prefix = format!("bench{}", std::process::id());
    servers::run("nats", "nats://127.0.0.1:4222", |url, replicas| {
        let mut config = NatsConfig::new(url);
        config.prefix.clone_from(&prefix);
        config.max_queued_publishes = 100_000;
        config.replicas = replicas;
        NatsBridge::new(config).unwrap()
    });
}
