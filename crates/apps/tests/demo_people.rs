//! The demo's people: a guest gets a name of the server's (`guest-N`)
//! and keeps it with its token; what is said in a room carries the name
//! of the token that said it, whatever the body claims; a private
//! message reaches the recipient's inbox and the sender's, or is refused
//! with "nobody called X is here" when no one reads that inbox (the
//! hub's presence); and presence counts people: one member however many
//! connections a token opens.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use tether_testkit as common;

use std::thread;
use std::time::{Duration, Instant};

use common::{HttpConn, Response, SseClient, TestServer, config};
use serde_json::{Value, json};
use tether_apps::{Demo, DemoLogin, MAX_DEMO_TEXT_LEN};

const SECRET: &[u8] = b"the demo test's secret, 32 bytes";

fn demo() -> TestServer {
    TestServer::start(config(), Demo::signed_in(DemoLogin::with_secret(SECRET).unwrap()))
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

/// `Authorization` with the token of a sign-in or guest answer.
fn bearer(answer: &Value) -> String {
    format!("Authorization: Bearer {}\r\n", answer["token"].as_str().unwrap())
}

fn sign_in(server: &TestServer, name: &str) -> Value {
    let response = post(server, "/demo/login", "", &format!("name={name}"));
    assert_eq!(response.status, 200);
    json_of(&response)
}

fn guest(server: &TestServer, headers: &str) -> Value {
    let response = post(server, "/demo/guest", headers, "");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    // The browser's pass to its guest name, never the hub's token cookie.
    assert!(
        response
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("tether_demo_guest=") && c.contains("; Path=/demo/guest;"))
    );
    json_of(&response)
}

/// The members of `topic`, once they are `want` (the joins travel
/// through the topic's sequencer), asked with `headers`.
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
            assert_eq!(got["count"], want.as_array().unwrap().len());
            return;
        }
        assert!(Instant::now() < deadline, "{topic}: {got} never became {want}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_guest_gets_a_name_of_the_servers_and_keeps_it_with_its_token() {
    let server = demo();
    let first = guest(&server, "");
    let second = guest(&server, "");
    assert_eq!(first["sub"], "guest-1");
    assert_eq!(second["sub"], "guest-2");
    assert_eq!(first["expires_in"], 600);
    // Its own token renews the name; another guest's name cannot be asked for.
    assert_eq!(guest(&server, &bearer(&first))["sub"], "guest-1");
    assert_eq!(guest(&server, "")["sub"], "guest-3");
    // A signed-in user's token is no guest's: a new guest name.
    assert_eq!(
        guest(&server, &bearer(&sign_in(&server, "alice")))["sub"],
        "guest-4"
    );
    // A bad token gets a new name too.
    assert_eq!(
        guest(&server, "Authorization: Bearer nonsense\r\n")["sub"],
        "guest-5"
    );
    // Guests' names are the server's to give.
    for taken in ["guest-1", "guest-99", "Guest-1", "GUEST-x"] {
        let response = post(&server, "/demo/login", "", &format!("name={taken}"));
        assert_eq!(response.status, 400, "{taken}");
    }
    assert_eq!(post(&server, "/demo/login", "", "name=guest").status, 200);
    // Another site may not hand out names.
    let evil = post(&server, "/demo/guest", "Origin: https://evil.example\r\n", "");
    assert_eq!(evil.status, 403);
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/demo/guest", "Connection: close\r\n");
    assert_eq!(conn.response().status, 405);
}

#[test]
fn what_is_said_in_a_room_carries_the_name_of_the_token_that_said_it() {
    let server = demo();
    let alice = sign_in(&server, "alice");
    let visitor = guest(&server, "");
    let mut room = SseClient::connect(server.addr, "/topics/room.lobby/events", "");
    assert_eq!(room.response.status, 200);

    let say = |who: &str, body: &str| post(&server, "/demo/say?room=lobby", who, body).status;
    // The body claims to be bob's: it is alice's text, said by alice.
    let claim = r#"{"from":"bob","text":"I am bob"}"#;
    assert_eq!(say(&bearer(&alice), claim), 204);
    let event: Value = serde_json::from_str(room.next_event().data()).unwrap();
    assert_eq!(event, json!({"from": "alice", "text": claim}));
    assert_eq!(say(&bearer(&visitor), "hi <b>all</b> \u{2713}"), 204);
    let event: Value = serde_json::from_str(room.next_event().data()).unwrap();
    assert_eq!(
        event,
        json!({"from": "guest-1", "text": "hi <b>all</b> \u{2713}"})
    );

    // No token, a bad one, a cookie instead: nobody to name.
    assert_eq!(say("", "x"), 401);
    assert_eq!(say("Authorization: Bearer nonsense\r\n", "x"), 401);
    let cookie = post(&server, "/demo/login", "", "name=carol");
    let pair = cookie.header("set-cookie").unwrap().split(';').next().unwrap();
    assert_eq!(say(&format!("Cookie: {pair}\r\n"), "x"), 401);
    // Bad rooms and bodies.
    let token = bearer(&alice);
    for target in [
        "/demo/say",
        "/demo/say?room=",
        "/demo/say?room=a%20b",
        "/demo/say?room=a*",
    ] {
        assert_eq!(post(&server, target, &token, "x").status, 400, "{target}");
    }
    assert_eq!(say(&token, ""), 400);
    assert_eq!(say(&token, "  "), 400);
    assert_eq!(say(&token, &"x".repeat(MAX_DEMO_TEXT_LEN + 1)), 413);
    assert_eq!(say(&token, &"x".repeat(MAX_DEMO_TEXT_LEN)), 204);
    // The room itself is the server's to write to: not with a token,
    // not over the WebSocket.
    assert_eq!(post(&server, "/topics/room.lobby", &token, "forged").status, 403);
    assert_eq!(post(&server, "/topics/room.lobby", "", "forged").status, 401);
    let event: Value = serde_json::from_str(room.next_event().data()).unwrap();
    assert_eq!(event["text"].as_str().map(str::len), Some(MAX_DEMO_TEXT_LEN));
}

