//! A RabbitMQ server of a test's own: Debian's `rabbitmq-server` run as
//! a plain process (its own process group) on free loopback ports, with
//! its data, logs, configuration and Erlang cookie in a temporary
//! directory, killed (the group) when dropped; it can be stopped and
//! started again on the same ports and data, as a broker restart. Its
//! Erlang port mapper (epmd) is its own too, on a free port, and ends
//! with it: the one the server would start itself is a daemon that
//! outlives the tests.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server script Debian's package installs.
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The Erlang port mapper Debian's Erlang installs.
const EPMD: &str = "/usr/bin/epmd";

/// A RabbitMQ server for one test binary.
pub struct RabbitMq {
    child: Option<Child>,
    /// Its port mapper, and the port it listens on (a cluster's nodes
    /// share one, which the cluster owns: `None` here then).
    epmd: Option<(Child, u16)>,
    dir: PathBuf,
    port: u16,
    dist_port: u16,
    /// As a node of a cluster ([`crate::rabbitmq_cluster`]).
    member: Option<Member>,
}

/// What makes a server a node of a cluster.
pub(crate) struct Member {
    /// The shared port mapper's port.
    pub(crate) epmd_port: u16,
    /// The Erlang cookie every node of the cluster has.
    pub(crate) cookie: String,
    /// Its Erlang node's name.
    pub(crate) name: String,
    /// The node it joins as it first starts, if any.
    pub(crate) seed: Option<String>,
}

impl RabbitMq {
    /// A server started for the test; `None`, with the reason printed,
    /// when `rabbitmq-server` is not installed, unless
    /// `TETHER_REQUIRE_RABBITMQ` is set (then it fails). One that is
    /// installed must start: any other failure panics.
    pub fn start() -> Option<RabbitMq> {
        if !installed() {
            return None;
        }
        Some(RabbitMq::start_as(None))
    }

    /// A server started (installed: see [`installed`]), alone or as a
    /// node of a cluster.
    pub(crate) fn start_as(member: Option<Member>) -> RabbitMq {
        let dir =
            std::env::temp_dir().join(format!("tether-rabbitmq-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(dir.join("log")).expect("a temporary directory");
        if let Some(member) = &member {
            use std::os::unix::fs::PermissionsExt;
            let cookie = dir.join(".erlang.cookie");
            std::fs::write(&cookie, &member.cookie).expect("the cookie");
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
                .expect("the cookie's mode");
        }
        let mut server = RabbitMq {
            child: None,
            epmd: if member.is_none() { start_epmd() } else { None },
            dir,
            port: 0,
            dist_port: 0,
            member,
        };
        for attempt in 0..3 {
            server.port = free_port();
            server.dist_port = free_port();
            if server.launch() {
                return server;
            }
            // A port taken between the probe and the start, most likely.
            server.kill();
            assert!(
                attempt < 2,
                "rabbitmq-server did not start: {}",
                server.log_text()
            );
        }
        unreachable!("the third attempt asserts")
    }

    /// The Erlang node's name (alone, `tetherPORT@localhost`).
    pub fn node_name(&self) -> String {
        match &self.member {
            Some(member) => member.name.clone(),
            None => format!("tether{}@localhost", self.port),
        }
    }

    /// The environment `rabbitmq-server` and the CLI tools need for this
    /// server: its home (and cookie) and its port mapper.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("HOME", self.dir.display().to_string())];
        let epmd = self
            .member
            .as_ref()
            .map(|m| m.epmd_port)
            .or(self.epmd.as_ref().map(|(_, p)| *p));
        if let Some(port) = epmd {
            env.push(("ERL_EPMD_PORT", port.to_string()));
        }
        env
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (its data kept). Its streams may then
    /// be unavailable for a while after it starts again.
    pub fn kill(&mut self) {
        self.signal("KILL", Duration::ZERO);
    }

    /// Stops the server as a service manager would (SIGTERM; killed if
    /// it is not gone within 30 s), its data kept.
    pub fn stop(&mut self) {
        self.signal("TERM", Duration::from_secs(30));
    }

    /// Starts the server again on the same ports and data.
    pub fn start_again(&mut self) {
        assert!(
            self.launch(),
            "rabbitmq-server did not start again: {}",
            self.log_text()
        );
    }

    /// Sends `signal` to the server's group (the script, the Erlang VM
    /// and its helpers), waits for it for `patience`, then kills it.
    fn signal(&mut self, signal: &str, patience: Duration) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), "--", &group])
                .status();
            let deadline = Instant::now() + patience;
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
        // Until the port is free again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server ([`RabbitMq::stop`]) and starts it again.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// What the server logged.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.join("log")) {
            for entry in entries.flatten() {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }

    fn launch(&mut self) -> bool {
        let mut conf = format!(
            "listeners.tcp.default = 127.0.0.1:{}\nloopback_users = none\n",
            self.port
        );
        if let Some(seed) = self.member.as_ref().and_then(|m| m.seed.as_ref()) {
            // Started once the seed is up, a node tries to join it until
            // it answers.
            conf.push_str(&format!(
                "cluster_formation.peer_discovery_backend = classic_config\n\
                 cluster_formation.classic_config.nodes.1 = {seed}\n\
                 cluster_formation.discovery_retry_limit = 240\n\
                 cluster_formation.discovery_retry_interval = 250\n"
            ));
        }
        std::fs::write(self.dir.join("rabbitmq.conf"), conf).expect("the configuration");
        std::fs::write(self.dir.join("enabled_plugins"), "[].\n").expect("the plugins");
        let child = Command::new(SERVER)
            .envs(self.env())
            .env("RABBITMQ_NODENAME", self.node_name())
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", self.dir.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.dir.join("enabled_plugins"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start rabbitmq-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.kill();
        if let Some((mut epmd, _)) = self.epmd.take() {
            let _ = epmd.kill();
            let _ = epmd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `rabbitmq-server` is installed; when it is not, the reason is
/// printed, and if `TETHER_REQUIRE_RABBITMQ` is set, this fails.
pub(crate) fn installed() -> bool {
    if std::path::Path::new(SERVER).is_file() {
        return true;
    }
    assert!(
        std::env::var_os("TETHER_REQUIRE_RABBITMQ").is_none(),
        "TETHER_REQUIRE_RABBITMQ is set, and {SERVER} is missing (apt-get install rabbitmq-server)"
    );
    eprintln!("SKIPPED: no RabbitMQ: {SERVER} is missing (apt-get install rabbitmq-server)");
    false
}

/// A loopback port free at the time of asking.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("its address").port()
}

/// A port mapper of the server's own, listening once this returns; `None`
/// (the server then starts the shared daemon itself) when it cannot
/// start.
pub(crate) fn start_epmd() -> Option<(Child, u16)> {
    let port = free_port();
    let mut child = Command::new(EPMD)
        .args(["-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
