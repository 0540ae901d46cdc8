//! A real `redis-server` for tests: a child process on a free loopback
//! port, with no persistence, stopped by killing that child (never a
//! system service).
//!
//! When `redis-server` is not installed the tests that need it print why
//! and return, unless `TETHER_REQUIRE_REDIS` is set (as in CI): then they
//! fail.

#![allow(dead_code, unreachable_pub)]

pub mod cluster;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long anything may take before a test gives up (a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// Whether `redis-server` can run here; when it cannot, says why (and
/// fails if `TETHER_REQUIRE_REDIS` is set).
pub fn available(test: &str) -> bool {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return true;
    }
    assert!(
        std::env::var_os("TETHER_REQUIRE_REDIS").is_none(),
        "{test}: redis-server is not installed but TETHER_REQUIRE_REDIS is set \
         (apt-get install redis-server)"
    );
    println!(
        "{test}: SKIPPED: redis-server is not installed \
         (apt-get install redis-server; set TETHER_REQUIRE_REDIS=1 to make this a failure)"
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

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> RedisServer {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tether-redis-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
        };
        server.restart();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it again (on the same port, empty: nothing is persisted).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let pidfile = self.dir.join("redis.pid");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("redis-server exited at once ({status}); is port {port} taken?");
            }
            if self.try_client().is_some() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (its clients see their connections reset).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn try_client(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut con = client.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
        redis::cmd("PING").query::<String>(&mut con).ok()?;
        Some(con)
    }

    /// A connection of the test's own.
    pub fn client(&self) -> redis::Connection {
        self.try_client().expect("connect to redis-server")
    }

    /// Disconnects the bridge connections with this name (e.g.
    /// `tether-redis-reader`), as a network failure would; how many.
    pub fn kill_clients(&self, name: &str) -> usize {
        let mut con = self.client();
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
        let ids: Vec<String> = list
            .lines()
            .filter(|line| line.split(' ').any(|field| field == format!("name={name}")))
            .filter_map(|line| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix("id="))
                    .map(str::to_owned)
            })
            .collect();
        for id in &ids {
            let _: redis::Value = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query(&mut con)
                .unwrap();
        }
        ids.len()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
