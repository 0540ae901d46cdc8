//! A PostgreSQL server of a test's own: `initdb` into a temporary
//! directory and `postgres` on a free loopback port, as a plain process
//! (run as `nobody` when the tests run as root, which PostgreSQL
//! refuses), stopped and removed when dropped; restarted on demand, its
//! data kept.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL server, its superuser `postgres` trusted on
/// 127.0.0.1 without a password.
pub struct Postgres {
    child: Child,
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
    /// The `-c` settings it was started with.
    settings: Vec<String>,
    pub port: u16,
}

impl Postgres {
    /// Starts one; `None`, with the reason printed, when no PostgreSQL
    /// is installed (set `TETHER_TEST_PG_BIN` to its `bin` directory, or
    /// have `pg_config` on the path, or Debian's /usr/lib/postgresql),
    /// unless `TETHER_REQUIRE_POSTGRES` is set (then it fails).
    /// Any other failure panics: a server that is there must start.
    pub fn start() -> Option<Postgres> {
        Postgres::start_with(None)
    }

    /// As [`Postgres::start`], serving TLS (`ssl=on`) with this
    /// certificate and key (PEM) beside plain connections.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Postgres> {
        Postgres::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            // CI installs PostgreSQL and says so: there, missing is a
            // failure.
            assert!(
                std::env::var_os("TETHER_REQUIRE_POSTGRES").is_none(),
                "TETHER_REQUIRE_POSTGRES is set, and no PostgreSQL server binaries were found"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL server binaries (initdb, postgres) found: set \
                 TETHER_TEST_PG_BIN, put pg_config on the PATH or install postgresql"
            );
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tether-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut settings: Vec<String> = Vec::new();
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&cert_path, cert).expect("write the certificate");
            std::fs::write(&key_path, key).expect("write the key");
            // PostgreSQL refuses a key others may read.
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod the key");
            settings.extend([
                "ssl=on".to_owned(),
                format!("ssl_cert_file={}", cert_path.display()),
                format!("ssl_key_file={}", key_path.display()),
            ]);
        }
        let as_root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if as_root {
            let status = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown nobody {}", dir.display());
        }
        let output = user_command(as_root, &bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for attempt in 0..5 {
            let port = free_port();
            let child = spawn(&bin, &dir, as_root, port, &settings);
            let mut server = Postgres {
                child,
                dir: dir.clone(),
                bin: bin.clone(),
                as_root,
                settings: settings.clone(),
                port,
            };
            if server.wait_ready() {
                return Some(server);
            }
            // Its port taken by another process between the probe and the
            // start, most likely: another port.
            server.stop_process();
            assert!(attempt < 4, "postgres did not start: {}", server.log());
        }
        None
    }

    /// Stops the server at once, as a crash would (its connections end,
    /// its open transactions roll back), and starts it again on the same
    /// port with the same data (recovered from its write-ahead log, as
    /// after a crash).
    pub fn restart(&mut self) {
        self.stop_process();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.child = spawn(&self.bin, &self.dir, self.as_root, self.port, &self.settings);
            if self.wait_ready() {
                return;
            }
            // The old server's socket may linger a moment.
            self.stop_process();
            assert!(
                Instant::now() < deadline,
                "postgres did not start again: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// Runs `sql` with `psql` (the statements of a page, say): its output.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-d",
                &self.url(),
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Immediate shutdown (SIGQUIT to the postmaster, which ends its
    /// backends), and waits for it.
    fn stop_process(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_process();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server on `port`, its data and socket in `dir`, logging to
/// `dir/postgres.log` (appended to: a restart keeps what came before).
fn spawn(bin: &Path, dir: &Path, as_root: bool, port: u16, settings: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgres.log"))
        .expect("the log");
    user_command(as_root, &bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-k")
        .arg(dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "fsync=off", "-c", "max_connections=40"])
        .args(settings.iter().flat_map(|setting| ["-c", setting.as_str()]))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start postgres")
}

/// `program`, run as `nobody` when we are root (PostgreSQL refuses to run
/// as root); exec'd by setpriv, so the child's pid is the program's.
fn user_command(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The directory of `initdb` and `postgres`.
fn bin_dir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("TETHER_TEST_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| has_server(d));
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_server(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|dir| has_server(dir))
        .collect();
    versions.sort();
    versions.pop()
}

/// A loopback port free at the time of asking.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("its address").port()
}
