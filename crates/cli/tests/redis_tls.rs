//! `tether serve --app hub --redis rediss://...` against a real
//! `redis-server` serving TLS alone (`--port 0 --tls-port P`), with
//! certificates the test makes (`crates/redis/tests/support/tls.rs`):
//!
//! - two nodes share a topic over TLS (the server's certificate checked
//!   against `--redis-ca`): events published on one reach subscribers on
//!   the other with their ids, a killed node's subscribers resume on the
//!   other, a node restarted serves a resume from its id, and Redis
//!   restarted is reconnected to over TLS;
//! - a server that asks for client certificates (`tls-auth-clients yes`)
//!   takes a node with `--redis-cert` and `--redis-key`, and refuses one
//!   without;
//! - a certificate of another CA, of another name or expired, a
//!   plain-text server on a `rediss://` URL and a TLS server on a
//!   `redis://` URL are each refused, the node never up, and said so
//!   in its log at start and in `/readyz` (`bus`);
//! - on a Redis Cluster whose nodes serve TLS (`--tls-cluster yes`,
//!   `--tls-replication yes`), two nodes share a topic through
//!   `rediss+cluster://`;
//! - TLS files that cannot be used stop the start (and `check-config`).
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

use std::path::Path;

use bus::refused::assert_refused;
use bus::{Resumed, ScratchDir, Seen, Subscriber, TOKEN, events, publish, publish_next};
use serve::Node;
use serve::process::output;
use support::cluster::{self, RedisCluster};
use support::tls::{Pki, ServerTls};
use support::{RedisServer, available};

/// The options of a node of these tests on `url`, and `more`.
fn node_args(url: &str, more: &[&str]) -> Vec<String> {
    let mut args = vec!["--redis", url, "--redis-prefix", "tls-test:"];
    args.extend_from_slice(more);
    args.into_iter().map(str::to_owned).collect()
}

/// A node on `url` with `more` options, waited for until its bus is up.
fn start_node(dir: &Path, name: &str, url: &str, more: &[&str]) -> Node {
    Node::start(
        dir,
        name,
        &node_args(url, more),
        &[("TETHER_PUBLISH_TOKEN", TOKEN)],
    )
}

/// A node on `url` (with `more`) is refused by the server, for the reason
/// `words` name: `/readyz` says so (503, not reached), its log says so at
/// start, and its publishes are refused.
fn refused(dir: &Path, name: &str, url: &str, more: &[&str], words: &str) {
    let bus = node_args(url, more);
    let bus: Vec<&str> = bus.iter().map(String::as_str).collect();
    assert_refused(dir, name, &bus, words, "connecting (redis): ");
}

/// A TLS `redis-server` with a certificate of `pki` for `names`.
fn tls_server(pki: &Pki, names: &[&str], expired: bool, auth_clients: bool) -> RedisServer {
    RedisServer::start_tls(ServerTls {
        cert: pki.issue(&format!("server-{}-{expired}", names.join("-")), names, expired),
        ca: pki.ca(),
        auth_clients,
    })
}

