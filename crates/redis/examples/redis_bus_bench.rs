//! Measures the Redis bridge as a bus (`benches/bus/harness.rs`): two
//! nodes on one Redis or a Redis Cluster (`--url redis+cluster://...`
//! naming every primary, and `--partitions`, the cluster's layout), each
//! following `--topics` topics, node 0 publishing to `--hot` of them.
//! The servers' CPU is Redis's (`INFO cpu`, summed over the servers the
//! URL names).
//!
//! ```sh
//! cargo run --release -p tether-redis --example redis_bus_bench -- \
//!     --url redis://127.0.0.1:6379/ --topics 10000
//! ```
//!
//! Uses only the crate's public API, so that the same files measure
//! another version of the crate (`benches/bus.sh` runs it before and
//! after a change; the version needs `RedisConfig::cluster_partitions`).

// A benchmark, not part of the library: it stops at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

#[path = "../../../benches/bus/harness.rs"]
mod harness;

use tether_redis::{RedisBridge, RedisBroker, RedisConfig};

harness::impl_bridge!(RedisBridge, RedisBroker);

/// A connection to each Redis server `url` names (every node a
/// `redis+cluster://` URL lists).
fn servers(url: &str) -> Vec<redis::Connection> {
    let urls = match url.strip_prefix("redis+cluster://") {
        Some(hosts) => hosts
            .trim_end_matches('/')
            .split(',')
            .map(|host| format!("redis://{host}/"))
            .collect(),
        None => vec![url.to_owned()],
    };
    urls.iter()
        .map(|url| {
            redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap()
        })
        .collect()
}

/// The Redis servers' CPU seconds so far (system and user), summed.
fn redis_cpu(servers: &mut [redis::Connection]) -> f64 {
    let mut seconds = 0.0;
    for con in servers {
        let info: String = redis::cmd("INFO").arg("cpu").query(con).unwrap();
        seconds += info
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                ["used_cpu_sys", "used_cpu_user"]
                    .contains(&name)
                    .then(|| value.trim().parse::<f64>().ok())?
            })
            .sum::<f64>();
    }
    seconds
}

fn main() {
    let (mut url, mut partitions) = ("redis://127.0.0.1:6379/".to_owned(), 16);
    let o = harness::options(|name, value| match name {
        "--url" => url = value.to_owned(),
        "--partitions" => partitions = value.parse().unwrap(),
        other => panic!("unknown option {other}"),
    });
    let prefix = format!("bench-{}:", std::process::id());
    let cluster = url.starts_with("redis+cluster://");
    let make = || {
        let mut config = RedisConfig::new(url.as_str());
        config.prefix.clone_from(&prefix);
        config.cluster_partitions = partitions;
        config.max_queued_publishes = 100_000;
        RedisBridge::new(config).unwrap()
    };
    let mut redis = servers(&url);
    let label = if cluster {
        format!("partitions={partitions}")
    } else {
        "partitions=-".to_owned()
    };
    harness::run(&o, &label, make, || redis_cpu(&mut redis));
}
