//! `tether serve --app hub --redis redis+sentinel://...` against real
//! Redis sentinels (`redis-server --sentinel`) watching a real master
//! and its replicas:
//!
//! - the master (with one replica) killed (`SIGKILL`) while a node
//!   publishes in a loop with `--redis-wait-replicas 1`: the sentinels
//!   promote the replica, the node follows, publishes again once the new
//!   master has a replica of its own (a server started as one), and its
//!   subscribers that stayed (SSE and WebSocket) get every acknowledged
//!   publish once, in order; an event the old master added and delivered
//!   but no replica took (never acknowledged) ends their subscriptions,
//!   and they resume as clients do, from their last id; a resume by
//!   `Last-Event-ID` from before the failover gets what came after it,
//!   but that event; `/readyz` and the log name the master as it was
//!   found, before and after;
//! - an event acknowledged without `--redis-wait-replicas` that the
//!   promoted replica never had: the node finds the last event it
//!   delivered gone and ends its subscriptions for their clients to
//!   resume (continuity checked per topic, not by the new `run_id`);
//! - a master turned replica under the node's open connections (its
//!   writes answered `READONLY`, inside the publish script) is left for
//!   the master the sentinel names now; a sentinel whose answer is stale
//!   (it names a replica: `ROLE` says so) is passed over for the next
//!   one, and alone gets the node nowhere;
//! - a master name the sentinels do not know, and sentinels that are all
//!   down: the node never up, said so in its log at start and in
//!   `/readyz` (`bus`), its publishes refused;
//! - `rediss+sentinel://` speaks TLS to the master the sentinels name,
//!   its certificate checked against `--redis-ca`;
//! - `--redis-sentinel-tls` asks sentinels that listen on a TLS port
//!   alone over TLS (client certificates asked of the node by master and
//!   sentinel alike), and a node publishes and subscribes through them;
//!   with `redis+sentinel://`, the sentinels alone over TLS and the
//!   master in plain TCP; without it, and towards a sentinel whose
//!   certificate this node does not trust, the node is refused, the
//!   sentinel named as the reason;
//! - sentinels that ask for a password take a node given
//!   `--redis-sentinel-password` (here as its environment variable) and
//!   refuse one without;
//! - `check-config` refuses a malformed Sentinel URL, and a sentinel
//!   password or TLS to the sentinels without one.
//!
//! Every wait is for a state, bounded by a patience that only catches a
//! hang. Skipped (with a printed reason) when `redis-server` is not
//! installed, unless `TETHER_REQUIRE_REDIS` is set.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(feature = "redis")]

mod bus;
mod serve;
#[path = "../../redis/tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Instant;

use bus::refused::{assert_refused, wait_for_bus_line, wait_for_ready};
use bus::{ScratchDir, Seen, Subscriber, TOKEN, publish};
use serve::Node;
use serve::process::output;
use support::sentinel::Sentinels;
use support::tls::{Pki, ServerTls};
use support::{PATIENCE, RedisServer, available, wait_until};

/// Publishes acknowledged before the master is killed, and after the
/// sentinels have failed over.
const BEFORE: usize = 20;
const AFTER: usize = 20;

/// A node on `url` with `more` options and `envs`, waited for until its
/// bus is up.
fn start_node(dir: &Path, name: &str, url: &str, more: &[&str], envs: &[(&str, &str)]) -> Node {
    let mut args = vec!["--redis", url, "--redis-prefix", "sentinel-test:"];
    args.extend_from_slice(more);
    let mut all_envs = vec![("TETHER_PUBLISH_TOKEN", TOKEN)];
    all_envs.extend_from_slice(envs);
    Node::start(dir, name, &args, &all_envs)
}

/// A master `mymaster`, one replica of it, and `count` sentinels that
/// watch it (`quorum` of them to agree), ready: each knows the replica.
fn master_replica_sentinels(count: usize, quorum: usize) -> (RedisServer, RedisServer, Sentinels) {
    let master = RedisServer::start();
    let replica = RedisServer::replica_of(&master);
    let sentinels = Sentinels::start(&master, "mymaster", count, quorum, None);
    sentinels.wait_until_ready(1);
    (master, replica, sentinels)
}

/// A node on `url` cannot reach its master, for the reason `words`
/// name: `/readyz` says so (503, not reached, Sentinel named), its log
/// says so at start, and its publishes are refused.
fn refused(dir: &Path, name: &str, url: &str, words: &str) {
    assert_refused(
        dir,
        name,
        &["--redis", url],
        words,
        "connecting (redis: Sentinel master ",
    );
}

