//! Who may publish: over HTTP only with the token, over WebSocket where
//! `ws_publish` allows or with the token; and what a publish must be.

use std::io::Write;

use tether_hub_app::HubSettings;
use tether_testkit as common;

use common::{HttpConn, WsClient, tcp};

use crate::helpers::{HubServer, auth, publish, read_head, request, settings, upgrade_request, ws_json};

#[test]
fn websocket_subscribers_resume_and_publish_where_allowed() {
    let mut settings = settings();
    settings.ws_publish = vec!["room.*".to_owned()];
    let server = HubServer::start(settings);
    let mut publisher = HttpConn::connect(server.addr);
    let first = publish(&mut publisher, "room.a", None, "one");
    let second = publish(&mut publisher, "room.a", Some("note"), "two \"quoted\"");

    let mut ws = WsClient::connect(server.addr, &format!("/topics/room.a/ws?lastEventId={first}"));
    let event = ws_json(&mut ws);
    assert_eq!(event["topic"], "room.a");
    assert_eq!(event["id"], second.as_str());
    assert_eq!(event["event"], "note");
    assert_eq!(event["data"], "two \"quoted\"");

    // Anyone may publish to room.*: the publisher sees its own event, in
    // the topic's order, as does every other subscriber.
    let mut other = WsClient::connect(server.addr, "/topics/room.a/ws?event=chat");
    ws.send_text("from the socket");
    for client in [&mut ws, &mut other] {
        let event = ws_json(client);
        assert_eq!(
            (event["data"].as_str(), event["event"].as_str()),
            (Some("from the socket"), Some("message"))
        );
    }
    other.send_text("typed");
    assert_eq!(ws_json(&mut ws)["event"], "chat");

    // Elsewhere publishing is refused with a control message.
    let mut news = WsClient::connect(server.addr, "/topics/news/ws");
    news.send_text("nope");
    let error = ws_json(&mut news);
    assert_eq!(error["control"], "error");
    assert!(error["error"].as_str().unwrap().contains("not allowed"));
    // Where it may publish, a binary message is a binary event.
    ws.send_binary(b"bytes");
    let event = ws_json(&mut ws);
    assert_eq!(
        (event["data"].as_str(), event["encoding"].as_str()),
        (Some("Ynl0ZXM="), Some("base64")),
        "{event}"
    );
    // A bad ?event= is refused before the upgrade.
    let mut raw = tcp(server.addr);
    raw.write_all(upgrade_request("/topics/room.a/ws?event=gap", "").as_bytes())
        .unwrap();
    assert!(read_head(&mut raw).starts_with("HTTP/1.1 400 "));
}

#[test]
fn a_token_holder_may_publish_over_websocket_anywhere() {
    let server = HubServer::start(settings());
    let upgrade = common::Upgrade::new(server.addr, "/topics/news/ws");
    // Splice the Authorization header into the upgrade request.
    let text = String::from_utf8(upgrade.request.clone()).unwrap();
    let with_auth = text.replacen("\r\n", &format!("\r\n{}", auth()), 1);
    let mut stream = tcp(server.addr);
    stream.write_all(with_auth.as_bytes()).unwrap();
    // The request bytes in `upgrade` are not used again: it validates the 101.
    let mut ws = WsClient::finish(stream, upgrade);
    ws.send_text("by token");
    assert_eq!(ws_json(&mut ws)["data"], "by token");
}

#[test]
fn publishing_over_http_needs_the_token() {
    let server = HubServer::start(settings());
    let mut conn = HttpConn::connect(server.addr);
    let missing = request(&mut conn, "POST", "/topics/a", "", b"x");
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"tether\"")
    );
    let mut conn = HttpConn::connect(server.addr);
    let wrong = request(
        &mut conn,
        "POST",
        "/topics/a",
        "Authorization: Bearer nope\r\n",
        b"x",
    );
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let mut conn = HttpConn::connect(server.addr);
    let basic = request(
        &mut conn,
        "POST",
        "/topics/a",
        "Authorization: Basic czNjcmV0\r\n",
        b"x",
    );
    assert_eq!(basic.status, 401);
    // With it: the checks on what is published.
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(
        request(&mut conn, "POST", "/topics/bad%20name", &auth(), b"x").status,
        400
    );
    assert_eq!(
        request(&mut conn, "POST", "/topics/a?event=gap", &auth(), b"x").status,
        400
    );
    assert_eq!(
        request(&mut conn, "POST", "/topics/a", &auth(), b"\xff\xfe").status,
        400
    );
    let big = vec![b'x'; 64 * 1024 + 1];
    assert_eq!(request(&mut conn, "POST", "/topics/a", &auth(), &big).status, 413);
    let typed = request(
        &mut conn,
        "POST",
        "/topics/a",
        &format!("{}Tether-Event: kind\r\n", auth()),
        b"x",
    );
    assert_eq!(typed.status, 200);
    assert_eq!(request(&mut conn, "GET", "/topics/a", "", b"").status, 405);

    // No token configured: publishing over HTTP is off.
    let open = HubServer::start(HubSettings::default());
    let mut conn = HttpConn::connect(open.addr);
    let refused = request(&mut conn, "POST", "/topics/a", &auth(), b"x");
    assert_eq!(refused.status, 403);
    assert!(String::from_utf8_lossy(&refused.body).contains("disabled"));
}
