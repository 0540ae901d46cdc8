//! The metrics page: the Prometheus text format, and what it counts.

use tether_testkit as common;

use common::{HttpConn, SseClient, WsClient};

use crate::helpers::{HubServer, parse_metrics, publish, request, settings};

#[test]
fn metrics_parse_and_count() {
    let mut settings = settings();
    settings.metrics_topics = true;
    let server = HubServer::start(settings);
    let mut publisher = HttpConn::connect(server.addr);
    let _sse = SseClient::connect(server.addr, "/topics/m/events", "");
    let mut ws = WsClient::connect(server.addr, "/topics/m/ws");
    for i in 0..3 {
        publish(&mut publisher, "m", None, &format!("{i}"));
    }
    for _ in 0..3 {
        ws.recv_text();
    }
    let mut conn = HttpConn::connect(server.addr);
    assert_eq!(request(&mut conn, "POST", "/topics/m", "", b"x").status, 401);
    let response = common::get(server.addr, "/metrics");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = parse_metrics(std::str::from_utf8(&response.body).unwrap());
    assert_eq!(m["tether_connections{transport=\"websocket\"}"], 1.0);
    assert_eq!(m["tether_connections{transport=\"sse\"}"], 1.0);
    assert_eq!(m["tether_hub_subscribers{transport=\"websocket\"}"], 1.0);
    assert_eq!(m["tether_hub_subscribers{transport=\"sse\"}"], 1.0);
    assert_eq!(m["tether_hub_publishes_total{result=\"ok\"}"], 3.0);
    assert_eq!(m["tether_hub_events_sent_total{transport=\"websocket\"}"], 3.0);
    assert_eq!(m["tether_hub_topic_backlog_events{topic=\"m\"}"], 3.0);
    assert_eq!(m["tether_hub_backlog_events"], 3.0);
    assert!(m["tether_hub_backlog_bytes"] > 0.0);
    assert_eq!(m["tether_hub_topics"], 1.0);
    assert_eq!(m["tether_hub_refused_total{status=\"401\"}"], 1.0);
    assert_eq!(m["tether_broker_up"], 1.0);
    assert_eq!(m["tether_broker_state{broker=\"local\",state=\"up\"}"], 1.0);
    assert_eq!(m["tether_broker_state{broker=\"local\",state=\"down\"}"], 0.0);
    assert!(m["tether_bytes_sent_total"] > 0.0 && m["tether_bytes_received_total"] > 0.0);
    assert!(m["tether_messages_sent_total"] >= 6.0);
    assert_eq!(m["tether_slow_consumers_total"], 0.0);
    assert!(m["tether_http_requests_total"] >= 5.0);
    assert_eq!(m["tether_hub_publish_seconds_count"], 3.0);
    assert_eq!(m["tether_hub_publish_seconds_bucket{le=\"+Inf\"}"], 3.0);
}