/// The events `subscriber` sees until the one with id `last`: each an
/// event (no gap, no end).
fn events_until(subscriber: &mut Subscriber, last: &str) -> Vec<(String, String)> {
    let (seen, resumed) = events_until_resuming(None, subscriber, last);
    assert_eq!(resumed, 0);
    seen
}

/// The events a subscriber that stays sees until the one with id `last`,
/// and how many times it resumed. With `node`, a subscription the node
/// ends is resumed as its client would, from the last id it saw, and
/// the gap signal that may answer that first is taken: that happens when
/// the node finds the last event it delivered gone from the new master
/// (one the old master added, and delivered, but never had a replica
/// take, so never acknowledged). Anything else but an event fails.
fn events_until_resuming(
    node: Option<&Node>,
    subscriber: &mut Subscriber,
    last: &str,
) -> (Vec<(String, String)>, usize) {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut resumed = 0;
    let mut just_resumed = false;
    loop {
        match (subscriber.next(), node) {
            (Seen::Event { id, data }, _) => {
                just_resumed = false;
                let done = id == last;
                seen.push((id, data));
                if done {
                    return (seen, resumed);
                }
            }
            (Seen::Gap { .. }, _) if just_resumed => just_resumed = false,
            (Seen::End(_), Some(node)) if resumed < 3 => {
                let from = seen.last().map_or("0-0", |(id, _)| id.as_str());
                *subscriber = match subscriber {
                    Subscriber::Sse { .. } => Subscriber::sse(node, from),
                    Subscriber::Ws(_) => Subscriber::ws(node, from),
                };
                resumed += 1;
                just_resumed = true;
            }
            (other, _) => panic!("{other:?} after {seen:?}"),
        }
    }
}

