//! `tether gentoken` takes the audience and issuer from the flags that
//! start the server (`--jwt-audience`, `--jwt-issuer`), so a token made
//! with the server's own command line is one that server accepts.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

#[path = "serve/process.rs"]
mod process;
#[path = "serve/temp_dir.rs"]
mod temp_dir;

use std::time::Duration;

use process::{output, request, serve};
use temp_dir::TempDir;

const PATIENCE: Duration = Duration::from_secs(15);

/// `tether gentoken ARGS`, which must succeed: the token.
fn gentoken(args: &[&str]) -> String {
    let mut all = vec!["gentoken"];
    all.extend_from_slice(args);
    let out = output(&all, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned()
}

#[test]
fn the_servers_flags_make_a_token_the_server_takes() {
    let dir = TempDir::new("gentoken-flags");
    let secret = dir.write("jwt.secret", b"0123456789abcdef0123456789abcdef\n");
    // The flags of the identities page's server.
    let auth = [
        "--jwt-secret-file",
        secret.as_str(),
        "--jwt-audience",
        "tether",
        "--jwt-issuer",
        "https://issuer.example",
    ];
    let mut args = vec!["--port", "0", "--threads", "1", "--memory", "--private", "user.*"];
    args.extend_from_slice(&auth);
    let (_server, addr, _) = serve(&args, &[], None);

    let mut args = auth.to_vec();
    args.extend_from_slice(&["--sub", "alice", "--allow", "user.{sub}.*"]);
    let token = gentoken(&args);
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let poll = |topic: &str, headers: &str| {
        let target = format!("/topics/{topic}/poll?timeout=0");
        request(PATIENCE, addr, "GET", &target, headers, "").0
    };
    assert_eq!(poll("user.alice.inbox", &bearer), 200);
    assert_eq!(poll("user.bob.inbox", &bearer), 403);
    assert_eq!(poll("user.alice.inbox", ""), 401);

    // Without the server's audience the token has none, and that server
    // refuses it: the flags are what makes the difference.
    let bare = gentoken(&["--jwt-secret-file", &secret, "--sub", "alice"]);
    let bearer = format!("Authorization: Bearer {bare}\r\n");
    assert_eq!(poll("user.alice.inbox", &bearer), 401);

    // A token for another audience than the server's is refused at once.
    let out = output(
        &[
            "gentoken",
            "--jwt-secret-file",
            &secret,
            "--jwt-audience",
            "tether",
            "--audience",
            "else",
            "--sub",
            "alice",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the server would refuse this token: audience not accepted"),
        "{stderr}"
    );
}
