//! Real Redis sentinels for tests (`redis-server CONFIG --sentinel`), on
//! free loopback ports, watching one master under one name; each a child
//! process stopped by killing it, its directory (where it rewrites its
//! configuration) removed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::server_process::{self, Program};
use super::tls::ServerTls;
use super::{RedisServer, free_port, wait_until};

/// `redis-server --sentinel`, for the messages of a test that needs it.
const SENTINEL: Program = Program {
    name: "redis-server --sentinel",
    require: "TETHER_REQUIRE_REDIS",
    install: "apt-get install redis-server",
};

/// Sentinels watching one master.
pub struct Sentinels {
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
    dir: PathBuf,
    /// The name they watch the master under.
    pub name: String,
    password: Option<String>,
    /// How they listen when they listen on a TLS port alone.
    listen_tls: Option<ServerTls>,
}

impl Sentinels {
    /// `count` sentinels watching `master` as `name`, with a quorum of
    /// `quorum`, quick to act: a master silent for 1 s is down, and a
    /// failover that stalls is tried again within a few seconds. With
    /// `password`, they ask their clients (and each other) for it.
    pub fn start(
        master: &RedisServer,
        name: &str,
        count: usize,
        quorum: usize,
        password: Option<&str>,
    ) -> Sentinels {
        Sentinels::start_with(master, name, count, quorum, password, None)
    }

    /// The same, speaking TLS to the master and its replicas with `tls`'s
    /// certificate (`tls-replication yes`); the sentinels themselves
    /// listen in plain TCP.
    pub fn start_with(
        master: &RedisServer,
        name: &str,
        count: usize,
        quorum: usize,
        password: Option<&str>,
        tls: Option<&ServerTls>,
    ) -> Sentinels {
        Sentinels::spawn(master, name, (count, quorum), password, tls, None)
    }

    /// `count` sentinels (all needed for a quorum) that listen on a TLS
    /// port alone (`port 0`, `tls-port`) with `tls`'s certificate, asking
    /// clients for one of its CA if `tls.auth_clients`; they speak TLS to
    /// the master if it serves TLS, plain TCP if not.
    pub fn start_tls_only(master: &RedisServer, name: &str, count: usize, tls: &ServerTls) -> Sentinels {
        let replication = master.tls.as_ref().map(|_| tls);
        Sentinels::spawn(master, name, (count, count), None, replication, Some(tls))
    }

    /// `replication`: the TLS towards the data nodes; `listen`: the TLS
    /// they listen with, alone.
    fn spawn(
        master: &RedisServer,
        name: &str,
        (count, quorum): (usize, usize),
        password: Option<&str>,
        replication: Option<&ServerTls>,
        listen: Option<&ServerTls>,
    ) -> Sentinels {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tether-sentinel-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut sentinels = Sentinels {
            children: Vec::new(),
            ports: Vec::new(),
            dir,
            name: name.to_owned(),
            password: password.map(str::to_owned),
            listen_tls: listen.cloned(),
        };
        for i in 0..count {
            let port = free_port();
            let own = sentinels.dir.join(format!("s{i}"));
            std::fs::create_dir_all(&own).expect("a temporary directory");
            let mut config = format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
                 sentinel monitor {name} 127.0.0.1 {} {quorum}\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 3000\n\
                 sentinel parallel-syncs {name} 2\n",
                own.display(),
                master.port(),
            );
            if let Some(password) = password {
                config.push_str(&format!(
                    "requirepass {password}\nsentinel sentinel-pass {password}\n"
                ));
            }
            if let Some(tls) = replication.or(listen) {
                config.push_str(&format!(
                    "tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
                    tls.cert.cert.display(),
                    tls.cert.key.display(),
                    tls.ca.display()
                ));
            }
            if replication.is_some() {
                config.push_str("tls-replication yes\n");
            }
            if let Some(tls) = listen {
                // The configuration's last `port` wins: TLS alone.
                let auth = if tls.auth_clients { "yes" } else { "no" };
                config.push_str(&format!("port 0\ntls-port {port}\ntls-auth-clients {auth}\n"));
            }
            let file = own.join("sentinel.conf");
            std::fs::write(&file, config).expect("the sentinel's configuration");
            let mut child = Command::new("redis-server")
                .arg(&file)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server --sentinel");
            sentinels.ports.push(port);
            let probe = |sentinels: &Sentinels| sentinels.try_client(port).is_some();
            SENTINEL.wait_started(&mut child, port, || probe(&sentinels));
            sentinels.children.push(Some(child));
        }
        sentinels
    }

    /// `HOST:PORT,HOST:PORT...` of the sentinels, for a URL.
    pub fn addresses(&self) -> String {
        let addresses: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        addresses.join(",")
    }

    /// `redis+sentinel://SENTINELS/NAME`.
    pub fn url(&self) -> String {
        format!("redis+sentinel://{}/{}", self.addresses(), self.name)
    }

    fn try_client(&self, port: u16) -> Option<redis::Connection> {
        let userinfo = self
            .password
            .as_ref()
            .map_or_else(String::new, |p| format!(":{p}@"));
        let client = match &self.listen_tls {
            None => redis::Client::open(format!("redis://{userinfo}127.0.0.1:{port}/")).ok()?,
            Some(tls) => redis::Client::build_with_tls(
                format!("rediss://{userinfo}127.0.0.1:{port}/"),
                tls.client_certificates(),
            )
            .ok()?,
        };
        let mut con = client.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
        redis::cmd("PING").query::<String>(&mut con).ok()?;
        Some(con)
    }

    /// A field of `SENTINEL master NAME` as the first sentinel still up
    /// answers it.
    fn master_field(&self, field: &str) -> Option<String> {
        let (i, _) = self.children.iter().enumerate().find(|(_, c)| c.is_some())?;
        let mut con = self.try_client(self.ports[i])?;
        let fields: Vec<String> = redis::cmd("SENTINEL")
            .arg("master")
            .arg(&self.name)
            .query(&mut con)
            .ok()?;
        let at = fields.iter().position(|f| f == field)?;
        fields.get(at + 1).cloned()
    }

    /// Waits until every sentinel knows the others and `replicas`
    /// replicas of the master: a failover can then be agreed on.
    pub fn wait_until_ready(&self, replicas: usize) {
        let others = (self.ports.len() - 1).to_string();
        let replicas = replicas.to_string();
        for &port in &self.ports {
            wait_until("the sentinels to know each other and the replicas", || {
                let Some(mut con) = self.try_client(port) else {
                    return false;
                };
                let fields: Vec<String> = redis::cmd("SENTINEL")
                    .arg("master")
                    .arg(&self.name)
                    .query(&mut con)
                    .unwrap_or_default();
                let value = |name: &str| {
                    let at = fields.iter().position(|f| f == name)?;
                    fields.get(at + 1).cloned()
                };
                value("num-other-sentinels") == Some(others.clone())
                    && value("num-slaves") == Some(replicas.clone())
            });
        }
    }

    /// The port of the master the sentinels name now.
    pub fn master_port(&self) -> Option<u16> {
        self.master_field("port")?.parse().ok()
    }

    /// Waits until the sentinels name a master other than `old`; its
    /// port.
    pub fn wait_for_failover(&self, old: u16) -> u16 {
        let mut new = None;
        wait_until("the sentinels to fail over", || {
            new = self.master_port().filter(|&p| p != old);
            new.is_some()
        });
        new.expect("a new master")
    }

    /// Kills every sentinel.
    pub fn stop(&mut self) {
        for child in &mut self.children {
            server_process::stop(child);
        }
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
