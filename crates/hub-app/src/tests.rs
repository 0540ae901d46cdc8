//! The hub application through a real server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;

use tether_auth::{Keys, NewToken, TetherClaim};
use tether_server::{Config, Handshake, Server};

use super::*;

const SECRET: &[u8] = b"a secret of at least thirty-two bytes!";

/// One HTTP/1.1 exchange, its head and body sent in one write.
fn ask(addr: std::net::SocketAddr, head: &str, body: &str) -> String {
    let mut socket = TcpStream::connect(addr).unwrap();
    let request = format!(
        "{head}\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    answer
}

/// A WebSocket upgrade request for `target`, with `headers` (each line
/// ending in CRLF) before its own.
fn upgrade_request(target: &str, headers: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\n{headers}Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Returns once the loop has acted on every request before: it answers
/// another one.
fn settle(addr: std::net::SocketAddr) {
    let metrics = ask(addr, "GET /metrics HTTP/1.1", "");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
}

/// A loop serving `app` on a port of its own, until [`Serving::stop`].
struct Serving {
    addr: std::net::SocketAddr,
    handle: tether_server::Handle,
    running: std::thread::JoinHandle<std::io::Result<()>>,
}

fn serve(app: HubApp) -> Serving {
    let server = Server::bind(Config::new("127.0.0.1:0".parse().unwrap()), Handshake::new(), app).unwrap();
    let (addr, handle) = (server.local_addr(), server.handle());
    let running = std::thread::spawn(move || server.run());
    Serving {
        addr,
        handle,
        running,
    }
}

impl Serving {
    fn stop(self) {
        self.handle.shutdown();
        self.running.join().unwrap().unwrap();
    }
}

/// An event stream of `target` opened with `headers` (each line ending
/// in CRLF), once the loop has started it (it answers another request).
fn open_event_stream(addr: std::net::SocketAddr, target: &str, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\n{headers}Host: x\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    settle(addr);
    stream
}

/// The head of an answer that goes on (an event stream, a WebSocket).
fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A publish signed with a JSON Web Token has its signature checked
/// once, however many steps (the publisher check, the publish rate,
/// the publisher's subject) read who sent it, and however many
/// callbacks (its route, then its body; its route, then its session)
/// the request takes: the request's admission carries it. A ticket, an
/// event stream, a WebSocket, a long poll and a server API request,
/// once too. A request whose body comes after its head is checked
/// once as well: before its body is read, into the admission the
/// server keeps for it (`App::before_body`), which its body's callback
/// reads.
#[test]
fn a_token_is_verified_once_per_request() {
    let settings = HubSettings {
        auth: Some(HubAuth::new(Keys::from_secret(SECRET).unwrap())),
        publish_rate: Some(PublishRate::new(100.0, 100.0)),
        ..HubSettings::default()
    };
    let shared = HubShared::new(settings, 1);
    let checked = Arc::clone(&shared.access.signatures_checked);
    let serving = serve(shared.app(0));
    let addr = serving.addr;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rights = TetherClaim::new(vec!["news".into()], vec!["news".into()]);
    let token = NewToken::new("alice", rights, now, now + 600)
        .sign_hs256(SECRET)
        .unwrap();
    let bearer = format!("Authorization: Bearer {token}");

    let published = ask(addr, &format!("POST /topics/news HTTP/1.1\r\n{bearer}"), "text");
    assert!(published.starts_with("HTTP/1.1 200"), "{published}");
    assert_eq!(checked.load(Ordering::Relaxed), 1, "a publish");

    let ticket = ask(
        addr,
        &format!("POST /tickets?topic=news HTTP/1.1\r\n{bearer}"),
        "",
    );
    assert!(ticket.starts_with("HTTP/1.1 200"), "{ticket}");
    assert_eq!(checked.load(Ordering::Relaxed), 2, "a publish and a ticket");

    // A publish whose body comes in a second write, after the head:
    // the head is checked before the body is read, into the admission
    // its body's callback reads.
    let mut socket = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /topics/news HTTP/1.1\r\n{bearer}\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    socket.write_all(b"late").unwrap();
    let mut late = String::new();
    socket.read_to_string(&mut late).unwrap();
    assert!(late.starts_with("HTTP/1.1 200"), "{late}");
    assert_eq!(
        checked.load(Ordering::Relaxed),
        3,
        "a publish whose body came later: its head, once"
    );

    // An event stream: routed, then started, with one verification.
    let stream = open_event_stream(addr, "/topics/news/events", &format!("{bearer}\r\n"));
    assert_eq!(checked.load(Ordering::Relaxed), 4, "an event stream");

    // A WebSocket: routed, then opened, with one verification.
    let mut socket = TcpStream::connect(addr).unwrap();
    let request = upgrade_request("/topics/news/ws", &format!("{bearer}\r\n"));
    socket.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut socket);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    settle(addr);
    assert_eq!(checked.load(Ordering::Relaxed), 5, "a WebSocket");

    // A request of the server API.
    let history = ask(
        addr,
        &format!("GET /api/history?topic=news HTTP/1.1\r\n{bearer}"),
        "",
    );
    assert!(history.starts_with("HTTP/1.1 200"), "{history}");
    assert_eq!(checked.load(Ordering::Relaxed), 6, "an API request");

    // An API request whose body comes after its head.
    let mut socket = TcpStream::connect(addr).unwrap();
    let body = r#"{"items":[{"topic":"news","data":"x"}]}"#;
    let head = format!(
        "POST /api/publish HTTP/1.1\r\n{bearer}\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).unwrap();
    socket.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    socket.write_all(body.as_bytes()).unwrap();
    let mut published = String::new();
    socket.read_to_string(&mut published).unwrap();
    assert!(published.starts_with("HTTP/1.1 200"), "{published}");
    assert_eq!(
        checked.load(Ordering::Relaxed),
        7,
        "an API publish whose body came later: its head, once"
    );

    // A long poll: routed, then held, with one verification.
    let polled = ask(
        addr,
        &format!("GET /topics/news/poll?timeout=1 HTTP/1.1\r\n{bearer}"),
        "",
    );
    assert!(polled.starts_with("HTTP/1.1 200"), "{polled}");
    assert_eq!(checked.load(Ordering::Relaxed), 8, "a long poll");

    drop(stream);
    serving.stop();
}

/// A backend whose connect hook lets everyone in as `guest`, from a
/// thread of its own (as the HTTP hooks answer).
#[derive(Debug)]
struct LetIn;

impl Backend for LetIn {
    fn answers(&self, hook: Hook) -> bool {
        hook == Hook::Connect
    }

    fn ask(&self, _loop_index: usize, _question: Question, answer: AnswerTo) -> Result<(), Busy> {
        std::thread::spawn(move || {
            let allowed = tether_hub::Allowed::new().identity(Some("guest".into()), vec![], vec![]);
            answer(tether_hub::Decision::Allow(allowed));
        });
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn forwarded_headers(&self) -> &[String] {
        &[]
    }

    fn forwarded_cookies(&self) -> &[String] {
        &[]
    }
}

/// The origin of a request held for the backend's word is kept for its
/// answer, and let go when it gets one now or goes on as a WebSocket or
/// an event stream (which no answer follows): none is left behind.
#[test]
fn origins_kept_for_the_backends_word_are_let_go() {
    const ORIGIN: &str = "https://app.example";
    let settings = HubSettings {
        trusted_origins: vec![ORIGIN.into()],
        backend: Some(Arc::new(LetIn)),
        ..HubSettings::default()
    };
    let shared = HubShared::new(settings, 1);
    let app = shared.app(0);
    let held = Arc::clone(&app.cors.held);
    let serving = serve(app);
    let addr = serving.addr;

    let origin = format!("Origin: {ORIGIN}");
    for i in 0..100 {
        let mut socket = TcpStream::connect(addr).unwrap();
        let request = if i % 2 == 0 {
            upgrade_request("/topics/news/ws", &format!("{origin}\r\n"))
        } else {
            format!("GET /topics/news/events HTTP/1.1\r\n{origin}\r\nHost: x\r\n\r\n")
        };
        socket.write_all(request.as_bytes()).unwrap();
        let head = read_head(&mut socket);
        let status = if i % 2 == 0 {
            "HTTP/1.1 101"
        } else {
            "HTTP/1.1 200"
        };
        assert!(head.starts_with(status), "{head}");
        // An event stream carries the fields (a WebSocket needs none).
        assert!(i % 2 == 0 || head.contains(ORIGIN), "{head}");
    }
    // Answered now once the backend let it in: a publish its rights do
    // not grant.
    let refused = ask(addr, &format!("POST /topics/news HTTP/1.1\r\n{origin}"), "x");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains(ORIGIN), "{refused}");

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while held.load(Ordering::Relaxed) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} origins kept",
            held.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    serving.stop();
}

/// The subject the backend names for a request without credentials is
/// the one its connection is held as, from the admission it goes on
/// with: a second WebSocket of the same subject, over the limit of one,
/// is refused (429), and once the first is gone the subject may connect
/// again.
#[test]
fn a_socket_the_backend_let_in_is_held_as_its_subject() {
    let settings = HubSettings {
        backend: Some(Arc::new(LetIn)),
        max_connections_per_subject: Some(1),
        ..HubSettings::default()
    };
    let serving = serve(HubShared::new(settings, 1).app(0));
    let addr = serving.addr;
    let upgrade = |addr| {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .write_all(upgrade_request("/topics/news/ws", "").as_bytes())
            .unwrap();
        let head = read_head(&mut socket);
        (socket, head)
    };

    let (first, head) = upgrade(addr);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The loop has opened the socket once it answers another request.
    settle(addr);
    let (_, head) = upgrade(addr);
    assert!(head.starts_with("HTTP/1.1 429"), "guest has one open: {head}");

    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_again, head) = upgrade(addr);
        if head.starts_with("HTTP/1.1 101") {
            break;
        }
        assert!(head.starts_with("HTTP/1.1 429"), "{head}");
        assert!(
            std::time::Instant::now() < deadline,
            "guest's first socket never left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    serving.stop();
}

/// What a subscriber's query asks for (`?format=`, `?presence=`,
/// `?envelope=`, `?lastEventId=`, `?event=`) is read once per request,
/// when it is routed: the callback that opens its WebSocket or starts
/// its event stream takes it from the request's admission.
#[test]
fn a_subscribers_query_is_read_once_per_request() {
    let shared = HubShared::new(HubSettings::default(), 1);
    let serving = serve(shared.app(0));
    let addr = serving.addr;
    let names = ["format", "presence", "envelope", "lastEventId", "event"];

    // A query of its own, so that no other test's reads are counted.
    let query = "format=json&presence=0&envelope=1&lastEventId=1-1&event=once&test=ws";
    let mut socket = TcpStream::connect(addr).unwrap();
    let request = upgrade_request(&format!("/topics/news/ws?{query}"), "");
    socket.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut socket);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // The loop has opened the socket once it answers another request.
    settle(addr);
    for name in names {
        assert_eq!(routes::reads::count(query, name), 1, "a WebSocket's {name}");
    }

    let query = "format=json&presence=0&envelope=1&event=once&test=events";
    let stream = open_event_stream(addr, &format!("/topics/news/events?{query}"), "");
    for name in names {
        assert_eq!(routes::reads::count(query, name), 1, "an event stream's {name}");
    }

    drop((socket, stream));
    serving.stop();
}