/// `seen` holds each event once, ids rising, and holds every publish in
/// `acknowledged`, in their order. (A publish answered 503 may have been
/// added still, as with any 503: it may be among them.)
fn every_acknowledged_once_in_order(seen: &[(String, String)], acknowledged: &[(String, String)]) {
    let ids: Vec<tether_hub::EventId> = seen
        .iter()
        .map(|(id, _)| tether_hub::EventId::parse(id).expect("an event id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not rising: {seen:?}");
    let datas: HashSet<&str> = seen.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(datas.len(), seen.len(), "an event twice: {seen:?}");
    let mut at = seen.iter();
    for published in acknowledged {
        assert!(
            at.any(|s| s == published),
            "acknowledged {published:?} missing or out of order in {seen:?}"
        );
    }
}

#[test]
fn a_failover_is_followed_and_nothing_acknowledged_is_lost() {
    if !available("a_failover_is_followed_and_nothing_acknowledged_is_lost") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel");
    // One replica, which holds every acknowledged event: with more, the
    // sentinels promote the one they last saw furthest along, which may
    // not be one that acknowledged.
    let (mut master, replica, sentinels) = master_replica_sentinels(3, 2);
    let url = sentinels.url();
    let node = start_node(&dir, "a", &url, &["--redis-wait-replicas", "1"], &[]);
    let at = format!("127.0.0.1:{}", master.port());
    let (_, line, body) = wait_for_bus_line(node.addr, "up (redis");
    // Ready once the master's replica has been counted too.
    wait_for_ready(node.addr);
    assert_eq!(
        line,
        format!("up (redis: Sentinel master mymaster at {at})"),
        "{body}"
    );
    let log = node.log();
    assert!(
        log.contains("topics are shared through Redis Sentinel: master mymaster as sentinels"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "writer connected to {url} (Sentinel master mymaster at {at})"
        )),
        "{log}"
    );

    let mut stayed = [Subscriber::sse(&node, "0-0"), Subscriber::ws(&node, "0-0")];
    // One publisher goes on throughout, while the master is killed and
    // the sentinels fail over: those answered 503 (the master away, or
    // the new one without its replica yet) are not retried.
    let acknowledged: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let acked = || acknowledged.lock().unwrap().len();
    let stop = AtomicBool::new(false);
    let (old, new, tried, _rejoined) = std::thread::scope(|scope| {
        let publisher = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let data = format!("m{n}");
                match publish(&node, &data) {
                    Ok(id) => acknowledged.lock().unwrap().push((id, data)),
                    Err(503) => std::thread::sleep(std::time::Duration::from_millis(20)),
                    Err(status) => panic!("publish answered {status}"),
                }
            }
            n
        });
        wait_until("publishes before the failover", || acked() >= BEFORE);
        let old = master.port();
        master.stop();
        let new = sentinels.wait_for_failover(old);
        assert_eq!(new, replica.port(), "the replica promoted");
        let after_failover = acked();
        // A replica of the new master (the old one's replacement), so
        // that `--redis-wait-replicas 1` can be met again.
        let rejoined = RedisServer::replica_of(&replica);
        // A failover takes the sentinels' timers (seconds), and the new
        // master's replica its copy: a hang guard of two patiences.
        let start = Instant::now();
        while acked() < after_failover + AFTER {
            assert!(start.elapsed() < PATIENCE * 2, "the node never published again");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        (old, new, publisher.join().unwrap(), rejoined)
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    println!(
        "master {old} killed, {new} promoted: {} publishes acknowledged of {tried} tried",
        acknowledged.len()
    );

    let last = acknowledged.last().unwrap().0.clone();
    let mut seen_by = Vec::new();
    let mut resumes = 0;
    for subscriber in &mut stayed {
        let (seen, resumed) = events_until_resuming(Some(&node), subscriber, &last);
        every_acknowledged_once_in_order(&seen, &acknowledged);
        seen_by.push(seen);
        resumes += resumed;
    }
    assert_eq!(seen_by[0], seen_by[1], "SSE and WebSocket saw the same");

    // A resume from before the failover gets what came after, as the
    // subscribers that stayed saw it, but for what they were sent that
    // the new master lacks: never acknowledged.
    let from = &acknowledged[BEFORE / 2].0;
    let mut resumed = Subscriber::sse(&node, from);
    let resumed_seen = events_until(&mut resumed, &last);
    let (after, lost): (Vec<_>, Vec<_>) = seen_by[0]
        .iter()
        .skip_while(|(id, _)| id != from)
        .skip(1)
        .cloned()
        .partition(|event| resumed_seen.contains(event));
    assert_eq!(resumed_seen, after);
    assert!(
        lost.iter().all(|event| !acknowledged.contains(event)),
        "acknowledged and lost: {lost:?}"
    );
    assert_eq!(
        lost.is_empty(),
        resumes == 0,
        "lost {lost:?}, resumed {resumes} times"
    );

    let (_, line, _) = wait_for_bus_line(node.addr, &format!("127.0.0.1:{new}"));
    wait_for_ready(node.addr);
    assert_eq!(
        line,
        format!("up (redis: Sentinel master mymaster at 127.0.0.1:{new})")
    );
    let log = node.log();
    assert!(
        log.contains(&format!(
            "writer reconnected to {url} (Sentinel master mymaster at 127.0.0.1:{new})"
        )),
        "{log}"
    );
    // The subscriptions were ended only for an event the new master lacks.
    assert_eq!(log.contains("continuity of topic"), resumes > 0, "{log}");
}

