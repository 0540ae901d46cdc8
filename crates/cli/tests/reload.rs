//! SIGHUP end to end: one `tether serve` with a configuration file, a
//! token key file and a TLS certificate; all three changed, one SIGHUP,
//! and each takes effect, logged in the documented order (the settings,
//! the keys, the certificate); a bad file among them keeps its old value
//! with an error that names it while the others reload; a SIGHUP
//! while the server starts, or two at once, is harmless; and a server
//! with nothing to reload has no thread for it.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use temp_dir::TempDir;
use tether_testkit::tls::{SelfSigned, TlsConn, self_signed};

const PATIENCE: Duration = Duration::from_secs(15);

const FIRST_SECRET: &[u8] = b"the first secret, of 32 bytes!!!";
const SECOND_SECRET: &[u8] = b"the second secret, of 32 bytes!!";

/// A running `tether serve --config FILE`: plain HTTP on its port, TLS
/// beside it; its log in a file. Killed when dropped.
struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    http: SocketAddr,
    https: SocketAddr,
    log: String,
}

impl Server {
    /// Starts it; `before_banner` runs once the process exists, before
    /// it has printed anything.
    fn start(dir: &TempDir, config: &str, before_banner: impl FnOnce(u32)) -> Server {
        let log = dir.file("serve.log");
        let mut child = process::tether(&["serve", "--config", config], &[])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("start tether");
        before_banner(child.id());
        let mut stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut http = None;
        let mut https = None;
        while https.is_none() {
            let mut line = String::new();
            let read = stdout.read_line(&mut line).expect("read a line");
            assert!(
                read > 0,
                "tether ended before it listened:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            if line.starts_with("tether listening on") {
                http = process::address(&line);
            }
            if let Some(rest) = line.strip_prefix("TLS beside it on https://") {
                https = rest.split('/').next().and_then(|a| a.parse().ok());
            }
        }
        Server {
            child,
            _stdout: stdout,
            http: http.expect("the HTTP address"),
            https: https.expect("the TLS address"),
            log,
        }
    }

    fn hup(&self) {
        hup(self.child.id());
    }

    /// The status of `GET TARGET` with `Authorization: Bearer TOKEN` (the
    /// status line only: an event stream does not end).
    fn status(&self, target: &str, token: &str) -> u16 {
        process::get_status(self.http, target, &format!("Authorization: Bearer {token}\r\n"))
    }

    /// The status of `GET /metrics` with this token.
    fn metrics_status(&self, token: &str) -> u16 {
        self.status("/metrics", token)
    }

