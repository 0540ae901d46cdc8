//! Connection counts and revocations shared by bridges ("nodes") on one
//! real `nats-server` (see `support`): each node hears the others'
//! counts per subject, summed, and not its own; a node that stops writing
//! (one shut down at once, one that died once its counts' time to live
//! passed) no longer counts; a revocation made on one node reaches every
//! node, those started after it and after a NATS restart included, and
//! one that expired reaches none.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod node;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use node::{Node, PREFIX};
use support::{NatsServer, PATIENCE, available, wait_until};
use tether_hub::{BrokerState, NodeLimits};
use tether_nats::{NatsConfig, Revoker};

/// A pretend hub: its own counts as set by the test, and what the bridge
/// told it.
#[derive(Default)]
struct Hub {
    here: Mutex<Vec<(Arc<str>, usize)>>,
    elsewhere: Mutex<Option<HashMap<Arc<str>, usize>>>,
    revoked: Mutex<HashMap<String, u64>>,
}

impl NodeLimits for Hub {
    fn connections_here(&self) -> Vec<(Arc<str>, usize)> {
        self.here.lock().unwrap().clone()
    }

    fn set_connections_elsewhere(&self, counts: HashMap<Arc<str>, usize>) {
        *self.elsewhere.lock().unwrap() = Some(counts);
    }

    fn revoked(&self, entries: Vec<(String, u64)>) {
        let mut revoked = self.revoked.lock().unwrap();
        for (entry, until) in entries {
            let kept = revoked.entry(entry).or_insert(0);
            *kept = (*kept).max(until);
        }
    }
}

impl Hub {
    fn set_here(&self, counts: &[(&str, usize)]) {
        *self.here.lock().unwrap() = counts.iter().map(|(s, c)| (Arc::from(*s), *c)).collect();
    }

    /// The others' counts as last told (nothing until first told).
    fn elsewhere(&self) -> Option<HashMap<String, usize>> {
        self.elsewhere
            .lock()
            .unwrap()
            .as_ref()
            .map(|counts| counts.iter().map(|(s, c)| (s.to_string(), *c)).collect())
    }

    fn revoked(&self) -> HashMap<String, u64> {
        self.revoked.lock().unwrap().clone()
    }
}

/// A node sharing its limits with a pretend hub.
fn start(url: &str) -> (Node, Arc<Hub>, Revoker) {
    let node = Node::start(url, |_| {});
    let hub = Arc::new(Hub::default());
    let revoker = node.bridge.share_limits(hub.clone());
    (node, hub, revoker)
}

