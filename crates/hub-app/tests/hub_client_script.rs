//! The hub alone (`tether serve --app hub`) serves the browser client at
//! `/tether-client.js`, the same bytes as the demo, so that a page served
//! from elsewhere can import it from the server it subscribes to; and a
//! hub with a trusted-origins list still serves it to any origin, as the
//! static file it is.

use tether_testkit as common;

use common::{HttpConn, TestServer, config, get};
use tether_apps::Demo;
use tether_hub_app::{HubApp, HubSettings};

const CLIENT: &[u8] = include_bytes!("../../hub-app/static/tether-client.js");

#[test]
fn the_hub_serves_the_browser_client_as_the_demo_does() {
    let hub = TestServer::start(config(), HubApp::new(HubSettings::default()));
    let response = get(hub.addr, "/tether-client.js");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(response.body, CLIENT);
    hub.shutdown();

    let demo = TestServer::start(config(), Demo::new());
    assert_eq!(get(demo.addr, "/tether-client.js").body, CLIENT);
    demo.shutdown();
}

#[test]
fn another_origin_gets_it_from_a_hub_that_trusts_only_its_own() {
    let mut settings = HubSettings::default();
    settings.trusted_origins = vec!["https://app.example.com".into()];
    let hub = TestServer::start(config(), HubApp::new(settings));
    let mut conn = HttpConn::connect(hub.addr);
    conn.send(
        b"GET /tether-client.js HTTP/1.1\r\nHost: t\r\nOrigin: https://elsewhere.example\r\n\
          Connection: close\r\n\r\n",
    );
    let response = conn.response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, CLIENT);
    hub.shutdown();
}
