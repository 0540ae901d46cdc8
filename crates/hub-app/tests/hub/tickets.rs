//! Tickets, where the hub requires one to subscribe: asked for with the
//! token, used once, scoped to a topic, granting publishing, expiring.

use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use tether_testkit::{HttpConn, SseClient, WsClient, tcp};

use crate::helpers::{HubServer, auth, json, read_head, request, settings, upgrade_request, ws_json};

fn ticket(addr: SocketAddr, query: &str) -> String {
    let mut conn = HttpConn::connect(addr);
    let response = request(&mut conn, "POST", &format!("/tickets{query}"), &auth(), b"");
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let body = json(&response.body);
    assert!(body["expires_in"].as_f64().unwrap() > 0.0);
    let ticket = body["ticket"].as_str().unwrap().to_owned();
    assert_eq!(ticket.len(), 32);
    ticket
}

#[test]
fn tickets_are_single_use_scoped_and_expire() {
    let mut settings = settings();
    settings.require_ticket = true;
    settings.ticket_ttl = Duration::from_millis(300);
    let server = HubServer::start(settings);
    let status =
        |target: &str, headers: &str| SseClient::connect(server.addr, target, headers).response.status;

    // Tickets need the token.
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "POST", "/tickets", "", b"").status, 401);
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "GET", "/tickets", &auth(), b"").status, 405);

    assert_eq!(status("/topics/t/events", ""), 401, "no ticket");
    let one = ticket(server.addr, "");
    assert_eq!(status(&format!("/topics/t/events?ticket={one}"), ""), 200);
    assert_eq!(
        status(&format!("/topics/t/events?ticket={one}"), ""),
        403,
        "used already"
    );
    assert_eq!(
        status("/topics/t/events?ticket=00112233445566778899aabbccddeeff", ""),
        403
    );
    // The token works as well as a ticket for clients that can send it.
    assert_eq!(status("/topics/t/events", &auth()), 200);
    // Scoped to a topic.
    let scoped = ticket(server.addr, "?topic=t");
    assert_eq!(status(&format!("/topics/u/events?ticket={scoped}"), ""), 403);
    let scoped = ticket(server.addr, "?topic=t");
    assert_eq!(status(&format!("/topics/t/events?ticket={scoped}"), ""), 200);
    // Long polls and WebSockets need one too.
    let mut poll = HttpConn::connect(server.addr);
    poll.request("GET", "/topics/t/poll?timeout=0", "");
    assert_eq!(poll.response().status, 401);
    let mut raw = tcp(server.addr);
    raw.write_all(upgrade_request("/topics/t/ws", "").as_bytes())
        .unwrap();
    assert!(read_head(&mut raw).starts_with("HTTP/1.1 401 "));
    // A ticket that grants publishing on its topic.
    let publisher = ticket(server.addr, "?topic=t&publish=1");
    let mut ws = WsClient::connect(server.addr, &format!("/topics/t/ws?ticket={publisher}"));
    ws.send_text("with a ticket");
    assert_eq!(ws_json(&mut ws)["data"], "with a ticket");
    let plain = ticket(server.addr, "");
    let mut ws = WsClient::connect(server.addr, &format!("/topics/t/ws?ticket={plain}"));
    ws.send_text("without the grant");
    assert_eq!(ws_json(&mut ws)["control"], "error");
    // Expiry: a ticket older than its 300 ms is refused.
    let stale = ticket(server.addr, "");
    thread::sleep(Duration::from_millis(600));
    assert_eq!(status(&format!("/topics/t/events?ticket={stale}"), ""), 403);
}