#[test]
fn an_event_the_promoted_replica_lacks_ends_the_subscriptions() {
    if !available("an_event_the_promoted_replica_lacks_ends_the_subscriptions") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-lost");
    let (mut master, replica, sentinels) = master_replica_sentinels(1, 1);
    let node = start_node(&dir, "a", &sentinels.url(), &[], &[]);
    let mut subscribers = [Subscriber::sse(&node, "0-0"), Subscriber::ws(&node, "0-0")];
    let first = publish(&node, "replicated").expect("published");
    wait_until("the replica to have the first event", || {
        redis::cmd("XLEN")
            .arg("sentinel-test:e2e")
            .query::<usize>(&mut replica.client())
            .unwrap()
            == 1
    });
    // The replica stops following (its master now one that is not
    // there): what comes next is acknowledged (no --redis-wait-replicas)
    // and delivered, and never reaches it.
    let nowhere = support::free_port();
    let _: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(nowhere)
        .query(&mut replica.client())
        .unwrap();
    let second = publish(&node, "not replicated").expect("published");
    for subscriber in &mut subscribers {
        let seen = events_until(subscriber, &second);
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
    let old = master.port();
    master.stop();
    assert_eq!(sentinels.wait_for_failover(old), replica.port());

    // The node follows, finds the last event it delivered gone, and ends
    // its subscriptions (WebSocket: 1012) for their clients to resume.
    let (rest, end) = subscribers[0].rest();
    assert_eq!((rest, end), (vec![], Seen::End(None)));
    let (rest, end) = subscribers[1].rest();
    assert_eq!((rest, end), (vec![], Seen::End(Some(1012))));
    let log = node.log();
    assert!(log.contains("continuity of topic e2e lost"), "{log}");
    assert!(node.metrics().contains("tether_redis_resyncs_total 1\n"));

    // A client resuming from the event the new master has gets what
    // comes next, the lost one not among it.
    let mut resumed = Subscriber::sse(&node, &first);
    let start = Instant::now();
    let third = loop {
        match publish(&node, "after the failover") {
            Ok(id) => break id,
            Err(503) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(status) => panic!("publish answered {status}"),
        }
        assert!(start.elapsed() < PATIENCE, "never published again");
    };
    assert_eq!(
        resumed.next(),
        Seen::Event {
            id: third,
            data: "after the failover".to_owned()
        }
    );
}

#[test]
fn a_wrong_master_name_and_sentinels_down_are_said_at_start_and_in_readyz() {
    if !available("a_wrong_master_name_and_sentinels_down_are_said_at_start_and_in_readyz") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-refused");
    let master = RedisServer::start();
    let sentinels = Sentinels::start(&master, "mymaster", 1, 1, None);
    let wrong = format!("redis+sentinel://{}/othermaster", sentinels.addresses());
    refused(&dir, "wrong-name", &wrong, "no master named othermaster");

    let down = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/mymaster",
        support::free_port(),
        support::free_port()
    );
    refused(
        &dir,
        "all-down",
        &down,
        "no sentinel gave a master mymaster that answers as one",
    );
}

/// A sentinel of the test's own: it names `127.0.0.1:PORT` (`port` as
/// it is when asked) as the master of any name, be it one (a sentinel
/// that has not seen a failover names the old master), and answers `+OK`
/// to anything else. Its address; it serves until the test process ends.
fn stale_sentinel(port: Arc<AtomicU16>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let port = port.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                // Each command: an array of bulk strings.
                while let Some(args) = read_command(&mut reader) {
                    let answer = if args.first().is_some_and(|a| a.eq_ignore_ascii_case("sentinel")) {
                        let port = port.load(Ordering::Relaxed).to_string();
                        format!("*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{port}\r\n", port.len())
                    } else {
                        "+OK\r\n".to_owned()
                    };
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr.to_string()
}

/// One command of a client (`*N` then `N` bulk strings); `None` at the
/// end of the stream or on anything else.
fn read_command(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let count: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::new();
    for _ in 0..count.min(64) {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0u8; len.min(4096) + 2];
        reader.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        args.push(String::from_utf8_lossy(&arg).into_owned());
    }
    Some(args)
}

#[test]
fn a_stale_answer_naming_a_replica_is_passed_over() {
    if !available("a_stale_answer_naming_a_replica_is_passed_over") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-stale");
    let master = RedisServer::start();
    let replica = RedisServer::replica_of(&master);
    let sentinels = Sentinels::start(&master, "mymaster", 1, 1, None);
    let stale = stale_sentinel(Arc::new(AtomicU16::new(replica.port())));

    // Alone, the stale sentinel gets the node nowhere: writes never go
    // to the replica it names.
    let url = format!("redis+sentinel://{stale}/mymaster");
    refused(&dir, "stale-alone", &url, "it is not a master (ROLE: slave)");

    // Asked first, its answer is passed over for the next sentinel's.
    let url = format!("redis+sentinel://{stale},{}/mymaster", sentinels.addresses());
    let node = start_node(&dir, "stale-first", &url, &[], &[]);
    let (status, line, body) = wait_for_bus_line(node.addr, "up (redis");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        line,
        format!(
            "up (redis: Sentinel master mymaster at 127.0.0.1:{})",
            master.port()
        )
    );
    publish(&node, "to the master").expect("published");
}

