//! `tether serve` out of descriptors. The open-file limit is lowered for a
//! child process only (`prlimit`, util-linux), so that no other test
//! feels it, and `--max-connections` is set above it, so that `accept`
//! itself fails (EMFILE) rather than the connection limit answering.
//!
//! - A short shortage: clients queued meanwhile are served once
//!   descriptors are freed, with no other client connecting to wake the
//!   listener up.
//! - With no patience: a client that cannot be accepted is answered 503
//!   with `Retry-After` instead of hanging.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(target_os = "linux")]

#[path = "serve/process.rs"]
mod process;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::{Process, address};

/// The child's open-file limit, soft and hard (the server raises its soft
/// limit to the hard one at start).
const NOFILE: usize = 64;

/// Clients to try before concluding the server never ran out (with the
/// limit above, about `NOFILE` minus its own few descriptors get in).
const MAX_CLIENTS: usize = 4 * NOFILE;

/// The bound on any one wait: generous for a loaded machine, and only ever
/// spent when something is wrong.
const PATIENCE: Duration = Duration::from_secs(15);

/// A `tether serve --app hub` under a lowered open-file limit.
struct Server {
    process: Process,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn start(name: &str, accept_patience: &str) -> Server {
        let log = std::env::temp_dir().join(format!("tether-descriptors-{}-{name}.log", std::process::id()));
        let nofile = format!("--nofile={NOFILE}:{NOFILE}");
        let spawned = Command::new("prlimit")
            .arg(&nofile)
            .arg(env!("CARGO_BIN_EXE_tether"))
            .args([
                "serve",
                "--app",
                "hub",
                "--port",
                "0",
                "--threads",
                "1",
                "--memory",
            ])
            .args(["--max-connections", "100000"])
            .args(["--accept-patience", accept_patience])
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn();
        let (process, line) = match spawned {
            Ok(child) => Process::first_line(child),
            Err(e) => panic!("this test runs the server under `prlimit` (util-linux): {e}"),
        };
        let addr = address(&line).unwrap_or_else(|| panic!("no address in {line:?}; log: {}", log.display()));
        Server { process, addr, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the server has logged that it ran out.
    fn expect_logged_shortage(&self) {
        let start = Instant::now();
        while !self.log_text().contains("out of descriptors") {
            assert!(
                start.elapsed() < PATIENCE,
                "the server never said it ran out of descriptors:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A client that has sent `GET /healthz` on a keep-alive connection.
fn ask(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect (the kernel queues it)");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: tether\r\n\r\n")
        .expect("send a request");
    stream
}

/// The head of the response, or `None` if none came within `wait`.
fn response_head(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream.set_read_timeout(Some(wait)).expect("set a read timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&buf[..end]).into_owned());
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!("closed without a complete response: {buf:?}"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(buf.is_empty(), "a partial response: {buf:?}");
                return None;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn status(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

#[test]
fn queued_clients_are_served_once_descriptors_are_freed() {
    // Patience far beyond the test: nobody is shed, everybody waits.
    let server = Server::start("served", "600");
    let mut holders = Vec::new();
    let mut queued = loop {
        assert!(
            holders.len() < MAX_CLIENTS,
            "{MAX_CLIENTS} clients served: the limit had no effect"
        );
        let mut client = ask(server.addr);
        // A served client answers at once. One that does not is queued if
        // the server says it ran out; otherwise the server is only slow.
        let mut head = response_head(&mut client, Duration::from_millis(500));
        if head.is_none() && !server.log_text().contains("out of descriptors") {
            head = response_head(&mut client, PATIENCE);
        }
        match head {
            Some(head) => {
                assert_eq!(status(&head), "200", "{head}");
                holders.push(client);
            }
            None => break vec![client],
        }
    };
    server.expect_logged_shortage();
    // More clients queue behind the first; each arrival retries `accept`,
    // which still fails.
    for _ in 0..3 {
        queued.push(ask(server.addr));
    }
    // Free the descriptors; no client connects after this, so only the
    // server's own retry can get the queued ones accepted.
    drop(holders);
    for (i, client) in queued.iter_mut().enumerate() {
        let head = response_head(client, PATIENCE)
            .unwrap_or_else(|| panic!("queued client {i} never served:\n{}", server.log_text()));
        assert_eq!(status(&head), "200", "{head}");
    }
    assert!(
        server.log_text().contains("descriptors available again"),
        "the end of the shortage is logged:\n{}",
        server.log_text()
    );
}

#[test]
fn clients_are_shed_with_503_when_descriptors_stay_short() {
    // No patience: a client that cannot be accepted is shed at once.
    let server = Server::start("shed", "0");
    let mut holders = Vec::new();
    let head = loop {
        assert!(
            holders.len() < MAX_CLIENTS,
            "{MAX_CLIENTS} clients served: the limit had no effect"
        );
        let mut client = ask(server.addr);
        let head = response_head(&mut client, PATIENCE)
            .unwrap_or_else(|| panic!("a client left hanging:\n{}", server.log_text()));
        match status(&head) {
            "200" => holders.push(client),
            _ => break head,
        }
    };
    assert_eq!(status(&head), "503", "{head}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nretry-after: "),
        "503 without Retry-After: {head}"
    );
    server.expect_logged_shortage();
    // Later clients too, for as long as the shortage lasts.
    let head = response_head(&mut ask(server.addr), PATIENCE).expect("an answer");
    assert_eq!(status(&head), "503", "{head}");
}
