//! A RabbitMQ cluster of a test's own: three (or more) servers of
//! [`crate::rabbitmq`] on this machine, sharing a port mapper and an
//! Erlang cookie. They start together: the first forms the cluster, and
//! the others join it as they boot (`cluster_formation.classic_config`,
//! the first node named, tried until it answers), which needs no
//! `rabbitmqctl` and no restart.

use std::process::{Child, Command};

use crate::rabbitmq::{Member, RabbitMq, free_port, installed, start_epmd};

/// The CLI tool Debian's package installs.
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// A cluster of servers; dropped, every node and the port mapper end.
pub struct RabbitCluster {
    /// The nodes, the first the one the others joined.
    pub nodes: Vec<RabbitMq>,
    epmd: Option<Child>,
}

impl RabbitCluster {
    /// A cluster of `size` nodes started for the test; `None` (the
    /// reason printed) when RabbitMQ is not installed, unless
    /// `TETHER_REQUIRE_RABBITMQ` is set. Panics when a node does not
    /// start or the cluster does not count every node.
    pub fn start(size: usize) -> Option<RabbitCluster> {
        if !installed() {
            return None;
        }
        let (epmd, epmd_port) = start_epmd().expect("an Erlang port mapper (epmd)");
        let unique = free_port();
        let cookie = format!("TETHERTEST{unique}");
        let name = |i: usize| format!("tether{unique}n{i}@localhost");
        let member = |i: usize| Member {
            epmd_port,
            cookie: cookie.clone(),
            name: name(i),
            seed: (i > 0).then(|| name(0)),
        };
        // The seed up first, then the others beside each other: a node
        // that joins a seed still booting copies its tables before the
        // seed's feature flags change them, and stops at a schema
        // mismatch (seen with 3.10.8 on a busy machine).
        let seed = RabbitMq::start_as(Some(member(0)));
        let starting: Vec<_> = (1..size)
            .map(|i| {
                let member = member(i);
                std::thread::spawn(move || RabbitMq::start_as(Some(member)))
            })
            .collect();
        let nodes = std::iter::once(seed)
            .chain(
                starting
                    .into_iter()
                    .map(|node| node.join().expect("a node started")),
            )
            .collect();
        let cluster = RabbitCluster {
            nodes,
            epmd: Some(epmd),
        };
        let running = cluster.ctl(0, &["cluster_status", "--formatter", "json"]);
        for node in &cluster.nodes {
            assert!(
                running.contains(&node.node_name()),
                "{} is not in the cluster: {running}",
                node.node_name()
            );
        }
        Some(cluster)
    }

    /// `amqp://guest:guest@127.0.0.1:P1,127.0.0.1:P2,…/%2f`: the nodes
    /// `indices`, in that order.
    pub fn url_of(&self, indices: &[usize]) -> String {
        let addresses: Vec<_> = indices
            .iter()
            .map(|&i| format!("127.0.0.1:{}", self.nodes[i].port()))
            .collect();
        format!("amqp://guest:guest@{}/%2f", addresses.join(","))
    }

    /// The node (its index) whose member of `queue` is the writer (a
    /// stream's) or leader, as node `ask` reports it, if any.
    pub fn leader_of(&self, ask: usize, queue: &str) -> Option<usize> {
        let listed = self.ctl(ask, &["list_queues", "name", "leader", "--formatter", "json"]);
        let rows: serde_json::Value = serde_json::from_str(&listed).ok()?;
        let leader = rows.as_array()?.iter().find(|row| row["name"] == queue)?["leader"]
            .as_str()?
            .to_owned();
        self.nodes.iter().position(|n| n.node_name() == leader)
    }

    /// What `rabbitmqctl -n NODE ARGS…` printed, for node `index`.
    pub fn ctl(&self, index: usize, args: &[&str]) -> String {
        let node = &self.nodes[index];
        let out = Command::new(CTL)
            .envs(node.env())
            .args(["-q", "-n", &node.node_name()])
            .args(args)
            .output()
            .expect("run rabbitmqctl");
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        if let Some(mut epmd) = self.epmd.take() {
            let _ = epmd.kill();
            let _ = epmd.wait();
        }
    }
}
