//! `tether serve`'s token options: key files refused at start with the
//! option named, the options wired into the hub (a private topic, the
//! cookie, `?token=` only when asked for, the time a WebSocket has to send
//! its token), and keys read again on SIGHUP; --cors-origin; and the
//! demo's sign-in with a secret of its own, off when a key is given.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use process::{Process, address};

const PATIENCE: Duration = Duration::from_secs(15);

/// A file of the test's own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("tether-auth-flags-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temporary file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tether(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    command
        .args([
            "serve",
            "--port",
            "0",
            "--threads",
            "1",
            "--memory",
            "--log-level",
            "warn",
        ])
        .args(args)
        .stdin(Stdio::null());
    command
}

/// Runs `tether serve` with `args`, which must make it fail at start:
/// what it wrote to stderr.
fn refused(args: &[&str]) -> String {
    let mut child = tether(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tether") {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tether serve {args:?} started instead of failing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "{args:?}: {stderr}");
    stderr
}

#[test]
fn bad_key_options_fail_at_start_naming_the_option() {
    let short = TempFile::new("short", b"only 20 bytes long!\n");
    let stderr = refused(&["--app", "hub", "--jwt-secret-file", short.path()]);
    assert!(stderr.contains("--jwt-secret-file"), "{stderr}");
    assert!(stderr.contains("at least 32"), "{stderr}");

    let missing = std::env::temp_dir().join("tether-auth-flags-no-such-file");
    let stderr = refused(&["--app", "demo", "--jwks", missing.to_str().unwrap()]);
    assert!(stderr.contains("--jwks"), "{stderr}");

    let not_pem = TempFile::new("not-pem", b"not a key");
    let stderr = refused(&["--app", "hub", "--jwt-public-key", not_pem.path()]);
    assert!(stderr.contains("--jwt-public-key"), "{stderr}");

    let stderr = refused(&["--app", "hub", "--private", "user.*"]);
    assert!(stderr.contains("--private needs a key"), "{stderr}");

    let secret = TempFile::new("good", &[b'k'; 32]);
    let stderr = refused(&[
        "--app",
        "hub",
        "--jwt-secret-file",
        secret.path(),
        "--private",
        "a*b",
    ]);
    assert!(stderr.contains("--private"), "{stderr}");
    let stderr = refused(&[
        "--app",
        "hub",
        "--jwt-secret-file",
        secret.path(),
        "--token-cookie",
        "a b",
    ]);
    assert!(stderr.contains("--token-cookie"), "{stderr}");
}

/// A running `tether serve`, killed when dropped.
struct Server {
    process: Process,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let (process, line) = Process::start(tether(args).stderr(Stdio::null()));
        let addr = address(&line).unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { process, addr }
    }

    /// The status of a GET for `target` with these header lines.
    fn status(&self, target: &str, headers: &str) -> u16 {
        process::get_status(self.addr, target, headers)
    }
}

