//! A publish that will be refused is answered as soon as its head is in,
//! before its body is read, and the connection closes: a client does not
//! upload a body in vain, and the server does not read one.

use tether_testkit as common;

use std::time::Duration;

use common::{HttpConn, TestServer, config};
use tether_apps::Demo;
use tether_hub_app::{HubApp, HubSettings};

const TOKEN: &str = "refusal-token";

fn hub() -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    TestServer::start(config(), HubApp::new(settings))
}

#[test]
fn a_publish_with_a_wrong_token_is_refused_before_its_body() {
    let server = hub();
    for (authorization, status) in [("", 401), ("Authorization: Bearer wrong\r\n", 401)] {
        // The client waits for 100 Continue: it gets the refusal instead,
        // and never sends the body.
        let mut conn = HttpConn::connect(server.addr);
        conn.send(
            format!(
                "POST /topics/big HTTP/1.1\r\nHost: t\r\n{authorization}Expect: 100-continue\r\n\
                 Content-Length: 900000\r\n\r\n"
            )
            .as_bytes(),
        );
        let response = conn.response();
        assert_eq!(response.status, status);
        assert!(response.header("www-authenticate").is_some());
        assert!(response.closes());
        conn.expect_eof();

        // Without Expect: the answer comes after a first part of the body.
        let mut conn = HttpConn::connect(server.addr);
        conn.send(
            format!(
                "POST /tickets HTTP/1.1\r\nHost: t\r\n{authorization}Content-Length: 900000\r\n\r\n{}",
                "x".repeat(1000)
            )
            .as_bytes(),
        );
        let response = conn.response();
        assert_eq!(response.status, status);
        assert!(response.closes());
    }
    // Refusals are counted as before.
    let mut metrics = HttpConn::connect(server.addr);
    metrics.request("GET", "/metrics", "Connection: close\r\n");
    let body = String::from_utf8(metrics.response().body).expect("UTF-8");
    assert!(
        body.contains("tether_hub_refused_total{status=\"401\"} 4\n"),
        "{body}"
    );
    server.shutdown();
}

#[test]
fn a_publish_with_the_token_still_waits_for_its_body() {
    let server = TestServer::start(config(), {
        let mut settings = Demo::settings(HubSettings::default());
        settings.publish_token = Some(TOKEN.to_owned());
        Demo::with_hub(HubApp::new(settings))
    });
    let mut conn = HttpConn::connect(server.addr);
    conn.send(
        format!(
            "POST /topics/slow HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
             Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(conn.head_response().status, 100);
    std::thread::sleep(Duration::from_millis(50));
    conn.send(b"hello");
    assert_eq!(conn.response().status, 200);
    server.shutdown();
}
