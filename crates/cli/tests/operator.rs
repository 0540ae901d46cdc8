//! Operator tooling and bad configuration: `tether genconfig` writes a
//! file that `check-config` accepts and `serve` runs; `tether gentoken`
//! signs tokens the server takes; files are read only if regular and
//! within a bound; `check-config` reads the files a start reads; limits
//! out of range and bad TETHER_<NAME> values are refused, naming the range
//! and the variable; a secret file's line ending is warned about.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use process::{Process, output, serve};
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(15);

/// Runs `tether ARGS`, which must succeed: its standard output.
fn succeeds(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = output(args, envs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs `tether ARGS`, which must fail: its standard error.
fn fails(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = output(args, envs);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    stderr
}

/// A running `tether serve`, killed when dropped.
struct Server {
    _process: Process,
    addr: SocketAddr,
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, &str)], log: Option<&Path>) -> Server {
        let (process, addr, _) = serve(args, envs, log);
        Server {
            _process: process,
            addr,
        }
    }

    /// The answer (head and body) to a request with `headers` and `body`.
    fn request(&self, method: &str, target: &str, headers: &str, body: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        // The status line and head are enough: an event stream does not end.
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            answer.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        if !answer.contains("text/event-stream") {
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            answer.push_str(&rest);
        }
        answer
    }

    fn status(&self, method: &str, target: &str, headers: &str, body: &str) -> u16 {
        let answer = self.request(method, target, headers, body);
        answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {answer:?}"))
    }
}

/// The value of `key = "..."` in a generated file.
fn value_of(text: &str, key: &str) -> String {
    let table: toml::Table = toml::from_str(text).expect("TOML");
    table[key].as_str().expect("a string").to_owned()
}

