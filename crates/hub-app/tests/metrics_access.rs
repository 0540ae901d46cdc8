//! Who may read `/metrics`, and what it tells: no topic names unless asked
//! for, a bearer token when one is set, and its own listener when asked,
//! which answers only the hosts it serves.

mod support;

use tether_testkit as common;

use std::net::SocketAddr;

use common::{HttpConn, TestServer, config, get};
use tether_hub_app::{HubApp, HubSettings};
use tether_server::{Config, Server};

use support::http::{bearer, request, request_to};

const TOKEN: &str = "metrics-publish-token";

fn settings() -> HubSettings {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    settings
}

fn publish(addr: SocketAddr, topic: &str) {
    let response = request(addr, "POST", &format!("/topics/{topic}"), &bearer(TOKEN), "hi");
    assert_eq!(response.status, 200);
}

fn metrics(addr: SocketAddr, extra_headers: &str) -> (u16, String) {
    let mut conn = HttpConn::connect(addr);
    conn.request(
        "GET",
        "/metrics",
        &format!("{extra_headers}Connection: close\r\n"),
    );
    let response = conn.response();
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

#[test]
fn topic_names_are_in_the_metrics_only_when_asked_for() {
    for per_topic in [false, true] {
        let mut settings = settings();
        settings.metrics_topics = per_topic;
        let server = TestServer::start(config(), HubApp::new(settings));
        publish(server.addr, "private.ledger");
        let (status, body) = metrics(server.addr, "");
        assert_eq!(status, 200);
        // The totals are there either way.
        assert!(body.contains("tether_hub_backlog_events 1\n"), "{body}");
        assert!(body.contains("tether_app_panics_total 0\n"), "{body}");
        for place in ["app", "connection", "quic"] {
            let sample = format!("tether_panics_total{{where=\"{place}\"}} 0\n");
            assert!(body.contains(&sample), "{body}");
        }
        assert_eq!(body.contains("private.ledger"), per_topic, "{body}");
        assert_eq!(
            body.contains("tether_hub_topic_backlog_events{topic=\"private.ledger\"} 1\n"),
            per_topic,
            "{body}"
        );
        server.shutdown();
    }
}

#[test]
fn a_metrics_token_is_required_when_set() {
    let mut settings = settings();
    settings.metrics_token = Some("scrape-token".to_owned());
    let server = TestServer::start(config(), HubApp::new(settings));
    let (status, body) = metrics(server.addr, "");
    assert_eq!(status, 401, "{body}");
    let mut conn = HttpConn::connect(server.addr);
    conn.request("GET", "/metrics", "Connection: close\r\n");
    let response = conn.response();
    assert!(
        response
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    // Not the publish token either.
    assert_eq!(
        metrics(server.addr, &format!("Authorization: Bearer {TOKEN}\r\n")).0,
        401
    );
    let (status, body) = metrics(server.addr, "Authorization: Bearer scrape-token\r\n");
    assert_eq!(status, 200);
    assert!(body.contains("tether_connections"), "{body}");
    server.shutdown();
}

#[test]
fn metrics_on_an_admin_listener_and_not_on_the_main_port() {
    let mut settings = settings();
    settings.metrics_on_admin_listener = true;
    let mut config: Config = config();
    config.admin_addr = Some("127.0.0.1:0".parse().expect("an address"));
    // Bound here to learn the admin port, then run on its own thread.
    let server = Server::bind(config, tether_server::Handshake::new(), HubApp::new(settings)).expect("bind");
    let admin = server.admin_addr().expect("an admin listener");
    let main = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());

    assert_eq!(metrics(main, "").0, 404);
    // Asked for by its own address, as a scraper does.
    let scraped = request_to(admin, &admin.to_string(), "GET", "/metrics", "", "");
    assert_eq!(scraped.status, 200);
    let body = String::from_utf8_lossy(&scraped.body);
    assert!(body.contains("tether_connections"), "{body}");
    // Under a name it was not given (a DNS-rebinding page's, or `test`,
    // which the test client names): 421, the metrics unread.
    let (status, body) = metrics(admin, "");
    assert_eq!(status, 421, "{body}");
    assert!(!body.contains("tether_connections"), "{body}");
    // Health checks work there too; the hub's routes do not.
    assert_eq!(get(admin, "/healthz").status, 200);
    let own = admin.to_string();
    assert_eq!(
        request_to(admin, &own, "GET", "/topics/a/poll?timeout=0", "", "").status,
        404
    );
    assert_eq!(get(main, "/topics/a/poll?timeout=0").status, 200);

    handle.shutdown();
    thread.join().expect("no panic").expect("run() returned Ok");
    // The admin listener closed with the server.
    assert!(std::net::TcpStream::connect(admin).is_err());
}
