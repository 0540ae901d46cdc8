//! `tether serve --log-format json --access-log`: every line on standard
//! error is one JSON object with the documented fields, an access line
//! for each answered request over HTTP/1.1 and HTTP/2 (an answer given at
//! once and one the hub defers until its publish is stored), credentials
//! in the query redacted, and a hostile target escaped so that it stays
//! inside its line and its string.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use process::serve_hub;
use serde_json::Value;
use temp_dir::TempDir;
use tether_testkit::h2::H2Client;

/// How long the log may take to show a line: only catches a hang.
const PATIENCE: Duration = Duration::from_secs(15);

/// Every line of the log so far, each parsed as JSON (a line that is not
/// one object fails the test).
fn lines(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).expect("the log");
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(value.is_object(), "not an object: {line:?}");
            value
        })
        .collect()
}

/// Waits until the log holds `n` access lines; returns them.
fn access_lines(log: &Path, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let access: Vec<Value> = lines(log).into_iter().filter(|l| l["kind"] == "access").collect();
        if access.len() >= n {
            return access;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{n} access lines did not come: {access:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `head` as it is on a connection of its own, and reads to the
/// end: the status line.
fn raw(addr: SocketAddr, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(head).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("a response");
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or_default().to_owned()
}

fn is_rfc3339_utc(time: &str) -> bool {
    let b = time.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
}

/// An access line's field as text.
fn text<'v>(line: &'v Value, field: &str) -> &'v str {
    line[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {line}"))
}

#[test]
fn json_log_and_access_lines_over_http1_and_http2() {
    let dir = TempDir::new("logging");
    let log = dir.0.join("serve.log");
    let (_process, addr, _) = serve_hub(
        &[
            "--publish-token",
            "sekrit",
            "--log-level",
            "debug",
            "--log-format",
            "json",
            "--access-log",
        ],
        Some(&log),
    );

    // HTTP/1.1: an answer at once, with credentials in the query.
    let status = raw(
        addr,
        b"GET /healthz?token=abc.def&x=1&access_token=s&ticket=t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // HTTP/1.1: a publish, answered once the hub has it.
    let status = raw(
        addr,
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sekrit\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    );
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // HTTP/2 (h2c): a 404 at once and a publish.
    let mut h2 = H2Client::connect(addr);
    let missing = h2.get("/nope?ticket=zz", &[]);
    assert_eq!(h2.finish(missing).status(), Some(404));
    let publish = h2.request_with_body("POST", "/topics/a", &[("authorization", "Bearer sekrit")], b"hi");
    assert_eq!(h2.finish(publish).status(), Some(200));

    let access = access_lines(&log, 4);
    let [healthz, post1, missing, post2] = &access[..4] else {
        unreachable!()
    };
    for line in &access {
        assert!(is_rfc3339_utc(text(line, "time")), "{line}");
        assert_eq!(line["level"], "INFO");
        assert!(line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{line}");
        assert_eq!(text(line, "transport"), "tcp");
        assert!(text(line, "peer").starts_with("127.0.0.1:"), "{line}");
        assert!(!text(line, "conn").is_empty(), "{line}");
    }
    assert_eq!(text(healthz, "method"), "GET");
    assert_eq!(
        text(healthz, "uri"),
        "/healthz?token=REDACTED&x=1&access_token=REDACTED&ticket=REDACTED"
    );
    assert_eq!(healthz["status"], 200);
    assert_eq!(healthz["bytes"], 3, "ok\\n");
    assert_eq!(text(healthz, "version"), "1.1");

    assert_eq!(text(post1, "method"), "POST");
    assert_eq!(text(post1, "uri"), "/topics/a");
    assert_eq!(post1["status"], 200);
    assert_eq!(text(post1, "version"), "1.1");

    assert_eq!(text(missing, "uri"), "/nope?ticket=REDACTED");
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["bytes"], "404 Not Found\n".len());
    assert_eq!(text(missing, "version"), "2");

    assert_eq!(text(post2, "method"), "POST");
    assert_eq!(post2["status"], 200);
    assert_eq!(text(post2, "version"), "2");
    // The publish's answer is the new event's id, as JSON: its length.
    assert!(post2["bytes"].as_u64().is_some_and(|b| b > 2), "{post2}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains("sekrit"));
    for line in &access {
        assert!(line.get("opened").is_none(), "{line}");
    }
    // An event stream, written as it opens.
    let events = h2.get("/topics/a/events", &[]);
    h2.until(|c| c.streams.get(&events).is_some_and(|s| !s.heads.is_empty()));
    let stream = &access_lines(&log, 5)[4];
    assert_eq!(text(stream, "uri"), "/topics/a/events");
    assert_eq!(stream["status"], 200);
    assert_eq!(stream["bytes"], 0);
    assert_eq!(text(stream, "opened"), "event-stream");
    assert_eq!(text(stream, "version"), "2");

    // The ordinary log: the same format, and the connection being served
    // where there is one (the debug line of a malformed head, written as
    // that connection is read, before its 400 goes out).
    let status = raw(addr, b"GET /a\x01b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    let all = lines(&log);
    let started = all
        .iter()
        .find(|l| l["kind"] == "log" && text(l, "message").contains("event loop"))
        .expect("the start's line");
    assert!(is_rfc3339_utc(text(started, "time")));
    assert_eq!(started["level"], "INFO");
    assert!(text(started, "target").starts_with("tether"), "{started}");
    let bad = all
        .iter()
        .find(|l| l["kind"] == "log" && text(l, "message").starts_with("bad request"))
        .expect("the malformed head's line");
    assert_eq!(bad["level"], "DEBUG");
    let conn = text(bad, "conn");
    assert!(
        conn.split_once('#').is_some_and(
            |(slot, generation)| slot.parse::<u32>().is_ok() && generation.parse::<u32>().is_ok()
        ),
        "{bad}"
    );
}

#[test]
fn a_hostile_target_stays_one_json_line() {
    let dir = TempDir::new("logging-hostile");
    let log = dir.0.join("serve.log");
    let (_process, addr, _) = serve_hub(&["--log-format", "json", "--access-log"], Some(&log));
    // What HTTP/1.1 lets through in a target: quotes, a backslash, braces
    // and UTF-8 that would close the string or the object if written raw.
    let h1_path = "/x\",\"status\":1,\"a\":\"\\\"}{\u{e9}\u{2028}";
    let mut head = b"GET ".to_vec();
    head.extend_from_slice(h1_path.as_bytes());
    head.extend_from_slice(b"?token=a\"b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let status = raw(addr, &head);
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    // HTTP/2 carries the path as an HPACK string, which may hold control
    // characters (all but NUL, CR and LF): escape sequences for a
    // terminal, and what would end the string and start a field.
    let h2_path = "/y\u{1}\u{1b}[2J\u{7f}\u{85}\t\"}{\"kind\":\"access\"";
    let mut h2 = H2Client::connect(addr);
    let stream = h2.get(h2_path, &[]);
    assert_eq!(h2.finish(stream).status(), Some(404));
    // A newline in a path is malformed (RFC 9113 section 8.2.1): refused
    // before it is a request, so not in the access log.
    let refused = h2.get("/z\n{\"kind\":\"access\"}", &[]);
    assert_ne!(h2.finish(refused).status(), Some(404));

    let access = access_lines(&log, 2);
    let (h1, h2_line) = (&access[0], &access[1]);
    assert_eq!(text(h1, "uri"), format!("{h1_path}?token=REDACTED"));
    assert_eq!(h1["status"], 404);
    assert_eq!(text(h2_line, "uri"), h2_path);
    assert_eq!(h2_line["status"], 404);
    let raw_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !raw_log.contains('\u{1b}') && !raw_log.contains('\u{1}'),
        "raw control bytes in {raw_log:?}"
    );
    // Whatever was answered, every line is still one JSON object
    // (`lines` parses each) and no line was injected.
    let all = lines(&log);
    assert!(all.iter().all(|l| l["kind"] == "access" || l["kind"] == "log"));
    assert_eq!(all.iter().filter(|l| l["kind"] == "access").count(), 2);
}

/// An event stream of `/topics/news/events` with a bearer token: the
/// connection, and the status of its answer (the head read byte by byte,
/// so that nothing of the body is taken).
fn open_stream(addr: SocketAddr, token: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "GET /topics/news/events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8];
    while !got.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("the head in time");
        assert_eq!(n, 1, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    (stream, status)
}

/// Waits until a log line satisfies `found`; returns it.
fn log_line(log: &Path, found: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(line) = lines(log).into_iter().find(|l| l["kind"] == "log" && found(l)) {
            return line;
        }
        assert!(start.elapsed() < PATIENCE, "no such line in {:?}", lines(log));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines about one user name them: `subject` is a field of its own
/// on the line of a connection refused for the subject's limit and on the
/// line of a stream ended by a revocation (with its connection: the
/// revocation is acted on outside any connection's callback).
#[test]
fn lines_about_a_subject_name_it() {
    let dir = TempDir::new("logging-subject");
    let secret_file = dir.0.join("jwt.secret");
    let secret = b"a logging e2e test secret, 32 b!";
    std::fs::write(&secret_file, secret).unwrap();
    let log = dir.0.join("serve.log");
    let (_process, addr, _) = serve_hub(
        &[
            "--publish-token",
            "sekrit",
            "--jwt-secret-file",
            secret_file.to_str().unwrap(),
            "--max-connections-per-subject",
            "1",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ],
        Some(&log),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A subject with a quote and a newline: a field, not a broken line.
    let subject = "ali\"ce\n";
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": subject, "iat": now - 5, "exp": now + 600,
                             "tether": { "sub": ["*"] } }),
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();

    let (_first, status) = open_stream(addr, &token);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let (_second, status) = open_stream(addr, &token);
    assert!(status.starts_with("HTTP/1.1 429"), "{status}");
    let refused = log_line(&log, |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("connections open"))
    });
    assert_eq!(refused["subject"], subject, "{refused}");
    assert_eq!(refused["level"], "DEBUG");

    let body = serde_json::json!({ "subject": subject, "before": now + 1 }).to_string();
    let head = format!(
        "POST /api/revoke HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sekrit\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let status = raw(addr, head.as_bytes());
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let ended = log_line(&log, |l| {
        l["message"].as_str().is_some_and(|m| m.contains("revoked"))
    });
    assert_eq!(ended["subject"], subject, "{ended}");
    assert!(ended["conn"].as_str().is_some_and(|c| c.contains('#')), "{ended}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains(&token));
}
