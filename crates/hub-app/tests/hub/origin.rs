//! The origin allowlist, on the hub's routes and on every WebSocket route
//! of a server that takes its policy.

use std::io::Write;
use std::sync::mpsc;
use std::thread;

use tether_hub_app::HubSettings;
use tether_server::{Handshake, Server};
use tether_testkit::{HttpConn, SseClient, config, tcp};

use crate::helpers::{HubServer, auth, read_head, request, settings, upgrade_request};

#[test]
fn origins_outside_the_allowlist_are_refused() {
    let mut settings = settings();
    settings.trusted_origins = vec!["http://good.example".to_owned()];
    let server = HubServer::start(settings);
    let try_upgrade = |extra: &str| {
        let mut raw = tcp(server.addr);
        raw.write_all(upgrade_request("/topics/t/ws", extra).as_bytes())
            .unwrap();
        read_head(&mut raw)
    };
    assert!(try_upgrade("Origin: http://evil.example\r\n").starts_with("HTTP/1.1 403 "));
    assert!(try_upgrade("Origin: http://good.example\r\n").starts_with("HTTP/1.1 101 "));
    assert!(
        try_upgrade("").starts_with("HTTP/1.1 101 "),
        "no Origin: not a browser"
    );
    let sse = |headers: &str| {
        SseClient::connect(server.addr, "/topics/t/events", headers)
            .response
            .status
    };
    assert_eq!(sse("Origin: http://evil.example\r\n"), 403);
    assert_eq!(sse("Origin: http://GOOD.example\r\n"), 200);
    let mut conn = HttpConn::connect(server.addr);
    let post = request(
        &mut conn,
        "POST",
        "/topics/t",
        &format!("{}Origin: http://evil.example\r\n", auth()),
        b"x",
    );
    assert_eq!(post.status, 403);
}

#[test]
fn the_origin_policy_guards_every_websocket_route() {
    // Not only the hub's: an echo on every path, behind the same policy.
    let mut settings = HubSettings::default();
    settings.trusted_origins = vec!["http://good.example".to_owned()];
    let handshake = settings.origin_policy(Handshake::new());
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let server = Server::bind(config(), handshake, tether_apps::Echo::everywhere())?;
        tx.send((server.local_addr(), server.handle()))
            .expect("the test waits");
        server.run()
    });
    let (addr, handle) = rx.recv().expect("the server binds");
    let try_upgrade = |extra: &str| {
        let mut raw = tcp(addr);
        raw.write_all(upgrade_request("/anything", extra).as_bytes())
            .unwrap();
        read_head(&mut raw)
    };
    assert!(try_upgrade("Origin: http://evil.example\r\n").starts_with("HTTP/1.1 403 "));
    assert!(try_upgrade("Origin: http://good.example\r\n").starts_with("HTTP/1.1 101 "));
    handle.shutdown();
    thread.join().expect("no panic").expect("run() returned Ok");
}
