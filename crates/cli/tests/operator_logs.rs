//! The logs an operator reads, end to end: `--trusted-proxy` gives the
//! client a proxy names (and only a trusted proxy), one meaning per key,
//! the start banner as JSON with JSON logs, the hooks' URLs in it
//! without their secrets, and a backend that does not answer said at
//! warn level, not once per request.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use process::{get_status, output, serve_hub};
use serde_json::Value;
use temp_dir::TempDir;

/// How long the log may take to show a line: only catches a hang.
const PATIENCE: Duration = Duration::from_secs(15);

/// Every line of a JSON log so far, each parsed (a line that is not one
/// object fails the test).
fn json_lines(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).expect("the log");
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")))
        .collect()
}

/// Waits until the JSON log holds `n` lines that `keep` keeps; returns them.
fn wait_for(log: &Path, n: usize, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let kept: Vec<Value> = json_lines(log).into_iter().filter(|l| keep(l)).collect();
        if kept.len() >= n {
            return kept;
        }
        assert!(start.elapsed() < PATIENCE, "{n} lines did not come: {kept:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The peer each access line names, in order, once there are `n`.
fn peers(log: &Path, n: usize) -> Vec<String> {
    wait_for(log, n, |l| l["kind"] == "access")
        .iter()
        .map(|l| l["peer"].as_str().expect("a peer").to_owned())
        .collect()
}

const FORWARDED: &str = "X-Forwarded-For: 198.51.100.7, 203.0.113.9\r\n";

#[test]
fn a_trusted_proxy_names_the_client_and_no_one_else_does() {
    let dir = TempDir::new("trusted");
    let log = dir.0.join("serve.log");
    let (_process, addr, _) = serve_hub(
        &[
            "--log-format",
            "json",
            "--access-log",
            "--trusted-proxy",
            "127.0.0.0/8",
            "--trusted-proxy",
            "::1",
        ],
        Some(&log),
    );
    assert_eq!(get_status(addr, "/healthz", FORWARDED), 200);
    assert_eq!(
        get_status(addr, "/healthz", "Forwarded: for=\"[2001:db8::17]:4711\"\r\n"),
        200
    );
    // A header the proxy could not have written: the TCP peer stands.
    assert_eq!(
        get_status(addr, "/healthz", "X-Forwarded-For: 203.0.113.9, _hidden\r\n"),
        200
    );
    assert_eq!(get_status(addr, "/healthz", ""), 200);
    // HTTP/2 (h2c) reads the same headers.
    let mut h2 = tether_testkit::h2::H2Client::connect(addr);
    let stream = h2.get("/healthz", &[("x-forwarded-for", "203.0.113.10")]);
    assert_eq!(h2.finish(stream).status(), Some(200));
    let seen = peers(&log, 5);
    assert_eq!(seen[0], "203.0.113.9:0");
    assert_eq!(seen[1], "[2001:db8::17]:4711");
    assert!(seen[2].starts_with("127.0.0.1:"), "{seen:?}");
    assert!(seen[3].starts_with("127.0.0.1:"), "{seen:?}");
    assert_eq!(seen[4], "203.0.113.10:0");

    // One meaning per key: an access line's path is `uri`, and `target`
    // is only ever the part of the server that wrote a log line.
    for line in json_lines(&log) {
        match line["kind"].as_str() {
            Some("access") => {
                assert_eq!(line["uri"], "/healthz", "{line}");
                assert!(line.get("target").is_none(), "{line}");
            }
            Some("log") => {
                assert!(
                    line["target"].as_str().is_some_and(|t| t.starts_with("tether")),
                    "{line}"
                );
                assert!(line.get("uri").is_none(), "{line}");
            }
            other => panic!("a line of kind {other:?} on standard error: {line}"),
        }
    }
}

#[test]
fn without_trusting_the_peer_the_headers_are_ignored() {
    let dir = TempDir::new("untrusted");
    for trusted in [None, Some("10.0.0.0/8")] {
        let log = dir.0.join("serve.log");
        let mut args = vec!["--log-format", "json", "--access-log"];
        if let Some(net) = trusted {
            args.extend(["--trusted-proxy", net]);
        }
        let (mut process, addr, _) = serve_hub(&args, Some(&log));
        assert_eq!(get_status(addr, "/healthz", FORWARDED), 200);
        assert_eq!(
            get_status(addr, "/healthz", "Forwarded: for=203.0.113.9\r\n"),
            200
        );
        for peer in peers(&log, 2) {
            assert!(peer.starts_with("127.0.0.1:"), "{trusted:?}: {peer}");
        }
        process.kill();
    }
}

#[test]
fn trusted_proxies_come_from_the_file_and_are_checked() {
    let dir = TempDir::new("trusted-file");
    let good = dir.write(
        "good.toml",
        b"app = \"hub\"\ntrusted-proxy = [\"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.1\"]\n",
    );
    let out = output(&["check-config", &good], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for bad in ["10.0.0.0/33", "proxy.example", "10.0.0.0/+8", "::/129"] {
        let file = dir.write(
            "bad.toml",
            format!("app = \"hub\"\ntrusted-proxy = [\"{bad}\"]\n").as_bytes(),
        );
        let out = output(&["check-config", &file], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} passed");
        assert!(
            stderr.contains("trusted-proxy") && stderr.contains(bad),
            "{bad}: {stderr}"
        );
    }
}

/// A port on the loopback that nothing listens on (bound, then let go).
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_banner_is_json_with_json_logs_and_names_the_hooks_without_secrets() {
    let dir = TempDir::new("banner");
    let log = dir.0.join("serve.log");
    let connect = format!("http://127.0.0.1:{}/connect?key=s3cret", dead_port());
    let (_process, addr, banner) = serve_hub(
        &[
            "--log-format",
            "json",
            "--hook-connect",
            &connect,
            "--hook-timeout",
            "5",
        ],
        Some(&log),
    );
    let banner: Value = serde_json::from_str(&banner).unwrap_or_else(|e| panic!("{e}: {banner:?}"));
    assert_eq!(banner["kind"], "start");
    assert_eq!(banner["level"], "INFO");
    assert_eq!(banner["url"], format!("http://{addr}/"));
    assert!(
        banner["message"]
            .as_str()
            .unwrap()
            .starts_with("tether listening on http://")
    );
    let shown = connect.replace("s3cret", "REDACTED");
    assert_eq!(banner["hooks"]["connect"], shown.as_str(), "{banner}");
    assert!(!banner.to_string().contains("s3cret"));

    // The backend is down: every request without a credential is 503,
    // and the log says so at warn level, once per interval however many
    // asks failed, naming the hook by its shown URL.
    let start = Instant::now();
    let asks = 5;
    for _ in 0..asks {
        assert_eq!(
            get_status(addr, "/topics/a/events", "Accept: text/event-stream\r\n"),
            503
        );
    }
    let elapsed = start.elapsed();
    let warned = wait_for(&log, 1, |l| l["level"] == "WARN" && l["hook"] == "connect");
    let first = &warned[0];
    assert_eq!(first["hook_url"], shown.as_str(), "{first}");
    assert_eq!(first["reason"], "down", "{first}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{first}"
    );
    // At most one line per 10 s of asking (plus the first).
    let most = 1 + usize::try_from(elapsed.as_secs() / 10).unwrap();
    assert!(
        warned.len() <= most,
        "{} lines in {elapsed:?}: {warned:?}",
        warned.len()
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("s3cret"), "{logged}");
    assert!(
        logged.contains(&format!("connect {shown}")),
        "the start line names the hook: {logged}"
    );
}

#[test]
fn the_text_banner_names_the_hooks_too() {
    let connect = format!("http://127.0.0.1:{}/c?key=s3cret", dead_port());
    let (mut process, _, first) = serve_hub(&["--hook-connect", &connect], None);
    assert!(first.starts_with("tether listening on http://"), "{first}");
    let hooks = process.next_line();
    assert_eq!(
        hooks.trim_end(),
        format!("hooks: connect {}", connect.replace("s3cret", "REDACTED"))
    );
}

/// A token for `subject` signed with `secret`, with `rights` (the
/// `tether` claim).
fn token(secret: &[u8], subject: &str, rights: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": subject, "iat": now - 5, "exp": now + 600, "tether": rights }),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[test]
fn access_lines_name_the_subject_of_the_credential() {
    let dir = TempDir::new("subject");
    let secret = b"an access log e2e test secret 32";
    let secret_file = dir.write("jwt.secret", secret);
    for format in ["json", "text"] {
        let log = dir.0.join(format!("serve-{format}.log"));
        let (mut process, addr, _) = serve_hub(
            &[
                "--publish-token",
                "sekrit",
                "--jwt-secret-file",
                &secret_file,
                "--private",
                "*",
                "--log-format",
                format,
                "--access-log",
            ],
            Some(&log),
        );
        let reader = token(secret, "ali\"ce", serde_json::json!({ "sub": ["a"] }));
        let writer = token(secret, "bob", serde_json::json!({ "pub": ["a"] }));
        let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
        // An event stream opened, a refusal given at once, a publish
        // answered once stored, and requests by nobody in particular.
        let stream = format!("Accept: text/event-stream\r\n{}", bearer(&reader));
        assert_eq!(get_status(addr, "/topics/a/events", &stream), 200);
        assert_eq!(get_status(addr, "/topics/b/events", &stream), 403);
        let (status, _) = process::request(PATIENCE, addr, "POST", "/topics/a", &bearer(&writer), "hi");
        assert_eq!(status, 200);
        let (status, _) = process::request(PATIENCE, addr, "POST", "/topics/a", &bearer("sekrit"), "hi");
        assert_eq!(status, 200);
        assert_eq!(get_status(addr, "/healthz", ""), 200);
        let text = {
            let start = Instant::now();
            loop {
                let text = std::fs::read_to_string(&log).unwrap();
                let access = match format {
                    "json" => text.matches("\"kind\":\"access\"").count(),
                    _ => text.matches(" ACCESS ").count(),
                };
                if access >= 5 {
                    break text;
                }
                assert!(start.elapsed() < PATIENCE, "{text}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        if format == "json" {
            let access: Vec<Value> = json_lines(&log)
                .into_iter()
                .filter(|l| l["kind"] == "access")
                .collect();
            let subjects: Vec<(&str, &Value)> = access
                .iter()
                .map(|l| (l["uri"].as_str().unwrap(), &l["subject"]))
                .collect();
            assert_eq!(
                subjects,
                [
                    ("/topics/a/events", &Value::from("ali\"ce")),
                    ("/topics/b/events", &Value::from("ali\"ce")),
                    ("/topics/a", &Value::from("bob")),
                    ("/topics/a", &Value::Null),
                    ("/healthz", &Value::Null),
                ]
            );
        } else {
            let access: Vec<&str> = text.lines().filter(|l| l.contains(" ACCESS ")).collect();
            assert!(
                access[0].ends_with(r#" event-stream subject="ali\"ce""#),
                "{}",
                access[0]
            );
            assert!(access[1].ends_with(r#" subject="ali\"ce""#), "{}", access[1]);
            assert!(access[2].ends_with(r#" subject="bob""#), "{}", access[2]);
            assert!(!access[3].contains("subject="), "{}", access[3]);
            assert!(!access[4].contains("subject="), "{}", access[4]);
        }
        assert!(!text.contains(&reader) && !text.contains("sekrit"));
        process.kill();
    }
}

/// Waits until the JSON log holds a `close` line for the session that
/// `uri` opened; returns it.
fn close_line(log: &Path, uri: &str) -> Value {
    wait_for(log, 1, |l| l["kind"] == "close" && l["uri"] == uri).remove(0)
}

#[test]
fn a_session_that_ends_has_a_line_saying_how_long_why_and_who() {
    let dir = TempDir::new("session-end");
    let secret = b"a session end e2e test secret 32";
    let secret_file = dir.write("jwt.secret", secret);
    let log = dir.0.join("serve.log");
    let (process, addr, _) = serve_hub(
        &[
            "--jwt-secret-file",
            &secret_file,
            "--private",
            "*",
            "--token-query",
            "--log-format",
            "json",
            "--access-log",
        ],
        Some(&log),
    );
    let reader = token(secret, "carol", serde_json::json!({ "sub": ["a", "b", "c"] }));
    let bearer = format!("Authorization: Bearer {reader}\r\n");

    // A WebSocket the client closes with 1000.
    let mut ws = tether_testkit::WsClient::connect_with(addr, "/topics/a/ws", &bearer);
    ws.close(tether_server::CloseCode(1000), "bye");
    while ws.next_event().is_some() {}
    let line = close_line(&log, "/topics/a/ws");
    assert_eq!(line["opened"], "websocket", "{line}");
    assert_eq!(line["reason"], "peer-closed", "{line}");
    assert_eq!(line["code"], 1000, "{line}");
    assert_eq!(line["subject"], "carol", "{line}");
    assert_eq!(line["transport"], "tcp", "{line}");
    assert_eq!(line["version"], "1.1", "{line}");
    assert!(line["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{line}");
    assert!(line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{line}");
    // At least the client's close frame (2 + 4 mask + 2 code + "bye")
    // came in, and the server's echo of it (2 + 2 + "bye") went out.
    assert!(line["bytes_in"].as_u64().is_some_and(|b| b >= 11), "{line}");
    assert!(line["bytes_out"].as_u64().is_some_and(|b| b >= 7), "{line}");

    // An event stream the client walks away from, with its token in the
    // query (redacted on the close line as on the access line).
    let stream = tether_testkit::SseClient::connect(addr, &format!("/topics/b/events?token={reader}"), "");
    drop(stream);
    let line = close_line(&log, "/topics/b/events?token=REDACTED");
    assert_eq!(line["opened"], "event-stream", "{line}");
    assert_eq!(line["reason"], "dropped", "{line}");
    assert!(line.get("code").is_none(), "{line}");
    assert_eq!(line["subject"], "carol", "{line}");

    // An event stream open when the server shuts down (SIGTERM).
    let _open = tether_testkit::SseClient::connect(addr, "/topics/c/events", &bearer);
    let opened = wait_for(&log, 1, |l| {
        l["kind"] == "access" && l["uri"] == "/topics/c/events"
    });
    assert_eq!(opened[0]["subject"], "carol");
    let pid = process.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let line = close_line(&log, "/topics/c/events");
    assert_eq!(line["reason"], "shutdown", "{line}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains(&reader));
}

/// The demo wraps the hub (its pages beside it): its access lines name
/// the subject as the hub's do.
#[test]
fn the_demo_names_the_subject_too() {
    let dir = TempDir::new("demo-subject");
    let secret = b"a demo subject e2e test secret 32";
    let secret_file = dir.write("jwt.secret", secret);
    let log = dir.0.join("serve.log");
    let args = [
        "--app",
        "demo",
        "--memory",
        "--port",
        "0",
        "--threads",
        "1",
        "--jwt-secret-file",
        &secret_file,
        "--log-format",
        "json",
        "--access-log",
    ];
    let (_process, addr, _) = process::serve(&args, &[], Some(&log));
    let reader = token(secret, "dave", serde_json::json!({ "sub": ["*"] }));
    let headers = format!("Accept: text/event-stream\r\nAuthorization: Bearer {reader}\r\n");
    assert_eq!(get_status(addr, "/topics/chat.1/events", &headers), 200);
    let line = wait_for(&log, 1, |l| {
        l["kind"] == "access" && l["uri"] == "/topics/chat.1/events"
    })
    .remove(0);
    assert_eq!(line["subject"], "dave", "{line}");
}
