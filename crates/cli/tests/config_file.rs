//! `tether serve --config FILE`, the TETHER_<NAME> variables and `tether
//! check-config FILE`: a server that obeys its file, the precedence
//! (command line, then environment, then file, then defaults), errors that
//! name the key and its line, and the README's example file.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use process::{Process, output, serve};

const PATIENCE: Duration = Duration::from_secs(15);

/// The example the README shows.
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tether.toml");

/// A file or directory of the test's own, removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn path_for(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tether-config-{}-{name}", std::process::id()))
    }

    fn file(name: &str, contents: &str) -> Temp {
        let path = Temp::path_for(name);
        std::fs::write(&path, contents).expect("write a temporary file");
        Temp(path)
    }

    fn dir(name: &str) -> Temp {
        Temp(Temp::path_for(name))
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `tether serve ARGS`, which must fail at start: its standard error.
fn refused(args: &[&str]) -> String {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let out = output(&all, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} started: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A running `tether serve`, killed when dropped.
struct Server {
    process: Process,
    addr: SocketAddr,
    /// The first line: the address and what is served.
    banner: String,
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &str)], log: Option<&Path>) -> Server {
        let (process, addr, banner) = serve(args, envs, log);
        Server {
            process,
            addr,
            banner,
        }
    }

    /// Which application the banner names.
    fn app(&self) -> &'static str {
        if self.banner.contains("open it in a browser") {
            "demo"
        } else if self.banner.contains("pub/sub hub") {
            "hub"
        } else if self.banner.contains("WebSocket echo") {
            "echo"
        } else {
            panic!("which application? {:?}", self.banner)
        }
    }

    /// The status of a CORS preflight for a publish from `origin`.
    fn preflight(&self, origin: &str) -> u16 {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
        write!(
            stream,
            "OPTIONS /topics/news HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .expect("a status line");
        line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

/// Waits until `path` contains `needle`.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(path) {
            file.read_to_string(&mut text).expect("read the log");
        }
        if text.contains(needle) {
            return text;
        }
        assert!(start.elapsed() < PATIENCE, "no {needle:?} in {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_server_obeys_its_file() {
    let file = Temp::file(
        "obeys.toml",
        "# every key a long option\n\
         port = 0\n\
         threads = 3\n\
         app = \"hub\"\n\
         memory = true\n\
         log-level = \"info\"\n\
         trusted-origin = [\"https://a.example\", \"https://b.example:8443\"]\n",
    );
    let log = Temp::dir("obeys.log");
    let server = Server::start(&["--config", file.path()], &[], Some(&log.0));
    assert_eq!(server.app(), "hub");
    assert_ne!(server.addr.port(), 8080);
    wait_for_text(&log.0, "3 event loop(s)");
    // Both origins of the array, and no other.
    assert_eq!(server.preflight("https://a.example"), 204);
    assert_eq!(server.preflight("https://b.example:8443"), 204);
    assert_eq!(server.preflight("https://c.example"), 403);
}

#[test]
fn the_command_line_wins_over_the_environment_which_wins_over_the_file() {
    let file = Temp::file(
        "precedence.toml",
        "port = 8\nthreads = 1\nmemory = true\nlog-level = \"warn\"\napp = \"hub\"\n",
    );
    let config = ["--config", file.path()];
    let port = ["--port", "0"];
    // The file's port (8) would not be ours to bind: the command line's wins.
    let server = Server::start(&[&config[..], &port[..]].concat(), &[], None);
    assert_eq!(server.app(), "hub");
    drop(server);
    let server = Server::start(&config, &[("TETHER_PORT", "0"), ("TETHER_APP", "echo")], None);
    assert_eq!(server.app(), "echo");
    drop(server);
    let server = Server::start(
        &[&config[..], &port[..], &["--app", "demo"][..]].concat(),
        &[("TETHER_APP", "echo")],
        None,
    );
    assert_eq!(server.app(), "demo");
    drop(server);
    // An empty variable counts as unset.
    let server = Server::start(&[&config[..], &port[..]].concat(), &[("TETHER_APP", "")], None);
    assert_eq!(server.app(), "hub");
    drop(server);
    // The environment alone, without a file: the defaults give way.
    let server = Server::start(
        &[],
        &[
            ("TETHER_PORT", "0"),
            ("TETHER_THREADS", "1"),
            ("TETHER_MEMORY", "true"),
            ("TETHER_APP", "echo"),
        ],
        None,
    );
    assert_eq!(server.app(), "echo");
}

#[test]
fn a_list_on_the_command_line_or_in_the_environment_replaces_the_files() {
    let file = Temp::file(
        "lists.toml",
        "port = 0\nthreads = 1\nmemory = true\nlog-level = \"warn\"\napp = \"hub\"\n\
         trusted-origin = [\"https://a.example\", \"https://b.example\"]\n",
    );
    let server = Server::start(
        &["--config", file.path(), "--trusted-origin", "https://c.example"],
        &[],
        None,
    );
    assert_eq!(server.preflight("https://c.example"), 204);
    assert_eq!(server.preflight("https://a.example"), 403);
    drop(server);
    let server = Server::start(
        &["--config", file.path()],
        &[("TETHER_TRUSTED_ORIGIN", "https://d.example")],
        None,
    );
    assert_eq!(server.preflight("https://d.example"), 204);
    assert_eq!(server.preflight("https://b.example"), 403);
}

#[test]
fn errors_name_the_key_and_its_line() {
    let unknown = Temp::file("unknown.toml", "port = 0\n\n# a typo\nprot = 8081\n");
    let stderr = refused(&["--config", unknown.path()]);
    assert!(
        stderr.contains(&format!("{}: line 4: key `prot`: not an option", unknown.path())),
        "{stderr}"
    );

    let wrong_type = Temp::file("type.toml", "port = 0\nthreads = \"two\"\n");
    let stderr = refused(&["--config", wrong_type.path()]);
    assert!(
        stderr.contains("line 2: key `threads`: expected an integer, found string"),
        "{stderr}"
    );

    let single = Temp::file("single.toml", "data-dir = [\"a\", \"b\"]\n");
    let stderr = refused(&["--config", single.path()]);
    assert!(
        stderr.contains("line 1: key `data-dir`: expected a string, found array"),
        "{stderr}"
    );

    let bad_value = Temp::file(
        "value.toml",
        "port = 0\nmemory = true\ntrusted-origin = [\"https://a.example\", \"*\"]\n",
    );
    let stderr = refused(&["--config", bad_value.path()]);
    assert!(stderr.contains("line 3: key `trusted-origin`:"), "{stderr}");
    assert!(stderr.contains("* is not accepted"), "{stderr}");

    let not_toml = Temp::file("syntax.toml", "port = 0\nthreads =\n");
    let stderr = refused(&["--config", not_toml.path()]);
    assert!(stderr.contains("line 2"), "{stderr}");

    let missing = Temp::path_for("no-such-file.toml");
    let missing = missing.to_str().unwrap();
    let stderr = refused(&["--config", missing]);
    assert!(stderr.contains(&format!("{missing}: cannot read it")), "{stderr}");

    // Options that do not go together, one from the file.
    let memory = Temp::file("memory.toml", "memory = true\n");
    let stderr = refused(&["--config", memory.path(), "--data-dir", "x"]);
    assert!(stderr.contains("--memory"), "{stderr}");
    assert!(stderr.contains(memory.path()), "{stderr}");
}

/// The status of `GET TARGET` (an event stream's head is enough).
fn status(addr: SocketAddr, target: &str) -> u16 {
    process::get_status(addr, target, "")
}

#[test]
fn namespaces_come_from_tables_of_the_file_and_from_the_environment() {
    let file = Temp::file(
        "namespaces.toml",
        "port = 0\napp = \"hub\"\nmemory = true\nunknown-namespace = \"refuse\"\n\n\
         [namespace.\"chat.*\"]\npublish = \"subscribers\"\nbacklog-events = 20\n\n\
         [namespace.\"user.*\"]\nprivate = true\npresence = false\n",
    );
    let server = Server::start(&["--config", file.path()], &[], None);
    assert_eq!(status(server.addr, "/topics/news/events"), 404);
    assert_eq!(status(server.addr, "/topics/chat.lobby/presence"), 200);
    assert_eq!(status(server.addr, "/topics/user.ann/events"), 401);
    drop(server);
    // The variable replaces the file's list: `;` between namespaces.
    let server = Server::start(
        &["--config", file.path()],
        &[("TETHER_NAMESPACE", "news.* publish=backend; chat.* presence=off")],
        None,
    );
    assert_eq!(status(server.addr, "/topics/news.today/events"), 200);
    assert_eq!(status(server.addr, "/topics/chat.lobby/presence"), 404);
    assert_eq!(status(server.addr, "/topics/user.ann/events"), 404);

    let bad = Temp::file(
        "bad-namespace.toml",
        "port = 0\n\n[namespace.\"chat.*\"]\npublish = \"everyone\"\n",
    );
    let stderr = refused(&["--config", bad.path()]);
    // The wrong field's own line and key, not the table's header.
    assert!(
        stderr.contains("line 4: key `namespace.chat.*.publish`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("publish: expected token, subscribers, backend, hook or nobody"),
        "{stderr}"
    );
}

/// The status of `POST /topics/TOPIC` with `token`.
fn publish_status(addr: SocketAddr, topic: &str, token: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    write!(
        stream,
        "POST /topics/{topic} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 1\r\nConnection: close\r\n\r\nx"
    )
    .expect("send");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("a status line");
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn sighup_reads_the_file_again_and_says_what_takes_a_restart() {
    let file = Temp::file(
        "reload.toml",
        "port = 0\napp = \"hub\"\nmemory = true\nthreads = 2\npublish-token = \"first-token\"\n\n\
         [namespace.clock]\npublish = \"nobody\"\n",
    );
    let log = Temp::dir("reload.log");
    let server = Server::start(&["--config", file.path()], &[], Some(&log.0));
    assert_eq!(publish_status(server.addr, "clock", "first-token"), 403);
    assert_eq!(publish_status(server.addr, "news", "first-token"), 200);
    std::fs::write(
        &file.0,
        "port = 0\napp = \"hub\"\nmemory = true\nthreads = 3\npublish-token = \"second-token\"\n",
    )
    .expect("rewrite the file");
    let hup = |pid: u32| {
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    hup(server.process.child.id());
    let text = wait_for_text(&log.0, "config: reloaded");
    assert!(
        text.contains("config: reloaded: namespaces, publish-token"),
        "{text}"
    );
    assert!(!text.contains("kept until a restart"), "{text}");
    assert!(
        text.contains("taking effect only after a restart: threads\n"),
        "{text}"
    );
    // Both loops take the new token and rules; the old token is refused.
    for _ in 0..4 {
        assert_eq!(publish_status(server.addr, "clock", "second-token"), 200);
        assert_eq!(publish_status(server.addr, "clock", "first-token"), 401);
    }
    // A file that no longer reads changes nothing.
    std::fs::write(&file.0, "port = 0\nthreads = \"many\"\n").expect("rewrite the file");
    hup(server.process.child.id());
    let text = wait_for_text(&log.0, "reload failed, nothing changed");
    assert!(text.contains("threads"), "{text}");
    assert_eq!(publish_status(server.addr, "clock", "second-token"), 200);
}

#[test]
fn check_config_says_ok_or_what_is_wrong() {
    let out = output(&["check-config", EXAMPLE], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));

    let bad = Temp::file("check.toml", "port = \"eighty\"\nwhatever = 1\nthreads = 1\n");
    let out = output(&["check-config", bad.path()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 1: key `port`: expected an integer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 2: key `whatever`: not an option"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // The checks serve makes before it starts.
    let no_key = Temp::file("no-key.toml", "app = \"hub\"\nprivate = [\"user.*\"]\n");
    let out = output(&["check-config", no_key.path()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--private needs a key"), "{stderr}");

    let conflict = Temp::file("conflict.toml", "memory = true\nfsync = \"always\"\n");
    let out = output(&["check-config", conflict.path()], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--memory"));
}

#[test]
fn the_readmes_example_serves() {
    // The example with the port and the data directory moved aside.
    let data = Temp::dir("example-data");
    let server = Server::start(
        &["--config", EXAMPLE, "--port", "0", "--threads", "1"],
        &[("TETHER_DATA_DIR", data.path()), ("TETHER_LOG_LEVEL", "warn")],
        None,
    );
    assert_eq!(server.app(), "hub");
    assert_eq!(server.preflight("https://admin.example.com"), 204);
    assert_eq!(server.preflight("https://other.example"), 403);
    assert!(data.0.is_dir(), "the events went to TETHER_DATA_DIR");
}

#[test]
fn the_book_shows_the_example_as_it_is() {
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/src/guide/configuration.md"
    ))
    .unwrap();
    assert!(
        page.contains(&format!("```toml file=tether.toml\n{example}```\n")),
        "docs/src/guide/configuration.md and examples/tether.toml differ"
    );
}

#[test]
fn the_most_connections_per_subject_is_a_key_and_a_variable() {
    let good = Temp::file("limit.toml", "app = \"hub\"\nmax-connections-per-subject = 3\n");
    let out = output(&["check-config", good.path()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = Temp::file("limit-bad.toml", "max-connections-per-subject = -1\n");
    let out = output(&["check-config", bad.path()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 1: key `max-connections-per-subject`"),
        "{stderr}"
    );
    let out = output(
        &["serve", "--app", "hub", "--port", "0"],
        &[("TETHER_MAX_CONNECTIONS_PER_SUBJECT", "many")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "invalid value 'many' for TETHER_MAX_CONNECTIONS_PER_SUBJECT (--max-connections-per-subject)"
        ),
        "{stderr}"
    );
}

#[test]
fn http3_without_tls_is_refused_from_the_command_line_the_environment_and_a_file() {
    let stderr = refused(&[
        "--http3",
        "on",
        "--port",
        "0",
        "--data-dir",
        "/nonexistent/never-made",
    ]);
    assert!(stderr.contains("--http3 on needs TLS"), "{stderr}");

    let out = output(
        &["serve", "--port", "0", "--data-dir", "/nonexistent/never-made"],
        &[("TETHER_HTTP3", "on")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--http3 on needs TLS"), "{stderr}");

    let file = Temp::file("http3.toml", "http3 = \"on\"\n");
    let out = output(&["check-config", file.path()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--http3 on needs TLS"), "{stderr}");
}

#[test]
fn a_file_that_is_not_utf8_is_refused_naming_the_line() {
    let path = Temp::path_for("latin1.toml");
    std::fs::write(&path, b"port = 0\n# a comment\nlog-level = \"caf\xe9\"\n").unwrap();
    let file = Temp(path);
    for command in [
        &["check-config", file.path()][..],
        &["serve", "--config", file.path()],
    ] {
        let out = output(command, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{}: line 3, column 17: not UTF-8 text (byte 37 of the file)",
                file.path()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn the_ticket_bounds_are_keys_that_reach_the_hub() {
    let file = Temp::file(
        "tickets.toml",
        "app = \"hub\"\nport = 0\nmemory = true\npublish-token = \"t0ken\"\n\
         max-tickets = 2\nmax-tickets-per-subject = 1\n",
    );
    let server = Server::start(&["--config", file.path()], &[], None);
    let ticket = |sub: &str| {
        let body = format!(r#"{{"sub":"{sub}"}}"#);
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
        write!(
            stream,
            "POST /tickets HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t0ken\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .expect("a status line");
        line.split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0)
    };
    // One per subject, two in all.
    assert_eq!(ticket("alice"), 200);
    assert_eq!(ticket("alice"), 429);
    assert_eq!(ticket("bob"), 200);
    assert_eq!(ticket("carol"), 503);
    drop(server);
    let out = output(&["check-config", file.path()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = Temp::file("tickets-bad.toml", "max-tickets-per-subject = 0\n");
    let out = output(&["check-config", bad.path()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 1: key `max-tickets-per-subject`"),
        "{stderr}"
    );
}