#[test]
fn a_master_turned_replica_is_left_for_the_one_the_sentinels_name() {
    if !available("a_master_turned_replica_is_left_for_the_one_the_sentinels_name") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-readonly");
    let first = RedisServer::start();
    let second = RedisServer::replica_of(&first);
    let named = Arc::new(AtomicU16::new(first.port()));
    let url = format!("redis+sentinel://{}/mymaster", stale_sentinel(named.clone()));
    let node = start_node(&dir, "a", &url, &[], &[]);
    let before = publish(&node, "to the first").expect("published");

    // The roles swap under the node's connections (which stay open), and
    // the sentinel names the new master: the first write on the old one
    // is answered READONLY, which sends the node to the sentinel again.
    let replicaof = |server: &RedisServer, to: Option<u16>| {
        let mut cmd = redis::cmd("REPLICAOF");
        match to {
            Some(port) => cmd.arg("127.0.0.1").arg(port),
            None => cmd.arg("NO").arg("ONE"),
        };
        let _: String = cmd.query(&mut server.client()).unwrap();
    };
    wait_until("the replica to have the first event", || {
        let len: usize = redis::cmd("XLEN")
            .arg("sentinel-test:e2e")
            .query(&mut second.client())
            .unwrap();
        len == 1
    });
    replicaof(&second, None);
    replicaof(&first, Some(second.port()));
    named.store(second.port(), Ordering::Relaxed);
    let mut subscriber = Subscriber::sse(&node, &before);
    let start = Instant::now();
    let after = loop {
        match publish(&node, "to the second") {
            Ok(id) => break id,
            Err(503) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(status) => panic!("publish answered {status}"),
        }
        assert!(
            start.elapsed() < PATIENCE,
            "never published to the new master:\n{}",
            node.log()
        );
    };
    let seen = events_until(&mut subscriber, &after);
    assert_eq!(seen.last().unwrap().1, "to the second");
    let (_, line, body) = wait_for_bus_line(node.addr, &format!("at 127.0.0.1:{})", second.port()));
    assert!(line.starts_with("up (redis: Sentinel master mymaster"), "{body}");
    let log = node.log();
    let lost = format!(
        "writer lost its connection to {url} (Sentinel master mymaster at 127.0.0.1:{}) (ReadOnly",
        first.port()
    );
    assert!(log.contains(&lost), "{log}");
}

#[test]
fn rediss_sentinel_speaks_tls_to_the_master() {
    if !available("rediss_sentinel_speaks_tls_to_the_master") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-tls");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let server_tls = || ServerTls {
        cert: pki.issue("server", &["localhost", "127.0.0.1"], false),
        ca: pki.ca(),
        auth_clients: false,
    };
    let master = RedisServer::start_tls(server_tls());
    let sentinels = Sentinels::start_with(&master, "mymaster", 1, 1, None, Some(&server_tls()));
    let url = format!("rediss+sentinel://{}/mymaster", sentinels.addresses());
    let ca = pki.ca().display().to_string();
    let node = start_node(&dir, "a", &url, &["--redis-ca", &ca], &[]);
    let (status, line, body) = wait_for_bus_line(node.addr, "up (redis");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        line,
        format!(
            "up (redis: Sentinel master mymaster at 127.0.0.1:{})",
            master.port()
        )
    );
    publish(&node, "over TLS").expect("published");

    // The master's certificate is checked: without the CA, refused.
    refused(
        &dir,
        "no-ca",
        &url,
        "TLS: the server's certificate is not signed by a CA this node trusts",
    );
}