/// A subscriber's `?ticket=` is read once, when it is routed, however
/// many steps use it after: the ticket checked and used, its holder's
/// subject counted against the subject's connections, and the holder
/// taken by the session it opens.
#[test]
fn a_subscribers_ticket_is_read_once_per_request() {
    let settings = HubSettings {
        publish_token: Some("the-publish-token".into()),
        max_connections_per_subject: Some(4),
        ..HubSettings::default()
    };
    let shared = HubShared::new(settings, 1);
    let serving = serve(shared.app(0));
    let addr = serving.addr;
    let ticket = || {
        let head = "POST /tickets?topic=news HTTP/1.1\r\nAuthorization: Bearer the-publish-token";
        let answer = ask(addr, head, "");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        body["ticket"].as_str().unwrap().to_owned()
    };

    let query = format!("ticket={}", ticket());
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .write_all(upgrade_request(&format!("/topics/news/ws?{query}"), "").as_bytes())
        .unwrap();
    let head = read_head(&mut socket);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    settle(addr);
    assert_eq!(routes::reads::count(&query, "ticket"), 1, "a WebSocket's ticket");

    let query = format!("ticket={}", ticket());
    let stream = open_event_stream(addr, &format!("/topics/news/events?{query}"), "");
    assert_eq!(
        routes::reads::count(&query, "ticket"),
        1,
        "an event stream's ticket"
    );

    drop((socket, stream));
    serving.stop();
}