fn counts(pairs: &[(&str, usize)]) -> Option<HashMap<String, usize>> {
    Some(pairs.iter().map(|(s, c)| ((*s).to_owned(), *c)).collect())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn each_node_counts_the_others_connections_and_not_its_own() {
    if !available("each_node_counts_the_others_connections_and_not_its_own") {
        return;
    }
    let nats = NatsServer::start();
    let (a, on_a, _) = start(&nats.url());
    let (b, on_b, _) = start(&nats.url());
    let (_c, on_c, _) = start(&nats.url());
    on_a.set_here(&[("alice", 2), ("bob", 1)]);
    on_b.set_here(&[("alice", 1), ("a \"b\" é", 4)]);

    wait_until("c to hear a's and b's counts", || {
        on_c.elsewhere() == counts(&[("alice", 3), ("bob", 1), ("a \"b\" é", 4)])
    });
    wait_until("a to hear b's counts (and c's, none)", || {
        on_a.elsewhere() == counts(&[("alice", 1), ("a \"b\" é", 4)])
    });
    wait_until("b to hear a's counts", || {
        on_b.elsewhere() == counts(&[("alice", 2), ("bob", 1)])
    });

    // A's connections change: the others hear the new counts.
    on_a.set_here(&[("bob", 2)]);
    wait_until("c to hear a's new counts", || {
        on_c.elsewhere() == counts(&[("alice", 1), ("bob", 2), ("a \"b\" é", 4)])
    });

    // B shuts down: its counts leave at once (it removes them).
    drop(b);
    wait_until("c to forget b's counts", || {
        on_c.elsewhere() == counts(&[("bob", 2)])
    });
    assert_eq!(on_a.elsewhere(), counts(&[]));
    drop(a);
}

#[test]
fn a_dead_nodes_counts_vanish_after_their_time_to_live() {
    if !available("a_dead_nodes_counts_vanish_after_their_time_to_live") {
        return;
    }
    let nats = NatsServer::start();
    let (_a, on_a, _) = start(&nats.url());
    on_a.set_here(&[("alice", 1)]);
    // A node that wrote its counts once and died (as a node writes them,
    // in the bucket the live node made).
    let mut config = NatsConfig::new(nats.url());
    config.prefix = PREFIX.to_owned();
    let bucket = format!("{}_conns", config.stream_name());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + PATIENCE;
        let store = loop {
            if let Ok(store) = js.get_key_value(&bucket).await {
                break store;
            }
            assert!(Instant::now() < deadline, "the counts bucket was not made");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        store
            .put("dead0000dead0000", r#"[["alice",2],["carol",1]]"#.into())
            .await
            .unwrap();
    });
    wait_until("a to count the dead node's connections", || {
        on_a.elsewhere() == counts(&[("alice", 2), ("carol", 1)])
    });
    // It writes no more: a forgets them once they are older than their
    // time to live.
    wait_until("a to forget the dead node's connections", || {
        on_a.elsewhere() == counts(&[])
    });
}

#[test]
fn a_revocation_reaches_every_node_until_it_expires() {
    if !available("a_revocation_reaches_every_node_until_it_expires") {
        return;
    }
    let mut nats = NatsServer::start();
    let (_a, on_a, revoke_on_a) = start(&nats.url());
    let (_b, on_b, revoke_on_b) = start(&nats.url());
    let until = unix_now() + 600;
    let soon = unix_now() + 2;
    let long = format!("jti:{}", "x".repeat(2044));
    revoke_on_a.revoke(vec![
        ("jti:kept".to_owned(), until),
        ("sub:1700000000:carol".to_owned(), until),
        (long.clone(), until),
        ("jti:soon".to_owned(), soon),
        // Already expired, or too long: not shared.
        ("jti:past".to_owned(), unix_now() - 1),
        (format!("{long}y"), until),
    ]);
    let expected = HashMap::from([
        ("jti:kept".to_owned(), until),
        ("sub:1700000000:carol".to_owned(), until),
        (long.clone(), until),
        ("jti:soon".to_owned(), soon),
    ]);
    // Both nodes hear them (a reads back its own).
    for hub in [&on_b, &on_a] {
        wait_until("the revocations to reach the nodes", || hub.revoked() == expected);
    }
    // Revoked again for longer, from b: the longer time reaches a.
    revoke_on_b.revoke(vec![("jti:kept".to_owned(), until + 60)]);
    wait_until("a to hear the longer revocation", || {
        on_a.revoked().get("jti:kept") == Some(&(until + 60))
    });

    // Once "jti:soon" expired, a node started then reads the others, and
    // not it; so does one started after NATS restarted.
    wait_until("jti:soon to expire", || unix_now() > soon);
    let mut kept = expected.clone();
    kept.remove("jti:soon");
    kept.insert("jti:kept".to_owned(), until + 60);
    let (_c, on_c, _) = start(&nats.url());
    wait_until("c to read the revocations", || on_c.revoked() == kept);
    nats.stop();
    nats.restart();
    let (_d, on_d, _) = start(&nats.url());
    wait_until("d to read the revocations after a NATS restart", || {
        on_d.revoked() == kept
    });
}

#[test]
fn counts_are_shared_again_after_a_nats_restart() {
    if !available("counts_are_shared_again_after_a_nats_restart") {
        return;
    }
    let mut nats = NatsServer::start();
    let (a, on_a, _) = start(&nats.url());
    let (b, on_b, _) = start(&nats.url());
    on_a.set_here(&[("alice", 1)]);
    wait_until("b to hear a's counts", || {
        on_b.elsewhere() == counts(&[("alice", 1)])
    });
    // The counts' bucket is in memory: gone with the server; the nodes
    // make it again once they are back.
    nats.stop();
    nats.restart();
    a.wait_for_state(BrokerState::Up);
    b.wait_for_state(BrokerState::Up);
    on_a.set_here(&[("alice", 3)]);
    wait_until("b to hear a's counts again", || {
        on_b.elsewhere() == counts(&[("alice", 3)])
    });
    on_b.set_here(&[("bob", 1)]);
    wait_until("a to hear b's counts", || {
        on_a.elsewhere() == counts(&[("bob", 1)])
    });
}