#[test]
fn sentinels_on_a_tls_port_alone_are_asked_over_tls() {
    if !available("sentinels_on_a_tls_port_alone_are_asked_over_tls") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-tls-only");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    // Master and sentinel ask for a client certificate of the CA, as a
    // hardened deployment does (tls-auth-clients yes).
    let server_tls = ServerTls {
        cert: pki.server(),
        ca: pki.ca(),
        auth_clients: true,
    };
    let master = RedisServer::start_tls(server_tls.clone());
    let sentinels = Sentinels::start_tls_only(&master, "mymaster", 1, &server_tls);
    let url = format!("rediss+sentinel://{}/mymaster", sentinels.addresses());
    let client = pki.issue("node", &["node"], false);
    let ca = pki.ca().display().to_string();
    let cert = client.cert.display().to_string();
    let key = client.key.display().to_string();
    let tls = ["--redis-ca", &ca, "--redis-cert", &cert, "--redis-key", &key];
    let mut options = tls.to_vec();
    options.push("--redis-sentinel-tls");
    let node = start_node(&dir, "a", &url, &options, &[]);
    let (status, line, body) = wait_for_bus_line(node.addr, "up (redis");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        line,
        format!(
            "up (redis: Sentinel master mymaster at 127.0.0.1:{})",
            master.port()
        )
    );
    let mut sse = Subscriber::sse(&node, "0-0");
    let mut ws = Subscriber::ws(&node, "0-0");
    let id = publish(&node, "over TLS").expect("published");
    let event = Seen::Event {
        id,
        data: "over TLS".to_owned(),
    };
    assert_eq!(sse.next(), event);
    assert_eq!(ws.next(), event);

    // redis+sentinel://: TLS to the sentinels alone, the master in plain
    // TCP (its address as they name it).
    let plain_master = RedisServer::start();
    let sentinels_of_plain = Sentinels::start_tls_only(&plain_master, "plain", 1, &server_tls);
    let plain_url = format!("redis+sentinel://{}/plain", sentinels_of_plain.addresses());
    let node = start_node(&dir, "b", &plain_url, &options, &[]);
    let (status, line, body) = wait_for_bus_line(node.addr, "up (redis");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        line,
        format!(
            "up (redis: Sentinel master plain at 127.0.0.1:{})",
            plain_master.port()
        )
    );
    publish(&node, "sentinels over TLS, master plain").expect("published");

    let sentinel_refused = |name: &str, url: &str, more: &[&str], words: &str| {
        let mut bus = vec!["--redis", url];
        bus.extend_from_slice(more);
        assert_refused(&dir, name, &bus, words, "connecting (redis: Sentinel master ");
    };
    // Plain TCP to a sentinel that speaks TLS alone: it hangs up.
    sentinel_refused(
        "plain",
        &url,
        &tls,
        "the sentinel closed the connection at once: if it expects TLS, give --redis-sentinel-tls",
    );
    // A sentinel whose certificate another CA signed.
    let other = Pki::new(&dir.join("pki"), "other");
    let untrusted = Sentinels::start_tls_only(
        &master,
        "mymaster",
        1,
        &ServerTls {
            cert: other.server(),
            ca: other.ca(),
            auth_clients: false,
        },
    );
    let untrusted_url = format!("rediss+sentinel://{}/mymaster", untrusted.addresses());
    sentinel_refused(
        "untrusted",
        &untrusted_url,
        &options,
        "TLS: the sentinel's certificate is not signed by a CA this node trusts",
    );
}

#[test]
fn sentinels_that_ask_a_password_get_it() {
    if !available("sentinels_that_ask_a_password_get_it") {
        return;
    }
    let dir = ScratchDir::new("redis-sentinel-password");
    let master = RedisServer::start();
    let sentinels = Sentinels::start(&master, "mymaster", 1, 1, Some("s3cret"));
    let url = sentinels.url();
    refused(&dir, "no-password", &url, "NOAUTH");
    let node = start_node(
        &dir,
        "with-password",
        &url,
        &[],
        &[("TETHER_REDIS_SENTINEL_PASSWORD", "s3cret")],
    );
    publish(&node, "hello").expect("published");
    assert!(!node.log().contains("s3cret"), "{}", node.log());
}

#[test]
fn check_config_refuses_a_malformed_sentinel_url() {
    let dir = ScratchDir::new("redis-sentinel-check");
    let check = |name: &str, toml: &str| {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, format!("app = \"hub\"\n{toml}")).unwrap();
        output(&["check-config", file.to_str().unwrap()], &[])
    };
    let ok = check(
        "ok",
        "redis = \"redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/2\"\nredis-sentinel-password = \"pw\"\n",
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // TLS to the sentinels alone: the master in plain TCP.
    let ok = check(
        "sentinel-tls",
        "redis = \"redis+sentinel://10.0.0.1:26380/mymaster\"\nredis-sentinel-tls = true\n",
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    for (name, toml, words) in [
        (
            "no-name",
            "redis = \"redis+sentinel://10.0.0.1:26379\"\n",
            "MASTER_NAME",
        ),
        (
            "no-port",
            "redis = \"redis+sentinel://10.0.0.1/mymaster\"\n",
            "each sentinel's port",
        ),
        (
            "password-alone",
            "redis = \"redis://10.0.0.1:6379\"\nredis-sentinel-password = \"pw\"\n",
            "a sentinel password is given for a URL without Sentinel",
        ),
        (
            "sentinel-tls-alone",
            "redis = \"rediss://10.0.0.1:6379\"\nredis-sentinel-tls = true\n",
            "TLS to the sentinels is asked for a URL without Sentinel",
        ),
    ] {
        let out = check(name, toml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(words), "{name}: {stderr}");
    }
}