#[test]
fn a_private_message_reaches_both_inboxes_or_says_nobody_is_there() {
    let server = demo();
    let alice = sign_in(&server, "alice");
    let bob = sign_in(&server, "bob");
    let visitor = guest(&server, "");
    let mut alice_inbox = SseClient::connect(server.addr, "/topics/inbox.alice/events", &bearer(&alice));
    let mut bob_inbox = SseClient::connect(server.addr, "/topics/inbox.bob/events", &bearer(&bob));
    assert_eq!(alice_inbox.response.status, 200);
    assert_eq!(bob_inbox.response.status, 200);
    members_become(&server, "inbox.alice", &bearer(&alice), json!(["alice"]));
    // Inboxes are private, and written by the server only.
    let status =
        |target: &str, headers: &str| SseClient::connect(server.addr, target, headers).response.status;
    assert_eq!(status("/topics/inbox.alice/events", &bearer(&bob)), 403);
    assert_eq!(status("/topics/inbox.alice/events", ""), 401);
    assert_eq!(
        post(&server, "/topics/inbox.alice", &bearer(&bob), "forged").status,
        403
    );

    let tell =
        |who: &Value, to: &str, text: &str| post(&server, &format!("/demo/tell?to={to}"), &bearer(who), text);
    let sent = tell(&bob, "alice", "psst");
    assert_eq!(sent.status, 200);
    assert_eq!(
        json_of(&sent),
        json!({"delivered": true, "message": "sent to alice"})
    );
    let want = json!({"from": "bob", "to": "alice", "text": "psst"});
    for inbox in [&mut alice_inbox, &mut bob_inbox] {
        let event: Value = serde_json::from_str(inbox.next_event().data()).unwrap();
        assert_eq!(event, want);
    }

    // Nobody reads carol's inbox: the server says so and sends nothing.
    let nobody = tell(&bob, "carol", "anyone?");
    assert_eq!(nobody.status, 404);
    assert_eq!(
        json_of(&nobody),
        json!({"delivered": false, "message": "nobody called carol is here"})
    );
    // Once she reads it, she gets what comes next, and only that.
    let carol = sign_in(&server, "carol");
    let mut carol_inbox = SseClient::connect(server.addr, "/topics/inbox.carol/events", &bearer(&carol));
    members_become(&server, "inbox.carol", &bearer(&carol), json!(["carol"]));
    assert_eq!(tell(&bob, "carol", "hello carol").status, 200);
    let event: Value = serde_json::from_str(carol_inbox.next_event().data()).unwrap();
    assert_eq!(event["text"], "hello carol");
    let event: Value = serde_json::from_str(bob_inbox.next_event().data()).unwrap();
    assert_eq!(
        event,
        json!({"from": "bob", "to": "carol", "text": "hello carol"})
    );

    // To oneself: once.
    assert_eq!(tell(&alice, "alice", "note to self").status, 200);
    let event: Value = serde_json::from_str(alice_inbox.next_event().data()).unwrap();
    assert_eq!(event["text"], "note to self");

    // Guests, strangers and bad requests.
    assert_eq!(tell(&visitor, "alice", "hi").status, 403);
    assert_eq!(post(&server, "/demo/tell?to=alice", "", "hi").status, 401);
    assert_eq!(tell(&bob, "a.b", "hi").status, 400);
    assert_eq!(post(&server, "/demo/tell", &bearer(&bob), "hi").status, 400);
    assert_eq!(tell(&bob, "alice", "").status, 400);
    // Nothing of these reached alice: her next event is the next message.
    assert_eq!(tell(&bob, "alice", "last").status, 200);
    let event: Value = serde_json::from_str(alice_inbox.next_event().data()).unwrap();
    assert_eq!(event["text"], "last");
}

#[test]
fn presence_counts_a_token_once_however_many_connections_it_opens() {
    let server = demo();
    let alice = sign_in(&server, "alice");
    let visitor = guest(&server, "");
    let room = "/topics/room.r/events";
    // Alice's page: two streams of the room; her second page: one more.
    let a1 = SseClient::connect(server.addr, room, &bearer(&alice));
    let a2 = SseClient::connect(server.addr, &format!("{room}?presence=1"), &bearer(&alice));
    let a3 = SseClient::connect(server.addr, room, &bearer(&sign_in(&server, "alice")));
    // A guest's page: two streams, one name; the page's EventSource
    // cannot send the token, and goes with a ticket bought with it.
    let g1 = SseClient::connect(server.addr, room, &bearer(&visitor));
    let ticket = post(&server, "/tickets?topic=room.r", &bearer(&visitor), "");
    assert_eq!(ticket.status, 200, "{}", String::from_utf8_lossy(&ticket.body));
    let ticket = json_of(&ticket)["ticket"].as_str().unwrap().to_owned();
    let g2 = SseClient::connect(server.addr, &format!("{room}?ticket={ticket}"), "");
    assert_eq!(g2.response.status, 200);
    members_become(&server, "room.r", "", json!(["alice", "guest-1"]));
    drop((a1, a2));
    thread::sleep(Duration::from_millis(200));
    members_become(&server, "room.r", "", json!(["alice", "guest-1"]));
    drop(a3);
    members_become(&server, "room.r", "", json!(["guest-1"]));
    drop((g1, g2));
    members_become(&server, "room.r", "", json!([]));
}