#[test]
fn genconfig_writes_a_file_that_check_config_accepts_and_serve_runs() {
    let dir = TempDir::new("genconfig");
    let file = dir.file("tether.toml");
    let said = succeeds(&["genconfig", &file], &[]);
    assert!(said.contains("tether check-config"), "{said}");
    let text = std::fs::read_to_string(&file).expect("the file");
    let secret = std::fs::read(dir.file("tether.jwt-secret")).expect("the secret file");
    // Fresh random secrets, a secret file without a line ending, and
    // neither readable by others.
    assert_eq!(secret.len(), 64);
    assert!(!secret.ends_with(b"\n"));
    let publish_token = value_of(&text, "publish-token");
    assert_eq!(publish_token.len(), 64);
    assert_ne!(publish_token, value_of(&text, "metrics-token"));
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [&file, &dir.file("tether.jwt-secret")] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{path}: {mode:o}");
        }
    }
    let other = TempDir::new("genconfig-other");
    succeeds(&["genconfig", &other.file("tether.toml")], &[]);
    let again = std::fs::read_to_string(other.file("tether.toml")).unwrap();
    assert_ne!(value_of(&again, "publish-token"), publish_token);
    // An existing file is kept unless --force.
    let refused = fails(&["genconfig", &file], &[]);
    assert!(refused.contains("it exists (--force replaces it)"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let checked = succeeds(&["check-config", &file], &[]);
    assert_eq!(checked.trim(), format!("{file}: ok"));
    let server = Server::start(&["--config", &file, "--port", "0", "--threads", "1"], &[], None);
    let health = server.request("GET", "/healthz", "", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Its publish token publishes.
    let auth = format!("Authorization: Bearer {publish_token}\r\n");
    assert_eq!(server.status("POST", "/topics/news", &auth, "hi"), 200);
}

#[test]
fn gentoken_signs_tokens_the_server_takes() {
    let dir = TempDir::new("gentoken");
    let file = dir.file("tether.toml");
    succeeds(&["genconfig", &file], &[]);
    let data = dir.file("data");
    let server = Server::start(
        &[
            "--config",
            &file,
            "--port",
            "0",
            "--threads",
            "1",
            "--data-dir",
            &data,
        ],
        &[],
        None,
    );
    let token = succeeds(
        &[
            "gentoken",
            "--config",
            &file,
            "--sub",
            "alice",
            "--allow",
            "user.alice.*",
            "--allow-publish",
            "user.alice.*",
            "--ttl",
            "1h",
        ],
        &[],
    );
    let token = token.trim();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    // A private topic: refused without it, open with it; publishing too.
    let inbox = "/topics/user.alice.inbox/events";
    assert_eq!(server.status("GET", inbox, "", ""), 401);
    assert_eq!(server.status("GET", inbox, &bearer, ""), 200);
    assert_eq!(
        server.status("GET", "/topics/user.bob.inbox/events", &bearer, ""),
        403
    );
    assert_eq!(
        server.status("POST", "/topics/user.alice.inbox", &bearer, "hi"),
        200
    );
    assert_eq!(
        server.status("POST", "/topics/user.bob.inbox", &bearer, "hi"),
        403
    );

    // The secret file from the environment, as serve takes it; the
    // audience then from the command line.
    let secret = dir.file("tether.jwt-secret");
    let token = succeeds(
        &[
            "gentoken",
            "--sub",
            "bob",
            "--allow",
            "user.{sub}.*",
            "--audience",
            "tether",
        ],
        &[("TETHER_JWT_SECRET_FILE", &secret)],
    );
    let bearer = format!("Authorization: Bearer {}\r\n", token.trim());
    assert_eq!(
        server.status("GET", "/topics/user.bob.inbox/events", &bearer, ""),
        200
    );

    // What the server would refuse is refused here.
    let wrong = fails(
        &["gentoken", "--config", &file, "--sub", "a", "--audience", "else"],
        &[],
    );
    assert!(
        wrong.contains("the server would refuse this token: audience not accepted"),
        "{wrong}"
    );
    let none = fails(&["gentoken", "--sub", "a"], &[]);
    assert!(none.contains("no key to sign with"), "{none}");
    let ttl = fails(
        &["gentoken", "--config", &file, "--sub", "a", "--ttl", "9999d"],
        &[],
    );
    assert!(ttl.contains("1s to 366d"), "{ttl}");
}

#[test]
fn devices_and_huge_files_are_refused_unread() {
    let dir = TempDir::new("files");
    let huge = dir.write("huge.toml", &vec![b'#'; (1 << 20) + 1]);
    for args in [
        vec!["check-config", "/dev/zero"],
        vec!["serve", "--config", "/dev/zero"],
        vec!["check-config", &huge],
        vec!["serve", "--config", &huge],
    ] {
        // Refused on what the file is and its size, before a byte is read:
        // read, /dev/zero would never end (fails gives up on a process
        // after its patience).
        let err = fails(&args, &[]);
        if args.contains(&"/dev/zero") {
            assert!(
                err.contains("/dev/zero: a character device, not a regular file"),
                "{args:?}: {err}"
            );
        } else {
            assert!(
                err.contains(&format!("{huge}: larger than 1048576 bytes")),
                "{args:?}: {err}"
            );
        }
    }
    let err = fails(
        &[
            "serve",
            "--app",
            "hub",
            "--memory",
            "--port",
            "0",
            "--jwt-secret-file",
            "/dev/zero",
        ],
        &[],
    );
    assert!(
        err.contains("--jwt-secret-file /dev/zero: a character device, not a regular file"),
        "{err}"
    );
    let err = fails(
        &[
            "serve",
            "--memory",
            "--port",
            "0",
            "--tls-cert",
            "/dev/zero",
            "--tls-key",
            "/dev/zero",
        ],
        &[],
    );
    assert!(
        err.contains("certificate /dev/zero: a character device, not a regular file"),
        "{err}"
    );
}

/// A certificate for localhost and its key, in PEM.
fn certificate() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

#[test]
fn check_config_reads_the_files_a_start_reads() {
    let dir = TempDir::new("check-files");
    let (cert, key) = certificate();
    let (_, other_key) = certificate();
    let cert = dir.write("cert.pem", cert.as_bytes());
    let key = dir.write("key.pem", key.as_bytes());
    let other_key = dir.write("other-key.pem", other_key.as_bytes());
    let secret = dir.write("secret", &[b'k'; 32]);
    let config = |name: &str, body: String| dir.write(name, body.as_bytes());

    let good = config(
        "good.toml",
        format!(
            "app = \"hub\"\ntls-cert = \"{cert}\"\ntls-key = \"{key}\"\njwt-secret-file = \"{secret}\"\n"
        ),
    );
    assert_eq!(
        succeeds(&["check-config", &good], &[]).trim(),
        format!("{good}: ok")
    );

    let mismatched = config(
        "mismatch.toml",
        format!("tls-cert = \"{cert}\"\ntls-key = \"{other_key}\"\n"),
    );
    let err = fails(&["check-config", &mismatched], &[]);
    assert!(
        err.starts_with(&format!(
            "{mismatched}: certificate {cert} and private key {other_key}: "
        )),
        "{err}"
    );
    let missing = config(
        "missing.toml",
        format!("tls-cert = \"{cert}\"\ntls-key = \"{}\"\n", dir.file("nope.pem")),
    );
    let err = fails(&["check-config", &missing], &[]);
    assert!(
        err.contains("private key") && err.contains("nope.pem: cannot read it"),
        "{err}"
    );
    let garbage = config(
        "garbage.toml",
        format!("tls-cert = \"{secret}\"\ntls-key = \"{key}\"\n"),
    );
    fails(&["check-config", &garbage], &[]);

    let short = dir.write("short", b"too short");
    let short_secret = config(
        "short.toml",
        format!("app = \"hub\"\njwt-secret-file = \"{short}\"\n"),
    );
    let err = fails(&["check-config", &short_secret], &[]);
    assert!(
        err.contains(&format!("--jwt-secret-file {short}: HMAC secret of 9 bytes")),
        "{err}"
    );
    let public = config(
        "public.toml",
        format!("app = \"hub\"\njwt-public-key = \"{key}\"\n"),
    );
    let err = fails(&["check-config", &public], &[]);
    assert!(
        err.contains(&format!(
            "--jwt-public-key {key}: a private key where a public key was expected"
        )),
        "{err}"
    );
}

#[test]
fn limits_out_of_range_are_refused_with_the_range() {
    for (option, range) in [
        ("--max-frame-size", "from 1 to 1073741824"),
        ("--max-message-size", "from 1 to 1073741824"),
        ("--max-request-body", "from 1 to 1073741824"),
        ("--max-request-head", "from 1024 to 1048576"),
        ("--max-output", "from 1024 to 68719476736"),
        ("--backlog-bytes", "from 0 to 68719476736"),
        ("--max-event-size", "from 1 to 1073741824"),
        ("--backlog-events", "from 0 to 10000000"),
        ("--threads", "from 1 to 1024"),
        ("--max-connections", "from 1 to 10000000"),
        ("--max-fragments", "from 1 to 10000000"),
    ] {
        let err = fails(&["serve", option, "9223372036854775807"], &[]);
        assert!(err.contains(option) && err.contains(range), "{option}: {err}");
    }
    let err = fails(&["serve", "--max-request-body", "0"], &[]);
    assert!(err.contains("from 1 to 1073741824"), "{err}");
    // In a file, with its line.
    let dir = TempDir::new("limits");
    let file = dir.write("limits.toml", b"port = 0\nmax-frame-size = 9223372036854775807\n");
    let err = fails(&["check-config", &file], &[]);
    assert!(
        err.contains("line 2: key `max-frame-size`") && err.contains("from 1 to 1073741824"),
        "{err}"
    );
}

#[test]
fn a_bad_variable_is_named_not_its_flag() {
    let err = fails(&["serve"], &[("TETHER_MAX_FRAME_SIZE", "9223372036854775807")]);
    assert!(
        err.contains("TETHER_MAX_FRAME_SIZE (--max-frame-size)") && err.contains("from 1 to 1073741824"),
        "{err}"
    );
    assert!(!err.contains("'--max-frame-size"), "{err}");
    let err = fails(&["serve"], &[("TETHER_PORT", "http")]);
    assert!(
        err.contains("invalid value 'http' for TETHER_PORT (--port)"),
        "{err}"
    );
    // Given on the command line, the option is named.
    let err = fails(&["serve", "--port", "http"], &[("TETHER_PORT", "http")]);
    assert!(err.contains("'--port <PORT>'"), "{err}");
}

#[test]
fn a_secret_file_ending_in_a_newline_is_warned_about_and_still_works() {
    let dir = TempDir::new("newline");
    let secret = dir.write("secret", b"0123456789abcdef0123456789abcdef\n");
    let log = dir.0.join("log");
    let server = Server::start(
        &[
            "--app",
            "hub",
            "--memory",
            "--port",
            "0",
            "--threads",
            "1",
            "--jwt-secret-file",
            &secret,
            "--private",
            "user.*",
        ],
        &[],
        Some(&log),
    );
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("WARN") || start.elapsed() > PATIENCE {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        text.contains(&format!(
            "--jwt-secret-file {secret} ends with a line ending, which is not part of the secret: the secret is the 32 bytes before it"
        )),
        "{text}"
    );
    // Signed with the 32 bytes, the token verifies.
    let token = succeeds(
        &[
            "gentoken",
            "--jwt-secret-file",
            &secret,
            "--sub",
            "alice",
            "--allow",
            "user.alice",
        ],
        &[],
    );
    let bearer = format!("Authorization: Bearer {}\r\n", token.trim());
    assert_eq!(
        server.status("GET", "/topics/user.alice/events", &bearer, ""),
        200
    );
    let file = dir.write(
        "t.toml",
        format!("app = \"hub\"\njwt-secret-file = \"{secret}\"\n").as_bytes(),
    );
    let out = output(&["check-config", &file], &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --jwt-secret-file") && stderr.contains("line ending"),
        "{stderr}"
    );
}

#[test]
fn a_refused_token_is_logged_at_debug_with_its_reason() {
    let dir = TempDir::new("debug-log");
    let secret = dir.write("secret", &[b'k'; 32]);
    let other = dir.write("other", &[b'o'; 32]);
    let log = dir.0.join("log");
    let server = Server::start(
        &[
            "--app",
            "hub",
            "--memory",
            "--port",
            "0",
            "--threads",
            "1",
            "--jwt-secret-file",
            &secret,
            "--log-level",
            "debug",
        ],
        &[],
        Some(&log),
    );
    let forged = succeeds(
        &["gentoken", "--jwt-secret-file", &other, "--sub", "mallory"],
        &[],
    );
    let bearer = format!("Authorization: Bearer {}\r\n", forged.trim());
    let answer = server.request("GET", "/topics/news/events", &bearer, "");
    assert!(
        answer.contains("error=\"invalid_token\", error_description=\"bad signature\""),
        "{answer}"
    );
    let start = Instant::now();
    let needle = "hub: token refused (Header): bad signature";
    while !std::fs::read_to_string(&log).unwrap_or_default().contains(needle) {
        assert!(start.elapsed() < PATIENCE, "no {needle:?} in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}