    /// The status of a private topic's event stream with this JWT.
    fn private_status(&self, jwt: &str) -> u16 {
        self.status("/topics/user.alice.inbox/events", jwt)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds `needle` `times` times.
    fn wait_for_log(&self, needle: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let text = self.log();
            if text.matches(needle).count() >= times {
                return text;
            }
            assert!(start.elapsed() < PATIENCE, "no {needle:?} ×{times} in {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// A token for `alice`, good for ten minutes, signed with `secret`.
fn jwt(secret: &[u8]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "sub": "alice",
        "exp": now + 600,
        "tether": { "sub": ["user.{sub}.*"] },
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Whether a TLS handshake with the server succeeds for a client that
/// trusts only one certificate (so: whether that one is served).
fn serves(addr: SocketAddr, trusted: &SelfSigned) -> bool {
    let mut conn = TlsConn::connect(addr, &trusted.client);
    conn.stream.sock.set_read_timeout(Some(PATIENCE)).unwrap();
    while conn.stream.conn.is_handshaking() {
        if conn.stream.conn.complete_io(&mut conn.stream.sock).is_err() {
            return false;
        }
    }
    true
}

/// The configuration file: the metrics' token is the setting that changes.
fn config(dir: &TempDir, metrics_token: &str) -> String {
    dir.write(
        "tether.toml",
        format!(
            "port = 0\napp = \"hub\"\nmemory = true\nthreads = 2\nlog-level = \"info\"\n\
             metrics-token = \"{metrics_token}\"\nprivate = [\"user.*\"]\n\
             jwt-secret-file = \"{}\"\ntls-cert = \"{}\"\ntls-key = \"{}\"\n\
             tls-listen = \"127.0.0.1:0\"\n",
            dir.file("secret"),
            dir.file("cert.pem"),
            dir.file("key.pem"),
        )
        .as_bytes(),
    )
}

/// The three files as at start: the first secret, certificate `cert`.
fn first_files(dir: &TempDir, cert: &SelfSigned) -> String {
    dir.write("secret", FIRST_SECRET);
    write_cert(dir, cert);
    config(dir, "first-metrics")
}

fn write_cert(dir: &TempDir, cert: &SelfSigned) {
    dir.write("cert.pem", cert.cert_pem.as_bytes());
    dir.write("key.pem", cert.key_pem.as_bytes());
}

/// Where `needle` is in `text`, which must hold it.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {text}"))
}

#[test]
fn one_sighup_reloads_the_settings_then_the_keys_then_the_certificate() {
    let dir = TempDir::new("all");
    let (old_cert, new_cert) = (self_signed(b"http/1.1"), self_signed(b"http/1.1"));
    let file = first_files(&dir, &old_cert);
    let server = Server::start(&dir, &file, |_| {});
    assert_eq!(server.metrics_status("first-metrics"), 200);
    assert_eq!(server.private_status(&jwt(FIRST_SECRET)), 200);
    assert_eq!(server.private_status(&jwt(SECOND_SECRET)), 401);
    assert!(serves(server.https, &old_cert));
    assert!(!serves(server.https, &new_cert));

    config(&dir, "second-metrics");
    dir.write("secret", SECOND_SECRET);
    write_cert(&dir, &new_cert);
    server.hup();
    let log = server.wait_for_log("TLS: certificate and key reloaded", 1);

    assert_eq!(server.metrics_status("second-metrics"), 200);
    assert_eq!(server.metrics_status("first-metrics"), 401);
    assert_eq!(server.private_status(&jwt(SECOND_SECRET)), 200);
    assert_eq!(server.private_status(&jwt(FIRST_SECRET)), 401);
    assert!(serves(server.https, &new_cert));
    assert!(!serves(server.https, &old_cert));
    let settings = at(&log, "config: reloaded: metrics-token\n");
    let keys = at(&log, "hub: token keys reloaded (--jwt-secret-file changed)\n");
    let cert = at(&log, "TLS: certificate and key reloaded (");
    assert!(settings < keys && keys < cert, "{log}");

    // Nothing changed: the settings say so; the files, read the same, say
    // nothing.
    server.hup();
    let log = server.wait_for_log("config: reloaded, nothing changed", 1);
    assert_eq!(log.matches("token keys reloaded").count(), 1, "{log}");
    assert_eq!(log.matches("certificate and key reloaded").count(), 1, "{log}");
}

#[test]
fn a_bad_file_keeps_its_old_value_and_the_others_reload() {
    let dir = TempDir::new("bad");
    let (old_cert, new_cert) = (self_signed(b"http/1.1"), self_signed(b"http/1.1"));
    let file = first_files(&dir, &old_cert);
    let server = Server::start(&dir, &file, |_| {});

    // A key file that no longer holds a key: the settings and the
    // certificate reload; the first secret's tokens still verify.
    config(&dir, "second-metrics");
    dir.write("secret", b"short");
    write_cert(&dir, &new_cert);
    server.hup();
    let log = server.wait_for_log("TLS: certificate and key reloaded", 1);
    assert!(log.contains("config: reloaded: metrics-token\n"), "{log}");
    let error = at(
        &log,
        "hub: key reload failed, the current keys stay: --jwt-secret-file",
    );
    let line = log[..error].rsplit('\n').next().unwrap_or_default();
    assert!(line.contains(" ERROR "), "an error line: {log}");
    assert_eq!(server.metrics_status("second-metrics"), 200);
    assert_eq!(server.private_status(&jwt(FIRST_SECRET)), 200);
    assert!(serves(server.https, &new_cert));

    // A certificate file that is not one: the keys (good again) reload;
    // the certificate in use stays.
    dir.write("secret", SECOND_SECRET);
    dir.write("cert.pem", b"not a certificate");
    server.hup();
    let log = server.wait_for_log("TLS: reload failed, the current certificate stays: ", 1);
    assert!(
        log.contains(&format!("certificate {}", dir.file("cert.pem"))),
        "the error names the file: {log}"
    );
    assert!(
        log.contains("hub: token keys reloaded (--jwt-secret-file changed)"),
        "{log}"
    );
    assert_eq!(server.private_status(&jwt(SECOND_SECRET)), 200);
    assert!(serves(server.https, &new_cert));

    // A configuration file that no longer reads: the settings stay.
    dir.write("tether.toml", b"port = \"eighty\"\n");
    server.hup();
    server.wait_for_log("config: reload failed, nothing changed: ", 1);
    assert_eq!(server.metrics_status("second-metrics"), 200);
}

#[test]
fn a_sighup_while_starting_or_two_at_once_are_harmless() {
    let dir = TempDir::new("early");
    let cert = self_signed(b"http/1.1");
    let file = first_files(&dir, &cert);
    // Sent as soon as the process takes SIGHUP, before it has printed
    // anything (while it reads its options or sets the node up): it
    // starts, and reloads once it has.
    let server = Server::start(&dir, &file, |pid| {
        let start = Instant::now();
        while !catches_sighup(pid) {
            assert!(start.elapsed() < PATIENCE, "SIGHUP never caught");
            std::thread::yield_now();
        }
        hup(pid);
    });
    server.wait_for_log("config: reloaded, nothing changed", 1);
    assert_eq!(server.metrics_status("first-metrics"), 200);
    assert!(serves(server.https, &cert));

    // Two at once: one reload after the other (or one for both), and the
    // server serves on.
    let before = server.log().matches("config: reloaded").count();
    config(&dir, "second-metrics");
    server.hup();
    server.hup();
    server.wait_for_log("config: reloaded: metrics-token", 1);
    let text = server.wait_for_log("config: reloaded", before + 1);
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(server.metrics_status("second-metrics"), 200);
    assert_eq!(server.private_status(&jwt(FIRST_SECRET)), 200);
    assert!(serves(server.https, &cert));
    assert!(server.child.id() > 0 && process_alive(server.child.id()));
}

/// With nothing to read again there is no reload thread: a single-loop
/// server stays one thread (a second one, even asleep, makes glibc take
/// the cancellable path of every `send` and `recv`), and a SIGHUP, still
/// taken, ends nothing.
#[test]
fn with_nothing_to_reload_a_single_loop_server_is_one_thread_and_outlives_sighup() {
    let (server, addr, _) = process::serve(&["--app", "echo", "--port", "0", "--threads", "1"], &[], None);
    let pid = server.child.id();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    assert_eq!(threads, 1, "threads of `serve --app echo --threads 1`");
    assert!(catches_sighup(pid));
    hup(pid);
    assert_eq!(process::get_status(addr, "/healthz", ""), 200);
    assert!(process_alive(pid));
}

/// Whether the process has a handler for SIGHUP (signal 1: the lowest
/// bit of `SigCgt` in its `/proc` status).
fn catches_sighup(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 1 == 1)
}

/// Whether the process still runs (`kill -0`).
fn process_alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}