fn token(secret: &[u8]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "sub": "alice",
        "aud": "tether",
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

#[test]
fn the_options_reach_the_hub_and_sighup_reloads_the_keys() {
    let first = b"the first secret, of 32 bytes!!!";
    let second = b"the second secret, of 32 bytes!!";
    let secret = TempFile::new("reload", first);
    let server = Server::start(&[
        "--app",
        "hub",
        "--jwt-secret-file",
        secret.path(),
        "--jwt-audience",
        "tether",
        "--private",
        "user.*",
        "--token-cookie",
        "auth",
    ]);
    let topic = "/topics/user.alice.inbox/events";
    let old = token(first);
    assert_eq!(server.status(topic, ""), 401);
    assert_eq!(
        server.status(topic, &format!("Authorization: Bearer {old}\r\n")),
        200
    );
    assert_eq!(server.status(topic, &format!("Cookie: auth={old}\r\n")), 200);
    assert_eq!(
        server.status(topic, &format!("Cookie: tether_token={old}\r\n")),
        401
    );
    assert_eq!(server.status(&format!("{topic}?token={old}"), ""), 401);
    assert_eq!(server.status("/topics/news/events", ""), 200);

    std::fs::write(&secret.0, second).expect("rewrite the secret");
    let signalled = Command::new("kill")
        .args(["-HUP", &server.process.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(signalled.success());
    let new = token(second);
    let start = Instant::now();
    while server.status(topic, &format!("Authorization: Bearer {new}\r\n")) != 200 {
        assert!(start.elapsed() < PATIENCE, "the keys were not reloaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.status(topic, &format!("Authorization: Bearer {old}\r\n")),
        401
    );

    // A file that no longer holds a key: the keys in use stay.
    std::fs::write(&secret.0, b"short").expect("rewrite the secret");
    Command::new("kill")
        .args(["-HUP", &server.process.child.id().to_string()])
        .status()
        .expect("run kill");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server.status(topic, &format!("Authorization: Bearer {new}\r\n")),
        200
    );
}

#[test]
fn token_query_reads_the_query() {
    let secret = TempFile::new("query", b"a secret for the query test, 32b");
    let server = Server::start(&[
        "--app",
        "demo",
        "--jwt-secret-file",
        secret.path(),
        "--jwt-audience",
        "tether",
        "--private",
        "user.*",
        "--token-query",
    ]);
    let token = token(b"a secret for the query test, 32b");
    let topic = "/topics/user.alice.inbox/events";
    assert_eq!(server.status(&format!("{topic}?token={token}"), ""), 200);
    assert_eq!(server.status(&format!("{topic}?token=x{token}"), ""), 401);
    assert_eq!(
        server.status(topic, &format!("Cookie: tether_token={token}\r\n")),
        200
    );
}

#[test]
fn auth_timeout_bounds_the_wait_for_a_first_message() {
    let secret = TempFile::new("timeout", b"a secret for the timeout test 32b");
    let stderr = refused(&[
        "--app",
        "hub",
        "--jwt-secret-file",
        secret.path(),
        "--auth-timeout",
        "0",
    ]);
    assert!(stderr.contains("--auth-timeout"), "{stderr}");
    let server = Server::start(&[
        "--app",
        "hub",
        "--jwt-secret-file",
        secret.path(),
        "--private",
        "user.*",
        "--auth-timeout",
        "1",
    ]);
    let start = Instant::now();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    write!(
        stream,
        "GET /topics/user.alice.inbox/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("send");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("a status line");
    assert!(line.starts_with("HTTP/1.1 101"), "{line}");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).expect("a header line");
    }
    // The server's close frame, unmasked: FIN and close, the length, 1008.
    let mut head = [0u8; 4];
    reader.read_exact(&mut head).expect("a close frame");
    let took = start.elapsed();
    assert_eq!(head[0], 0x88);
    assert_eq!(u16::from_be_bytes([head[2], head[3]]), 1008);
    let mut reason = vec![0u8; usize::from(head[1]) - 2];
    reader.read_exact(&mut reason).expect("the reason");
    assert_eq!(reason, b"authentication timeout");
    // The reason says which timeout it was; and it came no sooner than
    // its second (a bound below, which a slow machine only makes easier
    // to meet).
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

#[test]
fn trusted_origins_are_checked_at_start_and_reach_the_hub() {
    // One list under three names: --allowed-origin and --cors-origin are
    // other names of --trusted-origin, checked the same way.
    for flag in ["--trusted-origin", "--allowed-origin", "--cors-origin"] {
        for bad in [
            "*",
            "https://app.example.com/",
            "app.example.com",
            "https://a.b/path",
        ] {
            let stderr = refused(&["--app", "hub", flag, bad]);
            assert!(stderr.contains("--trusted-origin"), "{flag} {bad}: {stderr}");
        }
    }
    let server = Server::start(&["--app", "hub", "--cors-origin", "https://app.example.com"]);
    let head = |origin: &str| {
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
        write!(
            stream,
            "OPTIONS /topics/news HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut head = String::new();
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("a line") == 0 || line == "\r\n" {
                break head;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
    };
    let allowed = head("https://app.example.com");
    assert!(allowed.starts_with("http/1.1 204"), "{allowed}");
    assert!(
        allowed.contains("access-control-allow-origin: https://app.example.com\r\n"),
        "{allowed}"
    );
    let other = head("https://other.example");
    assert!(other.starts_with("http/1.1 403"), "{other}");
    assert!(!other.contains("access-control-allow-origin"), "{other}");
}

/// A POST of a form to `target`: the whole answer, head and body.
fn post_form(addr: SocketAddr, target: &str, headers: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    write!(
        stream,
        "POST {target} HTTP/1.1\r\nHost: t\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the answer");
    answer
}

/// The cookie an answer sets, as a browser sends it back.
fn cookie_header(answer: &str) -> String {
    let set = answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap_or_else(|| panic!("no Set-Cookie in {answer}"));
    format!("Cookie: {}\r\n", set.split(';').next().unwrap())
}

#[test]
fn the_demo_signs_in_with_a_secret_of_its_own() {
    let server = Server::start(&["--app", "demo", "--demo-token-ttl", "120"]);
    let answer = post_form(server.addr, "/demo/login", "", "name=alice");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"expires_in\":120"), "{answer}");
    assert!(
        answer.contains("; Path=/topics/user.alice; Max-Age=120; HttpOnly; SameSite=Lax\r\n"),
        "{answer}"
    );
    let alice = cookie_header(&answer);
    // user.* is private: alice's own topic opens with her cookie only.
    assert_eq!(server.status("/topics/user.alice/events", &alice), 200);
    assert_eq!(server.status("/topics/user.alice/events", ""), 401);
    assert_eq!(server.status("/topics/user.bob/events", &alice), 403);
    assert_eq!(server.status("/topics/chat.lobby/events", ""), 200);
    assert!(post_form(server.addr, "/demo/login", "", "name=a.b").starts_with("HTTP/1.1 400"));

    // Another run has another secret: the first run's token means nothing
    // there.
    let other = Server::start(&["--app", "demo"]);
    assert_eq!(other.status("/topics/user.alice/events", &alice), 401);
    let answer = post_form(other.addr, "/demo/login", "", "name=alice");
    assert!(answer.contains("\"expires_in\":600"), "{answer}");

    // With a key of the operator's, the sign-in is off (the tokens come
    // from the operator's issuer), and user.* is private still.
    let secret = TempFile::new("demo", b"the operator's own secret, 32 b!");
    let keyed = Server::start(&["--app", "demo", "--jwt-secret-file", secret.path()]);
    assert!(post_form(keyed.addr, "/demo/login", "", "name=alice").starts_with("HTTP/1.1 404"));
    assert_eq!(keyed.status("/topics/user.alice/events", ""), 401);
    // And the hub app has no sign-in.
    let hub = Server::start(&["--app", "hub"]);
    assert!(post_form(hub.addr, "/demo/login", "", "name=alice").starts_with("HTTP/1.1 404"));
}
