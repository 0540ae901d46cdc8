//! What the demo page promises, kept by the server: a name someone is
//! online under is refused to any other browser (its own windows sign in
//! under it, with the pass in its cookie, and its token renews it); a
//! browser is one guest however many windows it opens (the pass in its
//! cookie), and stays that guest across a restart of a server that keeps
//! the demo's secret (`DemoLogin::kept_in`).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use tether_testkit as common;

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::{HttpConn, Response, SseClient, TestServer, config};
use serde_json::{Value, json};
use tether_apps::{Demo, DemoLogin};

const SECRET: &[u8] = b"the demo test's secret, 32 bytes";

fn demo_with(login: DemoLogin) -> TestServer {
    TestServer::start(config(), Demo::signed_in(login))
}

fn post(server: &TestServer, target: &str, headers: &str, body: &str) -> Response {
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "POST {target} HTTP/1.1\r\nHost: test\r\n{headers}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    conn.response()
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&response.body)))
}

fn bearer(answer: &Value) -> String {
    format!("Authorization: Bearer {}\r\n", answer["token"].as_str().unwrap())
}

/// The `Cookie` header that sends back the cookie `name` the response set.
fn cookie_of(response: &Response, name: &str) -> String {
    let set = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")).map(|rest| (v, rest)))
        .unwrap_or_else(|| panic!("no cookie {name} in {:?}", response.headers));
    assert!(set.0.ends_with("; HttpOnly; SameSite=Strict"), "{}", set.0);
    format!("Cookie: {name}={}\r\n", set.1.split(';').next().unwrap())
}

