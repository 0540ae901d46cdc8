//! The bus benchmark's part for the buses whose servers are processes on
//! this machine (NATS, RabbitMQ), shared by `nats_bus_bench` and
//! `rabbitmq_bus_bench` (each includes this file with `#[path]`, beside
//! `harness.rs`): the options `--url` (several URLs, comma-separated, for
//! a cluster), `--replicas N` (of the bus's stream or streams) and
//! `--server-pid PID[,PID...]`, the servers' processes, whose CPU is
//! summed.

use crate::harness::{self, Bridge};

/// Reads the command line and runs the benchmark on two nodes that
/// `make(url, replicas)` makes; the line starts with `name`, or
/// `name-rN` with `--replicas N` over 1.
pub(crate) fn run<B: Bridge>(name: &str, default_url: &str, make: impl Fn(&str, usize) -> B) {
    let (mut url, mut server_pid, mut replicas) = (default_url.to_owned(), None::<String>, 1);
    let o = harness::options(|option, value| match option {
        "--url" => url = value.to_owned(),
        "--server-pid" => server_pid = Some(value.to_owned()),
        "--replicas" => replicas = value.parse().expect("--replicas N"),
        other => panic!("unknown option {other}"),
    });
    let server_pids = server_pid.expect("--server-pid PID[,PID...] (the servers')");
    let label = if replicas > 1 {
        format!("{name}-r{replicas}")
    } else {
        name.to_owned()
    };
    harness::run(
        &o,
        &label,
        || make(&url, replicas),
        || server_pids.split(',').map(harness::process_cpu).sum::<f64>(),
    );
}
