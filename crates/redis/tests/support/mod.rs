//! A real `redis-server` for tests: a child process on a free loopback
//! port, with no persistence, stopped by killing that child (never a
//! system service).
//!
//! When `redis-server` is not installed the tests that need it print why
//! and return, unless `TETHER_REQUIRE_REDIS` is set (as in CI): then they
//! fail.

#![allow(dead_code, unreachable_pub)]

pub mod cluster;
pub mod sentinel;
#[path = "../../../hub/tests/server_process/mod.rs"]
mod server_process;
pub mod tls;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use server_process::Program;
pub use server_process::{free_port, wait_until};

/// How long anything may take before a test gives up (a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// What it is started with besides the port and no persistence.
    extra: Vec<String>,
    /// TLS alone on its port, if it serves TLS.
    tls: Option<tls::ServerTls>,
}

/// `redis-server`, for the messages of a test that needs it.
const REDIS_SERVER: Program = Program {
    name: "redis-server",
    require: "TETHER_REQUIRE_REDIS",
    install: "apt-get install redis-server",
};

/// Whether `redis-server` can run here; when it cannot, says why (and
/// fails if `TETHER_REQUIRE_REDIS` is set).
pub fn available(test: &str) -> bool {
    REDIS_SERVER.available(test, "redis-server")
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(Vec::new())
    }

    /// Starts a replica of `primary` on a free port (`--replicaof`): the
    /// primary counts it online once its first copy is taken.
    pub fn replica_of(primary: &RedisServer) -> RedisServer {
        let to = ["--replicaof", "127.0.0.1", &primary.port.to_string()];
        RedisServer::start_with(to.iter().map(|s| (*s).to_owned()).collect())
    }

    /// Starts a server that serves TLS alone on a free port.
    pub fn start_tls(tls: tls::ServerTls) -> RedisServer {
        RedisServer::start_on(Vec::new(), Some(tls))
    }

    fn start_with(extra: Vec<String>) -> RedisServer {
        RedisServer::start_on(extra, None)
    }

    fn start_on(extra: Vec<String>, tls: Option<tls::ServerTls>) -> RedisServer {
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
            extra,
            tls,
        };
        server.restart();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`, or over TLS `rediss://localhost:PORT/`
    /// (a name its certificate holds).
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}/", self.port),
            Some(_) => format!("rediss://localhost:{}/", self.port),
        }
    }

    /// Starts it again (on the same port, empty: nothing is persisted).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let pidfile = self.dir.join("redis.pid");
        let port_args = match &self.tls {
            None => vec!["--port".to_owned(), self.port.to_string()],
            Some(tls) => tls.args(self.port),
        };
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(&port_args)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // A replica gets its first copy at once, not 5 s later.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let port = self.port;
        // Over TLS, listening is enough: a test's server may have a
        // certificate no client trusts (expired, for another name).
        let ready = || match self.tls {
            None => self.try_client().is_some(),
            Some(_) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        };
        REDIS_SERVER.wait_started(&mut child, port, ready);
        self.child = Some(child);
    }

    /// Pauses it (`SIGSTOP`): its clients' connections stay open and get
    /// no answer, as when the network between them drops every packet;
    /// what it holds is kept for [`RedisServer::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Kills it (its clients see their connections reset).
    pub fn stop(&mut self) {
        server_process::stop(&mut self.child);
    }

    fn try_client(&self) -> Option<redis::Connection> {
        let client = match &self.tls {
            None => redis::Client::open(self.url()).ok()?,
            Some(tls) => redis::Client::build_with_tls(self.url(), tls.client_certificates()).ok()?,
        };
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