fn text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// The members of `topic`, once they are `want`.
fn members_become(server: &TestServer, topic: &str, headers: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = HttpConn::connect(server.addr);
        conn.request(
            "GET",
            &format!("/topics/{topic}/presence"),
            &format!("{headers}Connection: close\r\n"),
        );
        let got = json_of(&conn.response());
        if got["members"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "{topic}: {got} never became {want}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `POST /demo/guest` with `headers`: the answer, and the pass its
/// cookie holds.
fn guest(server: &TestServer, headers: &str) -> (Value, String) {
    let response = post(server, "/demo/guest", headers, "");
    assert_eq!(response.status, 200, "{}", text(&response));
    let cookie = response
        .header("set-cookie")
        .expect("a guest's cookie")
        .to_owned();
    assert!(
        cookie.contains("; Path=/demo/guest; Max-Age=2592000; HttpOnly; SameSite=Strict"),
        "{cookie}"
    );
    let pass = cookie
        .strip_prefix("tether_demo_guest=")
        .and_then(|rest| rest.split(';').next())
        .expect("the pass")
        .to_owned();
    (json_of(&response), pass)
}

#[test]
fn a_name_someone_is_online_under_is_refused_to_others() {
    let server = demo_with(DemoLogin::with_secret(SECRET).unwrap());
    let first = post(&server, "/demo/login", "", "name=alice");
    assert_eq!(first.status, 200, "{}", text(&first));
    let alice = json_of(&first);
    // Nobody online under the name yet: it could be taken again.
    assert_eq!(post(&server, "/demo/login", "", "name=alice").status, 200);

    // Alice's page reads her inbox: she is online.
    let inbox = SseClient::connect(server.addr, "/topics/inbox.alice/events", &bearer(&alice));
    assert_eq!(inbox.response.status, 200);
    members_become(&server, "inbox.alice", &bearer(&alice), json!(["alice"]));
    let taken = post(&server, "/demo/login", "", "name=alice");
    assert_eq!(taken.status, 409, "{}", text(&taken));
    assert_eq!(
        text(&taken),
        "alice is signed in already, in another window or by someone else: choose another name\n"
    );
    assert!(taken.header("set-cookie").is_none());
    // Another name is free; a bad form is still refused at once.
    assert_eq!(post(&server, "/demo/login", "", "name=bob").status, 200);
    assert_eq!(post(&server, "/demo/login", "", "name=a b").status, 400);
    // Her own page renews her token with the one it holds.
    let renewed = post(&server, "/demo/login", &bearer(&alice), "name=alice");
    assert_eq!(renewed.status, 200, "{}", text(&renewed));
    assert_eq!(json_of(&renewed)["sub"], "alice");
    // Bob's token does not make him alice.
    let bob_answer = post(&server, "/demo/login", "", "name=bob");
    let bob = json_of(&bob_answer);
    assert_eq!(
        post(&server, "/demo/login", &bearer(&bob), "name=alice").status,
        409
    );
    // Another window of alice's browser, which has no token yet: the
    // pass in the browser's cookie (Path=/demo/login, as long as the token).
    let pass = cookie_of(&first, "tether_demo_name");
    let second_window = post(&server, "/demo/login", &pass, "name=alice");
    assert_eq!(second_window.status, 200, "{}", text(&second_window));
    // Bob's browser's pass is bob's, not alice's.
    let bobs_pass = cookie_of(&bob_answer, "tether_demo_name");
    assert_eq!(post(&server, "/demo/login", &bobs_pass, "name=alice").status, 409);

    // Once she has gone, the name is free again.
    drop(inbox);
    members_become(&server, "inbox.alice", &bearer(&alice), json!([]));
    assert_eq!(post(&server, "/demo/login", "", "name=alice").status, 200);
}

#[test]
fn a_browser_is_one_guest_in_every_window() {
    let server = demo_with(DemoLogin::with_secret(SECRET).unwrap());
    let (first, pass) = guest(&server, "");
    // A second window: no token of its own, the browser's cookie.
    let cookie = format!("Cookie: tether_demo_guest={pass}\r\n");
    let (second, _) = guest(&server, &cookie);
    assert_eq!(second["sub"], first["sub"]);
    // Another browser (no cookie) is another guest.
    let (other, _) = guest(&server, "");
    assert_ne!(other["sub"], first["sub"]);
    // A pass is no token: the hub refuses it, and a forged one names no one.
    let as_token = format!("Authorization: Bearer {pass}\r\n");
    let mut conn = HttpConn::connect(server.addr);
    conn.request(
        "GET",
        "/topics/room.lobby/poll?timeout=0",
        &format!("{as_token}Connection: close\r\n"),
    );
    assert_eq!(conn.response().status, 401);
    let forged = format!("Cookie: tether_demo_guest={}x\r\n", pass);
    assert_ne!(guest(&server, &forged).0["sub"], first["sub"]);
    // A pass of another server's secret names no one here.
    let elsewhere = demo_with(DemoLogin::generate().unwrap());
    assert_eq!(guest(&elsewhere, "").0["sub"], "guest-1");
    assert_eq!(guest(&elsewhere, &cookie).0["sub"], "guest-2");
}

/// A directory of this test's own, removed at the end.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_guest_keeps_its_name_across_a_restart_when_the_secret_is_kept() {
    let dir = Dir(std::env::temp_dir().join(format!("tether-demo-kept-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let login = DemoLogin::kept_in(&dir.0).unwrap();
    let kept = dir.0.join("demo.secret");
    assert_eq!(
        login.secret_origin(),
        format!("the secret kept in {}", kept.display())
    );
    let before = demo_with(login);
    let (first, pass) = guest(&before, "");
    // A new secret's guests are numbered from the first.
    assert_eq!(first["sub"], "guest-1");
    let alice = json_of(&post(&before, "/demo/login", "", "name=alice"));
    before.shutdown();
    let secret = std::fs::read(dir.0.join("demo.secret")).unwrap();
    assert_eq!(secret.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join("demo.secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The same directory after a restart: the same secret.
    let after = demo_with(DemoLogin::kept_in(&dir.0).unwrap());
    assert_eq!(std::fs::read(dir.0.join("demo.secret")).unwrap(), secret);
    let cookie = format!("Cookie: tether_demo_guest={pass}\r\n");
    let (again, _) = guest(&after, &cookie);
    assert_eq!(again["sub"], first["sub"]);
    // A new browser is a new guest, not one from before the restart.
    let (new, _) = guest(&after, "");
    assert_ne!(new["sub"], first["sub"]);
    assert!(new["sub"].as_str().unwrap().starts_with("guest-"));
    // The signed-in token still verifies too.
    let mut conn = HttpConn::connect(after.addr);
    conn.request(
        "GET",
        "/topics/inbox.alice/poll?timeout=0",
        &format!("{}Connection: close\r\n", bearer(&alice)),
    );
    assert_eq!(conn.response().status, 200);
}