#[test]
fn two_nodes_share_topics_over_tls() {
    if !available("two_nodes_share_topics_over_tls") {
        return;
    }
    let dir = ScratchDir::new("redis-tls");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let mut redis = tls_server(&pki, &["localhost", "127.0.0.1"], false, false);
    let url = redis.url();
    assert!(url.starts_with("rediss://localhost:"), "{url}");
    let ca = pki.ca().display().to_string();
    let a = start_node(&dir, "a", &url, &["--redis-ca", &ca]);
    let mut b = start_node(&dir, "b", &url, &["--redis-ca", &ca]);
    assert!(
        a.log().contains(&format!("writer connected to {url}")),
        "{}",
        a.log()
    );

    let Resumed { published, .. } = bus::events_cross_nodes_and_survive_a_killed_node(&a, &mut b);

    // Node b started again: a subscriber resuming there from an id in
    // the middle gets the rest from Redis, then what comes next.
    drop(b);
    let b = start_node(&dir, "b-again", &url, &["--redis-ca", &ca]);
    let mut resumed = Subscriber::sse(&b, &published[14].0);
    let mut all = published;
    publish_next(&a, &mut all, 23);
    let seen: Vec<Seen> = (15..all.len()).map(|_| resumed.next()).collect();
    assert_eq!(seen, events(&all[15..]), "resumed on the restarted node");
    let (status, body) = b.request("GET", "/readyz", "", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[+] bus: up (redis)\n"), "{body}");

    // Redis restarted: both nodes notice, make their connections again
    // over TLS, and take publishes again.
    redis.stop();
    let gone = "tether_redis_connected{connection=\"writer\"} 0\n";
    bus::wait_for_the_bus_gone(&[&a, &b], "redis", gone);
    redis.restart();
    for (log, _) in bus::wait_for_the_bus_back(&[&a, &b]) {
        assert!(log.contains(&format!("writer reconnected to {url}")), "{log}");
    }
    publish(&a, "after the restart").expect("published");
}

#[test]
fn a_client_certificate_is_shown_to_a_server_that_asks() {
    if !available("a_client_certificate_is_shown_to_a_server_that_asks") {
        return;
    }
    let dir = ScratchDir::new("redis-tls-client");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let redis = tls_server(&pki, &["localhost", "127.0.0.1"], false, true);
    let url = redis.url();
    let ca = pki.ca().display().to_string();

    // Without a certificate, the server ends the handshake.
    refused(
        &dir,
        "anonymous",
        &url,
        &["--redis-ca", &ca],
        "TLS: the server refused this node's client certificate, or wants one",
    );
    // With one of another CA, too.
    let stranger = Pki::new(&dir.join("pki"), "stranger").issue("client", &["tether-node"], false);
    let (cert, key) = (
        stranger.cert.display().to_string(),
        stranger.key.display().to_string(),
    );
    let more = ["--redis-ca", &ca, "--redis-cert", &cert, "--redis-key", &key];
    refused(
        &dir,
        "stranger",
        &url,
        &more,
        "TLS: the server refused this node's client certificate",
    );

    // With one the server's CA signed, it is up, and events flow.
    let client = pki.issue("client", &["tether-node"], false);
    let (cert, key) = (
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    let node = start_node(
        &dir,
        "a",
        &url,
        &["--redis-ca", &ca, "--redis-cert", &cert, "--redis-key", &key],
    );
    let mut subscriber = Subscriber::sse(&node, "0-0");
    let id = publish(&node, "with a certificate").expect("published");
    assert_eq!(
        subscriber.next(),
        Seen::Event {
            id,
            data: "with a certificate".into()
        }
    );
}

#[test]
fn a_server_certificate_this_node_cannot_trust_is_refused() {
    if !available("a_server_certificate_this_node_cannot_trust_is_refused") {
        return;
    }
    let dir = ScratchDir::new("redis-tls-refused");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let other_ca = Pki::new(&dir.join("pki"), "other").ca().display().to_string();
    let ca = pki.ca().display().to_string();
    let unknown = "TLS: the server's certificate is not signed by a CA this node trusts";

    let redis = tls_server(&pki, &["localhost", "127.0.0.1"], false, false);
    // Another CA than the one that signed the server's certificate.
    refused(
        &dir,
        "other-ca",
        &redis.url(),
        &["--redis-ca", &other_ca],
        unknown,
    );
    // The system's roots, which know nothing of the test's CA.
    refused(&dir, "system-roots", &redis.url(), &[], unknown);

    // A certificate of the right CA for another name.
    let elsewhere = tls_server(&pki, &["redis.example.org"], false, false);
    refused(
        &dir,
        "other-name",
        &elsewhere.url(),
        &["--redis-ca", &ca],
        "TLS: the server's certificate does not name the URL's host",
    );

    // A certificate of the right CA and name, expired.
    let expired = tls_server(&pki, &["localhost", "127.0.0.1"], true, false);
    refused(
        &dir,
        "expired",
        &expired.url(),
        &["--redis-ca", &ca],
        "TLS: the server's certificate is outside its validity period",
    );
}

#[test]
fn tls_on_one_side_only_is_refused() {
    if !available("tls_on_one_side_only_is_refused") {
        return;
    }
    let dir = ScratchDir::new("redis-tls-one-side");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let ca = pki.ca().display().to_string();

    // A plain-text server on a rediss:// URL.
    let plain = RedisServer::start();
    let port = plain.port();
    refused(
        &dir,
        "plain",
        &format!("rediss://localhost:{port}/"),
        &["--redis-ca", &ca],
        // A plain Redis waits for the end of a line the handshake never
        // sends (it reads up to a NUL byte): silent until the connect
        // timeout. Either way, the port is named as not TLS.
        "speak TLS on this port",
    );

    // A TLS server on a redis:// URL.
    let tls = tls_server(&pki, &["localhost", "127.0.0.1"], false, false);
    refused(
        &dir,
        "not-tls",
        &format!("redis://127.0.0.1:{}/", tls.port()),
        &[],
        "if it expects TLS, use rediss://",
    );
}

#[test]
fn two_nodes_share_topics_over_a_tls_redis_cluster() {
    if !cluster::available("two_nodes_share_topics_over_a_tls_redis_cluster") {
        return;
    }
    let dir = ScratchDir::new("redis-tls-cluster");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let cluster = RedisCluster::start_tls(&ServerTls {
        cert: pki.server(),
        ca: pki.ca(),
        auth_clients: false,
    });
    let url = cluster.tls_url();
    assert!(url.starts_with("rediss+cluster://localhost:"), "{url}");
    let ca = pki.ca().display().to_string();
    let a = start_node(&dir, "a", &url, &["--redis-ca", &ca]);
    let mut b = start_node(&dir, "b", &url, &["--redis-ca", &ca]);
    bus::events_cross_nodes_and_survive_a_killed_node(&a, &mut b);
    // The nodes are reached on their TLS ports, never on their plain
    // ones (which only this test's own connection uses): the cluster gave
    // the nodes its TLS ports.
    let (mut plain, mut tls) = (0, 0);
    for port in cluster.ports() {
        let mut con = support::cluster::node_client(port).expect("a node");
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
        for client in list.lines().filter(|l| !l.contains(" cmd=client|list ")) {
            if client.contains(&format!(" laddr=127.0.0.1:{port} ")) {
                plain += 1;
            } else {
                tls += 1;
            }
        }
    }
    assert_eq!(plain, 0);
    assert!(tls > 0);
}

#[test]
fn tls_files_that_cannot_be_used_stop_the_start() {
    let dir = ScratchDir::new("redis-tls-files");
    let pki = Pki::new(&dir.join("pki"), "trusted");
    let ca = pki.ca().display().to_string();
    let missing = dir.join("missing.pem").display().to_string();
    let client = pki.issue("client", &["tether-node"], false);
    let other = pki.issue("other", &["tether-node"], false);
    let (cert, other_key) = (client.cert.display().to_string(), other.key.display().to_string());
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "no certificate here\n").unwrap();
    let not_pem = not_pem.display().to_string();
    let url = "rediss://localhost:1/";
    for (more, words) in [
        (
            vec!["--redis", url, "--redis-ca", &missing],
            "cannot read the CA file",
        ),
        (
            vec!["--redis", url, "--redis-ca", &not_pem],
            "holds no certificate",
        ),
        (
            vec!["--redis", "redis://127.0.0.1:1/", "--redis-ca", &ca],
            "use rediss://",
        ),
        (
            vec!["--redis", url, "--redis-cert", &cert, "--redis-key", &other_key],
            "does not go with the certificate",
        ),
        (
            vec!["--redis", "rediss://localhost:1/#insecure"],
            "there is no insecure mode",
        ),
        (vec!["--redis", url, "--redis-cert", &cert], "--redis-key"),
    ] {
        let mut args = vec!["serve", "--app", "hub", "--port", "0"];
        args.extend_from_slice(&more);
        let out = output(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{more:?} started");
        assert!(stderr.contains(words), "{more:?}: {stderr}");
    }

    // check-config reads the files as a start would.
    let file = dir.join("tether.toml");
    std::fs::write(
        &file,
        format!("app = \"hub\"\nredis = \"{url}\"\nredis-ca = \"{missing}\"\n"),
    )
    .unwrap();
    let out = output(&["check-config", file.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot read the CA file"), "{stderr}");
    std::fs::write(
        &file,
        format!("app = \"hub\"\nredis = \"{url}\"\nredis-ca = \"{ca}\"\n"),
    )
    .unwrap();
    let out = output(&["check-config", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
