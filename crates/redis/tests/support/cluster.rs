//! A real Redis Cluster for tests: three primaries and three replicas,
//! six `redis-server --cluster-enabled yes` children on free loopback
//! ports (each with its cluster bus on another free port), joined with
//! `redis-cli --cluster create`, no persistence, a node timeout of 2 s so
//! that a killed primary's replica takes over quickly. Every child is
//! killed by its own handle at drop (never a system service).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{PATIENCE, free_port, wait_until};

/// How long a node may be silent before the others count it as failed.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// Whether `redis-server` and `redis-cli` can run here; when they cannot,
/// says why (and fails if `TETHER_REQUIRE_REDIS` is set).
pub fn available(test: &str) -> bool {
    if !super::available(test) {
        return false;
    }
    let cli = Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if cli {
        return true;
    }
    assert!(
        std::env::var_os("TETHER_REQUIRE_REDIS").is_none(),
        "{test}: redis-cli is not installed but TETHER_REQUIRE_REDIS is set \
         (apt-get install redis-tools)"
    );
    println!("{test}: SKIPPED: redis-cli is not installed (apt-get install redis-tools)");
    false
}

struct Node {
    port: u16,
    /// Its TLS port, on a cluster that serves TLS too.
    tls_port: Option<u16>,
    child: Option<Child>,
}

pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Six nodes, three primaries with a replica each, every slot served.
    pub fn start() -> RedisCluster {
        RedisCluster::start_on(None)
    }

    /// The same, each node serving TLS on a port of its own besides its
    /// plain one (which the test's own connections use), the cluster bus
    /// and replication over TLS (`--tls-cluster yes`, `--tls-replication
    /// yes`): a client over TLS is given the nodes' TLS ports.
    pub fn start_tls(tls: &super::tls::ServerTls) -> RedisCluster {
        RedisCluster::start_on(Some(tls))
    }

    fn start_on(tls: Option<&super::tls::ServerTls>) -> RedisCluster {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tether-redis-cluster-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            dir,
        };
        let per_node = if tls.is_some() { 3 } else { 2 };
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 6 * per_node {
            let port = free_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        for pair in ports.chunks(per_node) {
            let (port, bus) = (pair[0], pair[1]);
            let tls_port = pair.get(2).copied();
            let tls_args = match (tls, tls_port) {
                (Some(tls), Some(tls_port)) => {
                    let mut args = tls.args(tls_port);
                    // Its plain port stays (the test's own connections).
                    args.drain(..2);
                    args.extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
                    args
                }
                _ => Vec::new(),
            };
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(&tls_args)
                .args(["--cluster-enabled", "yes", "--cluster-port", &bus.to_string()])
                .arg("--cluster-config-file")
                .arg(cluster.dir.join(format!("nodes-{port}.conf")))
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                // A snapshot file of its own: a replica's first sync goes
                // through its primary's RDB file, and with one file for
                // all six nodes a replica could load another primary's
                // snapshot (and lack its own primary's data while its
                // offset said it was in sync).
                .args(["--dbfilename", &format!("dump-{port}.rdb")])
                .arg("--dir")
                .arg(&cluster.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            cluster.nodes.push(Node {
                port,
                tls_port,
                child: Some(child),
            });
        }
        for node in &cluster.nodes {
            wait_until(&format!("redis-server on {}", node.port), || {
                node_client(node.port).is_some()
            });
        }
        // Each answering port is its own node's: one that exited (its port
        // or its bus port taken by another process since it was chosen)
        // would leave the port to whoever holds it.
        for node in &mut cluster.nodes {
            let exited = node.child.as_mut().map(|c| c.try_wait());
            assert!(
                matches!(exited, Some(Ok(None))),
                "redis-server on {} exited at start ({exited:?}): a port it was given was taken",
                node.port
            );
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(status.success(), "redis-cli --cluster create failed: {status}");
        cluster.wait_healthy();
        cluster
    }

    /// `redis+cluster://` with every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// `rediss+cluster://` with every node's TLS port, by a name their
    /// certificate holds (a cluster started with [`RedisCluster::start_tls`]).
    pub fn tls_url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("localhost:{}", n.tls_port.expect("a TLS cluster")))
            .collect();
        format!("rediss+cluster://{}", nodes.join(","))
    }

    /// The ports of the nodes still running.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// A connection to any running node (`MOVED` is the caller's to
    /// follow: see [`RedisCluster::client`]).
    fn any_node(&self) -> redis::Connection {
        self.ports()
            .into_iter()
            .find_map(node_client)
            .expect("a running node")
    }

    /// A cluster connection of the test's own.
    pub fn client(&self) -> redis::cluster::ClusterConnection {
        let nodes: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect();
        redis::cluster::ClusterClient::new(nodes)
            .and_then(|c| c.get_connection())
            .expect("connect to the cluster")
    }

    /// The slot of `key`, as Redis computes it.
    pub fn slot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.any_node())
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the primary that serves `slot` now.
    pub fn primary_of(&self, slot: u16) -> u16 {
        let ranges: Vec<(u16, u16, u16)> = self.slot_ranges();
        ranges
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .map(|(_, _, port)| port)
            .expect("every slot is served")
    }

    /// `CLUSTER SLOTS`: each range and its primary's port.
    fn slot_ranges(&self) -> Vec<(u16, u16, u16)> {
        let reply: redis::Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.any_node())
            .expect("CLUSTER SLOTS");
        let redis::Value::Array(ranges) = reply else {
            panic!("CLUSTER SLOTS: {reply:?}")
        };
        ranges
            .iter()
            .map(|range| {
                let redis::Value::Array(parts) = range else {
                    panic!("CLUSTER SLOTS range: {range:?}")
                };
                let int = |v: &redis::Value| match v {
                    redis::Value::Int(n) => u16::try_from(*n).unwrap(),
                    other => panic!("not a number: {other:?}"),
                };
                let redis::Value::Array(primary) = &parts[2] else {
                    panic!("CLUSTER SLOTS node: {:?}", parts[2])
                };
                (int(&parts[0]), int(&parts[1]), int(&primary[1]))
            })
            .collect()
    }

    /// The primaries' ports.
    pub fn primaries(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.slot_ranges().into_iter().map(|(_, _, p)| p).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Kills the node on `port` with SIGKILL, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of the cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until every slot is served by a running primary and the
    /// cluster says it is ok, as seen from every running node.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + PATIENCE + Duration::from_millis(3 * NODE_TIMEOUT_MS);
        loop {
            if self.healthy() {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become healthy");
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn healthy(&self) -> bool {
        let running = self.ports();
        let all_ok = running.iter().all(|&port| {
            node_client(port)
                .and_then(|mut con| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut con).ok())
                .is_some_and(|info| {
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                })
        });
        if !all_ok {
            return false;
        }
        let Ok(ranges) = std::panic::catch_unwind(|| self.slot_ranges()) else {
            return false;
        };
        let served: u32 = ranges.iter().map(|(s, e, _)| u32::from(*e - *s) + 1).sum();
        served == 16384 && ranges.iter().all(|(_, _, port)| running.contains(port))
    }

    /// Every primary's replicas have all it wrote (so that a failover
    /// now loses nothing acknowledged before).
    pub fn wait_replicated(&self) {
        wait_until("the replicas to be in sync", || {
            self.primaries().into_iter().all(|port| {
                let Some(mut con) = node_client(port) else {
                    return false;
                };
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut con)
                    .unwrap_or_default();
                let field = |line: &str, name: &str| {
                    line.split(',')
                        .find_map(|kv| kv.strip_prefix(name))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                let written = info
                    .lines()
                    .find_map(|l| l.strip_prefix("master_repl_offset:"))
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let replicas: Vec<Option<u64>> = info
                    .lines()
                    .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                    .map(|l| field(l.split_once(':').map_or("", |(_, r)| r), "offset="))
                    .collect();
                !replicas.is_empty()
                    && replicas
                        .iter()
                        .all(|offset| offset.is_some() && *offset == written)
            })
        });
    }

    /// How many times the primaries and replicas together have run the
    /// command `name` (lower case, as `INFO commandstats` names it).
    pub fn command_calls(&self, name: &str) -> u64 {
        let key = format!("cmdstat_{name}:calls=");
        self.ports()
            .into_iter()
            .filter_map(node_client)
            .map(|mut con| {
                let info: String = redis::cmd("INFO")
                    .arg("commandstats")
                    .query(&mut con)
                    .expect("INFO commandstats");
                info.lines()
                    .find_map(|line| line.strip_prefix(&key))
                    .and_then(|rest| rest.split(',').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Disconnects every client of every node (but the one asking), as a
    /// network failure would; how many.
    pub fn kill_clients(&self) -> u64 {
        self.ports()
            .into_iter()
            .filter_map(node_client)
            .map(|mut con| {
                redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("normal")
                    .query::<u64>(&mut con)
                    .unwrap_or(0)
            })
            .sum()
    }

    /// How many commands each error prefix answered, summed over the
    /// running nodes (`INFO errorstats`: `CROSSSLOT`, `MOVED`, ...).
    pub fn error_counts(&self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for port in self.ports() {
            let Some(mut con) = node_client(port) else {
                continue;
            };
            let info: String = redis::cmd("INFO")
                .arg("errorstats")
                .query(&mut con)
                .expect("INFO errorstats");
            for line in info.lines() {
                let Some((name, rest)) = line.strip_prefix("errorstat_").and_then(|l| l.split_once(':'))
                else {
                    continue;
                };
                let count = rest
                    .strip_prefix("count=")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                *counts.entry(name.to_owned()).or_insert(0) += count;
            }
        }
        counts
    }
}

/// A plain connection to one node, if it answers.
pub fn node_client(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
    con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    redis::cmd("PING").query::<String>(&mut con).ok()?;
    Some(con)
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
